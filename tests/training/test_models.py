"""Model behaviour: what each estimator must do on small, hand-made data (no feature store, no MLflow)."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pandas as pd
import pytest
from training_fixtures import NOW, events_from

from training import recommend
from training.churn import ChurnModel, calibration_window
from training.cltv import CLTVModel
from training.recommend import ALL, SHARED, NextBestProduct
from training.tuning import components, learn_blend, truth_matrix, validation_sample


def feature_frame(n: int, seed: int = 0) -> pd.DataFrame:
    """Customers at three cutoffs with recency/frequency features, a region and a flag; labels follow them."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{i % (n // 3)}" for i in range(n)],
            "cutoff": pd.to_datetime(np.repeat(["2025-01-01", "2025-03-01", "2025-05-01"], n // 3), utc=True),
            "days_since_last_order": rng.exponential(60, n),
            "orders_90d": rng.poisson(3, n),
            "spend_365d": rng.gamma(2, 100, n),
            "region": rng.choice(["GB", "IE", "FR"], n),
            "consent_email": rng.random(n) > 0.5,
        }
    )
    risk = 1 / (1 + np.exp(-(frame["days_since_last_order"] / 30 - 2 - 0.4 * frame["orders_90d"])))
    frame["churned"] = rng.random(n) < risk
    frame["value"] = np.where(frame["churned"], 0.0, frame["spend_365d"] / 4 * rng.uniform(0.5, 1.5, n))
    return frame


def two_customers() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": ["weekly", "silent"],
            "days_since_last_order": [3.0, 240.0],
            "orders_90d": [13, 0],
            "spend_365d": [2600.0, 40.0],
            "region": ["GB", "Atlantis"],  # a region never seen in training becomes missing, not an error
            "consent_email": [True, False],
        }
    )


def test_a_customer_who_buys_every_week_is_not_churned() -> None:
    frame = feature_frame(3000)
    model = ChurnModel(n_estimators=100, seed=1).fit(frame, frame["churned"], frame["cutoff"])
    scored = model.predict(two_customers()).set_index("customer_id")
    assert scored.loc["weekly", "churn_probability"] < 0.2 < 0.8 < scored.loc["silent", "churn_probability"]
    # The reasons are the model's own contributions: recency is what pushes the silent customer up.
    assert scored.loc["silent", "reason_1"] == "days_since_last_order"
    assert scored.loc["silent", "reason_1_impact"] > 0
    assert model.fit(frame, frame["churned"], frame["cutoff"]) is model  # estimator rules


def test_churn_probabilities_are_calibrated_on_held_out_cutoffs() -> None:
    frame = feature_frame(6000, seed=2)
    train, test = (
        frame[frame["cutoff"] < frame["cutoff"].max()],
        frame[frame["cutoff"] == frame["cutoff"].max()],
    )
    model = ChurnModel(n_estimators=100, seed=1).fit(train, train["churned"], train["cutoff"])
    assert model.predict_proba(test).mean() == pytest.approx(test["churned"].mean(), abs=0.05)


def test_churn_fitted_then_calibrated_predicts_as_if_fitted_at_once() -> None:
    frame = feature_frame(3000, seed=4)
    whole = ChurnModel(n_estimators=60, seed=1).fit(frame, frame["churned"], frame["cutoff"])
    ranked = ChurnModel(n_estimators=60, seed=1).fit(
        frame, frame["churned"], frame["cutoff"], calibrate=False
    )
    assert ranked.calibrator_ is None
    # Uncalibrated, the ranking is already the final one: a candidate is selected on it.
    assert np.argsort(ranked.predict_proba(frame)).tolist() == np.argsort(whole.predict_proba(frame)).tolist()
    ranked.calibrate(frame, frame["churned"], frame["cutoff"])
    assert ranked.predict_proba(frame).tolist() == whole.predict_proba(frame).tolist()


def test_calibration_window_is_the_latest_year_of_cutoffs() -> None:
    cutoffs = pd.Series(pd.to_datetime(["2024-01-01", "2024-07-01", "2024-10-01", "2025-01-01"], utc=True))
    # 2024-01-01 is a full year before the latest cutoff: every other window is in, the latest too.
    assert calibration_window(cutoffs).tolist() == [False, True, True, True]
    assert calibration_window(cutoffs[:1]).tolist() == [True]


