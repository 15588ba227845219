"""The textbook baselines as servable estimators: what a data scientist tries first, on the same vectors.

Each reads only the transaction figures of the model's feature-service vector (`RFM_FEATURES`: orders and
spend to date, days since the last order, days since the first), so whichever one wins the selection on the
validation window is registered and served like the learned model, with the same `predict` output. Each
learns its few parameters (Platt scaling, BG/NBD and Gamma-Gamma, value bands) on the latest cutoff of its
training frame only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from training.churn import calibration_window, churn_output, fit_platt
from training.cltv import value_output
from training.probabilistic import ProbabilisticFeatures, bgnbd_log_odds, fitted_where_scored
from training.tabular import time_holdout, with_cutoffs


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    return pd.to_numeric(frame[name], errors="coerce").to_numpy(float)


class RecencyChurn:
    """Churn as days since the last order (the longer, the likelier), Platt-scaled to a probability.

    Its one reason is `days_since_last_order`, with its impact on the log-odds against the average customer.
    """

    def __init__(self, n_reasons: int = 3) -> None:
        self.n_reasons = n_reasons

    def _score(self, frame: pd.DataFrame) -> np.ndarray:
        days = _column(frame, "days_since_last_order")
        # A customer without an order yet is as silent as the most silent one seen in training.
        return np.log1p(np.where(np.isnan(days), self.longest_, np.clip(days, 0, None)))

    def fit(self, frame: pd.DataFrame, churned: pd.Series, cutoffs: pd.Series) -> RecencyChurn:
        """Learn the Platt scaling of log(1 + days) on the calibration window's rows (a year, the latest included)."""
        window = calibration_window(cutoffs)
        self.longest_ = float(np.nanmax(_column(frame, "days_since_last_order"), initial=0.0))
        score = self._score(frame)
        self.calibrator_ = fit_platt(score[window], np.asarray(churned, int)[window])
        self.mean_score_ = float(score[window].mean())
        return self

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated P(no purchase within the horizon) per row."""
        return self.calibrator_.predict_proba(self._score(frame).reshape(-1, 1))[:, 1]

    def contributions(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Recency's contribution to each row's churn log-odds, against the average customer; then the bias."""
        slope, intercept = float(self.calibrator_.coef_[0, 0]), float(self.calibrator_.intercept_[0])
        return pd.DataFrame(
            {
                "days_since_last_order": slope * (self._score(frame) - self.mean_score_),
                "bias": intercept + slope * self.mean_score_,
            },
            index=frame.index,
        )

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """customer_id (when given), churn_probability and the reasons, one row per input row."""
        reasons = self.contributions(frame).drop(columns="bias")
        return churn_output(frame, self.predict_proba(frame), reasons, self.n_reasons)


def _population(frame: pd.DataFrame, cutoffs: pd.Series, population: pd.DataFrame | None) -> pd.DataFrame:
    """The vectors a served fit learns from: those given (the customers as of now), else the latest cutoff's."""
    return population if population is not None else frame[time_holdout(cutoffs, frame["customer_id"])]


class BGNBDChurn:
    """Churn as BG/NBD's P(no purchase within the horizon) (not 1 - P(alive)), Platt-scaled like the model.

    BG/NBD is fitted on the population it scores (`fitted_where_scored`).
    """

    # `fit` takes the population to serve (`population=`): the refit passes the vectors as of now.
    fits_population = True

    def __init__(self, horizon_days: int, n_reasons: int = 3) -> None:
        self.horizon_days = horizon_days
        self.n_reasons = n_reasons

    def _score(self, frame: pd.DataFrame) -> np.ndarray:
        return bgnbd_log_odds(frame, self.horizon_days, self.probabilistic_)

    def fit(
        self,
        frame: pd.DataFrame,
        churned: pd.Series,
        cutoffs: pd.Series,
        population: pd.DataFrame | None = None,
    ) -> BGNBDChurn:
        """The Platt scaling on a year of labels, each cutoff scored by BG/NBD fitted on its own rows; then BG/NBD
        and Gamma-Gamma fitted on `population` (default: the latest cutoff's vectors) for served vectors.

        The Platt scaling reads the calibration window (`training.churn.calibration_window`), as the model's does.
        """
        self.probabilistic_ = ProbabilisticFeatures(self.horizon_days, penalizer=None).fit(
            _population(frame, cutoffs, population)
        )
        window = calibration_window(cutoffs)
        scores = self._score(with_cutoffs(frame, cutoffs)[window])
        self.calibrator_ = fit_platt(scores, np.asarray(churned, int)[window])
        return self

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated P(no purchase within the horizon) per row."""
        return self.calibrator_.predict_proba(self._score(frame).reshape(-1, 1))[:, 1]

    def contributions(self, frame: pd.DataFrame) -> None:
        """None: a probability from BG/NBD's few parameters has no per-feature reasons."""
        return None

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """customer_id (when given), churn_probability and (empty) reasons, one row per input row."""
        return churn_output(frame, self.predict_proba(frame), None, self.n_reasons)


