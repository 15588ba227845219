"""Build the profile tables from the canonical tables and the identity crosswalk: the I/O edge of the profile.

Writes to `workspace.profile`:
- customers.parquet: the golden record per customer, loyalty status, activity span and consent state;
- orders.parquet: order lines of every channel with customer id (null for anonymous receipts);
- interactions.parquet: web, email and service interactions with customer id;
- consent_events.parquet: every consent record attached to the customers it applies to.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq

from features.identity.standardise import standardise_contact_points, standardise_emails, standardise_phones
from features.profile.candidates import candidate_values
from features.profile.consent import consent_events, consent_state
from features.profile.events import unified_interactions, unified_orders
from features.profile.survivorship import DEFAULT_RULES, SurvivorshipRules, golden_records
from tessera.core.errors import InputError
from tessera.core.settings import Settings, Workspace

# The event time of each canonical table: rows after the profile's "now" are left out.
EVENT_TIME = {
    "order_lines": "ordered_at",
    "contacts": "created_at",
    "loyalty_members": "joined_at",
    "web_events": "occurred_at",
    "email_events": "occurred_at",
    "support_tickets": "created_at",
    "consents": "recorded_at",
}


def _register_canonical(con: duckdb.DuckDBPyConnection, workspace: Workspace, now: datetime) -> set[str]:
    """A view per canonical table that has data, holding only rows known by `now`."""
    present = set()
    moment = f"TIMESTAMPTZ '{now.isoformat()}'"
    for source_type, time_column in EVENT_TIME.items():
        folder = workspace.canonical_table(source_type)
        if not any(folder.glob("*.parquet")):
            continue
        con.execute(
            f"CREATE VIEW {source_type} AS SELECT * FROM read_parquet('{folder}/*.parquet', union_by_name = true) "
            f"WHERE {time_column} IS NULL OR {time_column} <= {moment}"
        )
        present.add(source_type)
    return present


def _customer_identifiers(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
    """Every identifier a consent can be given for, with the customer holding it."""
    return con.sql(
        """
        SELECT DISTINCT customer_id, 'email' AS identifier_type, email AS identifier FROM candidates
            WHERE email IS NOT NULL
        UNION SELECT DISTINCT customer_id, 'phone', phone FROM candidates WHERE phone IS NOT NULL
        UNION SELECT DISTINCT customer_id, 'loyalty_number', loyalty_number FROM candidates
            WHERE loyalty_number IS NOT NULL
        UNION SELECT DISTINCT customer_id, 'customer_ref', identity_key FROM customer_keys
        """
    )


def _standardised_consents(con: duckdb.DuckDBPyConnection, settings: Settings) -> pd.DataFrame:
    consents = con.sql("SELECT * FROM consents").df()
    is_email = consents["identifier_type"] == "email"
    is_phone = consents["identifier_type"] == "phone"
    consents["identifier"] = consents["identifier"].astype("string")
    consents.loc[is_email, "identifier"] = standardise_emails(consents.loc[is_email, "identifier"])[0]
    phones = consents.loc[is_phone, "identifier"]
    regions = pd.Series(settings.default_phone_region, index=phones.index)
    consents.loc[is_phone, "identifier"] = standardise_phones(phones, regions)[0]
    return consents


def _write(relation: duckdb.DuckDBPyRelation, path: Path) -> int:
    """Write a relation to Parquet and return how many rows it wrote."""
    relation.write_parquet(str(path))
    return int(pq.ParquetFile(path).metadata.num_rows)


def build_profile(workspace: Workspace, now: datetime, settings: Settings) -> dict:
    """Write golden records, unified events and consent state for every resolved customer as of `now`."""
    started = time.perf_counter()
    rules = SurvivorshipRules.load(settings.survivorship_rules or DEFAULT_RULES)
    crosswalk = workspace.identity / "crosswalk.parquet"
    if not crosswalk.exists():
        raise InputError(f"{crosswalk} is missing: run `tessera resolve` before building the profile")
    workspace.profile.mkdir(parents=True, exist_ok=True)

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    present = _register_canonical(con, workspace, now)
    con.execute(f"CREATE VIEW crosswalk AS SELECT * FROM read_parquet('{crosswalk}')")
    con.execute("CREATE VIEW customer_keys AS SELECT DISTINCT identity_key, customer_id FROM crosswalk")
    # Through pandas for the phone library, into the one standard form identity resolution uses; dates
    # come back as timestamps, so they are cast back.
    candidates, _ = standardise_contact_points(
        candidate_values(con, present).df(), settings.default_phone_region
    )
    con.register("candidates_std", candidates)
    con.execute(
        "CREATE VIEW candidates AS SELECT * REPLACE (birth_date::DATE AS birth_date) FROM candidates_std"
    )

    counts: dict[str, int] = {}
    if "order_lines" in present:
        counts["orders"] = _write(unified_orders(con), workspace.profile / "orders.parquet")
        con.execute(
            f"CREATE VIEW orders AS SELECT * FROM read_parquet('{workspace.profile / 'orders.parquet'}')"
        )
    interactions = unified_interactions(con, present)
    if interactions is not None:
        counts["interactions"] = _write(interactions, workspace.profile / "interactions.parquet")

    customers = con.sql("SELECT DISTINCT customer_id FROM customer_keys")
    if "consents" in present:
        con.register("consents_std", _standardised_consents(con, settings))
        con.execute("CREATE OR REPLACE VIEW consents AS SELECT * FROM consents_std")
        con.register("customer_identifiers", _customer_identifiers(con))
        events = consent_events(con)
        counts["consent_events"] = _write(events, workspace.profile / "consent_events.parquet")
    else:
        events = con.sql(
            "SELECT NULL::VARCHAR AS customer_id, NULL::VARCHAR AS purpose, NULL::BOOLEAN AS granted, "
            "NULL::TIMESTAMPTZ AS recorded_at WHERE false"
        )
    con.register("consent", consent_state(con, events, customers, settings.consent_defaults))
    con.register("golden", golden_records(con.sql("SELECT * FROM candidates"), rules))
    con.register("loyalty", _loyalty_status(con, present))
    con.register("activity", _activity(con, present))
    profile = con.sql(
        """
        SELECT c.customer_id, g.* EXCLUDE (customer_id), l.* EXCLUDE (customer_id),
               a.* EXCLUDE (customer_id), s.* EXCLUDE (customer_id)
        FROM (SELECT DISTINCT customer_id FROM customer_keys) c
        LEFT JOIN golden g USING (customer_id) LEFT JOIN loyalty l USING (customer_id)
        LEFT JOIN activity a USING (customer_id) LEFT JOIN consent s USING (customer_id)
        ORDER BY c.customer_id
        """
    )
    counts["customers"] = _write(profile, workspace.profile / "customers.parquet")
    return {"as_of": now.isoformat(), "rows": counts, "seconds": round(time.perf_counter() - started, 2)}


def _loyalty_status(con: duckdb.DuckDBPyConnection, present: set[str]) -> duckdb.DuckDBPyRelation:
    """The customer's most recent loyalty membership: card, tier, points, member since."""
    if "loyalty_members" not in present:
        return con.sql(
            "SELECT NULL::VARCHAR AS customer_id, NULL::VARCHAR AS loyalty_tier, NULL::DOUBLE AS loyalty_points, "
            "NULL::TIMESTAMPTZ AS loyalty_joined_at WHERE false"
        )
    return con.sql(
        """
        SELECT k.customer_id, arg_max(m.tier, m.joined_at) AS loyalty_tier,
               arg_max(m.points, m.joined_at) AS loyalty_points, min(m.joined_at) AS loyalty_joined_at
        FROM loyalty_members m JOIN customer_keys k USING (identity_key) GROUP BY k.customer_id
        """
    )


def _activity(con: duckdb.DuckDBPyConnection, present: set[str]) -> duckdb.DuckDBPyRelation:
    """How many source records (distinct source and record id) a customer has, from which sources, and their orders' span."""
    orders = (
        """
        LEFT JOIN (SELECT customer_id, count(DISTINCT order_id) FILTER (WHERE line_type = 'sale') AS n_orders,
                          min(ordered_at) AS first_order_at, max(ordered_at) AS last_order_at
                   FROM orders WHERE customer_id IS NOT NULL GROUP BY customer_id) o USING (customer_id)
        """
        if "order_lines" in present
        else ""
    )
    order_columns = (
        "o.n_orders, o.first_order_at, o.last_order_at"
        if orders
        else (
            "NULL::BIGINT AS n_orders, NULL::TIMESTAMPTZ AS first_order_at, NULL::TIMESTAMPTZ AS last_order_at"
        )
    )
    return con.sql(
        f"""
        SELECT r.customer_id, r.n_source_records, r.sources, {order_columns}
        FROM (SELECT customer_id, count(*) AS n_source_records, list_sort(list(DISTINCT source)) AS sources
              FROM crosswalk GROUP BY customer_id) r
        {orders}
        """
    )
