"""Offline sources (Parquet tables written by `features.profile.snapshots`), the live push source and the request.

Paths are relative to the workspace's feature data folder (`data/feast/`); `features.store.repo` makes them
absolute for the workspace being applied, so nothing here depends on the working directory.
"""

from feast import Field, FileSource, PushSource, RequestSource
from feast.types import UnixTimestamp


def _table(name: str, description: str) -> FileSource:
    return FileSource(
        name=name,
        path=f"offline/{name}.parquet",
        timestamp_field="event_timestamp",
        description=description,
    )


customer_transactions_source = _table(
    "customer_transactions",
    "One row per customer each time a purchase enters or leaves a window, and at `now`.",
)
customer_engagement_source = _table(
    "customer_engagement",
    "One row per customer per day with web or email activity, per window exit, and at `now`.",
)
customer_service_source = _table(
    "customer_service", "One row per customer each time a ticket enters or leaves a window, and at `now`."
)
customer_loyalty_source = _table(
    "customer_loyalty",
    "One row when the customer joined the loyalty program and one at `now` (tier, points).",
)
customer_profile_source = _table(
    "customer_profile",
    "One row when the customer is first seen, at each consent change and age-band birthday, and at `now`.",
)
customer_realtime_source = _table(
    "customer_realtime", "History of the live state: one row per customer per hour with activity."
)
product_popularity_source = _table(
    "product_popularity", "One row per product per day with sales, per window exit, and at `now`."
)
product_catalog_source = _table(
    "product_catalog", "Descriptive attributes, from when the product is first seen."
)
product_offer_source = _table("product_offer", "List price and availability, as of the build's `now` only.")

# Live events (web, cart, checkout) pushed by the serving layer straight into the online store.
customer_events_push = PushSource(
    name="customer_events_push",
    batch_source=customer_realtime_source,
    description="Live customer events folded into the realtime state by `features.store.push`.",
)

# The moment of the request: "now" when serving, the cutoff when building a training frame.
request_context = RequestSource(
    name="request_context",
    schema=[
        Field(name="request_time", dtype=UnixTimestamp, description="The moment the features are asked for.")
    ],
    description="Values supplied with the request rather than read from a store.",
)
