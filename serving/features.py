"""The service's side of the feature store: per-customer live values on the hot path, model vectors, live events.

`/recommend` needs only five values per customer (consent, the live cart and last order); it reads them with
the online store's `read_columns` (two views, one call) instead of a whole feature service. Churn and CLTV
read their model's feature service through `features.store.OnlineFeatures`; events go through
`features.store.push_events`, so the next read of the same store sees them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from feast import FeatureStore, FeatureView

from features.store import OnlineFeatures, push_events
from features.store.online_stores import string_keys
from serving.schemas import EventRequest, LiveState
from tessera.core.errors import InputError

REALTIME = ("customer_realtime", ("last_event_at", "cart_items", "last_order_skus"))
CONSENT = ("customer_profile", ("consent_personalisation", "consent_profiling"))


@dataclass(frozen=True)
class CustomerLive:
    """A customer's online values; a customer missing from the store has no consent and an empty state."""

    consent_personalisation: bool
    consent_profiling: bool
    last_event_at: datetime | None
    cart_items: int
    last_order_skus: tuple[str, ...]

    def state(self) -> LiveState:
        """The live part, as the API shows it."""
        return LiveState(
            last_event_at=self.last_event_at,
            cart_items=self.cart_items,
            last_order_skus=list(self.last_order_skus),
        )


class LiveFeatures:
    """Reads `CustomerLive` values for customers, in the order asked."""

    def __init__(self, store: FeatureStore) -> None:
        self.store = store
        views = {view.name: view for view in store.list_feature_views()}
        missing = [name for name, _ in (REALTIME, CONSENT) if name not in views]
        if missing:
            raise InputError(
                f"the feature store has no {', '.join(missing)} view: run `tessera features apply` and "
                "`tessera features materialize` (or `tessera run`) on this workspace first"
            )
        self._reads = [(views[name], list(names)) for name, names in (REALTIME, CONSENT)]
        self.consent_view: FeatureView = views[CONSENT[0]]
        self._online_store = store._get_provider().online_store

    def read(self, customer_ids: Sequence[str]) -> list[CustomerLive]:
        """One `CustomerLive` per id (a missing value takes the conservative default: no consent, empty)."""
        if not customer_ids:
            return []
        keys = self._online_store.serialize_keys(self.store.config, string_keys("customer_id", customer_ids))
        values = self._online_store.read_columns(
            self.store.config, [(view, names, keys) for view, names in self._reads]
        )
        return [
            CustomerLive(
                consent_personalisation=bool(values["consent_personalisation"][i]),
                consent_profiling=bool(values["consent_profiling"][i]),
                last_event_at=values["last_event_at"][i],
                cart_items=int(values["cart_items"][i] or 0),
                last_order_skus=tuple(values["last_order_skus"][i] or ()),
            )
            for i in range(len(customer_ids))
        ]

    def stored(self, customer_ids: Sequence[str], views: Sequence[FeatureView]) -> list[tuple[Any, ...]]:
        """Per customer, what the online store holds for it in each view, undecoded (None where nothing): while
        it stays the same, so does everything read from those views."""
        if not customer_ids:
            return []
        keys = self._online_store.serialize_keys(self.store.config, string_keys("customer_id", customer_ids))
        found = self._online_store.read_stored(self.store.config, [(view, keys) for view in views])
        return list(zip(*found, strict=True))

    def one(self, customer_id: str) -> CustomerLive:
        """The live values of one customer."""
        return self.read([customer_id])[0]

    def push(self, customer_id: str, event: EventRequest, now: datetime) -> LiveState:
        """Fold one live event into the customer's realtime state in the online store; the new state."""
        rows = push_events(
            self.store,
            [
                {
                    "customer_id": customer_id,
                    "occurred_at": event.occurred_at or now,
                    "event_type": event.event_type,
                    "skus": list(event.skus),
                    "quantity": event.quantity,
                }
            ],
        )
        row = rows.iloc[0]
        return LiveState(
            last_event_at=pd.Timestamp(row["last_event_at"]).to_pydatetime(),
            cart_items=int(row["cart_items"]),
            last_order_skus=list(row["last_order_skus"]),
        )


def model_vectors(reader: OnlineFeatures, customer_ids: Sequence[str], now: datetime) -> pd.DataFrame:
    """A model's feature vectors (declared defaults filled in) with customer_id first, one row per id."""
    return model_frame(
        reader, customer_ids, reader.vectors(customer_ids=list(customer_ids), request_time=now)
    )


def model_frame(
    reader: OnlineFeatures, customer_ids: Sequence[str], vectors: Sequence[dict[str, Any]]
) -> pd.DataFrame:
    """Vectors the reader read, as the model's input frame with customer_id first."""
    frame = pd.DataFrame(list(vectors), columns=reader.names)
    frame.insert(0, "customer_id", list(customer_ids))
    return frame
