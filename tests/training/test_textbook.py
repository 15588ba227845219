"""The textbook baselines as servable estimators, BG/NBD's P(no purchase) and the horizon rescaling, by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.pipelines import select
from training.probabilistic import BetaGeoFitter, ProbabilisticFeatures, rfm_from_features
from training.textbook import (
    BGNBDChurn,
    BGNBDValue,
    HistoricalAverage,
    RecencyChurn,
    ValueBands,
    rescaled,
)


def vectors(n: int, seed: int = 0) -> pd.DataFrame:
    """Customers at two cutoffs, as churn_v1 gives them; churn follows recency, value follows spend per day."""
    rng = np.random.default_rng(seed)
    tenure = rng.uniform(30, 400, n)
    orders = 1 + rng.poisson(tenure / 40)
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{i % (n // 2)}" for i in range(n)],
            "cutoff": pd.to_datetime(np.repeat(["2025-01-01", "2025-04-01"], n // 2), utc=True),
            "orders_lifetime": orders,
            "spend_lifetime": orders * rng.gamma(4, 10, n),
            "days_since_last_order": tenure * rng.beta(1, 3, n),
            "tenure_days": tenure,
        }
    )
    frame["churned"] = rng.random(n) < 1 / (1 + np.exp(-(frame["days_since_last_order"] - 60) / 20))
    frame["value"] = np.where(frame["churned"], 0.0, frame["spend_lifetime"] / tenure * 90)
    return frame


def test_the_bgnbd_summary_is_rebuilt_from_the_served_vector() -> None:
    frame = pd.DataFrame(
        {
            "orders_lifetime": [4, 1, 0],
            "spend_lifetime": [100.0, 30.0, 0.0],
            "days_since_last_order": [14.0, 70.0, None],
            "tenure_days": [70.0, 70.0, None],
        }
    )
    summary = rfm_from_features(frame, unit_days=7)
    # 4 orders: 3 repeats, the last 8 weeks after the first, 10 weeks ago; mean order value 25.
    assert summary.iloc[0].tolist() == pytest.approx([3, 8, 10, 25])
    assert summary.iloc[1].tolist() == pytest.approx([0, 0, 10, 0])
    assert summary.iloc[2].tolist() == pytest.approx([0, 0, 0, 0])  # no order yet: a new customer


def test_p_no_purchase_is_dead_or_alive_and_silent() -> None:
    model = BetaGeoFitter()
    model.r_, model.alpha_, model.a_, model.b_ = 0.25, 4.0, 0.8, 2.5
    summary = pd.DataFrame({"frequency": [2.0], "recency": [10.0], "T": [30.0]})
    alive = model.probability_alive(summary)[0]
    # By hand: P(alive) = 1 / (1 + a / (b + x - 1) * ((alpha + T) / (alpha + t_x))^(r + x)).
    assert alive == pytest.approx(1 / (1 + 0.8 / 3.5 * (34 / 14) ** 2.25))
    silent = (34 / 44) ** 2.25  # alive and no purchase in 10 weeks: ((alpha + T) / (alpha + T + t))^(r + x)
    assert model.probability_no_purchase(10, summary)[0] == pytest.approx(1 - alive + alive * silent)
    assert model.probability_no_purchase(0, summary)[0] == pytest.approx(1.0)
    assert model.probability_no_purchase(1e9, summary)[0] == pytest.approx(1 - alive)


def test_recency_churn_ranks_by_silence_and_gives_recency_as_its_reason() -> None:
    frame = vectors(600)
    model = RecencyChurn().fit(frame, frame["churned"], frame["cutoff"])
    assert model.fit(frame, frame["churned"], frame["cutoff"]) is model  # estimator rules
    two = pd.DataFrame({"customer_id": ["active", "silent"], "days_since_last_order": [2.0, 200.0]})
    scored = model.predict(two).set_index("customer_id")
    assert scored.loc["active", "churn_probability"] < 0.3 < 0.8 < scored.loc["silent", "churn_probability"]
    assert scored.loc["silent", "reason_1"] == "days_since_last_order"
    assert scored.loc["active", "reason_1"] is None  # recency pulls an active customer's churn down
    assert list(scored.columns) == [
        "churn_probability",
        *(f"reason_{i}{s}" for i in (1, 2, 3) for s in ("", "_impact")),
    ]
    # Calibrated on the latest cutoff: the mean probability there is its churn rate.
    latest = frame[frame["cutoff"] == frame["cutoff"].max()]
    assert model.predict_proba(latest).mean() == pytest.approx(latest["churned"].mean(), abs=0.01)


def test_bgnbd_churn_serves_a_probability_without_reasons() -> None:
    frame = vectors(600)
    model = BGNBDChurn(horizon_days=90).fit(frame, frame["churned"], frame["cutoff"])
    scored = model.predict(frame.head(5))
    assert scored["churn_probability"].between(0, 1).all() and scored["reason_1"].isna().all()
    assert model.contributions(frame.head(5)) is None


def test_bgnbd_baselines_are_fitted_on_the_population_they_score() -> None:
    frame = vectors(600)
    now = vectors(400, seed=1).drop(columns=["cutoff", "churned", "value"])  # the customers as of now
    now["tenure_days"] += 120.0
    now["days_since_last_order"] += 60.0
    churn = BGNBDChurn(horizon_days=90).fit(frame, frame["churned"], frame["cutoff"], population=now)
    value = BGNBDValue(horizon_days=90).fit(frame, frame["value"], frame["cutoff"], population=now)

    def platt(p_none: pd.Series) -> np.ndarray:
        logit = np.log(p_none / (1 - p_none)).to_numpy().reshape(-1, 1)
        return churn.calibrator_.predict_proba(logit)[:, 1]

    # Rows of a labelled frame: BG/NBD fitted on their own cutoff's rows, not on the latest cutoff or on now.
    first = frame[frame["cutoff"] == frame["cutoff"].min()]
    own = ProbabilisticFeatures(90, penalizer=None).fit(first).transform(first)
    assert churn.predict_proba(first) == pytest.approx(platt(own["p_no_purchase"]))
    assert value.predict(first)["cltv"].to_numpy() == pytest.approx(own["expected_value"] * value.scale_)
    # Served vectors (no cutoff): the fit on the population as of now.
    served = ProbabilisticFeatures(90, penalizer=None).fit(now).transform(now)
    assert churn.predict_proba(now) == pytest.approx(platt(served["p_no_purchase"]))
    assert value.predict(now)["cltv"].to_numpy() == pytest.approx(served["expected_value"] * value.scale_)
    latest = (
        ProbabilisticFeatures(90, penalizer=None)
        .fit(frame[frame["cutoff"] == frame["cutoff"].max()])
        .transform(first)
    )
    assert not np.allclose(latest["p_no_purchase"], own["p_no_purchase"])  # the fits do differ here


def test_value_baselines_and_their_bands() -> None:
    frame = vectors(600)
    two = pd.DataFrame({"spend_lifetime": [900.0, 100.0], "tenure_days": [300.0, 10.0]})
    average = HistoricalAverage(horizon_days=90).fit(frame, frame["value"], frame["cutoff"])
    # 900 over 300 days, times 90; 100 over 10 days counts as over one horizon (90 days).
    assert average.predict(two)["cltv"].tolist() == pytest.approx(
        [270.0 * average.scale_, 100.0 * average.scale_]
    )
    latest = frame[frame["cutoff"] == frame["cutoff"].max()]
    assert average.predict(latest)["cltv"].sum() == pytest.approx(
        latest["value"].sum()
    )  # level from the latest window
    value = BGNBDValue(horizon_days=90).fit(frame, frame["value"], frame["cutoff"])
    predicted = value.predict(frame)
    assert (predicted["cltv_low"] <= predicted["cltv"]).all() and (
        predicted["cltv"] <= predicted["cltv_high"]
    ).all()
    bands = ValueBands((0.25, 0.75), bins=2).fit(np.array([1.0, 2, 3, 4]), np.array([0.0, 4, 10, 30]))
    low, high = bands.transform(np.array([1.5, 3.5]))
    # Predictions split at their median (2.5): actual values [0, 4] below it, [10, 30] above.
    assert low.tolist() == pytest.approx([1.0, 15.0]) and high.tolist() == pytest.approx([3.0, 25.0])


def test_a_longer_target_horizon_scales_predictions_by_bgnbd() -> None:
    frame = vectors(600)
    churn = RecencyChurn().fit(frame, frame["churned"], frame["cutoff"])
    assert rescaled(churn, frame, 90, 90) is churn
    longer = rescaled(churn, frame, 90, 273)
    # More time to buy: lower churn, same reasons, same ranking; the power computed by hand from BG/NBD's means.
    latest = frame[frame["cutoff"] == frame["cutoff"].max()]
    quantities = ProbabilisticFeatures(90).fit(latest)
    label = quantities.transform(latest)["p_no_purchase"].mean()
    target = quantities.transform(latest, 273)["p_no_purchase"].mean()
    expected = churn.predict_proba(frame) ** (np.log(target) / np.log(label))
    assert longer.predict_proba(frame) == pytest.approx(expected)
    assert (longer.predict_proba(frame) < churn.predict_proba(frame)).all()
    order = np.argsort(churn.predict_proba(frame), kind="stable")
    assert (np.diff(longer.predict_proba(frame)[order]) >= 0).all()
    value = HistoricalAverage(90).fit(frame, frame["value"], frame["cutoff"])
    assert (rescaled(value, frame, 90, 273).predict(frame)["cltv"] >= value.predict(frame)["cltv"]).all()


def test_selection_takes_the_best_and_a_tie_goes_to_the_simpler() -> None:
    assert select({"recency": 0.70, "bgnbd": 0.72, "model": 0.71}) == "bgnbd"
    assert select({"recency": 0.75, "bgnbd": 0.72, "model": 0.75}) == "recency"
