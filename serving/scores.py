"""Churn and CLTV champions at serving time: online feature vectors in, probability or value with bands out.

Both read their model's feature service (named in the model's logged metadata) from the online store, so a
served score uses exactly the features the model trained on. Reasons are the features pushing a score up
most: LightGBM's own SHAP contributions (the churn model reports them itself; for CLTV they come from the
point model). Consent is not checked here: the engine only passes customers who consented to profiling.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from features.store import OnlineFeatures
from serving.features import model_vectors
from serving.schemas import Band, FeatureReason

N_REASONS = 3


@dataclass(frozen=True)
class Scored:
    """One customer's score: the value(s), its band and the reasons."""

    values: dict[str, float]
    band: Band
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


def top_reasons(
    frame: pd.DataFrame, contributions: np.ndarray, features: Sequence[str]
) -> list[list[FeatureReason]]:
    """Per row, the features with the largest positive contributions (at most N_REASONS), largest first."""
    out = []
    for i in range(len(frame)):
        order = np.argsort(-contributions[i])[:N_REASONS]
        out.append(
            [
                FeatureReason(
                    feature=features[j],
                    value=_plain(frame.iloc[i].get(features[j])),
                    impact=float(contributions[i, j]),
                )
                for j in order
                if contributions[i, j] > 0
            ]
        )
    return out


class ChurnScorer:
    """The churn champion: calibrated probability of no purchase within the horizon, risk band, reasons."""

    def __init__(
        self,
        estimator: Any,
        metadata: dict[str, Any],
        version: str,
        reader: OnlineFeatures,
        thresholds: tuple[float, float],
    ) -> None:
        self.estimator = estimator
        self.version = version
        self.horizon_days = metadata.get("horizon_days")
        self.reader = reader
        self.thresholds = thresholds

    def score(self, customer_ids: Sequence[str], now: datetime) -> list[Scored]:
        """Scores of customers (in order) as of `now`."""
        frame = model_vectors(self.reader, customer_ids, now)
        probability = self.estimator.predict_proba(frame)
        contributions = self.estimator.contributions(frame).drop(columns="bias")
        reasons = top_reasons(frame, contributions.to_numpy(), list(contributions.columns))
        return [
            Scored({"churn_probability": float(p)}, band(float(p), self.thresholds), r)
            for p, r in zip(probability, reasons, strict=True)
        ]


class CltvScorer:
    """The CLTV champion: value over the horizon with its interval, a value band relative to the customer base."""

    def __init__(
        self,
        estimator: Any,
        metadata: dict[str, Any],
        version: str,
        reader: OnlineFeatures,
        quantiles: tuple[float, float],
        sample: Sequence[str],
        now: datetime,
    ) -> None:
        self.estimator = estimator
        self.version = version
        self.horizon_days = metadata.get("horizon_days")
        self.interval: tuple[float, float] = tuple(getattr(estimator, "interval", (0.1, 0.9)))  # type: ignore[assignment]
        self.reader = reader
        # Value bands are relative: "high" is the top of this customer base, whatever its currency and size.
        values = (
            estimator.predict(model_vectors(reader, sample, now))["cltv"] if len(sample) else pd.Series([0.0])
        )
        low, high = np.quantile(values.to_numpy(dtype=float), quantiles)
        self.thresholds = (float(low), float(high))

    def score(self, customer_ids: Sequence[str], now: datetime) -> list[Scored]:
        """Scores of customers (in order) as of `now`."""
        frame = model_vectors(self.reader, customer_ids, now)
        predicted = self.estimator.predict(frame)
        X = self.estimator.encoder_.transform(frame)
        contributions = np.asarray(self.estimator.point_.predict(X, pred_contrib=True))[:, :-1]
        reasons = top_reasons(frame, contributions, self.estimator.features_)
        out = []
        for i, why in enumerate(reasons):
            values = {name: float(predicted[name].iloc[i]) for name in ("cltv", "cltv_low", "cltv_high")}
            out.append(Scored(values, _value_band(values["cltv"], self.thresholds), why))
        return out


def _value_band(value: float, thresholds: tuple[float, float]) -> Band:
    # A customer predicted to spend nothing is never above "low", even when most predictions are 0.
    return "low" if value <= 0 else band(value, thresholds)
