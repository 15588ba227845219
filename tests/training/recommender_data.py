"""Hand-made event logs for the recommender's candidate tests, and a training context over them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from features.store.settings import FeatureStoreSettings
from tessera.core.settings import Workspace
from training.labels import Cutoffs
from training.pipelines import TrainingContext
from training.settings import TrainingSettings

NOW = pd.Timestamp("2025-06-30 23:59:59", tz="UTC")


def repeat_buyers(customers: int = 80, items: int = 40, one_offs: float = 0.5, seed: int = 0) -> pd.DataFrame:
    """Every customer re-buys the same three staples (of `items`) every two weeks for 400 days; with
    probability `one_offs` a basket also holds a product nobody bought before or buys again (no model can
    foresee it, and it gives neighbours, ALS and best sellers false leads)."""
    rng = np.random.default_rng(seed)
    skus = np.array([f"S{i:02d}" for i in range(items)])
    rows = []
    for c in range(customers):
        staples = rng.choice(items, min(3, items), replace=False)
        for day in np.arange(400, 0, -14) - rng.integers(0, 7):
            at = NOW - pd.Timedelta(days=int(day), hours=int(rng.integers(0, 12)))
            rows += [(f"C{c:03d}", skus[i], at) for i in staples]
            if rng.random() < one_offs:
                rows.append((f"C{c:03d}", f"once-{c}-{day}", at))
    frame = pd.DataFrame(rows, columns=["customer_id", "sku", "occurred_at"])
    return frame.assign(kind="purchase", count=1.0)


def context(events: pd.DataFrame, root: Path, **settings: object) -> TrainingContext:
    """A training context as of NOW whose events are `events` (no profile needed: the recommender reads events only)."""
    values = {
        "als_factors": (16,),
        "als_regularization": (0.1,),
        "als_alpha": (10.0,),
        "als_iterations": 8,
        "tifu_within_decay": (0.9,),
        "tifu_across_decay": (0.7,),
        "tifu_neighbours": (50,),
        "tifu_own_weight": (0.7, 0.9),
        "min_customers": 1,  # the recommender's own minimum (validation buyers) is what these tests exercise
    }
    ctx = TrainingContext(
        Workspace(root), NOW, TrainingSettings(**{**values, **settings}), FeatureStoreSettings()
    )
    ctx.events = events  # what the cached property would read from the profile
    # The recommender's split as of NOW (validation one horizon back), whatever the span of `events`.
    horizon = ctx.settings.horizon_days
    validation = NOW - pd.Timedelta(days=horizon)
    ctx.cutoffs = Cutoffs((validation - pd.Timedelta(days=horizon),), validation, horizon, horizon)
    ctx.catalogue = None
    ctx.anonymous_purchases = events.iloc[:0]  # no guest receipts unless a test adds them
    return ctx
