"""Request-time features: values that depend on the moment asked, so they never go stale online."""

from typing import Any

from feast import Field
from feast.on_demand_feature_view import on_demand_feature_view
from feast.types import Float64

from features.feature_repo.data_sources import request_context
from features.feature_repo.feature_views import (
    customer_engagement,
    customer_loyalty,
    customer_realtime,
    customer_service,
    customer_transactions,
)


@on_demand_feature_view(
    sources=[
        customer_transactions[["first_order_at", "last_order_at"]],
        customer_loyalty[["loyalty_joined_at"]],
        customer_realtime[["last_event_at"]],
        customer_engagement[["last_web_visit_at", "last_email_engagement_at", "last_unsubscribe_at"]],
        customer_service[["last_ticket_at"]],
        request_context,
    ],
    # Feast compares declared with inferred fields including descriptions and tags (feast-dev/feast#3617),
    # so this view's fields stay bare and their documentation and defaults live in the view's tags.
    schema=[
        Field(name="days_since_last_order", dtype=Float64),
        Field(name="tenure_days", dtype=Float64),
        Field(name="membership_days", dtype=Float64),
        Field(name="hours_since_last_event", dtype=Float64),
        Field(name="days_since_last_web_visit", dtype=Float64),
        Field(name="days_since_last_email_engagement", dtype=Float64),
        Field(name="days_since_unsubscribe", dtype=Float64),
        Field(name="days_since_last_ticket", dtype=Float64),
    ],
    mode="python",
    description=(
        "Recency, tenure, membership age and the time since each kind of engagement at the moment of the "
        "request (the cutoff, offline)."
    ),
    tags={
        "freshness": "computed at request time",
        "description.days_since_last_order": "Days from the latest order to the request time (recency).",
        "description.tenure_days": "Days from the first order to the request time.",
        "description.membership_days": "Days from joining the loyalty program to the request time.",
        "description.hours_since_last_event": "Hours from the latest action of any kind to the request time.",
        "default.days_since_last_order": "null",
        "default.tenure_days": "null",
        "default.membership_days": "null",
        "default.hours_since_last_event": "null",
        "description.days_since_last_web_visit": "Days from the latest web event to the request time.",
        "description.days_since_last_email_engagement": "Days from the latest email open or click to the request time.",
        "description.days_since_unsubscribe": "Days from the latest email unsubscribe to the request time.",
        "description.days_since_last_ticket": "Days from the latest support ticket to the request time.",
        "default.days_since_last_web_visit": "null",
        "default.days_since_last_email_engagement": "null",
        "default.days_since_unsubscribe": "null",
        "default.days_since_last_ticket": "null",
    },
)
def customer_request_time(inputs: dict[str, Any]) -> dict[str, Any]:
    # Feast serialises this function into the registry: it must only use its own imports.
    from datetime import UTC, datetime

    def instant(value: Any) -> float | None:
        if value is None or value != value:  # None, NaN or NaT
            return None
        if isinstance(value, datetime):
            return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
        if hasattr(value, "timestamp"):
            return value.timestamp()
        return float(value)

    def since(starts: list[Any], ends: list[Any], unit: float) -> list[float | None]:
        out: list[float | None] = []
        for start, end in zip(starts, ends, strict=True):
            a, b = instant(start), instant(end)
            out.append(None if a is None or b is None else (b - a) / unit)
        return out

    now = inputs["request_time"]
    return {
        "days_since_last_order": since(inputs["last_order_at"], now, 86400.0),
        "tenure_days": since(inputs["first_order_at"], now, 86400.0),
        "membership_days": since(inputs["loyalty_joined_at"], now, 86400.0),
        "hours_since_last_event": since(inputs["last_event_at"], now, 3600.0),
        "days_since_last_web_visit": since(inputs["last_web_visit_at"], now, 86400.0),
        "days_since_last_email_engagement": since(inputs["last_email_engagement_at"], now, 86400.0),
        "days_since_unsubscribe": since(inputs["last_unsubscribe_at"], now, 86400.0),
        "days_since_last_ticket": since(inputs["last_ticket_at"], now, 86400.0),
    }
