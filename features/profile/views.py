"""The profile tables as DuckDB views, each present even when the retailer has no such data.

A missing table (a retailer with order lines only has no interactions or consents) becomes an empty view
with the documented columns, so every feature table is computed the same way and simply holds defaults.
Only the columns features need are read: names, emails, phones and addresses never enter the store.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb

from tessera.core.errors import InputError
from tessera.core.settings import Workspace

# The columns read from each table (docs/profile.md), with their types for an absent table or column.
PROFILE_COLUMNS: dict[str, dict[str, str]] = {
    "customers": {
        "customer_id": "VARCHAR",
        "birth_date": "DATE",
        "country": "VARCHAR",
        "loyalty_tier": "VARCHAR",
        "loyalty_points": "DOUBLE",
        "loyalty_joined_at": "TIMESTAMPTZ",
    },
    "orders": {
        "customer_id": "VARCHAR",
        "order_id": "VARCHAR",
        "ordered_at": "TIMESTAMPTZ",
        "sku": "VARCHAR",
        "quantity": "DOUBLE",
        "unit_price": "DOUBLE",
        "amount": "DOUBLE",
        "channel": "VARCHAR",
        "line_type": "VARCHAR",
    },
    "interactions": {
        "customer_id": "VARCHAR",
        "occurred_at": "TIMESTAMPTZ",
        "channel": "VARCHAR",
        "event_type": "VARCHAR",
        "sku": "VARCHAR",
        "session_id": "VARCHAR",
        "satisfaction": "DOUBLE",
    },
    "consent_events": {
        "customer_id": "VARCHAR",
        "purpose": "VARCHAR",
        "granted": "BOOLEAN",
        "recorded_at": "TIMESTAMPTZ",
    },
    "products": {
        "sku": "VARCHAR",
        "category": "VARCHAR",
        "brand": "VARCHAR",
        "price": "DOUBLE",
        "available": "BOOLEAN",
    },
}

# The event time of each table: rows after `now` are left out, so a build as of a past moment is honest.
EVENT_TIME = {"orders": "ordered_at", "interactions": "occurred_at", "consent_events": "recorded_at"}


def _quote(path: Path | str) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _register(con: duckdb.DuckDBPyConnection, name: str, scan: str | None, now: datetime) -> bool:
    columns = PROFILE_COLUMNS[name]
    if scan is None:
        select = ", ".join(f"NULL::{kind} AS {column}" for column, kind in columns.items())
        con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT {select} WHERE false")
        return False
    present = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()}
    select = ", ".join(
        f"CAST({column} AS {kind}) AS {column}" if column in present else f"NULL::{kind} AS {column}"
        for column, kind in columns.items()
    )
    where = f"WHERE {EVENT_TIME[name]} <= $now" if name in EVENT_TIME else ""
    # Materialised once: every feature table reads these several times.
    con.execute(
        f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM (SELECT {select} FROM {scan}) {where}",
        {"now": now} if where else None,
    )
    return True


def register_profile(con: duckdb.DuckDBPyConnection, workspace: Workspace, now: datetime) -> dict[str, bool]:
    """Create `customers`, `orders`, `interactions`, `consent_events` and `products` on `con`; which exist."""
    customers = workspace.profile / "customers.parquet"
    if not customers.exists():
        raise InputError(f"{customers} is missing: run `tessera profile` before building the feature store")
    found = {}
    for name in ("customers", "orders", "interactions", "consent_events"):
        path = workspace.profile / f"{name}.parquet"
        found[name] = _register(con, name, f"read_parquet({_quote(path)})" if path.exists() else None, now)
    folder = workspace.canonical_table("products")
    catalogue = None
    if any(folder.glob("*.parquet")):
        # One row per SKU even when several catalogue sources list it: the first source (by name) with a value.
        scan = f"read_parquet({_quote(folder / '*.parquet')}, union_by_name = true)"
        present = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()}
        by = "source" if "source" in present else "sku"
        picks = ", ".join(
            f"first({c} ORDER BY {c} IS NULL, {by}) AS {c}" if c in present else f"NULL AS {c}"
            for c in PROFILE_COLUMNS["products"]
            if c != "sku"
        )
        catalogue = f"(SELECT sku, {picks} FROM {scan} WHERE sku IS NOT NULL GROUP BY sku)"
    found["products"] = _register(con, "products", catalogue, now)
    return found
