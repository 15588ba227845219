"""Churn and CLTV champions at serving time: online feature vectors in, probability or value with bands out.

Both read their model's feature service (named in the model's logged metadata) from the online store, so a
served score uses exactly the features the model trained on. The champion is whichever candidate won its
training run's selection (the learned model or a textbook baseline, `training.textbook`); each answers with
the same shape. Reasons are the features pushing a score up most, from the champion's own `contributions`
(LightGBM's SHAP values; recency's one term); a champion without them (BG/NBD, historical average) gives
none. Consent is not checked here: the engine only passes customers who consented to profiling.

Scoring a customer through the model's own methods costs some 20 ms (the tabular encoding of a one-row
frame), so each scorer keeps every customer's last score beside the exact model input it was computed from:
a request reads the customer's vector (well under a millisecond) and scores it again only when the vector
differs from the one kept (a live event, a new materialization, another request time). The loader scores
every consenting customer at once when a champion is loaded (`Scorer.score`, in chunks), so a fixed
`TESSERA_SERVE_NOW` finds every score ready; with the clock as now, the request-time ages change on every
call and every call scores afresh.

With a fixed now, the engine also keeps each id's answer as sent (`Scorer.answers`: its JSON beside what the
online store held for the customer when it was computed, undecoded), so /churn and /cltv answer a customer
whose stored values are unchanged with one read of the store and no decoding, scoring or response model
(`serving.engine.Engine.scores_json`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from features.store import OnlineFeatures
from serving.features import model_frame, model_vectors
from serving.schemas import ChurnResponse, ChurnScore, CltvResponse, CltvScore, FeatureReason
from training.bands import Band, band, quantile_thresholds, value_band
from training.textbook import inputs_of

N_REASONS = 3


@dataclass(frozen=True)
class Scored:
    """One customer's score: its fields in the response (the value(s) and the band) and the reasons."""

    fields: dict[str, float | Band]
    reasons: list[FeatureReason]


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
    """A churn or CLTV champion, the feature service it reads, the thresholds between its bands, its last scores."""

    estimator: Any
    version: str
    horizon_days: int | None
    reader: OnlineFeatures
    thresholds: tuple[float, float]  # between the low/medium and the medium/high band
    # customer id -> (the model input last scored, its score); filled by `score`
    scored: dict[str, tuple[tuple[Any, ...], Scored]] = field(default_factory=dict, compare=False, repr=False)
    # id asked -> ((surviving id, the online store's values it was computed from), its score's JSON as sent);
    # filled by the engine (`Engine.scores_json`)
    answers: dict[str, tuple[tuple[Any, ...], bytes]] = field(default_factory=dict, compare=False, repr=False)
    response: ClassVar[type[ChurnResponse] | type[CltvResponse]]

    def head(self) -> dict[str, Any]:
        """The response's fields besides the scores."""
        return {"model_version": self.version, "horizon_days": self.horizon_days}

    def score(self, customer_ids: Sequence[str], now: datetime) -> list[Scored]:
        """Scores of customers (in order) as of `now`; only those whose model input changed are scored again."""
        ids = list(customer_ids)
        vectors = self.reader.vectors(customer_ids=ids, request_time=now)
        inputs = [_input_key(vector) for vector in vectors]
        kept = [self.scored.get(c) for c in ids]
        stale = [i for i, pair in enumerate(kept) if pair is None or pair[0] != inputs[i]]
        if stale:
            frame = model_frame(self.reader, [ids[i] for i in stale], [vectors[i] for i in stale])
            for i, result in zip(stale, self._score(frame), strict=True):
                kept[i] = self.scored[ids[i]] = (inputs[i], result)
        return [pair[1] for pair in kept]  # type: ignore[index]

    def forget(self, customer_ids: Sequence[str] | frozenset[str]) -> None:
        """Drop customers' kept scores, model inputs and answers, also those asked under a merged id (an erasure)."""
        gone = set(customer_ids)
        for customer_id in gone:
            self.scored.pop(customer_id, None)
        for asked, ((survivor, *_), _) in list(self.answers.items()):
            if asked in gone or survivor in gone:
                self.answers.pop(asked, None)

    def _score(self, frame: pd.DataFrame) -> list[Scored]:
        """Scores of a frame of model vectors (customer_id first), through the champion's own methods."""
        raise NotImplementedError


def _input_key(vector: dict[str, Any]) -> tuple[Any, ...]:
    """A model vector as a comparable tuple (NaN as None: NaN never equals itself)."""
    return tuple(None if isinstance(v, float) and np.isnan(v) else v for v in vector.values())


class ChurnScorer(Scorer):
    """The churn champion: calibrated probability of no purchase within the horizon, risk band, reasons."""

    kind: ClassVar[type[ChurnScore]] = ChurnScore
    response: ClassVar[type[ChurnResponse]] = ChurnResponse

    def _score(self, frame: pd.DataFrame) -> list[Scored]:
        probability = self.estimator.predict_proba(frame)
        reasons = top_reasons(inputs_of(self.estimator, frame), self.estimator.contributions(frame))
        return [
            Scored({"churn_probability": float(p), "risk_band": band(float(p), self.thresholds)}, r)
            for p, r in zip(probability, reasons, strict=True)
        ]


class CltvScorer(Scorer):
    """The CLTV champion: value over the horizon with its interval, a value band relative to the customer base."""

    kind: ClassVar[type[CltvScore]] = CltvScore
    response: ClassVar[type[CltvResponse]] = CltvResponse

    @property
    def interval(self) -> tuple[float, float]:
        """The quantiles of the value interval (cltv_low, cltv_high)."""
        return tuple(getattr(self.estimator, "interval", (0.1, 0.9)))  # type: ignore[return-value]

    def head(self) -> dict[str, Any]:
        return {**super().head(), "interval": self.interval}

    def _score(self, frame: pd.DataFrame) -> list[Scored]:
        values = self.estimator.predict(frame)[["cltv", "cltv_low", "cltv_high"]].to_dict("records")
        reasons = top_reasons(inputs_of(self.estimator, frame), self.estimator.contributions(frame))
        return [
            Scored({**v, "value_band": value_band(v["cltv"], self.thresholds)}, r)
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
    return quantile_thresholds(values.to_numpy(dtype=float), quantiles)
