"""Churn: the probability that a customer makes no purchase within the horizon, calibrated, with reasons.

LightGBM stops early on the latest cutoff's rows, learning from rows whose labels ended by then or, failing
those, from other customers (`training.tabular.stopping_split`), and then learns from every row with the
number of trees found. Calibration is a Platt scaling (a logistic fit on log-odds: it keeps the ranking) learnt on a year of
windows, the latest included, from out-of-fold scores: each half of the customers is scored by a model that
learnt from the other half. With `horizon_days` set, BG/NBD and Gamma-Gamma quantities over that horizon
(fitted on the latest cutoff's vectors, no label read) are added to the features; with `from_bgnbd` too, the
trees start from BG/NBD's P(no purchase) log-odds (fitted where scored, as the textbook candidate's) and learn
corrections to it. Reasons are the features with the largest positive contributions (LightGBM's own SHAP
values) to a customer's churn log-odds. On the whole vector (no `features` chosen), rhythm ratios are features
too (`rhythm_features`): a tree splits on one column at a time, so "late against their own rhythm" is given
whole.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from training.probabilistic import ProbabilisticFeatures, bgnbd_log_odds, fit_inputs, model_inputs
from training.tabular import (
    fit_early_stopped,
    gain_importance,
    lgbm_params,
    with_customer_id,
    with_cutoffs,
)


def fit_platt(score: np.ndarray, churned: np.ndarray) -> LogisticRegression:
    """A Platt scaling: the logistic map from a one-dimensional score to a calibrated probability."""
    return LogisticRegression(C=1e6).fit(np.asarray(score, float).reshape(-1, 1), np.asarray(churned, int))


def churn_output(
    frame: pd.DataFrame, probability: np.ndarray, contributions: pd.DataFrame | None, n_reasons: int
) -> pd.DataFrame:
    """customer_id (when given), churn_probability and reason_i / reason_i_impact, one row per input row.

    Reasons are the features pushing each row's churn score up most; a score without contributions (or a
    loyal customer) has none.
    """
    out = pd.DataFrame({"churn_probability": probability}, index=frame.index)
    values = np.zeros((len(frame), 0)) if contributions is None else contributions.to_numpy(float)
    names = np.asarray([] if contributions is None else list(contributions.columns), dtype=object)
    order = np.argsort(-values, axis=1)
    for i in range(n_reasons):
        if i < values.shape[1]:
            impact = np.take_along_axis(values, order[:, [i]], axis=1)[:, 0]
            out[f"reason_{i + 1}"] = np.where(impact > 0, names[order[:, i]], None)
            out[f"reason_{i + 1}_impact"] = np.where(impact > 0, impact, np.nan)
        else:
            out[f"reason_{i + 1}"] = np.full(len(frame), None, dtype=object)
            out[f"reason_{i + 1}_impact"] = np.nan
    return with_customer_id(frame, out)


def _number(frame: pd.DataFrame, name: str) -> pd.Series:
    if name not in frame.columns:
        return pd.Series(np.nan, index=frame.index)
    return pd.to_numeric(frame[name], errors="coerce").astype(float)


def rhythm_features(frame: pd.DataFrame) -> pd.DataFrame:
    """Ratios of a churn vector's transaction figures; missing where a figure is missing or zero.

    silence_over_gap: days since the last order over the customer's own mean gap between orders;
    silence_over_tenure: the same over the days since the first order; orders_per_year: orders to date per
    year of tenure (at least 30 days); recent_order_share: the last 90 days' share of all orders.
    """
    silent, tenure = _number(frame, "days_since_last_order"), _number(frame, "tenure_days")
    orders, gap = _number(frame, "orders_lifetime"), _number(frame, "mean_days_between_orders")
    return pd.DataFrame(
        {
            "silence_over_gap": silent / gap.where(gap > 0),
            "silence_over_tenure": silent / tenure.where(tenure > 0),
            "orders_per_year": orders / np.maximum(tenure, 30) * 365,
            "recent_order_share": _number(frame, "orders_90d") / orders.where(orders > 0),
        },
        index=frame.index,
    )


# How far back the Platt scaling reads: a year of windows, the latest included, so every season counts once and
# neither a summer window nor a Christmas one sets the level alone (docs/models.md, Churn).
CALIBRATION_DAYS = 365


def calibration_window(cutoffs: pd.Series) -> np.ndarray:
    """Mask of the rows a Platt scaling learns from: every cutoff of the latest year, the latest included.

    The latest window alone carries its season into the next one (the simulated retailer's July-September
    level overstated October-December by 0.036) and the same season a year earlier carries the year's drift
    (0.034 over the next January-March); a year of windows kept both within 0.025 (docs/benchmarks.md).
    """
    when = pd.to_datetime(pd.Series(cutoffs).reset_index(drop=True))
    return (when > when.max() - pd.Timedelta(days=CALIBRATION_DAYS)).to_numpy()


def halves(customer_ids: pd.Series) -> np.ndarray:
    """0 or 1 per row, by a stable hash of the customer id: the two folds of out-of-fold calibration."""
    ids = pd.Series(customer_ids).reset_index(drop=True).astype(str)
    return (pd.util.hash_pandas_object(ids, index=False).to_numpy() // 5) % 2


class ChurnModel:
    """Calibrated LightGBM churn classifier on a feature-service frame; predict gives probability and reasons."""

    from_bgnbd = False  # what a champion pickled before the option existed reads

    def __init__(
        self,
        n_estimators: int = 300,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        min_child_samples: int = 40,
        n_reasons: int = 3,
        features: tuple[str, ...] | None = None,
        horizon_days: int | None = None,
        seed: int = 42,
        label_days: int | None = None,
        from_bgnbd: bool = False,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.n_reasons = n_reasons
        self.features = features  # only these columns of the frame (None: all of them)
        self.horizon_days = horizon_days  # when set, BG/NBD quantities over it are features too
        self.seed = seed
        self.label_days = label_days  # the training labels' window, for early stopping (`stopping_split`)
        # The trees start from BG/NBD's P(no purchase) (fitted where scored) and learn corrections; needs a horizon.
        self.from_bgnbd = from_bgnbd

    @property
    def fits_population(self) -> bool:
        """Whether `fit` takes the population to serve (`population=`), as the textbook BG/NBD does."""
        return self.from_bgnbd

    def _base(self, frame: pd.DataFrame) -> np.ndarray:
        """The log-odds the trees start from: BG/NBD's, mapped to the training labels; 0 without `from_bgnbd`."""
        if not self.from_bgnbd:
            return np.zeros(len(frame))
        return self.base_intercept_ + self.base_slope_ * bgnbd_log_odds(
            frame, self.horizon_days, self.served_bgnbd_
        )

    def _with_rhythm(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame if self.features is not None else frame.join(rhythm_features(frame))

    def inputs(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The model's inputs before encoding: the chosen features plus the derived ones (BG/NBD quantities, rhythm
        ratios); what a reason's value is read from."""
        return model_inputs(self._with_rhythm(frame), self.features, self.probabilistic_)

    def _params(self, n_estimators: int) -> dict[str, object]:
        return lgbm_params(
            n_estimators, self.learning_rate, self.num_leaves, self.min_child_samples, self.seed
        )

    def fit(
        self,
        frame: pd.DataFrame,
        churned: pd.Series,
        cutoffs: pd.Series,
        calibrate: bool = True,
        population: pd.DataFrame | None = None,
    ) -> ChurnModel:
        """Learn from a training frame (one row per customer and cutoff), its labels and each row's cutoff.

        `calibrate=False` leaves out the Platt scaling (two more LightGBM fits) until `calibrate` is called:
        candidate selection reads the ranking alone, so only the winner needs it. `population`: the vectors a
        model started from BG/NBD fits its served BG/NBD on (default: the latest cutoff's).
        """
        if self.from_bgnbd and self.horizon_days is None:
            raise ValueError("a churn model started from BG/NBD needs horizon_days")
        frame = with_cutoffs(frame, cutoffs)
        fitted = fit_inputs(
            self._with_rhythm(frame), cutoffs, self.features, self.horizon_days, self.label_days
        )
        self.probabilistic_, self.encoder_ = fitted.quantities, fitted.encoder
        latest, X = fitted.latest, fitted.X
        y = np.asarray(churned, dtype=int)
        if self.from_bgnbd:
            served = population if population is not None else frame[latest]
            self.served_bgnbd_ = ProbabilisticFeatures(self.horizon_days, penalizer=None).fit(served)
            # Each cutoff's own BG/NBD fit is made once and kept (`training.probabilistic`): `_base` reuses it.
            platt = fit_platt(bgnbd_log_odds(frame, self.horizon_days, self.served_bgnbd_), y)
            self.base_slope_, self.base_intercept_ = float(platt.coef_[0, 0]), float(platt.intercept_[0])
        base = self._base(frame)
        self.base_mean_ = float(base.mean())
        probe = lgb.LGBMClassifier(objective="binary", **self._params(self.n_estimators))
        self.best_iteration_ = int(
            fit_early_stopped(
                probe, X, y, fitted.stopping, init_score=base if self.from_bgnbd else None
            ).best_iteration_
            or self.n_estimators
        )
        self.classifier_ = lgb.LGBMClassifier(objective="binary", **self._params(self.best_iteration_)).fit(
            X, y, init_score=base if self.from_bgnbd else None
        )
        self.features_ = list(self.encoder_.features_)
        self.calibrator_ = None
        return self.calibrate(frame, churned, cutoffs) if calibrate else self

    def calibrate(self, frame: pd.DataFrame, churned: pd.Series, cutoffs: pd.Series) -> ChurnModel:
        """Learn the Platt scaling from out-of-fold scores of the calibration window (the frame `fit` saw).

        Each half of the customers is scored by a model that learnt from the other half alone: none of their
        rows, at any cutoff, tells it what they did in a window it scores.
        """
        frame = with_cutoffs(frame, cutoffs)
        X = self.encoder_.transform(self.inputs(frame))
        base = self._base(frame)
        y = np.asarray(churned, dtype=int)
        window = calibration_window(cutoffs)
        fold = halves(frame["customer_id"])
        raw = np.zeros(len(frame))
        for half in (0, 1):
            scored, learn = window & (fold == half), fold != half
            if scored.any() and learn.any():
                model = lgb.LGBMClassifier(objective="binary", **self._params(self.best_iteration_))
                model.fit(X[learn], y[learn], init_score=base[learn] if self.from_bgnbd else None)
                raw[scored] = model.predict(X[scored], raw_score=True) + base[scored]
        self.calibrator_ = fit_platt(raw[window], y[window])
        return self

    def _probability(self, X: pd.DataFrame, base: np.ndarray) -> np.ndarray:
        raw = self.classifier_.predict(X, raw_score=True) + base
        if self.calibrator_ is None:  # a candidate not calibrated yet: the ranking is right, the level is not
            return 1.0 / (1.0 + np.exp(-raw))
        return self.calibrator_.predict_proba(raw.reshape(-1, 1))[:, 1]

    def _contributions(self, X: pd.DataFrame, base: np.ndarray) -> pd.DataFrame:
        """SHAP values of the trees; a model started from BG/NBD adds its start to `p_no_purchase` (against the
        training mean; the mean goes to the bias)."""
        values = pd.DataFrame(
            self.classifier_.predict(X, pred_contrib=True), columns=[*self.features_, "bias"], index=X.index
        )
        if self.from_bgnbd:
            values["p_no_purchase"] += base - self.base_mean_
            values["bias"] += self.base_mean_
        return values

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated P(no purchase within the horizon) per row."""
        return self._probability(self.encoder_.transform(self.inputs(frame)), self._base(frame))

    def contributions(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Each feature's contribution to each row's churn log-odds (SHAP values; the bias column last)."""
        return self._contributions(self.encoder_.transform(self.inputs(frame)), self._base(frame))

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """customer_id (when given), churn_probability and the reasons, one row per input row."""
        X = self.encoder_.transform(self.inputs(frame))  # once for both the probability and the reasons
        base = self._base(frame)
        reasons = self._contributions(X, base).drop(columns="bias")
        return churn_output(frame, self._probability(X, base), reasons, self.n_reasons)

    def feature_importance(self) -> pd.Series:
        """Total gain per feature, largest first."""
        return gain_importance(self.classifier_, self.features_)
