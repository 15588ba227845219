"""A hand-written four-customer profile for the activation tests (counts worked out by hand in each test).

Now is 2025-06-30 12:00 UTC.
- A: store sale 2025-01-10 and online sale 2025-06-29 (2 orders, 150.0); added to cart 2025-06-30 08:00, after
  that purchase (abandoned cart); viewed Shoes once on 2025-06-20. Consents to email. Churn 0.7, value 500.
- B: store sale 2025-02-01 only (lapsed in store); viewed Shoes three times on 2025-06-25 (browses online).
  No email consent. Churn 0.8, value 50.
- C: first order online 2025-06-20, another 2025-06-30 07:00 after adding to cart at 06:00 (not abandoned):
  a new customer. Consents to email. Churn 0.1, value 20.
- D: a loyalty member since 2023 with no orders and no events; no profiling consent (no scores), in FR.
Value bands over [500, 50, 20] at quantiles (0.5, 0.8): thresholds 50 and 320, so A high, B medium, C low.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from tessera.core.settings import Workspace

NOW = datetime(2025, 6, 30, 12, tzinfo=UTC)


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def write_profile(root: Path, consent_email: dict[str, bool] | None = None) -> Workspace:
    """The four customers' profile tables and product catalogue under `root`."""
    workspace = Workspace(root)
    workspace.profile.mkdir(parents=True, exist_ok=True)
    email = {"A": True, "B": False, "C": True, "D": False, **(consent_email or {})}
    customers = pd.DataFrame(
        {
            "customer_id": ["A", "B", "C", "D"],
            "email": ["a@example.com", "b@example.com", "c@example.com", None],
            "phone": ["+447700900001", None, None, "+33612345678"],
            "city": ["Leeds", "York", "Hull", "Paris"],
            "postcode": ["LS1", "YO1", "HU1", "75001"],
            "country": ["GB", "GB", "GB", "FR"],
            "birth_date": pd.to_datetime(["1980-01-01", "1990-01-01", None, None]).date,
            "gender": ["F", "M", None, "F"],
            "loyalty_tier": [None, "gold", None, "silver"],
            "loyalty_points": [None, 120.0, None, 10.0],
            "loyalty_joined_at": [pd.NaT, pd.NaT, pd.NaT, ts("2023-01-01")],
            "n_orders": [2, 1, 2, None],
            "first_order_at": [ts("2025-01-10"), ts("2025-02-01"), ts("2025-06-20"), pd.NaT],
            "last_order_at": [ts("2025-06-29"), ts("2025-02-01"), ts("2025-06-30 07:00"), pd.NaT],
            "consent_email": [email[c] for c in "ABCD"],
            "consent_sms": [True, False, False, True],
            "consent_personalisation": [True, True, True, True],
            "consent_profiling": [True, True, True, False],
        }
    )
    customers.to_parquet(workspace.profile / "customers.parquet", index=False)
    orders = pd.DataFrame(
        {
            "customer_id": ["A", "A", "B", "C", "C", None],
            "order_id": ["o1", "o2", "o3", "o4", "o5", "o6"],
            "ordered_at": [
                ts("2025-01-10"),
                ts("2025-06-29"),
                ts("2025-02-01"),
                ts("2025-06-20"),
                ts("2025-06-30 07:00"),
                ts("2025-06-30"),
            ],
            "sku": ["S1", "S2", "S1", "S2", "S3", "S1"],
            "amount": [100.0, 50.0, 80.0, 20.0, 30.0, 10.0],
            "channel": ["store", "online", "store", "online", "online", "store"],
            "line_type": ["sale"] * 6,
        }
    )
    orders.to_parquet(workspace.profile / "orders.parquet", index=False)
    interactions = pd.DataFrame(
        {
            "customer_id": ["A", "A", "B", "B", "B", "C"],
            "occurred_at": [
                ts("2025-06-30 08:00"),
                ts("2025-06-20"),
                ts("2025-06-25 10:00"),
                ts("2025-06-25 11:00"),
                ts("2025-06-25 12:00"),
                ts("2025-06-30 06:00"),
            ],
            "channel": ["web"] * 6,
            "event_type": [
                "add_to_cart",
                "product_view",
                "product_view",
                "product_view",
                "product_view",
                "add_to_cart",
            ],
            "sku": ["S2", "S1", "S1", "S1", "S1", "S3"],
        }
    )
    interactions.to_parquet(workspace.profile / "interactions.parquet", index=False)
    products = workspace.canonical_table("products")
    products.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"sku": ["S1", "S2", "S3"], "category": ["Shoes", "Bags", "Hats"]}).to_parquet(
        products / "shop.parquet", index=False
    )
    return workspace


def scores() -> pd.DataFrame:
    """The champions' outputs for A, B, C (D gave no profiling consent)."""
    return pd.DataFrame(
        {
            "customer_id": ["A", "B", "C"],
            "churn_probability": [0.7, 0.8, 0.1],
            "cltv": [500.0, 50.0, 20.0],
            "top_category": ["Bags", "Shoes", "Hats"],
            "top_skus": ["S2,S1", "S1", "S3"],
        }
    )


def write_yaml(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
