"""Candidate values for the golden record: per identity record and source, its latest value of each field."""

from __future__ import annotations

import duckdb

from features.identity.records import EVENT_TIME
from tessera.core.canonical import PERSON_COLUMNS, SOURCE_TYPES

# When a record of each type was last known to be true, as identity resolution reads it, for the types that
# carry person values (web events carry none).
OBSERVED_AT = {
    source_type: EVENT_TIME[source_type]
    for source_type in ("order_lines", "contacts", "loyalty_members", "support_tickets", "email_events")
}
CANDIDATE_FIELDS = [c for c in PERSON_COLUMNS if c.name != "full_name" and not c.derived] + [
    next(c for c in SOURCE_TYPES["loyalty_members"] if c.name == "loyalty_number")
]
_SQL_TYPES = {"string": "VARCHAR", "date": "DATE"}


def _row_values(have: set[str]) -> str:
    """The candidate fields of one canonical row; a lone full name is split into first and last."""
    exprs = []
    for col in CANDIDATE_FIELDS:
        if col.name not in have:
            exprs.append(f"NULL::{_SQL_TYPES[col.kind]} AS {col.name}")
        elif col.name == "first_name" and "full_name" in have:
            exprs.append(
                "coalesce(first_name, CASE WHEN last_name IS NULL "
                "THEN regexp_extract(trim(full_name), '^(\\S+)', 1) END) AS first_name"
            )
        elif col.name == "last_name" and "full_name" in have:
            exprs.append(
                "coalesce(last_name, CASE WHEN first_name IS NULL "
                "THEN nullif(trim(regexp_replace(trim(full_name), '^\\S+', '')), '') END) AS last_name"
            )
        else:
            exprs.append(col.name)
    return ", ".join(exprs)


def _per_type(source_type: str) -> str:
    have = {c.name for c in SOURCE_TYPES[source_type]}
    latest = ", ".join(
        f"arg_max({c.name}, observed_at) FILTER (WHERE {c.name} IS NOT NULL) AS {c.name}"
        for c in CANDIDATE_FIELDS
    )
    return f"""
        SELECT identity_key, source, '{source_type}' AS source_type, min(record_id) AS record_id,
               max(observed_at) AS observed_at, {latest}
        FROM (SELECT identity_key, source, record_id, {OBSERVED_AT[source_type]} AS observed_at, {_row_values(have)}
              FROM {source_type} WHERE identity_key IS NOT NULL)
        GROUP BY identity_key, source
    """


def candidate_values(con: duckdb.DuckDBPyConnection, present: set[str]) -> duckdb.DuckDBPyRelation:
    """One row per (customer, identity record, source) offering person values, with when it was observed.

    Expects views `customer_keys` (identity_key, customer_id) and one per canonical table in `present`.
    """
    parts = [_per_type(t) for t in OBSERVED_AT if t in present]
    if not parts:
        raise ValueError("no source with person data: nothing to build a profile from")
    union = " UNION ALL ".join(parts)
    return con.sql(f"SELECT k.customer_id, c.* FROM ({union}) c JOIN customer_keys k USING (identity_key)")
