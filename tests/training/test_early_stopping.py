"""Early stopping of the learned models, and the churn model that starts from BG/NBD."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from training.churn import ChurnModel
from training.probabilistic import ProbabilisticFeatures
from training.tabular import StoppingSplit, fit_early_stopped, stopping_split, time_holdout


def nearby_cutoffs(customers: int, cutoffs: int = 6, seed: int = 0) -> pd.DataFrame:
    """Customers at cutoffs eight days apart with a 90-day horizon: each keeps their traits and their label from
    one cutoff to the next (the label windows overlap), and the label is noise (nothing to learn)."""
    rng = np.random.default_rng(seed)
    traits = rng.normal(size=(customers, 4))
    label = rng.random(customers) < 0.5
    frames = []
    for k in range(cutoffs):
        drift = rng.normal(scale=0.01, size=traits.shape)
        frame = pd.DataFrame(traits + drift, columns=[f"trait_{i}" for i in range(4)])
        frame["customer_id"] = [f"c{i}" for i in range(customers)]
        frame["cutoff"] = pd.Timestamp("2025-06-01", tz="UTC") + pd.Timedelta(days=8 * k)
        frame["churned"] = label
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def test_early_stopping_reads_customers_the_trees_did_not_learn_from() -> None:
    frame = nearby_cutoffs(500)
    split = stopping_split(frame["cutoff"], frame["customer_id"])
    learnt = set(frame.loc[split.fit, "customer_id"])
    read = set(frame.loc[split.holdout, "customer_id"])
    assert read and learnt and not read & learnt
    assert (frame.loc[split.holdout, "cutoff"] == frame["cutoff"].max()).all()  # their latest cutoff
    assert len(read) == pytest.approx(100, abs=30)  # a fifth of the customers
    # Every row of the other customers is learnt from, their latest cutoff's included.
    assert split.fit.sum() == (~frame["customer_id"].isin(read)).sum()


def test_with_label_windows_that_ended_before_the_latest_cutoff_stopping_reads_the_latest_cutoff() -> None:
    frame = nearby_cutoffs(300, cutoffs=12)  # eight days apart: 88 days from the first to the latest
    split = stopping_split(frame["cutoff"], frame["customer_id"], label_days=30)
    latest = frame["cutoff"] == frame["cutoff"].max()
    assert split.holdout.tolist() == latest.tolist()  # every customer's latest row, as validation reads them
    ended = frame["cutoff"] + pd.Timedelta(days=30) <= frame["cutoff"].max()
    assert split.fit.tolist() == ended.tolist()  # only rows whose 30-day labels ended by then
    # Labels as long as the history: no window ended, so customers are held out instead.
    longer = stopping_split(frame["cutoff"], frame["customer_id"], label_days=90)
    assert not set(frame.loc[longer.fit, "customer_id"]) & set(frame.loc[longer.holdout, "customer_id"])


def test_with_one_cutoff_a_fifth_of_the_customers_is_held_out_as_before() -> None:
    frame = nearby_cutoffs(500, cutoffs=1)
    split = stopping_split(frame["cutoff"], frame["customer_id"])
    assert split.holdout.tolist() == time_holdout(frame["cutoff"], frame["customer_id"]).tolist()
    assert split.fit.tolist() == (~split.holdout).tolist()


def test_trees_stop_when_the_held_out_customers_stop_improving() -> None:
    """On noise, the latest rows of customers already learnt at nearby cutoffs look predictable: stopped on them,
    the trees never stop. Stopped on customers not learnt from, they stop within the patience (50 rounds)."""
    frame = nearby_cutoffs(600)
    model = ChurnModel(n_estimators=300, num_leaves=15, min_child_samples=10, seed=1)
    stopped = model.fit(frame, frame["churned"], frame["cutoff"], calibrate=False)
    assert stopped.best_iteration_ < 60

    # The split that stopped on the latest cutoff's rows of every customer (the old one) keeps going.
    X = stopped.encoder_.transform(stopped.inputs(frame))
    latest = (frame["cutoff"] == frame["cutoff"].max()).to_numpy()
    probe = lgb.LGBMClassifier(objective="binary", **stopped._params(300))
    leaky = fit_early_stopped(probe, X, frame["churned"].to_numpy(int), StoppingSplit(~latest, latest))
    assert leaky.best_iteration_ > 150


def purchase_histories(customers: int, seed: int = 0) -> pd.DataFrame:
    """BG/NBD's own story: each customer buys at their own Poisson rate until they drop out after a purchase.

    Vectors as churn_v1 gives them at three training cutoffs a month apart and one validation cutoff, each with
    its label (no purchase within 60 days).
    """
    rng = np.random.default_rng(seed)
    rate = rng.gamma(1.5, 1 / 40, customers)  # purchases per day
    drop = rng.beta(1.0, 6.0, customers)
    first = rng.uniform(0, 150, customers)
    times: list[np.ndarray] = []
    for i in range(customers):
        t, bought = first[i], [first[i]]
        while True:
            if rng.random() < drop[i]:
                break
            t += rng.exponential(1 / rate[i])
            if t > 500:
                break
            bought.append(t)
        times.append(np.array(bought))
    frames = []
    for k, day in enumerate((240.0, 270.0, 300.0, 360.0)):
        known = [t[t <= day] for t in times]
        seen = np.array([len(t) > 0 for t in known])
        ids = np.flatnonzero(seen)
        frames.append(
            pd.DataFrame(
                {
                    "customer_id": [f"c{i}" for i in ids],
                    "cutoff": pd.Timestamp("2025-01-01", tz="UTC") + pd.Timedelta(days=day),
                    "orders_lifetime": [len(known[i]) for i in ids],
                    "spend_lifetime": [25.0 * len(known[i]) for i in ids],
                    "days_since_last_order": [day - known[i].max() for i in ids],
                    "tenure_days": [day - known[i].min() for i in ids],
                    "churned": [not ((times[i] > day) & (times[i] <= day + 60)).any() for i in ids],
                    "validation": k == 3,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def test_a_churn_model_started_from_bgnbd_corrects_it_and_keeps_its_ranking() -> None:
    frame = purchase_histories(3000)
    train, validation = frame[~frame["validation"]], frame[frame["validation"]]
    model = ChurnModel(
        n_estimators=200, num_leaves=7, min_child_samples=100, horizon_days=60, from_bgnbd=True
    )
    model.fit(train, train["churned"], train["cutoff"], calibrate=False)
    y = validation["churned"].to_numpy(int)
    own = ProbabilisticFeatures(60, penalizer=None).fit(validation).transform(validation)
    # BG/NBD is the truth here: starting from it, the trees cannot rank much worse than it does alone.
    assert roc_auc_score(y, model.predict_proba(validation)) >= roc_auc_score(y, own["p_no_purchase"]) - 0.005

    # The start and the trees' corrections add up to the log-odds: reasons carry BG/NBD's part as p_no_purchase.
    contributions = model.contributions(validation)
    raw = model.classifier_.predict(model.encoder_.transform(model.inputs(validation)), raw_score=True)
    assert contributions.sum(axis=1).to_numpy() == pytest.approx(raw + model._base(validation))
    silent = validation["days_since_last_order"].idxmax()
    assert model.predict(validation).loc[silent, "reason_1"] == "p_no_purchase"

    # A served vector (no cutoff) is scored by the fit on the population it was refitted with.
    now = validation.drop(columns=["cutoff", "churned", "validation"])
    refit = ChurnModel(n_estimators=50, horizon_days=60, from_bgnbd=True).fit(
        train, train["churned"], train["cutoff"], calibrate=False, population=now
    )
    served = (
        ProbabilisticFeatures(60, penalizer=None)
        .fit(now)
        .transform(now)["p_no_purchase"]
        .clip(1e-9, 1 - 1e-9)
    )
    logit = np.log(served / (1 - served)).to_numpy()
    assert refit._base(now) == pytest.approx(refit.base_intercept_ + refit.base_slope_ * logit)
    assert refit.fits_population and not ChurnModel(horizon_days=60).fits_population
