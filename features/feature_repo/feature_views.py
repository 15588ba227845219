"""Feature views: every customer and product feature, each as of its event time (docs/feature_store.md).

Each field carries a `default` tag: the value a training frame or an online read gives when the entity has
no row yet (no history). `null` means the value stays missing. Views carry a `freshness` tag saying how
current their values are; both tags end up in the generated catalogue, docs/features.md.
"""

from datetime import timedelta

from feast import FeatureView, Field
from feast.types import Array, Bool, FeastType, Float64, Int64, String, UnixTimestamp

from features.feature_repo.data_sources import (
    customer_engagement_source,
    customer_events_push,
    customer_loyalty_source,
    customer_profile_source,
    customer_service_source,
    customer_transactions_source,
    product_catalog_source,
    product_offer_source,
    product_popularity_source,
)
from features.feature_repo.entities import customer, product

# Rows are written at every change point, so the latest row before any moment is exact: no TTL needed.
FOREVER = timedelta(0)


def _f(name: str, dtype: FeastType, default: str, description: str) -> Field:
    return Field(name=name, dtype=dtype, description=description, tags={"default": default})


customer_transactions = FeatureView(
    name="customer_transactions",
    entities=[customer],
    ttl=FOREVER,
    source=customer_transactions_source,
    description="Purchase behaviour: recency, frequency, spend, returns, channels and rhythm of orders.",
    tags={"freshness": "offline: exact at any moment; online: as of the last materialisation"},
    schema=[
        # Frequency and spend over sliding windows: the core of RFM for churn and CLTV.
        _f("orders_30d", Int64, "0", "Sales orders placed in the last 30 days."),
        _f("orders_90d", Int64, "0", "Sales orders placed in the last 90 days."),
        _f("orders_365d", Int64, "0", "Sales orders placed in the last 365 days."),
        _f("spend_30d", Float64, "0", "Value of sales order lines in the last 30 days."),
        _f("spend_90d", Float64, "0", "Value of sales order lines in the last 90 days."),
        _f("spend_365d", Float64, "0", "Value of sales order lines in the last 365 days."),
        _f("returned_value_365d", Float64, "0", "Value of returned lines in the last 365 days."),
        _f("orders_lifetime", Int64, "0", "Sales orders since the first one."),
        _f("spend_lifetime", Float64, "0", "Value of all sales order lines since the first order."),
        _f(
            "avg_order_value",
            Float64,
            "null",
            "Lifetime spend divided by lifetime orders; null before the first order.",
        ),
        _f(
            "return_rate",
            Float64,
            "null",
            "Returned value over sold value, lifetime; null before anything was sold.",
        ),
        # Omnichannel customers behave differently from store-only ones.
        _f(
            "online_order_share",
            Float64,
            "null",
            "Share of orders placed online (the rest in store); null before the first order.",
        ),
        _f(
            "distinct_categories_365d",
            Int64,
            "0",
            "Distinct product categories bought in the last 365 days (a product outside the catalogue counts as its own).",
        ),
        # Rhythm: a customer late against their own rhythm is more likely gone than one with long gaps.
        _f(
            "mean_days_between_orders",
            Float64,
            "null",
            "Mean gap between consecutive orders, days; null with fewer than 2 orders.",
        ),
        _f(
            "std_days_between_orders",
            Float64,
            "null",
            "Standard deviation of the gaps between orders, days; null with fewer than 3.",
        ),
        # Raw times: the request-time view turns them into recency and tenure at the moment asked.
        _f("first_order_at", UnixTimestamp, "null", "Time of the first sales order."),
        _f("last_order_at", UnixTimestamp, "null", "Time of the latest sales order."),
    ],
)

