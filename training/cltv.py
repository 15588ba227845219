"""Customer lifetime value over the horizon: a LightGBM point estimate and a quantile interval.

The point model uses a Tweedie objective (spend is zero for many customers and long-tailed for the rest);
two quantile models give the interval. All three stop early on the latest training cutoff. The
probabilistic baseline (BG/NBD + Gamma-Gamma) lives in `training.probabilistic`.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd

from training.tabular import (
    TabularEncoder,
    fit_early_stopped,
    gain_importance,
    lgbm_params,
    time_holdout,
    with_customer_id,
)


class CLTVModel:
    """Value over the horizon: `cltv` (expected), `cltv_low` and `cltv_high` (the interval's quantiles)."""

    def __init__(
        self,
        n_estimators: int = 300,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        min_child_samples: int = 40,
        interval: tuple[float, float] = (0.1, 0.9),
        tweedie_variance_power: float = 1.3,
        seed: int = 42,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.interval = interval
        self.tweedie_variance_power = tweedie_variance_power
        self.seed = seed

    def fit(self, frame: pd.DataFrame, value: pd.Series, cutoffs: pd.Series) -> CLTVModel:
        """Learn from a training frame (one row per customer and cutoff), its value labels and each row's cutoff."""
        self.encoder_ = TabularEncoder().fit(frame)
        X = self.encoder_.transform(frame)
        y = np.asarray(value, dtype=float)
        holdout = time_holdout(cutoffs, frame["customer_id"])
        params = lgbm_params(
            self.n_estimators, self.learning_rate, self.num_leaves, self.min_child_samples, self.seed
        )
        point = lgb.LGBMRegressor(
            objective="tweedie", tweedie_variance_power=self.tweedie_variance_power, **params
        )
        self.point_ = fit_early_stopped(point, X, y, holdout)
        self.quantiles_ = {
            q: fit_early_stopped(
                lgb.LGBMRegressor(objective="quantile", alpha=q, **params),
                X,
                y,
                holdout,
                eval_metric="quantile",
            )
            for q in self.interval
        }
        self.features_ = list(self.encoder_.features_)
        return self

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """customer_id (when given), cltv, cltv_low, cltv_high per row; low <= cltv <= high, none negative."""
        X = self.encoder_.transform(frame)
        point = np.clip(self.point_.predict(X), 0, None)
        low_q, high_q = self.interval
        low = np.clip(self.quantiles_[low_q].predict(X), 0, None)
        high = np.clip(self.quantiles_[high_q].predict(X), 0, None)
        # Separately fitted quantiles can cross each other or the mean; keep the interval ordered around it.
        out = pd.DataFrame(
            {"cltv": point, "cltv_low": np.minimum(low, point), "cltv_high": np.maximum(high, point)},
            index=frame.index,
        )
        return with_customer_id(frame, out)

    def feature_importance(self) -> pd.Series:
        """Total gain per feature of the point model, largest first."""
        return gain_importance(self.point_, self.features_)
