"""Every metric of `training.evaluate` on arrays small enough to work out by hand (the working is in the comments).

The expected values come from the metrics' definitions, not from any library, so the tests hold whichever
implementation computes them.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from training.evaluate import (
    classification_metrics,
    decile_table,
    gini,
    interval_coverage,
    normalized_gini,
    ranking_metrics,
    value_metrics,
)


def test_classification_metrics_of_a_probability() -> None:
    churned = [0, 0, 1, 1]
    probability = [0.1, 0.4, 0.35, 0.8]
    metrics = classification_metrics(np.array(churned), np.array(probability))
    # ROC AUC: of the 4 (churner, stayer) pairs the churner scores higher in 3 (0.35 < 0.4 is the miss): 3/4.
    assert metrics["roc_auc"] == pytest.approx(0.75)
    # Average precision: ranked 0.8 (hit), 0.4, 0.35 (hit), 0.1; precision at the hits 1/1 and 2/3: mean 5/6.
    assert metrics["average_precision"] == pytest.approx(5 / 6)
    # Brier: (0.1² + 0.4² + 0.65² + 0.2²) / 4 = (0.01 + 0.16 + 0.4225 + 0.04) / 4 = 0.158125.
    assert metrics["brier"] == pytest.approx(0.158125)
    # Log loss: -(ln 0.9 + ln 0.6 + ln 0.35 + ln 0.8) / 4 = (0.10536 + 0.51083 + 1.04982 + 0.22314) / 4.
    assert metrics["log_loss"] == pytest.approx(0.4722880, abs=1e-6)


def test_a_score_that_is_not_a_probability_is_ranked_only() -> None:
    # Days since the last purchase: only the order counts; tied pairs count half.
    # Pairs (churner, stayer): 35>10, 35=35 (½), 80>10, 80>35: (3 + ½) / 4.
    metrics = classification_metrics(np.array([0, 0, 1, 1]), np.array([10.0, 35.0, 35.0, 80.0]))
    assert metrics["roc_auc"] == pytest.approx(0.875)
    assert "brier" not in metrics and "log_loss" not in metrics


ACTUAL = np.array([0.0, 10.0, 30.0, 60.0])  # total 100, n = 4


@pytest.mark.parametrize(
    ("predicted", "expected"),
    [
        # Captured share after each customer, highest prediction first; Gini = mean share - (n + 1) / 2n.
        ([0.0, 10.0, 30.0, 60.0], 0.25),  # 60, 30, 10, 0: shares 0.6 0.9 1 1, mean 0.875 - 0.625
        ([0.0, 1.0, 3.0, 2.0], 0.175),  # 30, 60, 10, 0: shares 0.3 0.9 1 1, mean 0.8 - 0.625
        ([1.0, 4.0, 3.0, 2.0], 0.0),  # 10, 30, 60, 0: shares 0.1 0.4 1 1, mean 0.625 - 0.625
        ([60.0, 30.0, 10.0, 0.0], -0.25),  # 0, 10, 30, 60: shares 0 0.1 0.4 1, mean 0.375 - 0.625
    ],
)
def test_gini_is_the_mean_captured_share_above_random(predicted: list[float], expected: float) -> None:
    assert gini(ACTUAL, np.array(predicted)) == pytest.approx(expected)
    # Normalised by the perfect ranking's Gini (0.25, the first case).
    assert normalized_gini(ACTUAL, np.array(predicted)) == pytest.approx(expected / 0.25)


def test_value_metrics() -> None:
    metrics = value_metrics(ACTUAL, np.array([0.0, 20.0, 30.0, 40.0]))
    assert metrics["normalized_gini"] == pytest.approx(1.0)  # the same order as the actual values
    assert metrics["mae"] == pytest.approx(7.5)  # (0 + 10 + 0 + 20) / 4
    assert metrics["rmse"] == pytest.approx(math.sqrt(125))  # sqrt((0 + 100 + 0 + 400) / 4)
    assert metrics["total_ratio"] == pytest.approx(0.9)  # 90 / 100


def test_value_metrics_when_nobody_spent() -> None:
    metrics = value_metrics(np.zeros(3), np.array([1.0, 2.0, 3.0]))
    # No value to rank: the ranking scores as random; a ratio to a zero total is undefined.
    assert metrics["normalized_gini"] == 0.0 and math.isnan(metrics["total_ratio"])
    assert metrics["mae"] == pytest.approx(2.0)  # (1 + 2 + 3) / 3


def test_interval_coverage_counts_the_bounds_as_inside() -> None:
    # 5 in [0, 10]; 10 in [10, 12] (on the bound); 15 not in [16, 20]; 20 not in [0, 19]: 2 of 4.
    coverage = interval_coverage(
        np.array([5.0, 10.0, 15.0, 20.0]),
        np.array([0.0, 10.0, 16.0, 0.0]),
        np.array([10.0, 12.0, 20.0, 19.0]),
    )
    assert coverage == pytest.approx(0.5)


def test_ranking_metrics_at_3() -> None:
    truth = pd.DataFrame(
        [
            ("A", "x"),
            ("A", "y"),
            ("A", "x"),
            ("B", "z"),
            ("C", "t"),
            ("C", "u"),
            ("C", "v"),
            ("C", "w"),
            ("E", "x"),
        ],
        columns=["customer_id", "sku"],
    )
    recommended = {
        "A": ["x", "q", "y", "r"],  # hits at ranks 1 and 3 (x bought twice is one relevant product)
        "B": ["q", "r", "s"],  # no hit
        "C": ["t", "w", "q", "v"],  # hits at ranks 1 and 2; v at rank 4 is beyond k
        "D": ["x", "y", "z"],  # bought nothing in the window: not averaged
        # E bought x but was shown nothing: every metric 0.
    }
    metrics = ranking_metrics(recommended, truth, k=3)
    # Recall@3 = hits / min(3, products bought): A 2/2, B 0, C 2/3, E 0 -> (1 + 2/3) / 4.
    assert metrics["recall_at_3"] == pytest.approx((1 + 2 / 3) / 4)
    # Precision@3 = hits / 3: A 2/3, C 2/3 -> (4/3) / 4.
    assert metrics["precision_at_3"] == pytest.approx(1 / 3)
    # NDCG@3, discount 1/log2(rank + 1) = 1, 0.63093, 0.5:
    # A: (1 + 0.5) / (1 + 0.63093) = 0.91972 (2 relevant); C: (1 + 0.63093) / (1 + 0.63093 + 0.5) = 0.76536.
    assert metrics["ndcg_at_3"] == pytest.approx((0.919721 + 0.765360) / 4, abs=1e-6)
    assert metrics["hit_rate_at_3"] == pytest.approx(0.5)  # A and C
    assert metrics["customers"] == 4


def test_ranking_metrics_without_any_buyer_are_zero() -> None:
    metrics = ranking_metrics({"A": ["x"]}, pd.DataFrame({"customer_id": [], "sku": []}), k=5)
    assert metrics == {
        "recall_at_5": 0.0,
        "precision_at_5": 0.0,
        "ndcg_at_5": 0.0,
        "hit_rate_at_5": 0.0,
        "customers": 0.0,
    }


def test_decile_table() -> None:
    # 20 customers scored 20 down to 1: two per decile. Actual values by decile: [10, 0], [5, 5], [4, 0],
    # six deciles of [0, 0], then [1, 0]. Total 25, mean 1.25.
    actual = np.array([10, 0, 5, 5, 4, 0] + [0] * 12 + [1, 0], dtype=float)
    table = decile_table(actual, np.arange(20, 0, -1, dtype=float)).set_index("decile")
    assert list(table.index) == list(range(1, 11)) and (table["customers"] == 2).all()
    assert table.loc[1, "mean_score"] == 19.5 and table.loc[10, "mean_score"] == 1.5
    assert table["mean_actual"].tolist() == [5.0, 5.0, 2.0, 0, 0, 0, 0, 0, 0, 0.5]
    # Share of the total: 10/25, 10/25, 4/25, ..., 1/25; lift: mean actual over 1.25.
    assert table["share_of_actual"].tolist() == pytest.approx([0.4, 0.4, 0.16, 0, 0, 0, 0, 0, 0, 0.04])
    assert table["lift"].tolist() == pytest.approx([4.0, 4.0, 1.6, 0, 0, 0, 0, 0, 0, 0.4])