customer_engagement = FeatureView(
    name="customer_engagement",
    entities=[customer],
    ttl=FOREVER,
    source=customer_engagement_source,
    description="Email and web engagement over recent windows, counted per UTC day.",
    tags={
        "freshness": "offline: as of the last UTC midnight (today's events appear in the `now` row); online: as of the last materialisation"
    },
    schema=[
        _f("emails_sent_90d", Int64, "0", "Marketing emails sent to the customer in the last 90 days."),
        _f("email_opens_30d", Int64, "0", "Email opens in the last 30 days."),
        _f("email_opens_90d", Int64, "0", "Email opens in the last 90 days."),
        _f("email_clicks_30d", Int64, "0", "Email link clicks in the last 30 days."),
        _f("email_clicks_90d", Int64, "0", "Email link clicks in the last 90 days."),
        # An unsubscribe is the strongest single signal of disengagement.
        _f("email_unsubscribes_90d", Int64, "0", "Unsubscribes in the last 90 days."),
        _f(
            "web_sessions_30d", Int64, "0", "Web sessions (distinct session ids per day) in the last 30 days."
        ),
        _f("web_sessions_90d", Int64, "0", "Web sessions in the last 90 days."),
        _f("product_views_30d", Int64, "0", "Product page views in the last 30 days."),
        _f("product_views_90d", Int64, "0", "Product page views in the last 90 days."),
        _f("searches_30d", Int64, "0", "Site searches in the last 30 days."),
        _f("searches_90d", Int64, "0", "Site searches in the last 90 days."),
        _f("cart_adds_30d", Int64, "0", "Add-to-cart events in the last 30 days."),
        _f(
            "abandoned_carts_30d",
            Int64,
            "0",
            "Sessions with an add-to-cart and no order within 24 hours, counted 24 hours after the last add; last 30 days.",
        ),
        _f("abandoned_carts_90d", Int64, "0", "Abandoned carts (as above) in the last 90 days."),
        # Raw times: the request-time view turns them into days since, at the moment asked.
        _f("last_web_visit_at", UnixTimestamp, "null", "Time of the latest web event."),
        _f("last_email_engagement_at", UnixTimestamp, "null", "Time of the latest email open or click."),
        _f("last_unsubscribe_at", UnixTimestamp, "null", "Time of the latest email unsubscribe."),
    ],
)

customer_service = FeatureView(
    name="customer_service",
    entities=[customer],
    ttl=FOREVER,
    source=customer_service_source,
    description="Support tickets and satisfaction.",
    tags={"freshness": "offline: exact at any moment; online: as of the last materialisation"},
    schema=[
        _f("tickets_90d", Int64, "0", "Support tickets opened in the last 90 days."),
        _f("tickets_365d", Int64, "0", "Support tickets opened in the last 365 days."),
        _f("tickets_lifetime", Int64, "0", "Support tickets ever opened."),
        _f(
            "last_satisfaction",
            Float64,
            "null",
            "Satisfaction score (1 worst to 5 best) of the latest rated ticket.",
        ),
        _f(
            "avg_satisfaction_365d",
            Float64,
            "null",
            "Mean satisfaction score of tickets rated in the last 365 days.",
        ),
        _f("last_ticket_at", UnixTimestamp, "null", "Time of the latest ticket."),
    ],
)

customer_loyalty = FeatureView(
    name="customer_loyalty",
    entities=[customer],
    ttl=FOREVER,
    source=customer_loyalty_source,
    description="Loyalty program membership; tier and points are only known as of the latest build.",
    tags={"freshness": "membership: exact; tier and points: as of the build's `now` (null before it)"},
    schema=[
        _f("loyalty_member", Bool, "false", "Whether the customer holds a loyalty membership."),
        _f("loyalty_tier", String, "none", "Loyalty tier as the program names it; `none` for non-members."),
        _f("loyalty_points", Float64, "null", "Loyalty points balance, as of the build."),
        _f("loyalty_joined_at", UnixTimestamp, "null", "When the customer joined the program."),
    ],
)

