"""Live events that must not reach the stored state: each is answered 4xx and leaves the state as it was."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from serving_fixtures import NOW, Served

from serving.events import EventRefused, check_event
from serving.schemas import EventRequest

LATER = (NOW + timedelta(hours=1)).isoformat()
# Event (without the customer), and the reason the answer must give.
BAD_EVENTS = [
    ({"event_type": "product_view", "occurred_at": "9999-12-31T00:00:00Z"}, "after the service's now"),
    ({"event_type": "add_to_cart", "occurred_at": LATER}, "after the service's now"),
    (
        {"event_type": "product_view", "occurred_at": "1990-01-01T00:00:00Z"},
        "before the customer's first record",
    ),
    ({"event_type": "purchase", "skus": []}, "a purchase names at least one SKU"),
    ({"event_type": "add_to_cart", "skus": ["NOPE-2", "NOPE-1"]}, "unknown SKU(s): NOPE-1, NOPE-2"),
    ({"event_type": "purchase", "skus": ["<known>", "NOPE-3"]}, "unknown SKU(s): NOPE-3"),
]


def state(service: Any, customer_id: str) -> Any:
    return service.engine.live.one(customer_id).state()


@pytest.mark.parametrize("event, reason", BAD_EVENTS, ids=[r for _, r in BAD_EVENTS])
def test_a_bad_event_is_refused_and_changes_nothing(
    service: Any, served: Served, event: dict[str, Any], reason: str
) -> None:
    customer, sku = served.survivor, served.skus[0]
    event = {"skus": [sku], **event}
    event["skus"] = [sku if s == "<known>" else s for s in event["skus"]]
    # A cart and a last order to keep: the bad event must touch neither, nor the last event's time.
    service.events(customer_id=customer, event_type="purchase", skus=[served.skus[1]])
    service.events(customer_id=customer, event_type="add_to_cart", skus=[sku])
    before = state(service, customer)
    answer = service.events(customer_id=customer, **event)
    assert answer.status_code == 422 and reason in json.loads(answer.body)["error"]
    assert state(service, customer) == before


def test_an_older_valid_event_keeps_the_latest_last_event(service: Any, served: Served) -> None:
    customer, sku = served.survivor, served.skus[0]
    service.events(customer_id=customer, event_type="product_view", skus=[sku], occurred_at=NOW)
    latest = state(service, customer).last_event_at
    older = service.events(
        customer_id=customer, event_type="product_view", skus=[sku], occurred_at=NOW - timedelta(days=1)
    )
    assert older.accepted and state(service, customer).last_event_at == latest


def test_the_checks_alone() -> None:
    now = datetime(2025, 6, 1, tzinfo=UTC)
    first = datetime(2024, 1, 1, tzinfo=UTC)
    known = {"A", "B"}

    def check(**fields: Any) -> None:
        check_event(EventRequest(customer_id="C1", **fields), now, first, known, timedelta(minutes=5))

    check(event_type="purchase", skus=["A"], occurred_at=now + timedelta(minutes=4))  # a drifting clock
    check(event_type="product_view", skus=[], occurred_at=datetime(2025, 1, 1))  # naive: taken as UTC
    for fields, reason in (
        ({"event_type": "purchase", "skus": ["A"], "occurred_at": now + timedelta(minutes=6)}, "after"),
        ({"event_type": "purchase", "skus": ["A"], "occurred_at": first - timedelta(seconds=1)}, "before"),
        ({"event_type": "remove_from_cart", "skus": ["C", "A"]}, "unknown SKU(s): C"),
    ):
        with pytest.raises(EventRefused, match=re.escape(reason)):
            check(**fields)
