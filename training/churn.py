"""Churn: the probability that a customer makes no purchase within the horizon, calibrated, with reasons.

LightGBM learns on the earlier training cutoffs and stops early on the latest one, where a Platt scaling
(a logistic fit on the model's log-odds: it keeps the ranking) is learnt too. Reasons are the features with
the largest positive contributions (LightGBM's own SHAP values) to a customer's churn log-odds.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from training.tabular import (
    TabularEncoder,
    fit_early_stopped,
    gain_importance,
    lgbm_params,
    time_holdout,
    with_customer_id,
)


class ChurnModel:
    """Calibrated LightGBM churn classifier on a feature-service frame; predict gives probability and reasons."""

    def __init__(
        self,
        n_estimators: int = 300,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        min_child_samples: int = 40,
        n_reasons: int = 3,
        seed: int = 42,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.n_reasons = n_reasons
        self.seed = seed

    def fit(self, frame: pd.DataFrame, churned: pd.Series, cutoffs: pd.Series) -> ChurnModel:
        """Learn from a training frame (one row per customer and cutoff), its labels and each row's cutoff."""
        self.encoder_ = TabularEncoder().fit(frame)
        X = self.encoder_.transform(frame)
        y = np.asarray(churned, dtype=int)
        holdout = time_holdout(cutoffs, frame["customer_id"])
        params = lgbm_params(
            self.n_estimators, self.learning_rate, self.num_leaves, self.min_child_samples, self.seed
        )
        self.classifier_ = fit_early_stopped(lgb.LGBMClassifier(objective="binary", **params), X, y, holdout)
        raw = self._log_odds(X[holdout])
        self.calibrator_ = LogisticRegression(C=1e6).fit(raw.reshape(-1, 1), y[holdout])
        self.features_ = list(self.encoder_.features_)
        self.best_iteration_ = int(self.classifier_.best_iteration_ or self.n_estimators)
        return self

    def _log_odds(self, X: pd.DataFrame) -> np.ndarray:
        return self.classifier_.predict(X, raw_score=True)

    def _probability(self, X: pd.DataFrame) -> np.ndarray:
        return self.calibrator_.predict_proba(self._log_odds(X).reshape(-1, 1))[:, 1]

    def _contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        values = self.classifier_.predict(X, pred_contrib=True)
        return pd.DataFrame(values, columns=[*self.features_, "bias"], index=X.index)

    def _reasons(self, X: pd.DataFrame) -> pd.DataFrame:
        """The `n_reasons` features pushing each customer's churn score up most: reason_i and reason_i_impact."""
        values = self._contributions(X).drop(columns="bias").to_numpy()
        order = np.argsort(-values, axis=1)[:, : self.n_reasons]
        names = np.asarray(self.features_, dtype=object)
        out = {}
        for i in range(order.shape[1]):
            impact = np.take_along_axis(values, order[:, [i]], axis=1)[:, 0]
            # Only features that push towards churn are reasons; a loyal customer may have none.
            out[f"reason_{i + 1}"] = np.where(impact > 0, names[order[:, i]], None)
            out[f"reason_{i + 1}_impact"] = np.where(impact > 0, impact, np.nan)
        return pd.DataFrame(out, index=X.index)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated P(no purchase within the horizon) per row."""
        return self._probability(self.encoder_.transform(frame))

    def contributions(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Each feature's contribution to each row's churn log-odds (SHAP values; the bias column last)."""
        return self._contributions(self.encoder_.transform(frame))

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """customer_id (when given), churn_probability and the reasons, one row per input row."""
        X = self.encoder_.transform(frame)  # once for both the probability and the reasons
        out = pd.DataFrame({"churn_probability": self._probability(X)}, index=frame.index)
        return with_customer_id(frame, out.join(self._reasons(X)))

    def feature_importance(self) -> pd.Series:
        """Total gain per feature, largest first."""
        return gain_importance(self.classifier_, self.features_)
