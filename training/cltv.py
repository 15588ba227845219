"""Customer lifetime value over the horizon: a LightGBM point estimate and a quantile interval.

The point model uses a Tweedie objective (spend is zero for many customers and long-tailed for the rest);
two quantile models give the interval. Each stops early on the latest cutoff's rows, learning from rows
whose labels ended by then or, failing those, from other customers (`training.tabular.stopping_split`), then
learns from every row with the number of trees found. With `horizon_days` set,
BG/NBD and Gamma-Gamma quantities over that horizon (`training.probabilistic`, fitted on the latest
cutoff's vectors) are added to the features.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import clone

from training.probabilistic import fit_inputs, model_inputs
from training.tabular import (
    StoppingSplit,
    fit_early_stopped,
    gain_importance,
    lgbm_params,
    stopping_split,
    with_customer_id,
)


def value_output(frame: pd.DataFrame, point: np.ndarray, low: np.ndarray, high: np.ndarray) -> pd.DataFrame:
    """customer_id (when given), cltv, cltv_low, cltv_high per row; low <= cltv <= high, none negative."""
    point = np.clip(np.asarray(point, float), 0, None)
    low, high = np.clip(np.asarray(low, float), 0, None), np.clip(np.asarray(high, float), 0, None)
    # Separately estimated bounds can cross each other or the mean; keep the interval ordered around it.
    out = pd.DataFrame(
        {"cltv": point, "cltv_low": np.minimum(low, point), "cltv_high": np.maximum(high, point)},
        index=frame.index,
    )
    return with_customer_id(frame, out)


def refit_all(
    model: lgb.LGBMModel, X: pd.DataFrame, y: np.ndarray, split: StoppingSplit, **fit: object
) -> lgb.LGBMModel:
    """Early-stop `model` on `split`, then fit a copy on every row with the number of trees found."""
    trees = int(fit_early_stopped(clone(model), X, y, split, **fit).best_iteration_ or model.n_estimators)
    return model.set_params(n_estimators=trees).fit(X, y)


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
        features: tuple[str, ...] | None = None,
        horizon_days: int | None = None,
        seed: int = 42,
        label_days: int | None = None,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.interval = interval
        self.tweedie_variance_power = tweedie_variance_power
        self.features = features  # only these columns of the frame (None: all of them)
        self.horizon_days = horizon_days  # when set, BG/NBD + Gamma-Gamma quantities over it are features too
        self.seed = seed
        self.label_days = label_days  # the training labels' window, for early stopping (`stopping_split`)

    def inputs(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The model's inputs before encoding: the chosen features plus the derived ones (BG/NBD quantities); what a reason's value is read from."""
        return model_inputs(frame, self.features, self.probabilistic_)

    def _params(self) -> dict[str, object]:
        return lgbm_params(
            self.n_estimators, self.learning_rate, self.num_leaves, self.min_child_samples, self.seed
        )

    def fit(
        self, frame: pd.DataFrame, value: pd.Series, cutoffs: pd.Series, interval: bool = True
    ) -> CLTVModel:
        """Learn from a training frame (one row per customer and cutoff), its value labels and each row's cutoff.

        `interval=False` fits the point model only (a candidate is selected on it alone: the quantile models
        are two thirds of the cost); `fit_interval` adds them later, and `predict` gives NaN bounds until then.
        """
        fitted = fit_inputs(frame, cutoffs, self.features, self.horizon_days, self.label_days)
        self.probabilistic_, self.encoder_ = fitted.quantities, fitted.encoder
        y = np.asarray(value, dtype=float)
        point = lgb.LGBMRegressor(
            objective="tweedie", tweedie_variance_power=self.tweedie_variance_power, **self._params()
        )
        self.point_ = refit_all(point, fitted.X, y, fitted.stopping)
        self.quantiles_: dict[float, lgb.LGBMModel] = {}
        if interval:
            self._fit_quantiles(fitted.X, y, fitted.stopping)
        self.features_ = list(self.encoder_.features_)
        return self

    def fit_interval(self, frame: pd.DataFrame, value: pd.Series, cutoffs: pd.Series) -> CLTVModel:
        """The interval's quantile models on the frame the point model was fitted on (after `fit(interval=False)`)."""
        X = self.encoder_.transform(self.inputs(frame.reset_index(drop=True)))
        split = stopping_split(cutoffs, frame["customer_id"], self.label_days)
        self._fit_quantiles(X, np.asarray(value, dtype=float), split)
        return self

    def _fit_quantiles(self, X: pd.DataFrame, y: np.ndarray, split: StoppingSplit) -> None:
        self.quantiles_ = {
            q: refit_all(
                lgb.LGBMRegressor(objective="quantile", alpha=q, **self._params()),
                X,
                y,
                split,
                eval_metric="quantile",
            )
            for q in self.interval
        }

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """customer_id (when given), cltv, cltv_low, cltv_high per row; low <= cltv <= high, none negative."""
        X = self.encoder_.transform(self.inputs(frame))
        point = self.point_.predict(X)
        if not self.quantiles_:  # fitted with interval=False: the point alone
            return value_output(frame, point, np.full(len(X), np.nan), np.full(len(X), np.nan))
        low_q, high_q = self.interval
        return value_output(
            frame, point, self.quantiles_[low_q].predict(X), self.quantiles_[high_q].predict(X)
        )

    def contributions(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Each feature's contribution to the point model's log value (SHAP values; the bias column last)."""
        X = self.encoder_.transform(self.inputs(frame))
        values = self.point_.predict(X, pred_contrib=True)
        return pd.DataFrame(values, columns=[*self.features_, "bias"], index=X.index)

    def feature_importance(self) -> pd.Series:
        """Total gain per feature of the point model, largest first."""
        return gain_importance(self.point_, self.features_)
