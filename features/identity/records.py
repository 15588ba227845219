"""Identity records: one row per identity key, aggregated from the canonical tables with DuckDB.

A record holds the latest non-null value of each person attribute (by the row's event time), the
loyalty number, the sources the key appears in and when it was first and last seen. The event rows
themselves never leave DuckDB.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

from features.canonical import PERSON_SOURCE_TYPES, SOURCE_TYPES
from features.identity.standardise import RAW_ATTRIBUTES as ATTRIBUTES
from features.settings import Workspace

# When a row of each type was true: the moment its values were observed.
EVENT_TIME = {
    "order_lines": "ordered_at",
    "contacts": "coalesce(updated_at, created_at)",
    "loyalty_members": "joined_at",
    "web_events": "occurred_at",
    "email_events": "occurred_at",
    "support_tickets": "created_at",
}
_EPOCH = "TIMESTAMPTZ '1970-01-01 00:00:00+00'"


def canonical_views(con: duckdb.DuckDBPyConnection, workspace: Workspace) -> dict[str, set[str]]:
    """Register one view per person-carrying canonical table that exists; returns each view's columns."""
    present: dict[str, set[str]] = {}
    for source_type in PERSON_SOURCE_TYPES:
        folder = workspace.canonical_table(source_type)
        if not folder.is_dir() or not any(folder.glob("*.parquet")):
            continue
        glob = _sql_string(folder / "*.parquet")
        con.execute(
            f"CREATE OR REPLACE VIEW {source_type} AS SELECT * FROM read_parquet({glob}, union_by_name=true)"
        )
        present[source_type] = {row[0] for row in con.execute(f"DESCRIBE {source_type}").fetchall()}
    return present


def _attribute_sql(name: str, have: set[str], wanted: set[str]) -> str:
    if name not in have or name not in wanted:
        return f"NULL::{'DATE' if name == 'birth_date' else 'VARCHAR'}"
    if name == "birth_date":
        return "TRY_CAST(birth_date AS DATE)"
    return f"nullif(trim(CAST({name} AS VARCHAR)), '')"


def _rows_sql(source_type: str, have: set[str]) -> str:
    """The identity-relevant columns of one canonical table's keyed rows, absent columns as nulls."""
    wanted = {c.name for c in SOURCE_TYPES[source_type]}
    time_columns = {"ordered_at", "updated_at", "created_at", "joined_at", "occurred_at"} & wanted
    event_time = EVENT_TIME[source_type] if time_columns <= have else "NULL"
    values = ", ".join(f"{_attribute_sql(name, have, wanted)} AS {name}" for name in ATTRIBUTES)
    return f"""
        SELECT identity_key, source, record_id, '{source_type}' AS source_type,
               coalesce(CAST({event_time} AS TIMESTAMPTZ), {_EPOCH}) AS event_time, {values}
        FROM {source_type} WHERE identity_key IS NOT NULL
    """


def _per_type_sql(source_type: str, have: set[str]) -> str:
    """One row per key of one table: each attribute's latest value and when it was seen."""
    wanted = {c.name for c in SOURCE_TYPES[source_type]}
    parts = []
    for name in ATTRIBUTES:
        if name in have and name in wanted:
            parts.append(
                f"arg_max({name}, event_time) FILTER (WHERE {name} IS NOT NULL) AS {name}, "
                f"max(event_time) FILTER (WHERE {name} IS NOT NULL) AS {name}__seen"
            )
        else:  # a column the type lacks costs nothing: web events carry no person attributes at all
            parts.append(f"{_attribute_sql(name, set(), set())} AS {name}, NULL AS {name}__seen")
    return f"""
        SELECT identity_key, {", ".join(parts)}, list(DISTINCT source) AS sources,
               '{source_type}' AS source_type, min(event_time) AS first_seen, max(event_time) AS last_seen,
               count(*) AS n_rows
        FROM ({_rows_sql(source_type, have)})
        GROUP BY identity_key
    """


def identity_records(con: duckdb.DuckDBPyConnection, present: dict[str, set[str]]) -> pd.DataFrame:
    """One row per identity key: latest non-null attributes, sources, first/last seen, row count."""
    if not present:
        raise ValueError("no canonical table with person rows: run `tessera ingest` first")
    per_type = " UNION ALL ".join(_per_type_sql(t, have) for t, have in present.items())
    latest = ", ".join(
        f"arg_max({name}, {name}__seen) FILTER (WHERE {name} IS NOT NULL) AS {name}" for name in ATTRIBUTES
    )
    sql = f"""
        SELECT identity_key, {latest},
               list_sort(list_distinct(flatten(list(sources)))) AS sources,
               list_sort(list_distinct(list(source_type))) AS source_types,
               min(first_seen) AS first_seen, max(last_seen) AS last_seen, sum(n_rows)::BIGINT AS n_rows
        FROM ({per_type})
        GROUP BY identity_key
        ORDER BY identity_key
    """
    return con.execute(sql).df()


def _keyed_rows_sql(present: dict[str, set[str]]) -> str:
    if not present:
        raise ValueError("no canonical table with person rows: run `tessera ingest` first")
    return " UNION ALL ".join(
        f"SELECT source, record_id, identity_key FROM {t} WHERE identity_key IS NOT NULL" for t in present
    )


def record_ids(con: duckdb.DuckDBPyConnection, present: dict[str, set[str]]) -> pd.DataFrame:
    """Every distinct (source, record_id, identity_key) of the canonical tables."""
    sql = f"""
        SELECT DISTINCT source, record_id, identity_key FROM ({_keyed_rows_sql(present)})
        WHERE record_id IS NOT NULL ORDER BY source, record_id
    """
    return con.execute(sql).df()


def _sql_string(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"
