"""The profile's tables as frames, read through DuckDB: what training, scoring, serving and notebooks read.

Readers push filters and aggregation into DuckDB, so only what is needed reaches pandas; a missing table is
an InputError naming the file and the command that writes it.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd

from tessera.core.errors import InputError
from tessera.core.settings import Settings, Workspace

# Interaction event types the recommender reads (it uses the same names).
WEB_SIGNALS = ("add_to_cart", "product_view")


def _connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    return con


def _profile_table(workspace: Workspace, name: str) -> Path:
    path = workspace.profile / f"{name}.parquet"
    if not path.exists():
        raise InputError(f"{path} is missing: run `tessera profile` (or `tessera run`) before training")
    return path


def load_order_lines(workspace: Workspace, until: datetime) -> pd.DataFrame:
    """Order lines of identified customers up to `until`: customer_id, order_id, ordered_at, sku, amount, line_type."""
    path = _profile_table(workspace, "orders")
    with _connect() as con:
        return con.execute(
            "SELECT customer_id, order_id, ordered_at::TIMESTAMPTZ AS ordered_at, CAST(sku AS VARCHAR) AS sku, "
            "amount, line_type FROM read_parquet(?) WHERE customer_id IS NOT NULL AND ordered_at::TIMESTAMPTZ <= ?",
            [str(path), until],
        ).df()


def load_events(workspace: Workspace, until: datetime) -> pd.DataFrame:
    """Recommender signals up to `until`, one row per customer, sku, kind and day: occurred_at (latest), count.

    Purchases are sale lines of orders; add-to-carts and product views come from web interactions when the
    retailer has them.
    """
    orders = _profile_table(workspace, "orders")
    parts = [
        f"SELECT customer_id, CAST(sku AS VARCHAR) AS sku, 'purchase' AS kind, ordered_at::TIMESTAMPTZ AS occurred_at "
        f"FROM read_parquet('{orders}') WHERE customer_id IS NOT NULL AND line_type = 'sale' AND sku IS NOT NULL "
        f"AND ordered_at::TIMESTAMPTZ <= $until"
    ]
    interactions = workspace.profile / "interactions.parquet"
    if interactions.exists():
        kinds = ", ".join(f"'{name}'" for name in WEB_SIGNALS)
        parts.append(
            f"SELECT customer_id, CAST(sku AS VARCHAR), event_type, occurred_at::TIMESTAMPTZ "
            f"FROM read_parquet('{interactions}') WHERE customer_id IS NOT NULL AND sku IS NOT NULL "
            f"AND event_type IN ({kinds}) AND occurred_at::TIMESTAMPTZ <= $until"
        )
    union = " UNION ALL ".join(parts)
    with _connect() as con:
        return con.execute(
            f"SELECT customer_id, sku, kind, max(occurred_at) AS occurred_at, count(*)::DOUBLE AS count "
            f"FROM ({union}) GROUP BY customer_id, sku, kind, date_trunc('day', occurred_at) "
            # A parallel GROUP BY returns rows in any order; the recommender's fit depends on it.
            "ORDER BY customer_id, sku, kind, occurred_at",
            {"until": until},
        ).df()


def load_anonymous_purchases(workspace: Workspace, until: datetime) -> pd.DataFrame:
    """Sale lines of no customer up to `until`, shaped like `load_events`' purchases, for popularity and co-purchase.

    Each anonymous order stands for one buyer and one basket: its `customer_id` is
    `anonymous:<source>:<order_id>`, which no customer id can be. Concatenate these rows to the events only
    where products are counted (distinct buyers, baskets bought together), never where customers are
    (labels, BG/NBD, histories, evaluation): anonymous is anonymous.
    """
    orders = _profile_table(workspace, "orders")
    with _connect() as con:
        return con.execute(
            "SELECT 'anonymous:' || source || ':' || order_id AS customer_id, CAST(sku AS VARCHAR) AS sku, "
            "'purchase' AS kind, max(ordered_at::TIMESTAMPTZ) AS occurred_at, count(*)::DOUBLE AS count "
            "FROM read_parquet(?) WHERE customer_id IS NULL AND line_type = 'sale' AND sku IS NOT NULL "
            "AND ordered_at::TIMESTAMPTZ <= ? GROUP BY ALL ORDER BY customer_id, sku",
            [str(orders), until],
        ).df()


def load_catalogue(workspace: Workspace) -> pd.DataFrame | None:
    """The product catalogue (sku, category, available) when the retailer sent one, else None."""
    folder = workspace.canonical_table("products")
    if not any(folder.glob("*.parquet")):
        return None
    with _connect() as con:
        scan = f"read_parquet('{folder / '*.parquet'}', union_by_name = true)"
        present = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()}
        category = "category" if "category" in present else "NULL::VARCHAR"
        available = "available" if "available" in present else "NULL::BOOLEAN"
        return con.execute(
            f"SELECT CAST(sku AS VARCHAR) AS sku, first({category}) AS category, bool_and({available}) AS available "
            f"FROM {scan} WHERE sku IS NOT NULL GROUP BY sku"
        ).df()


def load_customers(workspace: Workspace, settings: Settings) -> pd.DataFrame:
    """Every customer with the consent flags scoring needs: customer_id, consent_profiling, consent_personalisation.

    A flag the profile does not hold takes the configured default (`TESSERA_CONSENT_DEFAULTS`).
    """
    defaults = settings.consent_defaults
    path = _profile_table(workspace, "customers")
    with _connect() as con:
        present = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM read_parquet('{path}')").fetchall()}
        flags = []
        for purpose in ("profiling", "personalisation"):
            column, default = f"consent_{purpose}", "true" if defaults.get(purpose, False) else "false"
            flags.append(
                f"coalesce({column}, {default}) AS {column}"
                if column in present
                else f"{default} AS {column}"
            )
        return con.execute(f"SELECT customer_id, {', '.join(flags)} FROM read_parquet('{path}')").df()
