"""The textbook recommenders the learned blend must beat, each a `NextBestProduct` with a fixed blend.

So every baseline is a candidate served exactly like the learned model (same `recommend`, `predict`,
`similar_items`; similar products come from ALS where it is fitted, else from item kNN):

- `own_most_bought`: the customer's own purchase counts (ties: the most recent), then best sellers;
- `tifu_knn`: TIFU-KNN (Hu et al., SIGIR 2020), a·personal + (1 − a)·neighbours (`training.tifu`);
- `item_knn`: the customer's signals through item-to-item cosine (`implicit`'s item kNN);
- `als`: `implicit` ALS with its default parameters on the same weighted signals;
- `popularity`: recent best sellers (ties: all-time), the same list for everyone.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd

from training.recommend import ALL, SHARED, NextBestProduct
from training.settings import TrainingSettings

TIE = 1e-6  # popularity as a tie-breaker only: it orders what the baseline leaves equal, and tops lists up
ALS_DEFAULTS = {"factors": 100, "regularization": 0.01, "alpha": 1.0, "iterations": 15}
BASELINES = ("own_most_bought", "tifu_knn", "item_knn", "als", "popularity")


def signal_params(settings: TrainingSettings) -> dict[str, Any]:
    """What every candidate shares: the signals' weights and decay, recent popularity's window, the seed."""
    return {
        "event_weights": dict(settings.event_weights),
        "half_life_days": settings.recency_half_life_days,
        "recent_days": settings.recent_popularity_days,
        "seed": settings.seed,
    }


def tifu_blend(own_weight: float) -> dict[str, dict[str, float]]:
    """TIFU-KNN's score: `own_weight` · personal + (1 − `own_weight`) · neighbours."""
    return {ALL: {"personal": own_weight, "neighbours": 1.0 - own_weight}, SHARED: {"popularity": TIE}}


def baseline_params(base: dict[str, Any], tifu: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Constructor parameters of every baseline: `base` (signals, seed, ...) with each one's blend.

    `tifu` holds TIFU-KNN's tuned within_decay, across_decay, group_size, neighbours and own_weight (the paper's
    usual values when None).
    """
    tuned = {"within_decay": 0.9, "across_decay": 0.7, "group_size": 7, "neighbours": 300, "own_weight": 0.9}
    tuned.update(tifu or {})
    own_weight = tuned.pop("own_weight")
    return {
        # Counts first; a recent purchase breaks a tie between equal counts, popularity the rest.
        "own_most_bought": {
            **base,
            "blend": {ALL: {"again": 1e-3}, SHARED: {"frequency": 1.0, "popularity": TIE}},
        },
        "tifu_knn": {**base, **tuned, "blend": tifu_blend(own_weight)},
        "item_knn": {**base, "blend": {ALL: {"item_knn": 1.0}, SHARED: {"popularity": TIE}}},
        "als": {**base, **ALS_DEFAULTS, "blend": {ALL: {"discovery": 1.0}, SHARED: {"popularity": TIE}}},
        "popularity": {**base, "blend": {SHARED: {"popularity": 1.0}}},
    }


def top_lists(recommendations: pd.DataFrame) -> dict[str, list[str]]:
    """Recommendations (customer_id, rank, sku rows) as customer → skus, best first."""
    ordered = recommendations.sort_values(["customer_id", "rank"])
    return ordered.groupby("customer_id", sort=False)["sku"].agg(list).to_dict()


def model_and_baselines(
    model: NextBestProduct,
    events: pd.DataFrame,
    now: datetime,
    customers: Sequence[str],
    k: int,
    base: dict[str, Any],
    catalogue: pd.DataFrame | None = None,
) -> dict[str, dict[str, list[str]]]:
    """Top-k lists of the model and of every baseline fitted on `events` up to `now`: what a backtest compares."""
    lists = {"model": top_lists(model.recommend(events, now, customers, k))}
    for name, params in baseline_params(base).items():
        baseline = NextBestProduct(**params).fit(events, now, catalogue)
        lists[name] = top_lists(baseline.recommend(events, now, customers, k))
    return lists
