"""A hand-made profile (docs/profile.md) small enough to check every feature by hand.

- alice: orders online and in store, returns one line, reads emails, changes her consent, loyalty gold;
- bob: one order before the May cutoff and one after it, a ticket rated 2, an abandoned cart;
- carol: a customer with no history at all;
- an anonymous store receipt (no customer) that still counts towards product popularity.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd

from features.store import build_feature_store
from features.store.settings import FeatureStoreSettings
from tessera.core.settings import Settings, Workspace

NOW = datetime(2025, 7, 1, tzinfo=UTC)
CONSENT_DEFAULTS = {"email": False, "sms": False, "personalisation": True, "profiling": True}
PII = {"Alice", "Bob", "Carol", "Smith", "alice@example.com", "bob@example.com", "+447700900001", "1 High St"}


def t(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def customers(order_lines_only: bool = False) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "customer_id": ["alice", "bob", "carol"],
            "first_name": ["Alice", "Bob", "Carol"],
            "last_name": ["Smith", "Smith", "Smith"],
            "email": ["alice@example.com", "bob@example.com", None],
            "phone": ["+447700900001", None, None],
            "street": ["1 High St", None, None],
            "country": ["GB", "fr", None],
            "birth_date": [date(1990, 6, 1), date(1960, 1, 15), None],
            "loyalty_tier": ["gold", None, None],
            "loyalty_points": [120.0, None, None],
            "loyalty_joined_at": [t("2024-02-01"), pd.NaT, pd.NaT],
        }
    )
    if order_lines_only:
        # What the profile of a retailer with nothing but order lines holds.
        return frame[["customer_id", "first_name", "last_name", "email", "country"]]
    return frame


ORDER_COLUMNS = [
    "customer_id",
    "order_id",
    "ordered_at",
    "sku",
    "quantity",
    "unit_price",
    "channel",
    "line_type",
]


def orders() -> pd.DataFrame:
    rows = [
        ("alice", "O1", t("2025-01-10 10:00"), "A", 1.0, 10.0, "online", "sale"),
        ("alice", "O1", t("2025-01-10 10:00"), "B", 2.0, 5.0, "online", "sale"),
        ("alice", "O2", t("2025-03-01 12:00"), "A", 1.0, 10.0, "store", "sale"),
        ("alice", "R1", t("2025-03-05 12:00"), "A", -1.0, 10.0, "store", "return"),
        ("alice", "O9", t("2025-03-06 12:00"), "C", 1.0, 7.0, "online", "cancellation"),
        ("bob", "O3", t("2025-02-01 09:00"), "B", 1.0, 5.0, "online", "sale"),
        ("bob", "O4", t("2025-06-01 09:00"), "C", 3.0, 7.0, "online", "sale"),
        (None, "O5", t("2025-06-02 09:00"), "A", 1.0, 9.0, "store", "sale"),
    ]
    frame = pd.DataFrame(rows, columns=ORDER_COLUMNS)
    frame["amount"] = frame["quantity"] * frame["unit_price"]
    frame["line_no"] = frame.groupby("order_id").cumcount() + 1
    return frame


def interactions() -> pd.DataFrame:
    rows = [
        ("alice", t("2025-01-09 20:00"), "web", "product_view", "A", "S1", None),
        ("alice", t("2025-01-09 20:05"), "web", "add_to_cart", "A", "S1", None),
        ("alice", t("2025-02-01 08:00"), "email", "sent", None, None, None),
        ("alice", t("2025-02-01 09:00"), "email", "open", None, None, None),
        ("bob", t("2025-03-10 08:00"), "service", "ticket", None, "T1", 2.0),
        ("bob", t("2025-04-01 20:05"), "web", "add_to_cart", "C", "S2", None),
        ("bob", t("2025-04-01 20:06"), "web", "add_to_cart", "C", "S2", None),
        (None, t("2025-04-02 10:00"), "web", "page_view", None, "S3", None),
    ]
    columns = ["customer_id", "occurred_at", "channel", "event_type", "sku", "session_id", "satisfaction"]
    return pd.DataFrame(rows, columns=columns)


def consent_events() -> pd.DataFrame:
    rows = [
        ("alice", "email", True, t("2024-12-01")),
        # A grant and a withdrawal recorded at the same moment: the withdrawal wins.
        ("alice", "email", False, t("2025-03-01")),
        ("alice", "email", True, t("2025-03-01")),
    ]
    return pd.DataFrame(rows, columns=["customer_id", "purpose", "granted", "recorded_at"])


def products() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sku": ["A", "B", "C"],
            "name": ["Pan", "Towel", "Rake"],
            "category": ["Home > Kitchen", "Home > Bath", "Garden"],
            "brand": ["X", "Y", "Z"],
            "price": [10.0, 5.0, 7.0],
            "available": [True, True, False],
            "source": ["catalogue"] * 3,
        }
    )


def write_profile(workspace: Workspace, order_lines_only: bool = False) -> Workspace:
    """Write the profile tables (and, for the full retailer, a catalogue) into the workspace."""
    workspace.profile.mkdir(parents=True, exist_ok=True)
    customers(order_lines_only).to_parquet(workspace.profile / "customers.parquet")
    orders().to_parquet(workspace.profile / "orders.parquet")
    if not order_lines_only:
        interactions().to_parquet(workspace.profile / "interactions.parquet")
        consent_events().to_parquet(workspace.profile / "consent_events.parquet")
        folder = workspace.canonical_table("products")
        folder.mkdir(parents=True, exist_ok=True)
        products().to_parquet(folder / "catalogue.parquet")
    return workspace


def new_workspace(root: Path, order_lines_only: bool = False) -> Workspace:
    return write_profile(Workspace(root), order_lines_only)


def embedded_settings() -> FeatureStoreSettings:
    """What a user gets by default: SQLite online store, file registry, DuckDB offline store."""
    return FeatureStoreSettings(online_store="sqlite", registry="file", offline_store="duckdb")


def production_settings() -> FeatureStoreSettings:
    """Redis and a PostgreSQL registry, under a project of its own (the servers are shared)."""
    return FeatureStoreSettings(
        project=f"tessera_test_{uuid.uuid4().hex[:10]}",
        online_store="redis",
        registry="sql",
        offline_store="duckdb",
        redis_url="127.0.0.1:6379",
        registry_url="postgresql+psycopg://postgres@127.0.0.1:5432/test",
    )


def build(workspace: Workspace, store_settings: FeatureStoreSettings, now=NOW) -> dict:
    return build_feature_store(workspace, now, Settings(consent_defaults=CONSENT_DEFAULTS), store_settings)
