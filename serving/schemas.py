"""Typed requests and responses of the service: the OpenAPI document is generated from these.

Limits are part of the contract (a request outside them is answered 400 with the field named), so they are
constants here rather than settings.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

MAX_K = 100
MAX_BATCH = 500
MAX_SKUS = 100

CustomerId = Annotated[
    str, Field(min_length=1, max_length=128, description="Tessera customer id (or a merged one).")
]
Sku = Annotated[str, Field(min_length=1, max_length=128)]
K = Annotated[StrictInt, Field(ge=1, le=MAX_K, description=f"How many items, 1 to {MAX_K}.")]
Reason = Literal["personalised", "similar_to_cart", "popular"]
FallbackReason = Literal[
    "unknown_customer", "no_personalisation_consent", "no_model", "no_history", "no_products"
]
NotScored = Literal["unknown_customer", "no_profiling_consent"]
Band = Literal["low", "medium", "high"]
EventType = Literal["purchase", "add_to_cart", "remove_from_cart", "product_view"]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RecommendRequest(Frozen):
    customer_id: CustomerId
    k: K = 10
    category: str | None = Field(None, max_length=256, description="Only products under this category path.")
    exclude: list[Sku] = Field(default_factory=list, max_length=MAX_SKUS, description="SKUs never to offer.")
    cart: list[Sku] = Field(
        default_factory=list,
        max_length=MAX_SKUS,
        description="The current cart: not offered, and what similar items are found from.",
    )
    exclude_purchased: StrictBool = Field(False, description="Leave out everything the customer ever bought.")


class Item(Frozen):
    sku: str
    name: str | None
    category: str | None
    score: float


class RecommendedItem(Item):
    reason: Reason


class RecommendResponse(Frozen):
    customer_id: str = Field(
        description="The customer served: the surviving id when a merged id was asked for."
    )
    items: list[RecommendedItem]
    model_version: str
    personalised: bool = Field(description="Whether the customer's own history shaped the list.")
    fallback: bool = Field(
        description="True when the customer's history could not be used (see fallback_reason)."
    )
    fallback_reason: FallbackReason | None = None


class SimilarItemsRequest(Frozen):
    sku: Sku
    k: K = 10


class SimilarItemsResponse(Frozen):
    sku: str
    items: list[Item]
    model_version: str
    fallback: bool = Field(
        description="True when the product is unknown to the model: best sellers of its category."
    )


class ScoreRequest(Frozen):
    customer_ids: list[CustomerId] = Field(
        min_length=1, max_length=MAX_BATCH, description=f"1 to {MAX_BATCH} ids."
    )


class FeatureReason(Frozen):
    feature: str
    value: float | str | bool | None
    impact: float = Field(description="Contribution to the score (log-odds for churn, value for CLTV).")


class CustomerScore(Frozen):
    customer_id: str = Field(description="The id asked for.")
    resolved_id: str | None = Field(description="The surviving customer id, null when unknown.")
    scored: bool
    not_scored_reason: NotScored | None = None
    reasons: list[FeatureReason] = Field(default_factory=list)


class ChurnScore(CustomerScore):
    churn_probability: float | None = None
    risk_band: Band | None = None


class CltvScore(CustomerScore):
    cltv: float | None = None
    cltv_low: float | None = None
    cltv_high: float | None = None
    value_band: Band | None = None


class ChurnResponse(Frozen):
    model_version: str
    horizon_days: int | None
    scores: list[ChurnScore]


class CltvResponse(Frozen):
    model_version: str
    horizon_days: int | None
    interval: tuple[float, float] = Field(
        description="Quantiles of the value interval (cltv_low, cltv_high)."
    )
    scores: list[CltvScore]


class EventRequest(Frozen):
    customer_id: CustomerId
    event_type: EventType
    skus: list[Sku] = Field(
        default_factory=list, max_length=MAX_SKUS, description="The order's SKUs, or the one viewed or added."
    )
    quantity: StrictInt = Field(1, ge=1, le=1000, description="Units added to or removed from the cart.")
    occurred_at: datetime | None = Field(None, description="When it happened (default: now).")


class LiveState(Frozen):
    last_event_at: datetime | None
    cart_items: int
    last_order_skus: list[str]


class EventResponse(Frozen):
    customer_id: str
    accepted: bool
    state: LiveState


class GoldenRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    street: str | None = None
    postcode: str | None = None
    city: str | None = None
    country: str | None = None
    birth_date: date | None = None
    gender: str | None = None
    loyalty_number: str | None = None
    loyalty_tier: str | None = None
    loyalty_points: float | None = None
    loyalty_joined_at: datetime | None = None
    n_source_records: int | None = None
    sources: list[str] = Field(default_factory=list)
    n_orders: int | None = None
    first_order_at: datetime | None = None
    last_order_at: datetime | None = None


class Consent(Frozen):
    email: bool | None
    sms: bool | None
    personalisation: bool | None
    profiling: bool | None
    recorded: dict[str, bool] = Field(
        description="Per purpose: decided by a consent record (true) or by the default."
    )


class SourceIdentity(Frozen):
    source: str
    record_id: str


class OrderLine(Frozen):
    sku: str | None
    product_name: str | None
    quantity: float | None
    unit_price: float | None
    amount: float | None
    line_type: str | None


class Order(Frozen):
    order_id: str
    ordered_at: datetime
    channel: str | None
    source: str | None
    store_id: str | None
    currency: str | None
    total: float
    lines: list[OrderLine]


class Interaction(Frozen):
    occurred_at: datetime
    channel: str | None
    event_type: str | None
    sku: str | None
    campaign_id: str | None
    detail: str | None
    status: str | None
    satisfaction: float | None
    source: str | None


class Labels(Frozen):
    risk_band: Band | None
    value_band: Band | None
    loyalty_tier: str | None


class CustomerView(Frozen):
    customer_id: str
    golden_record: GoldenRecord
    identities: list[SourceIdentity]
    consent: Consent
    recent_orders: list[Order]
    recent_interactions: list[Interaction]
    labels: Labels
    churn: ChurnScore | None
    cltv: CltvScore | None
    live: LiveState
    segments: list[str] = Field(default_factory=list, description="The segments the customer is a member of.")


StewardReason = Annotated[
    str, Field(min_length=1, max_length=1000, description="Why: shown on the 360 page with who and when.")
]


class SplitRequest(Frozen):
    """Split one identity record off a customer (a wrong merge): it becomes a customer of its own."""

    customer_id: CustomerId
    identity_key: str = Field(
        min_length=1, max_length=256, description="The record to split off (the 360 view's `identity_key`)."
    )
    reason: StewardReason


class MergeRequest(Frozen):
    """Merge two customers into one: the older id survives, the other becomes its alias."""

    customer_ids: list[CustomerId] = Field(min_length=2, max_length=2, description="The two customers.")
    reason: StewardReason


class DecisionResponse(Frozen):
    decision_id: str
    kind: Literal["split", "merge"]
    customers: dict[str, str] = Field(description="Each record the decision named and its customer id now.")
    seconds: dict[str, float] = Field(description="Wall time of each step the decision was applied by.")


class ErrorBody(Frozen):
    error: str


class ValidationErrorBody(Frozen):
    """A 400: what was wrong, and per invalid field where (`loc`) and why (`msg`)."""

    error: str
    detail: list[dict[str, Any]] = Field(default_factory=list)