class ValueBands:
    """An interval around any value prediction: quantiles of the actual value per decile of the prediction."""

    def __init__(self, interval: tuple[float, float] = (0.1, 0.9), bins: int = 10) -> None:
        self.interval = interval
        self.bins = bins

    def fit(self, predicted: np.ndarray, actual: np.ndarray) -> ValueBands:
        """Learn the bins' edges and each bin's quantiles of the actual value."""
        predicted, actual = np.asarray(predicted, float), np.asarray(actual, float)
        self.edges_ = np.unique(np.quantile(predicted, np.linspace(0, 1, self.bins + 1)[1:-1]))
        which = np.searchsorted(self.edges_, predicted, side="right")
        self.bounds_ = np.array(
            [
                np.quantile(actual[which == b], self.interval) if (which == b).any() else (0.0, 0.0)
                for b in range(len(self.edges_) + 1)
            ]
        )
        return self

    def transform(self, predicted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Low and high bound for each prediction."""
        bounds = self.bounds_[np.searchsorted(self.edges_, np.asarray(predicted, float), side="right")]
        return bounds[:, 0], bounds[:, 1]


class _ValueBaseline:
    """A value score scaled and given an interval on the latest cutoff's rows; subclasses say how to score.

    The scale makes the latest window's total predicted equal its total actual: a textbook score can rank
    well and still be off in level (a historical average keeps spending at the rate of a customer's best days).
    """

    interval: tuple[float, float]

    def _raw(self, frame: pd.DataFrame) -> np.ndarray:
        raise NotImplementedError

    def _point(self, frame: pd.DataFrame) -> np.ndarray:
        return self._raw(frame) * self.scale_

    def _fit_bands(self, frame: pd.DataFrame, value: pd.Series, latest: np.ndarray) -> None:
        raw, actual = self._raw(frame[latest]), np.asarray(value, float)[latest]
        self.scale_ = float(actual.sum() / raw.sum()) if raw.sum() > 0 else 1.0
        self.bands_ = ValueBands(self.interval).fit(raw * self.scale_, actual)

    def contributions(self, frame: pd.DataFrame) -> None:
        """None: a textbook value has no per-feature reasons."""
        return None

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """customer_id (when given), cltv, cltv_low, cltv_high per row."""
        point = self._point(frame)
        low, high = self.bands_.transform(point)
        return value_output(frame, point, low, high)


class BGNBDValue(_ValueBaseline):
    """Value as BG/NBD expected purchases times Gamma-Gamma expected spend over the horizon.

    BG/NBD and Gamma-Gamma are fitted on the population they score (`fitted_where_scored`).
    """

    fits_population = True  # as BGNBDChurn's

    def __init__(self, horizon_days: int, interval: tuple[float, float] = (0.1, 0.9)) -> None:
        self.horizon_days = horizon_days
        self.interval = interval

    def _raw(self, frame: pd.DataFrame) -> np.ndarray:
        quantities = fitted_where_scored(frame, self.horizon_days, self.probabilistic_)
        return quantities["expected_value"].to_numpy(float)

    def fit(
        self,
        frame: pd.DataFrame,
        value: pd.Series,
        cutoffs: pd.Series,
        population: pd.DataFrame | None = None,
    ) -> BGNBDValue:
        """The scale and value bands on the latest cutoff's labels, scored by a fit on its own rows; BG/NBD and
        Gamma-Gamma fitted on `population` (default: the latest cutoff's vectors) for served vectors."""
        latest = time_holdout(cutoffs, frame["customer_id"])
        self.probabilistic_ = ProbabilisticFeatures(self.horizon_days, penalizer=None).fit(
            _population(frame, cutoffs, population)
        )
        self._fit_bands(with_cutoffs(frame, cutoffs), value, latest)
        return self


class HistoricalAverage(_ValueBaseline):
    """Value as spend per day to date times the horizon; the days count at least one horizon.

    The floor keeps a customer whose first order was yesterday from being extrapolated from a single day.
    """

    def __init__(self, horizon_days: int, interval: tuple[float, float] = (0.1, 0.9)) -> None:
        self.horizon_days = horizon_days
        self.interval = interval

    def _raw(self, frame: pd.DataFrame) -> np.ndarray:
        spend = np.nan_to_num(_column(frame, "spend_lifetime")).clip(min=0)
        days = np.maximum(np.nan_to_num(_column(frame, "tenure_days")), self.horizon_days)
        return spend / days * self.horizon_days

    def fit(self, frame: pd.DataFrame, value: pd.Series, cutoffs: pd.Series) -> HistoricalAverage:
        """Learn the scale and the value bands on the latest cutoff's rows."""
        self._fit_bands(frame, value, time_holdout(cutoffs, frame["customer_id"]))
        return self


class _Rescaled:
    """A fitted estimator whose label window is shorter than the horizon asked for, scaled to that horizon.

    BG/NBD gives the scale: its expected purchases over the target horizon against the label window, per
    customer (value), or one power of P(no purchase) for everyone (churn).
    """

    def __init__(self, estimator: Any, label_days: int, target_days: int) -> None:
        self.estimator = estimator
        self.label_days = label_days
        self.target_days = target_days

    def fit(self, frame: pd.DataFrame, cutoffs: pd.Series) -> _Rescaled:
        """Fit BG/NBD and Gamma-Gamma on the latest cutoff's vectors (the estimator is already fitted)."""
        latest = time_holdout(cutoffs, frame["customer_id"])
        self.probabilistic_ = ProbabilisticFeatures(self.label_days).fit(frame[latest])
        return self

    def _both(self, frame: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
        label = self.probabilistic_.transform(frame)[column].to_numpy(float)
        return label, self.probabilistic_.transform(frame, self.target_days)[column].to_numpy(float)

    def contributions(self, frame: pd.DataFrame) -> pd.DataFrame | None:
        """The estimator's own contributions (over its label window), or None when it has none."""
        return self.estimator.contributions(frame)

    def inputs(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The estimator's own inputs (`inputs_of`)."""
        return inputs_of(self.estimator, frame)


class RescaledChurn(_Rescaled):
    """A churn estimator scaled to a longer horizon: P(no purchase) raised to one power for every customer.

    The power is BG/NBD's, on the latest cutoff's vectors: log of the mean P(no purchase) over the target
    horizon against the same over the label window. One power keeps the estimator's ranking: a ratio per
    customer mixes in BG/NBD's ranking, which lost on validation (CDNOW, docs/models.md).
    """

    def fit(self, frame: pd.DataFrame, cutoffs: pd.Series) -> RescaledChurn:
        """Fit BG/NBD on the latest cutoff's vectors and take the power from its population means."""
        super().fit(frame, cutoffs)
        latest = frame[time_holdout(cutoffs, frame["customer_id"])]
        label, target = (np.clip(part.mean(), 1e-9, 1 - 1e-9) for part in self._both(latest, "p_no_purchase"))
        self.power_ = float(np.log(target) / np.log(label))
        return self

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """P(no purchase within the target horizon) per row."""
        return np.clip(self.estimator.predict_proba(frame), 0.0, 1.0) ** self.power_

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """customer_id (when given), churn_probability over the target horizon and the reasons."""
        contributions = self.contributions(frame)
        reasons = None if contributions is None else contributions.drop(columns="bias")
        return churn_output(frame, self.predict_proba(frame), reasons, self.estimator.n_reasons)


class RescaledValue(_Rescaled):
    """A value estimator scaled to a longer horizon: times BG/NBD's ratio of expected purchases."""

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """customer_id (when given), cltv, cltv_low, cltv_high over the target horizon."""
        label, target = self._both(frame, "expected_purchases")
        ratio = np.where(label > 0, target / np.maximum(label, 1e-12), self.target_days / self.label_days)
        out = self.estimator.predict(frame)
        for column in ("cltv", "cltv_low", "cltv_high"):
            out[column] = out[column].to_numpy(float) * ratio
        return out


def inputs_of(estimator: Any, frame: pd.DataFrame) -> pd.DataFrame:
    """What an estimator reads from a frame, its derived features (BG/NBD quantities, rhythm ratios) included: its
    `inputs`, or the frame itself for one that derives none. A reason's value is read from it."""
    return estimator.inputs(frame) if hasattr(estimator, "inputs") else frame


def rescaled(estimator: Any, frame: pd.DataFrame, label_days: int, target_days: int) -> Any:
    """The estimator itself when its label window is the horizon asked for, else it scaled to that horizon."""
    if target_days <= label_days:
        return estimator
    kind = RescaledChurn if hasattr(estimator, "predict_proba") else RescaledValue
    return kind(estimator, label_days, target_days).fit(frame, frame["cutoff"])