def test_churn_probabilities_take_their_level_from_a_year_of_windows_not_the_latest_season() -> None:
    # Winters churn less than summers (same customers' behaviour otherwise). Calibrated on the latest
    # (summer) window alone, the level would be summer's wherever the model scores next; over a year of
    # windows it is the year's, between the two seasons.
    rng = np.random.default_rng(5)
    dates = ["2024-01-01", "2024-04-01", "2024-07-01"]
    n = 3000
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)] * len(dates),
            "cutoff": pd.to_datetime(np.repeat(dates, n), utc=True),
            "days_since_last_order": rng.exponential(60, n * len(dates)),
        }
    )
    winter = (frame["cutoff"].dt.month == 1).to_numpy()
    logit = frame["days_since_last_order"] / 30 - 2 - 1.5 * winter
    frame["churned"] = rng.random(len(frame)) < 1 / (1 + np.exp(-logit))
    summer = (frame["cutoff"].dt.month == 7).to_numpy()
    summer_rate, winter_rate = frame.loc[summer, "churned"].mean(), frame.loc[winter, "churned"].mean()
    model = ChurnModel(n_estimators=60, seed=1).fit(frame, frame["churned"], frame["cutoff"])
    predicted = model.predict_proba(frame)
    assert predicted.mean() == pytest.approx(frame["churned"].mean(), abs=0.02)
    assert winter_rate + 0.05 < predicted[summer].mean() < summer_rate - 0.02
    assert summer_rate > winter_rate + 0.1


def test_cltv_ranks_spenders_and_gives_an_ordered_interval() -> None:
    frame = feature_frame(3000, seed=3)
    model = CLTVModel(n_estimators=100, seed=1).fit(frame, frame["value"], frame["cutoff"])
    scored = model.predict(two_customers()).set_index("customer_id")
    assert scored.loc["weekly", "cltv"] > 10 * scored.loc["silent", "cltv"]
    assert (scored["cltv_low"] <= scored["cltv"]).all() and (scored["cltv"] <= scored["cltv_high"]).all()
    assert (scored[["cltv", "cltv_low", "cltv_high"]] >= 0).all().all()


def test_cltv_fitted_point_first_then_interval_predicts_as_if_fitted_at_once() -> None:
    frame = feature_frame(3000, seed=3)
    whole = CLTVModel(n_estimators=60, seed=1).fit(frame, frame["value"], frame["cutoff"])
    point = CLTVModel(n_estimators=60, seed=1).fit(frame, frame["value"], frame["cutoff"], interval=False)
    alone = point.predict(two_customers())
    # Without its quantile models the point is the same and the bounds are unknown, not made up.
    assert alone["cltv"].tolist() == whole.predict(two_customers())["cltv"].tolist()
    assert alone[["cltv_low", "cltv_high"]].isna().all().all()
    point.fit_interval(frame, frame["value"], frame["cutoff"])
    pd.testing.assert_frame_equal(point.predict(two_customers()), whole.predict(two_customers()))


@pytest.fixture(scope="module")
def recommender(tables: dict) -> tuple[NextBestProduct, pd.DataFrame]:
    events = events_from(tables, NOW)
    model = NextBestProduct(factors=16, iterations=8, seed=1).fit(events, NOW, tables["products"])
    return model, events


def test_a_grocery_regular_is_offered_their_staples_unless_excluded(recommender: tuple, tables: dict) -> None:
    model, events = recommender
    customer = events[events["kind"] == "purchase"]["customer_id"].value_counts().index[0]
    staples = (
        events[(events["customer_id"] == customer) & (events["kind"] == "purchase")]["sku"]
        .value_counts()
        .index[:2]
    )
    shown = model.recommend(events, NOW, [customer], k=10)
    assert set(staples) <= set(shown["sku"])
    assert shown["rank"].tolist() == list(range(1, 11))
    fresh = model.recommend(events, NOW, [customer], k=10, exclude_purchased=True)
    bought = set(events[(events["customer_id"] == customer) & (events["kind"] == "purchase")]["sku"])
    assert not set(fresh["sku"]) & bought


def test_rules_unavailable_products_and_category_filters(recommender: tuple, tables: dict) -> None:
    model, events = recommender
    products = tables["products"].set_index("sku")
    customers = list(events["customer_id"].unique()[:50])
    shown = model.recommend(events, NOW, customers, k=10, categories=["Home"])
    assert products.loc[shown["sku"], "category"].str.startswith("Home").all()
    everything = model.recommend(events, NOW, customers, k=20)
    assert products.loc[everything["sku"], "available"].all()


