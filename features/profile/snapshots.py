"""Compute every offline feature table from the profile as of `now` and write it as Parquet.

One file per feature view in the folder the feature-store step gives (`data/feast/offline/`), named like the view; each is rewritten
whole from the profile, so a table never mixes two builds. Tables of data the retailer does not have are
still written, with `now` rows of defaults (engagement, service) or no rows (products without sales).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path

import duckdb

from features.profile import customer_tables, product_tables
from features.profile.views import register_profile
from tessera.core.settings import Workspace


def table_queries(consent_defaults: Mapping[str, bool]) -> dict[str, Callable[[], str]]:
    """The SQL of each offline table, by feature view name."""
    return {
        "customer_transactions": customer_tables.transactions_sql,
        "customer_engagement": customer_tables.engagement_sql,
        "customer_service": customer_tables.service_sql,
        "customer_loyalty": customer_tables.loyalty_sql,
        "customer_profile": lambda: customer_tables.profile_sql(consent_defaults),
        "customer_realtime": customer_tables.realtime_sql,
        "product_popularity": product_tables.popularity_sql,
        "product_catalog": product_tables.catalog_sql,
        "product_offer": product_tables.offer_sql,
    }


def connect(
    workspace: Workspace, now: datetime, memory_limit: str = "3GB"
) -> tuple[duckdb.DuckDBPyConnection, dict]:
    """A DuckDB connection in UTC with the profile views registered as of `now`, and which tables exist."""
    con = duckdb.connect(config={"memory_limit": memory_limit})
    con.execute("SET TimeZone = 'UTC'")
    return con, register_profile(con, workspace, now)


def write_feature_tables(
    workspace: Workspace,
    now: datetime,
    consent_defaults: Mapping[str, bool],
    folder: Path,
    memory_limit: str = "3GB",
) -> dict[str, dict[str, object]]:
    """Write every feature table as of `now` into `folder`; per table: rows written and which profile inputs existed."""
    folder.mkdir(parents=True, exist_ok=True)
    con, present = connect(workspace, now, memory_limit)
    written: dict[str, dict[str, object]] = {}
    try:
        for name, query in table_queries(consent_defaults).items():
            path = folder / f"{name}.parquet"
            partial = path.with_suffix(".parquet.partial")
            sql = query()
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE rows AS {sql}", {"now": now} if "$now" in sql else None
            )
            key = con.execute("SELECT * FROM rows LIMIT 0").description[0][0]
            # A row of nulls at the epoch for every key: "nothing known yet", read as the declared defaults.
            # It also keeps Feast's file offline store from dropping an entity row whose key only has rows
            # after that row's time (its point-in-time join filters those out instead of leaving nulls).
            con.sql(
                f"SELECT * FROM rows UNION ALL BY NAME "
                f"SELECT DISTINCT {key}, TIMESTAMPTZ '1970-01-01 00:00:00+00' AS event_timestamp FROM rows "
                "ORDER BY 1, 2"
            ).write_parquet(str(partial), compression="zstd")
            # Readers (a serving process materialising, a notebook) never see a half-written table.
            os.replace(partial, path)
            (rows,) = con.execute("SELECT count(*) FROM rows").fetchall()
            written[name] = {"rows": int(rows[0])}
    finally:
        con.close()
    return {"tables": written, "inputs": present}
