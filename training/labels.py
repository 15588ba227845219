"""Cutoffs and labels: what happened in the horizon after each cutoff, from the profile's orders only.

Features for a cutoff use data up to it (the feature store's point-in-time join); labels here use only the
orders in (cutoff, cutoff + horizon]. Splits are by time: the validation cutoff is the latest one whose
horizon has fully happened, and every training cutoff's horizon ends before it, so no training label has
seen the validation window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Cutoffs:
    """The time split of one training run."""

    training: tuple[pd.Timestamp, ...]  # oldest first
    validation: pd.Timestamp
    horizon_days: int

    @property
    def horizon(self) -> pd.Timedelta:
        """The label horizon as a time span."""
        return pd.Timedelta(days=self.horizon_days)

    def describe(self) -> dict[str, str]:
        """The training window, for logging: first and last training cutoff, validation cutoff, horizon."""
        return {
            "first_training_cutoff": self.training[0].isoformat(),
            "last_training_cutoff": self.training[-1].isoformat(),
            "validation_cutoff": self.validation.isoformat(),
            "validation_window_end": (self.validation + self.horizon).isoformat(),
            "horizon_days": str(self.horizon_days),
            "training_cutoffs": ",".join(c.date().isoformat() for c in self.training),
        }


def plan_cutoffs(now: datetime, horizon_days: int, training_cutoffs: int, spacing_days: int) -> Cutoffs:
    """Validation at now - horizon; training cutoffs every `spacing_days` from validation - horizon back."""
    validation = pd.Timestamp(now) - timedelta(days=horizon_days)
    last_training = validation - timedelta(days=horizon_days)
    training = tuple(
        last_training - timedelta(days=spacing_days * k) for k in reversed(range(training_cutoffs))
    )
    return Cutoffs(training=training, validation=validation, horizon_days=horizon_days)


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
    value = after.groupby("customer_id", observed=True)["amount"].sum().clip(lower=0)
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
