"""The attributes a segment rule may use, with their types: the language's vocabulary, validated before any run.

Every attribute is one column of the attributes table (`activation.attributes`), one row per customer:
golden-record fields, computed traits (RFM, tenure, channels), the champions' outputs and consent per
purpose. Event conditions are functions over the customer's events in a window; they become columns too
(`event_columns`), computed in batch and kept current by live events (`activation.live`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Literal

Type = Literal["number", "text", "bool"]

ATTRIBUTES: dict[str, Type] = {
    # golden record
    "country": "text",
    "city": "text",
    "postcode": "text",
    "gender": "text",
    "age": "number",
    "loyalty_tier": "text",
    "loyalty_points": "number",
    "has_email": "bool",
    "has_phone": "bool",
    # computed traits as of the refresh
    "recency_days": "number",  # days since the last purchase (null: never bought)
    "frequency": "number",  # orders
    "monetary": "number",  # sales amount over all orders
    "tenure_days": "number",  # days since the first record (order or membership)
    "orders_online": "number",
    "orders_store": "number",
    "uses_online": "bool",
    "uses_store": "bool",
    "uses_web": "bool",  # browses: any web interaction
    "n_channels": "number",
    # model outputs (null without profiling consent or without a champion)
    "churn_probability": "number",
    "risk_band": "text",
    "cltv": "number",
    "value_band": "text",
    "top_category": "text",  # the category of the top recommended product
    # consent per purpose
    "consent_email": "bool",
    "consent_sms": "bool",
    "consent_personalisation": "bool",
    "consent_profiling": "bool",
}

# Event kinds of the event functions: /events' types, plus purchases split by channel.
EVENT_KINDS = (
    "purchase",
    "purchase_online",
    "purchase_store",
    "add_to_cart",
    "remove_from_cart",
    "product_view",
)


@dataclass(frozen=True)
class Function:
    """A function of the rule language: its argument types and its result type."""

    args: tuple[Type, ...]
    result: Type
    doc: str


FUNCTIONS: dict[str, Function] = {
    "events_in": Function(("text", "number"), "number", "events of a kind in the last N hours"),
    "hours_since": Function(("text",), "number", "hours since the last event of a kind (null: never)"),
    "views_in_category": Function(
        ("text", "number"), "number", "product views of a category in the last N hours"
    ),
    "in_segment": Function(("text",), "bool", "member of another segment"),
}
# Plain SQL functions a rule may call, with their result type (None: the type of the first argument).
SQL_FUNCTIONS: dict[str, Type | None] = {"coalesce": None, "abs": "number", "lower": "text", "upper": "text"}
# The moment the rule is evaluated at (seconds since the epoch), a column of the evaluated row.
NOW = "now_epoch"


def last_column(kind: str) -> str:
    """Column of the last event of a kind (seconds since the epoch)."""
    return f"last_{kind}_at"


def count_column(kind: str, hours: int) -> str:
    """Column of the count of a kind's events in the last `hours`."""
    return f"n_{kind}_{hours}h"


def category_column(category: str, hours: int) -> str:
    """Column of the count of product views of a category in the last `hours` (a hash names the category)."""
    slug = re.sub(r"[^a-z0-9]+", "_", category.lower()).strip("_")[:20]
    digest = hashlib.sha1(category.encode()).hexdigest()[:6]
    return f"nv_{slug}_{digest}_{hours}h"


@dataclass(frozen=True)
class EventCount:
    """One windowed count a rule needs: events of `kind` (or views of `category`) in the last `hours`."""

    kind: str
    hours: int
    category: str | None = None

    @property
    def column(self) -> str:
        if self.category is not None:
            return category_column(self.category, self.hours)
        return count_column(self.kind, self.hours)
