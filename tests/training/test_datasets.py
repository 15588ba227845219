"""What data can train a model: the one-line reasons a model is skipped, found before any feature is read, and
the anonymous purchases the recommender may count."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from features.profile.read import load_anonymous_purchases, load_events, load_order_lines
from tessera.core.settings import Workspace
from training.datasets import require_products, require_trainable, sampled_for_training
from training.errors import ModelSkipped
from training.labels import Cutoffs
from training.recommend import popularity

CUTOFFS = Cutoffs(
    training=(pd.Timestamp("2025-03-01", tz="UTC"),),
    validation=pd.Timestamp("2025-06-01", tz="UTC"),
    horizon_days=90,
    target_horizon_days=90,
)


def labels(churned: list[bool], value: list[float] | None = None) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [f"C{i}" for i in range(len(churned))],
            "churned": churned,
            "value": value if value is not None else [0.0 if c else 10.0 + i for i, c in enumerate(churned)],
        }
    )


def test_both_outcomes_and_enough_customers_train() -> None:
    both = labels([True, False, False])
    require_trainable(both, both, "churned", 3, CUTOFFS)
    require_trainable(both, both, "value", 3, CUTOFFS)


def test_too_few_customers_at_the_validation_cutoff_are_named_with_the_setting() -> None:
    both = labels([True, False])
    with pytest.raises(ModelSkipped) as skipped:
        require_trainable(both, both, "churned", 3, CUTOFFS)
    assert str(skipped.value) == (
        "only 2 customers had bought before the validation cutoff 2025-06-01; "
        "at least 3 are needed (TESSERA_TRAINING_MIN_CUSTOMERS)"
    )


def test_nobody_churning_in_training_or_everybody_in_validation_skips_churn() -> None:
    both, loyal, lost = labels([True, False]), labels([False, False]), labels([True, True])
    with pytest.raises(
        ModelSkipped, match=r"^every customer in the training windows bought again within 90 days \(2 "
    ):
        require_trainable(loyal, both, "churned", 2, CUTOFFS)
    with pytest.raises(
        ModelSkipped, match="^every customer in the validation windows churned within 90 days"
    ):
        require_trainable(both, lost, "churned", 2, CUTOFFS)


def test_the_same_value_for_everyone_leaves_nothing_to_rank() -> None:
    both, flat = labels([True, False]), labels([False, False], value=[5.0, 5.0])
    with pytest.raises(ModelSkipped, match=r"spent the same \(5\) within 90 days .*no value to rank"):
        require_trainable(flat, both, "value", 2, CUTOFFS)


def events(skus: list[str | None], kind: str = "purchase") -> pd.DataFrame:
    return pd.DataFrame({"customer_id": [f"C{i}" for i in range(len(skus))], "sku": skus, "kind": kind})


def test_training_rows_beyond_the_budget_are_a_seeded_sample_of_whole_customers() -> None:
    cutoffs = pd.to_datetime(["2025-01-01", "2025-02-01", "2025-03-01", "2025-06-01"], utc=True)
    rows = pd.DataFrame(
        [(f"C{i}", cutoff, i % 2 == 0) for cutoff in cutoffs for i in range(1000)],
        columns=["customer_id", "cutoff", "churned"],
    )
    is_validation = rows["cutoff"] == cutoffs[-1]

    sample = sampled_for_training(rows, is_validation, 1500, seed=42)
    training = sample[sample["cutoff"] != cutoffs[-1]]
    assert 1200 <= len(training) <= 1800  # about the budget of 1,500 of the 3,000 training rows
    assert training.groupby("customer_id").size().eq(3).all()  # a kept customer at every training cutoff
    assert (sample["cutoff"] == cutoffs[-1]).sum() == 1000  # the validation window keeps everyone
    pd.testing.assert_frame_equal(sampled_for_training(rows, is_validation, 1500, seed=42), sample)
    other = sampled_for_training(rows, is_validation, 1500, seed=7)
    assert set(other.loc[other["cutoff"] != cutoffs[-1], "customer_id"]) != set(training["customer_id"])
    assert sampled_for_training(rows, is_validation, 3000, seed=42) is rows  # within the budget: untouched


def test_a_recommender_needs_two_products_and_enough_buyers() -> None:
    require_products(events(["A", "B", "A"]), 3)
    with pytest.raises(ModelSkipped, match="^no purchase names a product"):
        require_products(pd.concat([events([None, None]), events(["A", "B"], kind="product_view")]), 1)
    with pytest.raises(ModelSkipped, match=r"^every purchase is of the same product \(CD\)"):
        require_products(events(["CD", "CD", "CD"]), 1)
    with pytest.raises(ModelSkipped, match="^only 2 customers bought a product; at least 3"):
        require_products(events(["A", "B"]), 3)


def profile_orders(workspace: Workspace) -> None:
    """C1 and C2 buy A1; two anonymous orders buy A3 (one with A1), one anonymous line is a return."""
    rows = [
        ("C1", "W1", "2025-01-03", "A1", 2.0, "sale"),
        ("C2", "W2", "2025-01-04", "A1", 2.0, "sale"),
        (None, "W6", "2025-01-08", "A3", 5.0, "sale"),
        (None, "W7", "2025-01-09", "A3", 5.0, "sale"),
        (None, "W7", "2025-01-09", "A1", 2.0, "sale"),
        (None, "W8", "2025-01-10", "A1", -2.0, "return"),
        (None, "W9", "2025-03-01", "A2", 1.0, "sale"),  # after `until`
    ]
    frame = pd.DataFrame(
        rows, columns=["customer_id", "order_id", "ordered_at", "sku", "amount", "line_type"]
    )
    frame["ordered_at"] = pd.to_datetime(frame["ordered_at"], utc=True)
    workspace.profile.mkdir(parents=True)
    frame.assign(source="shop").to_parquet(workspace.profile / "orders.parquet")


def test_anonymous_purchases_count_for_products_and_never_become_customers(tmp_path: Path) -> None:
    workspace, until = Workspace(tmp_path), datetime(2025, 2, 1, tzinfo=UTC)
    profile_orders(workspace)

    anonymous = load_anonymous_purchases(workspace, until)
    assert list(anonymous["customer_id"]) == ["anonymous:shop:W6", "anonymous:shop:W7", "anonymous:shop:W7"]
    assert list(anonymous["sku"]) == ["A3", "A1", "A3"] and set(anonymous["kind"]) == {"purchase"}
    # What learns or scores per customer still sees customers only.
    assert set(load_events(workspace, until)["customer_id"]) == {"C1", "C2"}
    assert set(load_order_lines(workspace, until)["customer_id"]) == {"C1", "C2"}
    # Where products are counted, each anonymous order is a buyer and a basket.
    together = pd.concat([load_events(workspace, until), anonymous], ignore_index=True)
    assert popularity(together, until).to_dict() == {"A1": 3, "A3": 2}
