"""Customer feature tables as DuckDB queries over the profile views (`features.profile.views`).

Each function returns the SQL of one offline table: `customer_id`, `event_timestamp` and the view's
features, one row per change point up to `$now` plus one at `$now` for every customer. Every value in a row
is computed from events at or before its `event_timestamp` only. Feature timestamps are cut to whole
seconds, the precision of Feast's online store.
"""

from __future__ import annotations

from collections.abc import Mapping

from features.profile.windows import asof_joins_sql, change_points_sql, running_totals_sql, total, window_sum

CUSTOMERS = "SELECT customer_id AS key FROM customers"


def _rounded(expression: str) -> str:
    # Differences of running sums carry float noise (1e-13): money is kept to a millionth.
    return f"round({expression}, 6)"


def transactions_sql() -> str:
    """customer_transactions: windowed and lifetime purchase figures at each purchase, window exit and `now`."""
    events = """
        WITH lines AS (
            SELECT o.customer_id, o.order_id, o.ordered_at, o.amount, o.channel, o.line_type,
                   coalesce(p.category, 'sku:' || o.sku) AS category
            FROM orders o LEFT JOIN products p USING (sku)
            WHERE o.customer_id IS NOT NULL AND o.line_type IN ('sale', 'return')
        ), sales AS (
            SELECT customer_id AS key, min(ordered_at) AS ts, sum(amount) AS sales,
                   max(CASE WHEN channel = 'online' THEN 1 ELSE 0 END) AS online
            FROM lines WHERE line_type = 'sale' GROUP BY customer_id, order_id
        ), gaps AS (
            SELECT *, date_diff('second', lag(ts) OVER (PARTITION BY key ORDER BY ts), ts) / 86400.0 AS gap FROM sales
        ), returns AS (
            SELECT customer_id AS key, min(ordered_at) AS ts, abs(sum(amount)) AS returned
            FROM lines WHERE line_type = 'return' GROUP BY customer_id, order_id
        ), category_buys AS (
            SELECT customer_id AS key, category, ordered_at AS ts,
                   CASE WHEN lag(ordered_at) OVER (PARTITION BY customer_id, category ORDER BY ordered_at)
                             > ordered_at - INTERVAL 365 DAY THEN 0 ELSE 1 END AS starts_run
            -- A line without a product has no category: it starts no run.
            FROM (SELECT DISTINCT customer_id, category, ordered_at FROM lines WHERE line_type = 'sale' AND category IS NOT NULL)
        ), category_runs AS (
            -- A category counts in (t - 365d, t] from a purchase until 365 days after the last one of its run.
            SELECT key, category, ts,
                   sum(starts_run) OVER (PARTITION BY key, category ORDER BY ts ROWS UNBOUNDED PRECEDING) AS run
            FROM category_buys
        )
        SELECT key, ts, 1 AS orders, sales, 0.0 AS returned, online, coalesce(gap, 0) AS gap_sum,
               coalesce(gap * gap, 0) AS gap_sq, CASE WHEN gap IS NULL THEN 0 ELSE 1 END AS gaps,
               0 AS categories, ts AS sale_ts
        FROM gaps
        UNION ALL SELECT key, ts, 0, 0.0, returned, 0, 0.0, 0.0, 0, 0, NULL FROM returns
        UNION ALL SELECT key, min(ts), 0, 0.0, 0.0, 0, 0.0, 0.0, 0, 1, NULL FROM category_runs GROUP BY key, category, run
        UNION ALL SELECT key, max(ts) + INTERVAL 365 DAY, 0, 0.0, 0.0, 0, 0.0, 0.0, 0, -1, NULL
                  FROM category_runs GROUP BY key, category, run
    """
    totals = running_totals_sql(
        events,
        sums=["orders", "sales", "returned", "online", "gap_sum", "gap_sq", "gaps", "categories"],
        lasts={"last_order_at": "sale_ts"},
        firsts={"first_order_at": "sale_ts"},
    )
    windows = (30, 90, 365)
    orders, sales = total("orders"), total("sales")
    n_gaps, gap_sum = total("gaps"), total("gap_sum")
    variance = f"({total('gap_sq')} - {gap_sum} * {gap_sum} / {n_gaps}) / ({n_gaps} - 1)"
    return f"""
        WITH totals AS ({totals}), points AS ({change_points_sql("totals", windows, CUSTOMERS)})
        SELECT p.key AS customer_id, p.t AS event_timestamp,
               {window_sum("orders", 30)}::BIGINT AS orders_30d,
               {window_sum("orders", 90)}::BIGINT AS orders_90d,
               {window_sum("orders", 365)}::BIGINT AS orders_365d,
               {_rounded(window_sum("sales", 30))}::DOUBLE AS spend_30d,
               {_rounded(window_sum("sales", 90))}::DOUBLE AS spend_90d,
               {_rounded(window_sum("sales", 365))}::DOUBLE AS spend_365d,
               {_rounded(window_sum("returned", 365))}::DOUBLE AS returned_value_365d,
               {orders}::BIGINT AS orders_lifetime,
               {_rounded(sales)}::DOUBLE AS spend_lifetime,
               {_rounded(f"{sales} / nullif({orders}, 0)")}::DOUBLE AS avg_order_value,
               {_rounded(f"{total('returned')} / nullif({sales}, 0)")}::DOUBLE AS return_rate,
               ({total("online")} / nullif({orders}, 0))::DOUBLE AS online_order_share,
               {total("categories")}::BIGINT AS distinct_categories_365d,
               {_rounded(f"{gap_sum} / nullif({n_gaps}, 0)")}::DOUBLE AS mean_days_between_orders,
               CASE WHEN {n_gaps} >= 2 THEN {_rounded(f"sqrt(greatest({variance}, 0))")} END::DOUBLE
                   AS std_days_between_orders,
               date_trunc('second', c.first_order_at) AS first_order_at,
               date_trunc('second', c.last_order_at) AS last_order_at
        FROM {asof_joins_sql("points", "totals", windows)}
    """


