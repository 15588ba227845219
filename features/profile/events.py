"""Unified event tables: every channel's orders and interactions keyed by customer id with event times.

Each step takes relations already registered on a DuckDB connection and returns a relation; reading and
writing files is left to `features.profile.build`.

Views expected on the connection: `customer_keys` (identity_key, customer_id) and one view per canonical
table that exists (`order_lines`, `web_events`, `email_events`, `support_tickets`).
"""

from __future__ import annotations

import duckdb


def unified_orders(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
    """Order lines of every channel with the customer id (null for anonymous receipts) and line amount."""
    return con.sql(
        """
        SELECT k.customer_id, o.source, o.order_id, o.line_no, o.ordered_at, o.sku, o.product_name,
               o.quantity, o.unit_price, o.quantity * o.unit_price AS amount, o.currency,
               o.channel, o.store_id, o.line_type
        FROM order_lines o LEFT JOIN customer_keys k USING (identity_key)
        """
    )


def _web_interactions(con: duckdb.DuckDBPyConnection) -> str:
    # A device seen logged in as exactly one customer is that customer's also while logged out.
    return """
        WITH logged_in AS (
            SELECT w.*, k.customer_id FROM web_events w LEFT JOIN customer_keys k USING (identity_key)
        ), devices AS (
            SELECT anonymous_id, min(customer_id) AS customer_id FROM logged_in
            WHERE anonymous_id IS NOT NULL AND customer_id IS NOT NULL
            GROUP BY anonymous_id HAVING count(DISTINCT customer_id) = 1
        )
        SELECT coalesce(l.customer_id, d.customer_id) AS customer_id, l.occurred_at, 'web' AS channel,
               l.event_type, l.sku, NULL::VARCHAR AS campaign_id, l.session_id,
               l.search_query AS detail, NULL::VARCHAR AS status, NULL::DOUBLE AS satisfaction, l.source,
               CASE WHEN l.customer_id IS NOT NULL THEN 'login'
                    WHEN d.customer_id IS NOT NULL THEN 'device' END AS identified_by
        FROM logged_in l LEFT JOIN devices d USING (anonymous_id)
    """


_EMAIL = """
    SELECT k.customer_id, e.occurred_at, 'email' AS channel, e.event_type, NULL::VARCHAR AS sku,
           e.campaign_id, NULL::VARCHAR AS session_id, NULL::VARCHAR AS detail, NULL::VARCHAR AS status,
           NULL::DOUBLE AS satisfaction, e.source,
           CASE WHEN k.customer_id IS NOT NULL THEN 'recipient' END AS identified_by
    FROM email_events e LEFT JOIN customer_keys k USING (identity_key)
"""

_SERVICE = """
    SELECT k.customer_id, t.created_at AS occurred_at, 'service' AS channel, 'ticket' AS event_type, NULL::VARCHAR AS sku,
           NULL::VARCHAR AS campaign_id, t.ticket_id AS session_id, t.reason AS detail, t.status,
           t.satisfaction, t.source, CASE WHEN k.customer_id IS NOT NULL THEN 'requester' END AS identified_by
    FROM support_tickets t LEFT JOIN customer_keys k USING (identity_key)
"""


def unified_interactions(con: duckdb.DuckDBPyConnection, present: set[str]) -> duckdb.DuckDBPyRelation | None:
    """Web, email and service interactions in one table; None when the retailer has none of them.

    Every part names every column: a union takes its names from whichever part comes first.
    """
    parts = []
    if "web_events" in present:
        parts.append(_web_interactions(con))
    if "email_events" in present:
        parts.append(_EMAIL)
    if "support_tickets" in present:
        parts.append(_SERVICE)
    if not parts:
        return None
    return con.sql(" UNION ALL ".join(f"({part})" for part in parts))
