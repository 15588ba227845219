"""Cutoffs and labels: what happened in the horizon after each cutoff, from the profile's orders only.

Features for a cutoff use data up to it (the feature store's point-in-time join); labels here use only the
orders in (cutoff, cutoff + horizon]. Splits are by time and planned inside the sales actually present: the
validation cutoff is the latest one whose label window has fully happened by the last sale, and every
training cutoff's window ends before it, so no training label has seen the validation window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from training.errors import ModelSkipped

# Training cutoffs closer than this give nearly the same rows twice: fewer cutoffs are planned instead.
MIN_SPACING_DAYS = 7


@dataclass(frozen=True)
class Cutoffs:
    """The time split of one training run."""

    training: tuple[pd.Timestamp, ...]  # oldest first; empty when the history fits only a validation window
    validation: pd.Timestamp
    horizon_days: int  # the label window actually used
    target_horizon_days: int  # the horizon asked for; longer than `horizon_days` when the history is short
    note: str = ""  # why the plan differs from the one asked for, in one line; empty when it does not

    @property
    def horizon(self) -> pd.Timedelta:
        """The label horizon as a time span."""
        return pd.Timedelta(days=self.horizon_days)

    def describe(self) -> dict[str, str]:
        """The training window, for logging: first and last training cutoff, validation cutoff, horizon."""
        return {
            "first_training_cutoff": self.training[0].isoformat() if self.training else "",
            "last_training_cutoff": self.training[-1].isoformat() if self.training else "",
            "validation_cutoff": self.validation.isoformat(),
            "validation_window_end": (self.validation + self.horizon).isoformat(),
            "horizon_days": str(self.horizon_days),
            "target_horizon_days": str(self.target_horizon_days),
            "training_cutoffs": ",".join(c.date().isoformat() for c in self.training),
        }


def plan_cutoffs(
    first_sale: datetime,
    last_sale: datetime,
    now: datetime,
    *,
    horizon_days: int,
    training_cutoffs: int,
    spacing_days: int,
    min_history_days: int,
    min_horizon_days: int,
) -> Cutoffs:
    """Cutoffs inside the sales present: validation one label window before the end, training windows before it.

    The end is the last sale (or `now` if earlier). The label window is the horizon asked for when one training
    and one validation window fit after `min_history_days` of history, else the longest that does (at least
    `min_horizon_days`); when that minimum history would leave windows shorter than a third of the span, the span
    is split in three instead (history, training window, validation window), the history no shorter than a
    window; then up to `training_cutoffs` training cutoffs, `spacing_days` apart or closer so they all fit (never
    closer than a week), the last one a label window before validation. When only the validation
    window fits, there is no training cutoff and `note` says why; when not even that fits, ModelSkipped.
    """
    start, end = pd.Timestamp(first_sale), min(pd.Timestamp(last_sale), pd.Timestamp(now))
    stale = _stale_note(pd.Timestamp(last_sale), pd.Timestamp(now), horizon_days)
    span_days = (end - start) / pd.Timedelta(days=1)
    shortest = min(min_horizon_days, horizon_days)
    thirds = min(horizon_days, math.floor(span_days / 3))
    if math.floor((span_days - min_history_days) / 2) < thirds and thirds >= shortest:
        # The minimum history would leave label windows shorter than a third of the span: split it in three
        # instead, the history as long as a window (three months of sales, a month's horizon: a month of
        # history, a training window, a validation window).
        min_history_days = math.ceil(span_days - 2 * thirds)
    usable = span_days - min_history_days  # days left for label windows after the minimum history
    history = f"{span_days:.0f} days of sales ({start:%Y-%m-%d} to {end:%Y-%m-%d})"
    if usable < shortest:
        raise ModelSkipped(
            f"{history} are too short: {min_history_days} days of history plus a {shortest}-day window "
            f"to validate on, or three {shortest}-day windows (history, training, validation), are needed"
        )
    label = min(horizon_days, math.floor(usable / 2))
    if label < shortest:  # room to validate, none to train
        label = min(horizon_days, math.floor(usable))
        validation = end - pd.Timedelta(days=label)
        note = (
            f"{history} hold no training window: {min_history_days} days of history plus two "
            f"{shortest}-day label windows (training and validation) are needed"
        )
        return Cutoffs((), validation, label, horizon_days, _joined(note, stale))
    validation = end - pd.Timedelta(days=label)
    latest = validation - pd.Timedelta(days=label)
    room = (latest - start) / pd.Timedelta(days=1) - min_history_days
    count = min(training_cutoffs, math.floor(room / MIN_SPACING_DAYS) + 1)
    spacing = spacing_days if count == 1 else min(spacing_days, math.floor(room / (count - 1)))
    training = tuple(latest - pd.Timedelta(days=spacing * k) for k in reversed(range(count)))
    note = (
        ""
        if label == horizon_days
        else f"labels cover {label} days, not the {horizon_days} asked: {history} fit no longer training "
        "and validation windows"
    )
    return Cutoffs(training, validation, label, horizon_days, _joined(note, stale))


def _stale_note(last_sale: pd.Timestamp, now: pd.Timestamp, horizon_days: int) -> str:
    """What to say when the sales end more than a horizon before `now` (an old export run with the clock as now)."""
    silent = (now - last_sale) / pd.Timedelta(days=1)
    if silent <= horizon_days:
        return ""
    return (
        f"the latest sale ({last_sale:%Y-%m-%d}) is {silent:,.0f} days before now ({now:%Y-%m-%d}): the models "
        "learn inside the sales present, but scores and segments are as of now, when every customer looks "
        f"lapsed; to score as of the export's end, pass --now {last_sale + pd.Timedelta(days=1):%Y-%m-%d}"
    )


def _joined(*notes: str) -> str:
    return "; ".join(note for note in notes if note)


def order_events(order_lines: pd.DataFrame) -> pd.DataFrame:
    """Order lines → one row per customer order (or return): customer_id, order_id, ordered_at, amount, is_sale.

    Cancelled lines and anonymous receipts are dropped; a return keeps its own time and negative amount.
    """
    lines = order_lines[
        order_lines["customer_id"].notna() & order_lines["line_type"].isin(["sale", "return"])
    ]
    grouped = lines.groupby(["customer_id", "order_id", "line_type"], observed=True, sort=False)
    events = grouped.agg(ordered_at=("ordered_at", "min"), amount=("amount", "sum")).reset_index()
    events["is_sale"] = events["line_type"] == "sale"
    return events.drop(columns="line_type")[["customer_id", "order_id", "ordered_at", "amount", "is_sale"]]


def sales(events: pd.DataFrame) -> pd.DataFrame:
    """The sale orders of `order_events` (customer_id, ordered_at, amount), as BG/NBD counts them."""
    return events.loc[events["is_sale"], ["customer_id", "ordered_at", "amount"]]


def days_since_last_sale(
    events: pd.DataFrame, customers: pd.Series | pd.Index, cutoff: datetime
) -> np.ndarray:
    """Days from each customer's last sale at or before `cutoff` to it (the simplest churn score); NaN if none."""
    cutoff_ts = pd.Timestamp(cutoff)
    known = events[events["is_sale"] & (events["ordered_at"] <= cutoff_ts)]
    last = known.groupby("customer_id")["ordered_at"].max()
    return (cutoff_ts - last.reindex(customers.to_numpy())).dt.total_seconds().to_numpy() / 86400.0