def _daily(moment: str) -> str:
    # The end of the event's UTC day (or `now`, for today): the row that first includes the event.
    return f"least(date_trunc('day', {moment}) + INTERVAL 1 DAY, $now)"


def engagement_sql() -> str:
    """customer_engagement: email and web activity counted per UTC day, over 30- and 90-day windows."""
    counts: Mapping[str, str] = {
        "sent": "count(*) FILTER (channel = 'email' AND event_type = 'sent')",
        "opens": "count(*) FILTER (channel = 'email' AND event_type = 'open')",
        "clicks": "count(*) FILTER (channel = 'email' AND event_type = 'click')",
        "unsubscribes": "count(*) FILTER (channel = 'email' AND event_type = 'unsubscribe')",
        "sessions": "count(DISTINCT session_id) FILTER (channel = 'web')",
        "product_views": "count(*) FILTER (channel = 'web' AND event_type = 'product_view')",
        "searches": "count(*) FILTER (channel = 'web' AND event_type = 'search')",
        "cart_adds": "count(*) FILTER (channel = 'web' AND event_type = 'add_to_cart')",
    }
    # The latest moment of each kind of engagement: the request-time view turns them into days since.
    moments: Mapping[str, str] = {
        "web_at": "max(occurred_at) FILTER (channel = 'web')",
        "engaged_at": "max(occurred_at) FILTER (channel = 'email' AND event_type IN ('open', 'click'))",
        "unsubscribed_at": "max(occurred_at) FILTER (channel = 'email' AND event_type = 'unsubscribe')",
    }
    zeros = ", ".join(
        [*(f"0 AS {name}" for name in counts), *(f"NULL::TIMESTAMPTZ AS {name}" for name in moments)]
    )
    events = f"""
        WITH carts AS (
            SELECT customer_id, session_id, min(occurred_at) AS first_add, max(occurred_at) AS last_add
            FROM interactions WHERE customer_id IS NOT NULL AND channel = 'web' AND event_type = 'add_to_cart'
            GROUP BY customer_id, session_id
        ), abandoned AS (
            -- Known to be abandoned only 24 hours after the last add without an order: counted then, not before.
            SELECT c.customer_id, c.last_add + INTERVAL 24 HOUR AS abandoned_at FROM carts c
            WHERE c.last_add + INTERVAL 24 HOUR <= $now AND NOT EXISTS (
                SELECT 1 FROM orders o WHERE o.customer_id = c.customer_id AND o.line_type = 'sale'
                AND o.ordered_at BETWEEN c.first_add AND c.last_add + INTERVAL 24 HOUR)
        )
        SELECT customer_id AS key, {_daily("occurred_at")} AS ts,
               {", ".join(f"{expression} AS {name}" for name, expression in {**counts, **moments}.items())},
               0 AS abandoned
        FROM interactions WHERE customer_id IS NOT NULL AND channel IN ('web', 'email')
        GROUP BY ALL
        UNION ALL
        SELECT customer_id, {_daily("abandoned_at")}, {zeros}, count(*) FROM abandoned GROUP BY ALL
    """
    lasts = {
        "last_web_visit_at": "web_at",
        "last_email_engagement_at": "engaged_at",
        "last_unsubscribe_at": "unsubscribed_at",
    }
    totals = running_totals_sql(events, sums=[*counts, "abandoned"], lasts=lasts)
    windows = (30, 90)
    features = {
        "emails_sent_90d": ("sent", 90),
        "email_opens_30d": ("opens", 30),
        "email_opens_90d": ("opens", 90),
        "email_clicks_30d": ("clicks", 30),
        "email_clicks_90d": ("clicks", 90),
        "email_unsubscribes_90d": ("unsubscribes", 90),
        "web_sessions_30d": ("sessions", 30),
        "web_sessions_90d": ("sessions", 90),
        "product_views_30d": ("product_views", 30),
        "product_views_90d": ("product_views", 90),
        "searches_30d": ("searches", 30),
        "searches_90d": ("searches", 90),
        "cart_adds_30d": ("cart_adds", 30),
        "abandoned_carts_30d": ("abandoned", 30),
        "abandoned_carts_90d": ("abandoned", 90),
    }
    select = ", ".join(
        [
            *(f"{window_sum(column, days)}::BIGINT AS {name}" for name, (column, days) in features.items()),
            *(f"date_trunc('second', c.{name}) AS {name}" for name in lasts),
        ]
    )
    return f"""
        WITH totals AS ({totals}), points AS ({change_points_sql("totals", windows, CUSTOMERS)})
        SELECT p.key AS customer_id, p.t AS event_timestamp, {select}
        FROM {asof_joins_sql("points", "totals", windows)}
    """