def test_customers_without_history_or_consent_get_flagged_best_sellers(recommender: tuple) -> None:
    model, events = recommender
    known = events["customer_id"].iloc[0]
    cold = model.recommend(events, NOW, ["never-seen"], k=5)
    assert len(cold) == 5 and not cold["personalised"].any()
    anonymous = model.recommend(events, NOW, [known], k=5, personalised=False)
    assert anonymous["sku"].tolist() == cold["sku"].tolist()
    assert not anonymous["personalised"].any()
    assert model.recommend(events, NOW, [known], k=5)["personalised"].all()


def test_serving_form_matches_batch_form(recommender: tuple) -> None:
    model, events = recommender
    customer = events["customer_id"].iloc[0]
    mine = events[events["customer_id"] == customer].rename(columns={"kind": "event_type"})
    request = pd.concat([mine, pd.DataFrame([{"customer_id": "brand-new"}])], ignore_index=True)
    served = model.predict(request, now=NOW.isoformat(), k=5)
    batch = model.recommend(events, NOW, [customer, "brand-new"], k=5)
    pd.testing.assert_frame_equal(served.reset_index(drop=True), batch.reset_index(drop=True))


def test_recommending_in_chunks_gives_each_customer_what_one_batch_gives(
    recommender: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, events = recommender
    customers = [*events["customer_id"].unique()[:40], "never-seen"]
    whole = model.recommend(events, NOW, customers, k=10, exclude_purchased=True)
    monkeypatch.setattr(
        recommend, "_CHUNK", 7
    )  # six chunks, each customer's events picked out of the grouping
    chunked = model.recommend(events, NOW, customers[::-1], k=10, exclude_purchased=True)
    key = ["customer_id", "rank"]
    pd.testing.assert_frame_equal(
        chunked.sort_values(key).reset_index(drop=True), whole.sort_values(key).reset_index(drop=True)
    )
    assert set(whole["customer_id"]) == set(customers)


def test_similar_products_come_from_the_same_model(recommender: tuple) -> None:
    model, _ = recommender
    similar = model.similar_items([model.items_[0]], n=5)
    assert len(similar) == 5 and model.items_[0] not in set(similar["similar_sku"])
    assert similar["score"].is_monotonic_decreasing


def test_the_blend_learns_that_groceries_are_bought_again(recommender: tuple, tables: dict) -> None:
    model, _ = recommender
    events = events_from(tables, NOW + pd.Timedelta(days=90))
    start = pd.Timestamp(NOW)
    customers, truth = validation_sample(events, start, start + pd.Timedelta(days=90), 1000, seed=1)
    history = events[events["occurred_at"] <= start]
    values = components(model, history, start, customers)
    blend = learn_blend(model, values, truth_matrix(model, customers, truth))
    assert blend["Food"]["again"] > blend["Fashion"]["again"]


def test_a_champion_pickled_before_the_tifu_components_still_recommends(recommender: tuple) -> None:
    model, events = recommender
    customers = list(events["customer_id"].unique()[:3])
    old = copy.copy(model)
    for added in ("terms_", "term_weights_", "similarity_", "unit_factors_", "within_decay", "neighbours"):
        delattr(old, added)
    old.blend_ = {}  # what a model fitted without a blend kept before
    loaded = pickle.loads(pickle.dumps(old))
    pd.testing.assert_frame_equal(
        loaded.recommend(events, NOW, customers, k=5), model.recommend(events, NOW, customers, k=5)
    )


def test_folding_in_under_the_blend_scores_as_the_components_one_by_one(tables: dict) -> None:
    events = events_from(tables, NOW)
    everything = {ALL: {t: 0.5 for t in ("again", "personal", "neighbours", "discovery", "item_knn")}}
    model = NextBestProduct(
        factors=8, iterations=4, neighbours=20, blend={**everything, SHARED: {"frequency": 0.3}}
    )
    model.fit(events, NOW, tables["products"])
    customers = list(events["customer_id"].unique()[:20])
    rows = np.arange(len(customers))
    np.testing.assert_allclose(
        model.score(model.fold_in(events, NOW, customers), rows),
        model.score(model.fold_in(events, NOW, customers, separate=True), rows),
        rtol=1e-5,
        atol=1e-6,
    )
