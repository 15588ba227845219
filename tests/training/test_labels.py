"""Cutoffs and labels: time splits that never leak, and labels that mean what they say."""

from __future__ import annotations

import pandas as pd
import pytest

from training.errors import ModelSkipped
from training.labels import Cutoffs, order_events, plan_cutoffs, purchase_labels

CUTOFF = pd.Timestamp("2025-03-31 23:59:59", tz="UTC")


def lines(rows: list[tuple[str, str, str, float, str]]) -> pd.DataFrame:
    """Order lines from (customer, order, time, amount, line_type) tuples."""
    frame = pd.DataFrame(rows, columns=["customer_id", "order_id", "ordered_at", "amount", "line_type"])
    frame["ordered_at"] = pd.to_datetime(frame["ordered_at"], utc=True, format="ISO8601")
    frame["sku"] = "A"
    return frame


def day(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def plan(first: str, last: str, now: str | None = None, **changes: int) -> Cutoffs:
    """plan_cutoffs with the defaults' minimums (60 days of history, 28-day labels) unless changed."""
    values = {
        "horizon_days": 90,
        "training_cutoffs": 6,
        "spacing_days": 61,
        "min_history_days": 60,
        "min_horizon_days": 28,
        **changes,
    }
    return plan_cutoffs(day(first), day(last), day(now or last), **values)


def test_training_labels_end_before_the_validation_window_starts() -> None:
    cutoffs = plan("2023-01-01", "2025-12-31", training_cutoffs=4, spacing_days=30)
    assert cutoffs.validation + cutoffs.horizon == day("2025-12-31")
    assert list(cutoffs.training) == sorted(cutoffs.training)
    assert all(c + cutoffs.horizon <= cutoffs.validation for c in cutoffs.training)


def test_a_long_history_keeps_the_horizon_count_and_spacing_asked_for() -> None:
    cutoffs = plan("2023-01-01", "2025-12-31", training_cutoffs=4, spacing_days=30)
    assert cutoffs.validation == day("2025-10-02")  # 90 days before the last sale
    assert cutoffs.training == tuple(map(day, ["2025-04-05", "2025-05-05", "2025-06-04", "2025-07-04"]))
    assert (cutoffs.horizon_days, cutoffs.target_horizon_days, cutoffs.note) == (90, 90, "")


def test_a_year_of_history_packs_the_six_cutoffs_closer_after_the_minimum_history() -> None:
    # Validation 2025-10-02, last training 2025-07-04; the first may be 2025-03-02 (60 days in): 124 days
    # of room for five gaps, so 24 days apart instead of 61.
    cutoffs = plan("2025-01-01", "2025-12-31")
    assert cutoffs.validation == day("2025-10-02")
    assert cutoffs.training == tuple(
        map(day, ["2025-03-06", "2025-03-30", "2025-04-23", "2025-05-17", "2025-06-10", "2025-07-04"])
    )


def test_cutoffs_are_never_closer_than_a_week_so_a_short_room_gets_fewer() -> None:
    # 260 days: validation 2025-04-21, last training 2025-01-21, room 20 days after 2025-01-01.
    cutoffs = plan("2024-11-02", "2025-07-20")
    assert cutoffs.training == tuple(map(day, ["2025-01-01", "2025-01-11", "2025-01-21"]))


def test_nine_months_with_a_273_day_horizon_label_the_longest_window_that_fits() -> None:
    # 272 days from the first to the last sale, 60 of them history: two windows of 106 days.
    cutoffs = plan("2025-01-01", "2025-09-30", "2025-09-30 23:59", horizon_days=273)
    assert (cutoffs.horizon_days, cutoffs.target_horizon_days) == (106, 273)
    assert cutoffs.validation == day("2025-06-16")
    assert cutoffs.training == (day("2025-03-02"),)
    assert cutoffs.note.startswith("labels cover 106 days, not the 273 asked: 272 days of sales")


def test_the_plan_ends_at_the_last_sale_or_now_whichever_is_first() -> None:
    assert plan("2023-01-01", "2025-12-31", "2025-11-30").validation == day("2025-09-01")
    assert plan("2023-01-01", "2025-11-30", "2025-12-31").validation == day("2025-09-01")


def test_sales_ending_more_than_a_horizon_before_now_are_named_with_the_now_to_pass() -> None:
    """An old export run with the clock as now: the plan stays inside the sales, and the note says why every
    customer will look lapsed at now."""
    old = plan("2010-12-01", "2011-12-09", "2026-12-04")
    assert old.validation == day("2011-09-10")  # planned inside the sales, as for now = the last sale
    assert old.note == (
        "the latest sale (2011-12-09) is 5,474 days before now (2026-12-04): the models learn inside the sales "
        "present, but scores and segments are as of now, when every customer looks lapsed; to score as of the "
        "export's end, pass --now 2011-12-10"
    )
    assert (
        plan("2010-12-01", "2011-12-09", "2012-03-08").note == ""
    )  # within a 90-day horizon: nothing to say
    short = plan("2025-01-01", "2025-09-30", "2026-09-30", horizon_days=273)
    assert (
        short.note.startswith("labels cover 106 days, not the 273 asked")
        and "; the latest sale" in short.note
    )


def test_a_history_too_short_for_the_minimum_is_split_in_three_with_a_window_of_history() -> None:
    cutoffs = plan(
        "2025-01-01", "2025-04-11"
    )  # 100 days: 60 of history leave 40, two windows need 56; 34 + 33 + 33
    assert (cutoffs.training, cutoffs.validation, cutoffs.horizon_days) == (
        (day("2025-02-04"),),
        day("2025-03-09"),
        33,
    )
    assert cutoffs.note.startswith("labels cover 33 days, not the 90 asked")
    month = plan("2025-01-01", "2025-03-31", horizon_days=30)  # 89 days, a month's horizon: 31 + 29 + 29
    assert (month.training, month.validation, month.horizon_days) == (
        (day("2025-02-01"),),
        day("2025-03-02"),
        29,
    )


def test_a_history_with_room_to_validate_but_not_to_train_plans_no_training_cutoff() -> None:
    cutoffs = plan(
        "2025-01-01", "2025-02-20", min_history_days=10
    )  # 50 days: 40 after the history, three windows need 84
    assert cutoffs.training == ()
    assert (cutoffs.validation, cutoffs.horizon_days) == (day("2025-01-11"), 40)
    assert "hold no training window" in cutoffs.note


def test_a_history_too_short_to_validate_skips_with_the_dates() -> None:
    with pytest.raises(ModelSkipped, match=r"80 days of sales \(2025-01-01 to 2025-03-22\) are too short"):
        plan("2025-01-01", "2025-03-22")  # 60 + 28 or 3 x 28 days are needed
    with pytest.raises(ModelSkipped, match=r"or three 7-day windows"):
        plan("2025-01-01", "2025-01-21", min_horizon_days=7)  # 20 days
    month = plan("2025-01-01", "2025-01-30", min_horizon_days=7)  # 29 days: 11 + 9 + 9
    assert (month.training, month.validation, month.horizon_days) == (
        (day("2025-01-12"),),
        day("2025-01-21"),
        9,
    )


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


def test_value_is_to_the_cent_whatever_order_the_lines_come_in() -> None:
    history = [(c, f"{c}0", "2025-01-15", 5.0, "sale") for c in ("c", "r")]
    amounts = [0.1, 0.2, 0.3, 0.7, 1e6]  # a float sum of these differs in its last bits by their order
    rows = [("c", f"c{i}", "2025-04-15", amount, "sale") for i, amount in enumerate(amounts, 1)]
    rows += [("c", "cr", "2025-04-16", -1e6, "return")]
    rows += [("r", "r1", "2025-04-15", 0.1, "sale")]  # a sale returned in full, in thirds
    rows += [("r", f"rr{i}", "2025-04-16", -0.1 / 3, "return") for i in range(3)]
    values = set()
    for order in (rows, rows[::-1], rows[3:] + rows[:3]):
        labels = purchase_labels(order_events(lines(history + order)), CUTOFF, 90).set_index("customer_id")
        values.add((labels.loc["c", "value"], labels.loc["r", "value"]))
    assert values == {(1.3, 0.0)}
