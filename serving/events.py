"""Live events checked before they reach the online store: a refused event leaves the stored state as it was.

An event is refused (422, the reason named) when it is dated more than `TESSERA_SERVE_EVENT_FUTURE_SECONDS`
after the service's now (a `9999-12-31` would otherwise be the customer's last event for good and shift their
churn score), or before the customer's first record (first order, membership or interaction); when it names a
SKU no product or order line knows (all of them are named); and when it is a purchase without any SKU (an
empty purchase would wipe the last order's items, and just-bought items would be offered again). An event
older than the stored last event is accepted: the stored last-event time keeps the later one
(`features.store.push.fold_event`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from serving.customers import History
from serving.schemas import EventRequest
from tessera.core.timeutil import as_utc

# The profile columns that date a customer's first record.
FIRST_RECORD = ("first_order_at", "loyalty_joined_at")


class EventRefused(ValueError):
    """A well-formed event the data refuses (answered 422)."""


def first_record_at(history: History, record: dict[str, Any] | None, customer_id: str) -> datetime | None:
    """The time of the customer's first record: first order, membership or interaction, whichever is earliest."""
    moments = [record.get(column) for column in FIRST_RECORD] if record else []
    interactions = history.tables.get("interactions")
    if interactions is not None and customer_id in interactions.ranges:
        start, stop = interactions.ranges[customer_id]  # newest first: the last row is the earliest
        moments.append(interactions.rows.slice(stop - 1, 1).column("occurred_at")[0].as_py())
    known = [
        as_utc(pd.Timestamp(m).to_pydatetime(warn=False)) for m in moments if m is not None and not pd.isna(m)
    ]
    return min(known) if known else None


def check_event(
    event: EventRequest,
    now: datetime,
    first_record: datetime | None,
    known_skus: Iterable[str] | None,
    future: timedelta,
) -> None:
    """Raise `EventRefused` naming the reason when the event must not reach the stored state."""
    if event.occurred_at is not None:
        at = as_utc(event.occurred_at)
        latest = as_utc(now) + future
        if at > latest:
            raise EventRefused(
                f"occurred_at {at.isoformat()} is more than {future.total_seconds():.0f} s after the service's "
                f"now ({as_utc(now).isoformat()})"
            )
        if first_record is not None and at < first_record:
            raise EventRefused(
                f"occurred_at {at.isoformat()} is before the customer's first record ({first_record.isoformat()})"
            )
    if event.event_type == "purchase" and not event.skus:
        raise EventRefused("a purchase names at least one SKU (skus is empty)")
    if known_skus is not None:
        known = known_skus if isinstance(known_skus, set | frozenset) else set(known_skus)
        unknown = sorted({sku for sku in event.skus if sku not in known})
        if unknown:
            raise EventRefused(
                f"unknown SKU(s): {', '.join(unknown[:20])}" + (" ..." if len(unknown) > 20 else "")
            )