def purchase_labels(events: pd.DataFrame, cutoff: datetime, horizon_days: int) -> pd.DataFrame:
    """Per customer who bought before `cutoff`: churned (no sale in the horizon) and net value in it."""
    cutoff_ts = pd.Timestamp(cutoff)
    end = cutoff_ts + pd.Timedelta(days=horizon_days)
    # Feast's point-in-time join sees rows at or before the cutoff, so labels start strictly after it.
    before = events["ordered_at"] <= cutoff_ts
    population = pd.Index(events.loc[before & events["is_sale"], "customer_id"].unique(), name="customer_id")
    after = events[(events["ordered_at"] > cutoff_ts) & (events["ordered_at"] <= end)]
    bought = after.loc[after["is_sale"], "customer_id"].unique()
    # Money to the cent: a float sum depends on the lines' order, and a sale returned in full must be 0, not
    # 1e-14, whichever order the lines were read in (a model's selection must not hinge on that order).
    value = after.groupby("customer_id", observed=True)["amount"].sum().round(2).clip(lower=0)
    labels = pd.DataFrame(index=population)
    labels["cutoff"] = cutoff_ts
    labels["churned"] = ~labels.index.isin(bought)
    labels["value"] = value.reindex(population).fillna(0.0).to_numpy(dtype=float)
    return labels.reset_index()


def labels_at(events: pd.DataFrame, cutoffs: list[pd.Timestamp], horizon_days: int) -> pd.DataFrame:
    """`purchase_labels` at every cutoff, stacked: the entity frame (customer_id, cutoff) with its labels."""
    frames = [purchase_labels(events, cutoff, horizon_days) for cutoff in cutoffs]
    stacked = pd.concat(frames, ignore_index=True)
    stacked["churned"] = stacked["churned"].astype(bool)
    return stacked