customer_profile = FeatureView(
    name="customer_profile",
    entities=[customer],
    ttl=FOREVER,
    source=customer_profile_source,
    # Never names, emails, phones, street or birth date: only coarse, model-safe attributes.
    description="Coarse personal attributes and consent: age band, region and consent per purpose.",
    # "replace": the batch is the only truth here (no live pushes), so every materialisation loads it from the
    # start and overwrites what the online store holds, whatever its event time: a consent withdrawal always
    # arrives, even on a re-run at the same or an earlier "as of" (features.store.repo.replaces_online).
    tags={"freshness": "consent and age band: exact; region: the current address", "online_write": "replace"},
    schema=[
        _f(
            "age_band",
            String,
            "unknown",
            "Age band at the moment: <25, 25-34, 35-44, 45-54, 55-64, 65+ or unknown.",
        ),
        _f("region", String, "unknown", "Country of the customer's current address (ISO 3166 alpha-2)."),
        _f(
            "consent_email",
            Bool,
            "false",
            "Email marketing consent at the moment (configured default without a record).",
        ),
        _f("consent_sms", Bool, "false", "SMS marketing consent at the moment."),
        _f("consent_personalisation", Bool, "false", "Consent to personalisation at the moment."),
        _f("consent_profiling", Bool, "false", "Consent to profiling at the moment."),
    ],
)

customer_realtime = FeatureView(
    name="customer_realtime",
    entities=[customer],
    ttl=FOREVER,
    source=customer_events_push,
    description="Live state fed by pushed events; its offline history is rebuilt hourly from the profile.",
    tags={"freshness": "online: real time (pushed events); offline: as of the customer's last active hour"},
    schema=[
        _f(
            "last_event_at",
            UnixTimestamp,
            "null",
            "Time of the customer's latest action (web, email open/click, ticket, order).",
        ),
        _f("cart_items", Int64, "0", "Items added to the cart minus items removed since the last order."),
        _f("last_order_skus", Array(String), "[]", "SKUs of the latest order."),
    ],
)

product_popularity = FeatureView(
    name="product_popularity",
    entities=[product],
    ttl=FOREVER,
    source=product_popularity_source,
    description="How much a product sells, counted per UTC day, and the price it last sold at.",
    tags={
        "freshness": "offline: as of the last UTC midnight (today in the `now` row); online: as of the last materialisation"
    },
    schema=[
        _f("units_sold_7d", Float64, "0", "Units sold (all customers and channels) in the last 7 days."),
        _f("units_sold_30d", Float64, "0", "Units sold in the last 30 days."),
        _f("units_sold_90d", Float64, "0", "Units sold in the last 90 days."),
        _f("product_orders_7d", Int64, "0", "Orders containing the product in the last 7 days."),
        _f("product_orders_30d", Int64, "0", "Orders containing the product in the last 30 days."),
        _f("product_orders_90d", Int64, "0", "Orders containing the product in the last 90 days."),
        _f("last_sold_price", Float64, "null", "Unit price of the product's latest sale."),
    ],
)

product_catalog = FeatureView(
    name="product_catalog",
    entities=[product],
    ttl=FOREVER,
    source=product_catalog_source,
    description="Descriptive catalogue attributes, taken as constant from when the product is first seen.",
    tags={"freshness": "the catalogue of the latest build"},
    schema=[
        _f("category", String, "unknown", "Full category path, levels separated by ' > '."),
        _f("category_top", String, "unknown", "Top level of the category path."),
        _f("brand", String, "unknown", "Brand, as the catalogue names it."),
    ],
)

product_offer = FeatureView(
    name="product_offer",
    entities=[product],
    ttl=FOREVER,
    source=product_offer_source,
    description="List price and availability; the catalogue has no history, so only known as of the build.",
    tags={"freshness": "as of the build's `now` (null before it)"},
    schema=[
        _f("list_price", Float64, "null", "Catalogue list price, as of the build."),
        _f("available", Bool, "null", "Whether the catalogue lists the product as available."),
    ],
)
