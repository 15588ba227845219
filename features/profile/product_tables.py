"""Product feature tables as DuckDB queries over the profile views (`features.profile.views`)."""

from __future__ import annotations

from features.profile.windows import asof_joins_sql, change_points_sql, running_totals_sql, window_sum

PRODUCTS = "SELECT sku AS key FROM products UNION SELECT DISTINCT sku FROM orders WHERE sku IS NOT NULL"


def popularity_sql() -> str:
    """product_popularity: units and orders over 7/30/90 days counted per UTC day, and the last price sold at."""
    # Every channel and every buyer counts, anonymous store receipts included.
    events = """
        SELECT sku AS key, least(date_trunc('day', ordered_at) + INTERVAL 1 DAY, $now) AS ts,
               sum(quantity) AS units, count(DISTINCT order_id) AS orders, arg_max(unit_price, ordered_at) AS price
        FROM orders WHERE line_type = 'sale' AND sku IS NOT NULL GROUP BY ALL
    """
    totals = running_totals_sql(events, sums=["units", "orders"], lasts={"last_sold_price": "price"})
    windows = (7, 30, 90)
    units = ", ".join(f"round({window_sum('units', w)}, 6)::DOUBLE AS units_sold_{w}d" for w in windows)
    orders = ", ".join(f"{window_sum('orders', w)}::BIGINT AS product_orders_{w}d" for w in windows)
    return f"""
        WITH totals AS ({totals}), points AS ({change_points_sql("totals", windows, PRODUCTS)})
        SELECT p.key AS sku, p.t AS event_timestamp, {units}, {orders}, c.last_sold_price::DOUBLE AS last_sold_price
        FROM {asof_joins_sql("points", "totals", windows)}
    """


def catalog_sql() -> str:
    """product_catalog: category and brand, taken as constant from the product's first sale (or `now`)."""
    return """
        SELECT p.sku, least(coalesce(f.first_sold, $now), $now) AS event_timestamp, p.category,
               nullif(trim(split_part(p.category, '>', 1)), '') AS category_top, p.brand
        FROM products p
        LEFT JOIN (SELECT sku, min(ordered_at) AS first_sold FROM orders WHERE line_type = 'sale' GROUP BY sku) f
            USING (sku)
    """


def offer_sql() -> str:
    """product_offer: the catalogue's list price and availability, known as of `now` only."""
    return "SELECT sku, $now AS event_timestamp, price AS list_price, available FROM products"