def service_sql() -> str:
    """customer_service: tickets over 90/365 days and lifetime, and satisfaction."""
    # The satisfaction score is taken as known when the ticket was opened: the profile keeps no rating time.
    events = """
        SELECT customer_id AS key, occurred_at AS ts, 1 AS tickets, coalesce(satisfaction, 0) AS rating_sum,
               CASE WHEN satisfaction IS NULL THEN 0 ELSE 1 END AS ratings, satisfaction, occurred_at
        FROM interactions WHERE customer_id IS NOT NULL AND channel = 'service'
    """
    totals = running_totals_sql(
        events,
        sums=["tickets", "rating_sum", "ratings"],
        lasts={"last_satisfaction": "satisfaction", "last_ticket_at": "occurred_at"},
    )
    windows = (90, 365)
    return f"""
        WITH totals AS ({totals}), points AS ({change_points_sql("totals", windows, CUSTOMERS)})
        SELECT p.key AS customer_id, p.t AS event_timestamp,
               {window_sum("tickets", 90)}::BIGINT AS tickets_90d,
               {window_sum("tickets", 365)}::BIGINT AS tickets_365d,
               {total("tickets")}::BIGINT AS tickets_lifetime,
               c.last_satisfaction::DOUBLE AS last_satisfaction,
               {_rounded(f"{window_sum('rating_sum', 365)} / nullif({window_sum('ratings', 365)}, 0)")}::DOUBLE
                   AS avg_satisfaction_365d,
               date_trunc('second', c.last_ticket_at) AS last_ticket_at
        FROM {asof_joins_sql("points", "totals", windows)}
    """


def loyalty_sql() -> str:
    """customer_loyalty: membership from the joining date; tier and points only as of `now` (no history)."""
    return """
        SELECT customer_id, loyalty_joined_at AS event_timestamp, true AS loyalty_member,
               'unknown' AS loyalty_tier, NULL::DOUBLE AS loyalty_points,
               date_trunc('second', loyalty_joined_at) AS loyalty_joined_at
        FROM customers WHERE loyalty_joined_at < $now
        UNION ALL
        SELECT customer_id, $now, loyalty_joined_at IS NOT NULL OR loyalty_tier IS NOT NULL,
               CASE WHEN loyalty_joined_at IS NULL AND loyalty_tier IS NULL THEN 'none'
                    ELSE coalesce(loyalty_tier, 'unknown') END,
               loyalty_points, date_trunc('second', loyalty_joined_at)
        FROM customers
    """


AGE_BANDS = ((25, "<25"), (35, "25-34"), (45, "35-44"), (55, "45-54"), (65, "55-64"))


