"""Churn and CLTV champions at serving time: online feature vectors in, probability or value with bands out.

Both read their model's feature service (named in the model's logged metadata) from the online store, so a
served score uses exactly the features the model trained on. The champion is whichever candidate won its
training run's selection (the learned model or a textbook baseline, `training.textbook`); each answers with
the same shape. Reasons are the features pushing a score up most, from the champion's own `contributions`
(LightGBM's SHAP values; recency's one term); a champion without them (BG/NBD, historical average) gives
none. Consent is not checked here: the engine only passes customers who consented to profiling.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from features.store import OnlineFeatures
from serving.features import model_vectors
from serving.schemas import Band, ChurnScore, CltvScore, FeatureReason

N_REASONS = 3


@dataclass(frozen=True)
class Scored:
    """One customer's score: its fields in the response (the value(s) and the band) and the reasons."""

    fields: dict[str, float | Band]
    reasons: list[FeatureReason]


def band(value: float, thresholds: tuple[float, float]) -> Band:
    """low below the first threshold, high from the second, medium between."""
    if value >= thresholds[1]:
        return "high"
    return "medium" if value >= thresholds[0] else "low"


def _plain(value: Any) -> float | str | bool | None:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | float | np.integer | np.floating):
        return float(value)
    return str(value)


def top_reasons(frame: pd.DataFrame, contributions: pd.DataFrame | None) -> list[list[FeatureReason]]:
    """Per row, the features with the largest positive contributions (at most N_REASONS), largest first.

    `contributions` has one column per feature and may end with a `bias` column; None gives no reasons.
    """
    if contributions is None:
        return [[] for _ in range(len(frame))]
    contributions = contributions.drop(columns="bias", errors="ignore")
    features = list(contributions.columns)
    values = contributions.to_numpy(float)
    order = np.argsort(-values, axis=1)[:, :N_REASONS]
    return [
        [
            FeatureReason(feature=features[j], value=_plain(row.get(features[j])), impact=float(values[i, j]))
            for j in order[i]
            if values[i, j] > 0
        ]
        for i, row in enumerate(frame.to_dict("records"))
    ]


@dataclass(frozen=True)
class Scorer:
    """A churn or CLTV champion, the feature service it reads and the thresholds between its bands."""

    estimator: Any
    version: str
    horizon_days: int | None
    reader: OnlineFeatures
    thresholds: tuple[float, float]  # between the low/medium and the medium/high band


class ChurnScorer(Scorer):
    """The churn champion: calibrated probability of no purchase within the horizon, risk band, reasons."""

    kind: ClassVar[type[ChurnScore]] = ChurnScore

    def score(self, customer_ids: Sequence[str], now: datetime) -> list[Scored]:
        """Scores of customers (in order) as of `now`."""
        frame = model_vectors(self.reader, customer_ids, now)
        probability = self.estimator.predict_proba(frame)
        reasons = top_reasons(frame, self.estimator.contributions(frame))
        return [
            Scored({"churn_probability": float(p), "risk_band": band(float(p), self.thresholds)}, r)
            for p, r in zip(probability, reasons, strict=True)
        ]


class CltvScorer(Scorer):
    """The CLTV champion: value over the horizon with its interval, a value band relative to the customer base."""

    kind: ClassVar[type[CltvScore]] = CltvScore

    @property
    def interval(self) -> tuple[float, float]:
        """The quantiles of the value interval (cltv_low, cltv_high)."""
        return tuple(getattr(self.estimator, "interval", (0.1, 0.9)))  # type: ignore[return-value]

    def score(self, customer_ids: Sequence[str], now: datetime) -> list[Scored]:
        """Scores of customers (in order) as of `now`."""
        frame = model_vectors(self.reader, customer_ids, now)
        values = self.estimator.predict(frame)[["cltv", "cltv_low", "cltv_high"]].to_dict("records")
        reasons = top_reasons(frame, self.estimator.contributions(frame))
        return [
            Scored({**v, "value_band": _value_band(v["cltv"], self.thresholds)}, r)
            for v, r in zip(values, reasons, strict=True)
        ]


def value_thresholds(
    estimator: Any,
    reader: OnlineFeatures,
    sample: Sequence[str],
    now: datetime,
    quantiles: tuple[float, float],
) -> tuple[float, float]:
    """The value bands' thresholds: quantiles of the value predicted for a sample of customers.

    Value bands are relative: "high" is the top of this customer base, whatever its currency and size.
    """
    values = (
        estimator.predict(model_vectors(reader, sample, now))["cltv"] if len(sample) else pd.Series([0.0])
    )
    low, high = np.quantile(values.to_numpy(dtype=float), quantiles)
    return float(low), float(high)


def _value_band(value: float, thresholds: tuple[float, float]) -> Band:
    # A customer predicted to spend nothing is never above "low", even when most predictions are 0.
    return "low" if value <= 0 else band(value, thresholds)
