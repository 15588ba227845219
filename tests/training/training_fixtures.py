"""A small synthetic retailer written straight as profile tables, crosswalk and catalogue: fast model tests.

Customers shop at their own rate until they drop out; each has a few favourite groceries they buy again and
now and then a discovery product (home, fashion). Web views and cart adds precede many purchases. Nothing
here is clever: it is just enough signal for a model to beat its baselines on a few hundred customers.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from tessera.core.settings import Workspace
from training.settings import TrainingSettings

CATEGORIES = [
    *(f"Food > Aisle {i}" for i in range(6)),
    "Home > Kitchen",
    "Home > Living",
    "Fashion > Women",
    "Fashion > Men",
]


def catalogue(n_products: int = 80, seed: int = 7) -> pd.DataFrame:
    """sku, name, category, brand, price, available."""
    rng = np.random.default_rng(seed)
    category = [CATEGORIES[i % len(CATEGORIES)] for i in range(n_products)]
    grocery = np.array([c.startswith("Food") for c in category])
    price = np.where(grocery, rng.uniform(1, 6, n_products), rng.uniform(15, 80, n_products)).round(2)
    available = rng.random(n_products) > 0.05
    return pd.DataFrame(
        {
            "sku": [f"P{i:03d}" for i in range(n_products)],
            "name": [f"Product {i}" for i in range(n_products)],
            "category": category,
            "brand": "Acme",
            "price": price,
            "available": available,
        }
    )


def retailer(
    n_customers: int, now: datetime, seed: int = 1, days: int = 720, web: bool = True
) -> dict[str, pd.DataFrame]:
    """customers, orders, interactions, crosswalk and products tables of a synthetic retailer."""
    rng = np.random.default_rng(seed)
    products = catalogue(seed=seed)
    skus = products["sku"].to_numpy()
    grocery = np.flatnonzero(products["category"].str.startswith("Food").to_numpy())
    discovery = np.flatnonzero(~products["category"].str.startswith("Food").to_numpy())
    start = pd.Timestamp(now) - pd.Timedelta(days=days)
    orders, interactions = [], []
    ids = [f"T{c:05d}" for c in range(n_customers)]
    for c, customer in enumerate(ids):
        rate = rng.gamma(1.5, 1 / 20)  # orders per day: from about one a year to a few a week
        joined = start + pd.Timedelta(days=float(rng.uniform(0, days * 0.6)))
        lifetime = rng.exponential(500)
        favourites = rng.choice(grocery, size=4, replace=False)
        t, n = joined, 0
        while True:
            t = t + pd.Timedelta(days=float(rng.exponential(1 / rate)))
            if t > pd.Timestamp(now) + pd.Timedelta(days=200) or (t - joined).days > lifetime:
                break
            basket = list(rng.choice(favourites, size=rng.integers(1, 4), replace=False))
            if rng.random() < 0.3:
                basket.append(int(rng.choice(discovery)))
            n += 1
            for line, item in enumerate(basket):
                orders.append(
                    (customer, f"O{c}-{n}", line + 1, t, skus[item], 1.0, products["price"].iloc[item])
                )
                if web and rng.random() < 0.5:
                    seen = t - pd.Timedelta(hours=float(rng.uniform(1, 48)))
                    interactions.append((customer, seen, "product_view", skus[item]))
                    if rng.random() < 0.5:
                        interactions.append(
                            (customer, seen + pd.Timedelta(minutes=5), "add_to_cart", skus[item])
                        )
            if web and rng.random() < 0.3:
                interactions.append((customer, t, "product_view", skus[int(rng.choice(discovery))]))
    order_lines = pd.DataFrame(
        orders, columns=["customer_id", "order_id", "line_no", "ordered_at", "sku", "quantity", "unit_price"]
    )
    order_lines["amount"] = order_lines["quantity"] * order_lines["unit_price"]
    order_lines = order_lines.assign(
        source="shop", product_name=None, currency="GBP", channel="online", store_id=None, line_type="sale"
    )
    web_events = pd.DataFrame(
        interactions, columns=["customer_id", "occurred_at", "event_type", "sku"]
    ).assign(
        channel="web",
        campaign_id=None,
        session_id="s",
        detail=None,
        status=None,
        satisfaction=np.nan,
        source="web",
        identified_by="login",
    )
    first = order_lines.groupby("customer_id")["ordered_at"].min()
    customers = pd.DataFrame({"customer_id": ids})
    customers["country"] = "GB"
    customers["birth_date"] = pd.NaT
    customers["consent_profiling"] = rng.random(n_customers) > 0.05
    customers["consent_personalisation"] = rng.random(n_customers) > 0.05
    customers["n_orders"] = (
        customers["customer_id"].map(order_lines.groupby("customer_id")["order_id"].nunique()).fillna(0)
    )
    customers["first_order_at"] = customers["customer_id"].map(first)
    crosswalk = pd.DataFrame(
        {
            "source": "shop",
            "record_id": [i.replace("T", "S") for i in ids],
            "identity_key": [f"shop:{i.replace('T', 'S')}" for i in ids],
            "customer_id": ids,
        }
    )
    return {
        "customers": customers,
        "orders": order_lines,
        "interactions": web_events,
        "crosswalk": crosswalk,
        "products": products,
    }


def recency_retailer(
    n_customers: int, now: datetime, seed: int = 5, days: int = 540
) -> dict[str, pd.DataFrame]:
    """A retailer where recency is the whole story: everyone buys at the same rate until they silently leave.

    With one shared purchase rate, how long a customer has been silent is all there is to know about whether
    they left; order counts, spend and tenure add only noise.
    """
    rng = np.random.default_rng(seed)
    products = catalogue(seed=seed)
    start, end = pd.Timestamp(now) - pd.Timedelta(days=days), pd.Timestamp(now)
    rows = []
    ids = [f"R{c:05d}" for c in range(n_customers)]
    for c, customer in enumerate(ids):
        t = start + pd.Timedelta(days=float(rng.uniform(0, days * 0.7)))
        leaves = t + pd.Timedelta(days=float(rng.exponential(240)))
        n = 0
        while t <= min(leaves, end):
            n += 1
            item = int(rng.integers(len(products)))
            rows.append(
                (customer, f"R{c}-{n}", 1, t, products["sku"].iloc[item], 1.0, float(rng.gamma(2, 15)))
            )
            t = t + pd.Timedelta(days=float(rng.exponential(12)))
    orders = pd.DataFrame(
        rows, columns=["customer_id", "order_id", "line_no", "ordered_at", "sku", "quantity", "unit_price"]
    )
    orders["amount"] = orders["quantity"] * orders["unit_price"]
    orders = orders.assign(
        source="shop", product_name=None, currency="GBP", channel="online", store_id=None, line_type="sale"
    )
    customers = pd.DataFrame({"customer_id": ids, "country": "GB", "birth_date": pd.NaT})
    customers["consent_profiling"] = True
    customers["consent_personalisation"] = True
    customers["n_orders"] = customers["customer_id"].map(orders.groupby("customer_id").size()).fillna(0)
    customers["first_order_at"] = customers["customer_id"].map(
        orders.groupby("customer_id")["ordered_at"].min()
    )
    crosswalk = pd.DataFrame(
        {
            "source": "shop",
            "record_id": ids,
            "identity_key": [f"shop:{i}" for i in ids],
            "customer_id": ids,
        }
    )
    return {
        "customers": customers,
        "orders": orders,
        "interactions": pd.DataFrame(),
        "crosswalk": crosswalk,
        "products": products,
    }


def write_retailer(workspace: Workspace, tables: dict[str, pd.DataFrame], now: datetime) -> None:
    """Write the tables where the chain would: the profile as of `now`, the crosswalk and the catalogue."""
    moment = pd.Timestamp(now)
    workspace.profile.mkdir(parents=True, exist_ok=True)
    workspace.identity.mkdir(parents=True, exist_ok=True)
    tables["orders"][tables["orders"]["ordered_at"] <= moment].to_parquet(
        workspace.profile / "orders.parquet"
    )
    interactions = tables["interactions"]
    if len(interactions):
        interactions[interactions["occurred_at"] <= moment].to_parquet(
            workspace.profile / "interactions.parquet"
        )
    tables["customers"].to_parquet(workspace.profile / "customers.parquet")
    tables["crosswalk"].to_parquet(workspace.identity / "crosswalk.parquet")
    path = workspace.canonical_file("products", "catalogue")
    path.parent.mkdir(parents=True, exist_ok=True)
    tables["products"].to_parquet(path)


def future_orders(tables: dict[str, pd.DataFrame], now: datetime, days: int) -> pd.DataFrame:
    """The orders after `now` (within `days`): what really happened, for behaviour tests."""
    moment = pd.Timestamp(now)
    orders = tables["orders"]
    return orders[(orders["ordered_at"] > moment) & (orders["ordered_at"] <= moment + timedelta(days=days))]


def events_from(tables: dict[str, pd.DataFrame], now: datetime) -> pd.DataFrame:
    """The recommender's events frame (as `features.profile.read.load_events` gives it) from the tables."""
    moment = pd.Timestamp(now)
    orders = tables["orders"]
    purchases = orders.loc[orders["ordered_at"] <= moment, ["customer_id", "sku", "ordered_at"]].rename(
        columns={"ordered_at": "occurred_at"}
    )
    web = tables["interactions"]
    web = web.loc[web["occurred_at"] <= moment, ["customer_id", "sku", "occurred_at", "event_type"]]
    events = pd.concat(
        [purchases.assign(kind="purchase"), web.rename(columns={"event_type": "kind"})], ignore_index=True
    )
    return events.assign(count=1.0)


