"""Consent: each consent record attached to the customers of its identifier, and the current state per purpose.

A consent is given for an identifier (an email address, a phone number, an account, a loyalty card), so
it applies to every customer holding that identifier: a household's shared email address carries one
consent for both people. The latest record per customer and purpose wins; on a tie a withdrawal wins.
A customer with no record for a purpose gets the configured default, and the profile says so.
"""

from __future__ import annotations

import duckdb

from tessera.core.canonical import CONSENT_PURPOSES


def consent_events(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
    """Consent records joined to customers through the identifier they were given for.

    Expects views `consents` (standardised `identifier`, and `identity_key` for account identifiers) and
    `customer_identifiers` (customer_id, identifier_type, identifier).
    """
    return con.sql(
        """
        SELECT DISTINCT i.customer_id, c.purpose, c.status = 'granted' AS granted, c.recorded_at,
               c.identifier_type, c.origin, c.source
        FROM consents c JOIN customer_identifiers i
          ON i.identifier_type = c.identifier_type
         AND i.identifier = CASE WHEN c.identifier_type = 'customer_ref' THEN c.identity_key ELSE c.identifier END
        """
    )


def consent_state(
    con: duckdb.DuckDBPyConnection,
    events: duckdb.DuckDBPyRelation,
    customers: duckdb.DuckDBPyRelation,
    defaults: dict[str, bool],
) -> duckdb.DuckDBPyRelation:
    """One row per customer: `consent_<purpose>` (bool) and `consent_<purpose>_recorded` (False: default)."""
    con.register("consent_events_rel", events)
    con.register("consent_customers_rel", customers)
    columns = []
    for purpose in CONSENT_PURPOSES:
        default = "TRUE" if defaults.get(purpose, False) else "FALSE"
        columns.append(
            f"coalesce(arg_max(granted, (recorded_at, NOT granted)) FILTER (WHERE purpose = '{purpose}'), "
            f"{default}) AS consent_{purpose}"
        )
        columns.append(f"count(*) FILTER (WHERE purpose = '{purpose}') > 0 AS consent_{purpose}_recorded")
    return con.sql(
        f"""
        SELECT c.customer_id, {", ".join(columns)}
        FROM consent_customers_rel c LEFT JOIN consent_events_rel e USING (customer_id)
        GROUP BY c.customer_id
        """
    )
