"""Cutoffs and labels: time splits that never leak, and labels that mean what they say."""

from __future__ import annotations

import pandas as pd

from training.labels import order_events, plan_cutoffs, purchase_labels

CUTOFF = pd.Timestamp("2025-03-31 23:59:59", tz="UTC")


def lines(rows: list[tuple[str, str, str, float, str]]) -> pd.DataFrame:
    """Order lines from (customer, order, time, amount, line_type) tuples."""
    frame = pd.DataFrame(rows, columns=["customer_id", "order_id", "ordered_at", "amount", "line_type"])
    frame["ordered_at"] = pd.to_datetime(frame["ordered_at"], utc=True, format="ISO8601")
    frame["sku"] = "A"
    return frame


def test_training_labels_end_before_the_validation_window_starts() -> None:
    cutoffs = plan_cutoffs(
        pd.Timestamp("2025-12-31", tz="UTC"), horizon_days=90, training_cutoffs=4, spacing_days=30
    )
    assert cutoffs.validation + cutoffs.horizon == pd.Timestamp("2025-12-31", tz="UTC")
    assert list(cutoffs.training) == sorted(cutoffs.training)
    assert all(c + cutoffs.horizon <= cutoffs.validation for c in cutoffs.training)


def test_a_weekly_buyer_is_not_churned_and_a_lapsed_one_is() -> None:
    weekly = [
        ("weekly", f"w{i}", str(CUTOFF - pd.Timedelta(weeks=20) + pd.Timedelta(weeks=i)), 10.0, "sale")
        for i in range(40)
    ]
    lapsed = [("lapsed", "l1", "2024-06-01", 50.0, "sale")]
    labels = purchase_labels(order_events(lines(weekly + lapsed)), CUTOFF, 90).set_index("customer_id")
    assert not labels.loc["weekly", "churned"]
    assert labels.loc["lapsed", "churned"]
    assert labels.loc["weekly", "value"] == 10.0 * 12  # the weekly orders of the 90 days after the cutoff
    assert labels.loc["lapsed", "value"] == 0.0


def test_only_customers_who_bought_before_the_cutoff_are_labelled() -> None:
    events = order_events(
        lines([("new", "n1", "2025-04-10", 20.0, "sale"), ("old", "o1", "2025-01-10", 20.0, "sale")])
    )
    assert purchase_labels(events, CUTOFF, 90)["customer_id"].tolist() == ["old"]


def test_an_order_at_the_cutoff_is_history_and_returns_reduce_value() -> None:
    rows = [
        ("c", "o1", str(CUTOFF), 30.0, "sale"),  # at the cutoff: features see it, the label does not
        ("c", "o2", "2025-04-15", 40.0, "sale"),
        ("c", "r2", "2025-04-20", -15.0, "return"),
        ("c", "x3", "2025-04-21", 99.0, "cancellation"),
    ]
    labels = purchase_labels(order_events(lines(rows)), CUTOFF, 90).set_index("customer_id")
    assert labels.loc["c", "value"] == 25.0
    assert not labels.loc["c", "churned"]