NOW = datetime(2025, 6, 30, 23, 59, 59, 999999, tzinfo=UTC)


# Few cutoffs, few trees and a one-point ALS grid: the whole training in seconds.
SMALL = {
    "training_cutoffs": 3,
    "cutoff_spacing_days": 45,
    "lgbm_n_estimators": 80,
    "lgbm_min_child_samples": 10,
    "als_factors": (16,),
    "als_regularization": (0.1,),
    "als_alpha": (10.0,),
    "als_iterations": 8,
}


def small_settings(**changes: object) -> TrainingSettings:
    """`SMALL` settings, with `changes`."""
    return TrainingSettings(**{**SMALL, **changes})


def small_environment() -> dict[str, str]:
    """`SMALL` as the `TESSERA_TRAINING_*` variables a command reads."""
    return {f"TESSERA_TRAINING_{name.upper()}": json.dumps(value) for name, value in SMALL.items()}


# An order-lines-only shop's till export `till.csv` (';', day first, a row per line) and its mapping.
TILL_MAPPING = """version: 1
sources:
  - name: till
    type: order_lines
    path: till.csv
    format: csv
    delimiter: ";"
    date_formats: ["%d/%m/%Y %H:%M:%S"]
    columns: {order_id: Receipt, line_no: Line, customer_ref: Customer, ordered_at: Time, sku: Item, quantity: Qty, unit_price: Price}
    constants: {channel: store, currency: GBP}
    returns: {by: negative_quantity}
"""


POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432"


@contextmanager
def postgres_database() -> Iterator[str]:
    """A database of its own on the development server (`tessera_test_<random>`), for MLflow; dropped afterwards."""
    import psycopg

    name = f"tessera_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
        try:
            yield f"{POSTGRES}/{name}"
        finally:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
