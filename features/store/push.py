"""Live events into the online store: fold each customer's new events into their realtime state and push it.

The realtime state (`customer_realtime`: last action, items in the cart, last order's SKUs) is read from the
online store, updated event by event in time order, and written back through the push source, so the next
online read sees it. Only the online store is written: the offline history of the view is rebuilt from the
profile (which will hold these events once they arrive through ingestion) at each materialisation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd
from feast import FeatureStore
from feast.data_source import PushMode

from tessera.core.timeutil import as_utc

PUSH_SOURCE = "customer_events_push"
VIEW = "customer_realtime"
CART_EVENTS = {"add_to_cart": 1, "remove_from_cart": -1}
ORDER_EVENTS = {"order", "purchase"}


def _current_state(store: FeatureStore, customer_ids: list[str]) -> dict[str, dict[str, Any]]:
    response = store.get_online_features(
        features=[f"{VIEW}:last_event_at", f"{VIEW}:cart_items", f"{VIEW}:last_order_skus"],
        entity_rows={"customer_id": customer_ids},
    ).to_dict()
    return {
        customer_id: {
            "last_event_at": response["last_event_at"][i],
            "cart_items": response["cart_items"][i] or 0,
            "last_order_skus": list(response["last_order_skus"][i] or []),
        }
        for i, customer_id in enumerate(customer_ids)
    }


def fold_event(state: Mapping[str, Any], event: Mapping[str, Any]) -> dict[str, Any]:
    """The realtime state after one event (`event_type`, `occurred_at`, optional `skus` and `quantity`)."""
    new = dict(state)
    at = as_utc(pd.Timestamp(event["occurred_at"]).to_pydatetime())
    previous = new.get("last_event_at")
    new["last_event_at"] = at if previous is None else max(as_utc(previous), at)
    kind = event["event_type"]
    if kind in CART_EVENTS:
        quantity = int(event.get("quantity") or 1)
        new["cart_items"] = max(0, int(new.get("cart_items") or 0) + CART_EVENTS[kind] * quantity)
    elif kind in ORDER_EVENTS:
        new["cart_items"] = 0
        new["last_order_skus"] = sorted({str(s) for s in event.get("skus") or []})
    return new


def push_events(store: FeatureStore, events: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Fold live events (customer_id, occurred_at, event_type[, skus, quantity]) into the online state; the rows pushed."""
    ordered = sorted(events, key=lambda e: as_utc(pd.Timestamp(e["occurred_at"]).to_pydatetime()))
    if not ordered:
        return pd.DataFrame(
            columns=["customer_id", "event_timestamp", "last_event_at", "cart_items", "last_order_skus"]
        )
    customer_ids = sorted({str(e["customer_id"]) for e in ordered})
    states = _current_state(store, customer_ids)
    for event in ordered:
        customer_id = str(event["customer_id"])
        states[customer_id] = fold_event(states[customer_id], event)
    rows = pd.DataFrame(
        [
            {
                "customer_id": customer_id,
                "event_timestamp": state["last_event_at"],
                "last_event_at": state["last_event_at"],
                "cart_items": int(state["cart_items"]),
                "last_order_skus": state["last_order_skus"],
            }
            for customer_id, state in states.items()
        ]
    )
    store.push(PUSH_SOURCE, rows, to=PushMode.ONLINE)
    return rows
