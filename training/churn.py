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

from training.tabular import TabularEncoder, lgbm_params, time_holdout, with_customer_id


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
        fit, holdout = time_holdout(cutoffs, frame["customer_id"])
        params = lgbm_params(
            self.n_estimators, self.learning_rate, self.num_leaves, self.min_child_samples, self.seed
        )
        self.classifier_ = lgb.LGBMClassifier(objective="binary", **params)
        self.classifier_.fit(
            X[fit],
            y[fit],
            eval_X=(X[holdout],),
            eval_y=(y[holdout],),
            callbacks=[lgb.early_stopping(50, verbose=False)],
        )
        raw = self._log_odds(X[holdout])
        self.calibrator_ = LogisticRegression(C=1e6).fit(raw.reshape(-1, 1), y[holdout])
        self.features_ = list(self.encoder_.features_)
        self.best_iteration_ = int(self.classifier_.best_iteration_ or self.n_estimators)
        return self

    def _log_odds(self, X: pd.DataFrame) -> np.ndarray:
        return self.classifier_.predict(X, raw_score=True)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated P(no purchase within the horizon) per row."""
        raw = self._log_odds(self.encoder_.transform(frame))
        return self.calibrator_.predict_proba(raw.reshape(-1, 1))[:, 1]

    def contributions(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Each feature's contribution to each row's churn log-odds (SHAP values; the bias column last)."""
        values = self.classifier_.predict(self.encoder_.transform(frame), pred_contrib=True)
        return pd.DataFrame(values, columns=[*self.features_, "bias"], index=frame.index)

    def reasons(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The `n_reasons` features pushing each customer's churn score up most: reason_i and reason_i_impact."""
        contributions = self.contributions(frame).drop(columns="bias")
        values = contributions.to_numpy()
        order = np.argsort(-values, axis=1)[:, : self.n_reasons]
        names = np.asarray(self.features_, dtype=object)
        out = {}
        for i in range(order.shape[1]):
            impact = np.take_along_axis(values, order[:, [i]], axis=1)[:, 0]
            # Only features that push towards churn are reasons; a loyal customer may have none.
            out[f"reason_{i + 1}"] = np.where(impact > 0, names[order[:, i]], None)
            out[f"reason_{i + 1}_impact"] = np.where(impact > 0, impact, np.nan)
        return pd.DataFrame(out, index=frame.index)

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """customer_id (when given), churn_probability and the reasons, one row per input row."""
        out = pd.DataFrame({"churn_probability": self.predict_proba(frame)}, index=frame.index)
        return with_customer_id(frame, out.join(self.reasons(frame)))

    def feature_importance(self) -> pd.Series:
        """Total gain per feature, largest first."""
        gain = self.classifier_.booster_.feature_importance(importance_type="gain")
        return pd.Series(gain, index=self.features_).sort_values(ascending=False)