def profile_sql(consent_defaults: Mapping[str, bool]) -> str:
    """customer_profile: age band, region and consent per purpose at first sight, each change and `now`."""
    purposes = ("email", "sms", "personalisation", "profiling")
    last_consent = ", ".join(
        f"last_value(CASE WHEN purpose = '{p}' THEN granted END IGNORE NULLS) OVER w AS {p}" for p in purposes
    )
    consents = ", ".join(
        f"coalesce(s.{p}, {str(bool(consent_defaults.get(p, False))).lower()}) AS consent_{p}"
        for p in purposes
    )
    years = "date_part('year', age(p.t::DATE::TIMESTAMP, b.birth_date::TIMESTAMP))"
    bands = " ".join(f"WHEN {years} < {limit} THEN '{band}'" for limit, band in AGE_BANDS)
    birthdays = ", ".join(f"({limit})" for limit, _ in AGE_BANDS)
    return f"""
        WITH seen AS (
            SELECT key, min(ts) AS since FROM (
                SELECT customer_id AS key, ordered_at AS ts FROM orders
                UNION ALL SELECT customer_id, occurred_at FROM interactions
                UNION ALL SELECT customer_id, recorded_at FROM consent_events
                UNION ALL SELECT customer_id, loyalty_joined_at FROM customers
            ) WHERE key IS NOT NULL GROUP BY key
        ), base AS (
            SELECT c.customer_id AS key, least(coalesce(s.since, $now), $now) AS since, c.birth_date,
                   nullif(upper(trim(c.country)), '') AS region
            FROM customers c LEFT JOIN seen s ON s.key = c.customer_id
        ), steps AS (
            -- On a tie between a grant and a withdrawal for one purpose, the withdrawal wins.
            SELECT customer_id AS key, recorded_at AS ts, purpose, bool_and(granted) AS granted
            FROM consent_events WHERE granted IS NOT NULL AND customer_id IS NOT NULL GROUP BY ALL
        ), consent AS (
            SELECT key, ts, {last_consent} FROM steps
            WINDOW w AS (PARTITION BY key ORDER BY ts, purpose ROWS UNBOUNDED PRECEDING)
            QUALIFY row_number() OVER (PARTITION BY key, ts ORDER BY purpose DESC) = 1
        ), points AS (
            SELECT DISTINCT key, t FROM (
                SELECT key, since AS t FROM base
                UNION ALL SELECT key, ts FROM consent
                UNION ALL SELECT b.key, (b.birth_date + to_years(v.n))::TIMESTAMPTZ
                    FROM base b, (VALUES {birthdays}) v(n) WHERE b.birth_date IS NOT NULL
                UNION ALL SELECT key, $now FROM base
            ) JOIN base USING (key) WHERE t <= $now AND t >= since
        )
        SELECT p.key AS customer_id, p.t AS event_timestamp,
               CASE WHEN b.birth_date IS NULL OR {years} < 0 OR {years} > 120 THEN 'unknown'
                    {bands} ELSE '65+' END AS age_band,
               coalesce(b.region, 'unknown') AS region, {consents}
        FROM points p JOIN base b USING (key) ASOF LEFT JOIN consent s ON p.key = s.key AND p.t >= s.ts
    """


def realtime_sql() -> str:
    """customer_realtime history: last action, cart size and last order's SKUs at each active hour's end."""
    return """
        WITH actions AS (
            SELECT customer_id AS key, occurred_at AS ts,
                   CASE event_type WHEN 'add_to_cart' THEN 1 WHEN 'remove_from_cart' THEN -1 ELSE 0 END AS cart_delta,
                   0 AS is_order, NULL::VARCHAR[] AS skus
            FROM interactions
            WHERE customer_id IS NOT NULL AND (channel IN ('web', 'service') OR event_type IN ('open', 'click'))
            UNION ALL
            SELECT customer_id, min(ordered_at), 0, 1, list_sort(list(DISTINCT sku) FILTER (sku IS NOT NULL))
            FROM orders WHERE customer_id IS NOT NULL AND line_type = 'sale' GROUP BY customer_id, order_id
        ), baskets AS (
            -- An order empties the cart: cart size is the running sum since the latest order.
            SELECT *, sum(is_order) OVER (PARTITION BY key ORDER BY ts, is_order ROWS UNBOUNDED PRECEDING) AS basket,
                   row_number() OVER (PARTITION BY key ORDER BY ts, is_order) AS step
            FROM actions
        ), state AS (
            SELECT key, ts,
                   greatest(sum(cart_delta) OVER (PARTITION BY key, basket ORDER BY step ROWS UNBOUNDED PRECEDING), 0)
                       AS cart_items,
                   last_value(skus IGNORE NULLS) OVER (PARTITION BY key ORDER BY step ROWS UNBOUNDED PRECEDING)
                       AS last_order_skus,
                   step
            FROM baskets
        )
        SELECT key AS customer_id, ts AS event_timestamp, date_trunc('second', ts) AS last_event_at,
               cart_items::BIGINT AS cart_items, coalesce(last_order_skus, []::VARCHAR[]) AS last_order_skus
        FROM state
        QUALIFY row_number() OVER (PARTITION BY key, date_trunc('hour', ts) ORDER BY step DESC) = 1
    """
