"""The precomputed recommender gives the champion's own scores, and applies the serving rules."""

from __future__ import annotations

import numpy as np
import pytest
from serving_fixtures import NOW, Served

from features.profile.read import load_events
from serving.recommender import Recommender, exclusions, load_products
from training import tracking
from training.baselines import baseline_params
from training.recommend import NextBestProduct

NONE = np.empty(0, dtype=np.int64)


@pytest.fixture(scope="module")
def model_and_recommender(served: Served) -> tuple[object, Recommender, object]:
    model, _ = tracking.load_champion(served.workspace, "next_best_product")
    events = load_events(served.workspace, NOW)
    return model, Recommender(model, "1", events, NOW, load_products(served.workspace)), events


def test_served_scores_are_the_models_own(model_and_recommender: tuple, served: Served) -> None:
    model, recommender, events = model_and_recommender
    customers = [c for c in sorted(recommender.row) if recommender.knows(c)][:25]
    expected = model.score(model.fold_in(events, NOW, customers), np.arange(len(customers)))
    for row, customer in enumerate(customers):
        np.testing.assert_allclose(recommender.personal_scores(customer), expected[row], rtol=1e-4, atol=1e-5)


def test_top_k_matches_the_models_recommendations(model_and_recommender: tuple, served: Served) -> None:
    model, recommender, events = model_and_recommender
    expected = model.recommend(events, NOW, [served.regular], k=5)
    items, personal = recommender.recommend(served.regular, 5, recommender.allowed(None, NONE), NONE)
    assert personal
    assert [i.sku for i in items] == expected["sku"].tolist()
    assert all(i.reason == "personalised" for i in items)


def test_a_customer_without_history_gets_the_models_best_sellers(model_and_recommender: tuple) -> None:
    model, recommender, events = model_and_recommender
    expected = model.recommend(events, NOW, ["nobody"], k=5)
    items, personal = recommender.recommend("nobody", 5, recommender.allowed(None, NONE), NONE)
    assert not personal
    assert [i.sku for i in items] == expected["sku"].tolist()
    assert {i.reason for i in items} == {"popular"}


def test_rules_category_exclusions_and_availability(model_and_recommender: tuple, served: Served) -> None:
    _, recommender, _ = model_and_recommender
    excluded = exclusions(recommender, served.skus[:3])
    items, _ = recommender.recommend(served.regular, 20, recommender.allowed("Food", excluded), NONE)
    assert items and all(i.category.startswith("Food") for i in items)
    assert not {i.sku for i in items} & set(served.skus[:3])
    unavailable = set(recommender.skus[~recommender.available])
    everything, _ = recommender.recommend(served.regular, 100, recommender.allowed(None, NONE), NONE)
    assert not {i.sku for i in everything} & unavailable


def test_a_cart_pulls_in_similar_items(model_and_recommender: tuple, served: Served) -> None:
    _, recommender, _ = model_and_recommender
    sku = next(s for s in served.skus if s in recommender.position)
    cart = recommender.positions([sku])
    items, personal = recommender.recommend(None, 5, recommender.allowed(None, cart), cart)
    assert not personal
    assert items[0].reason == "similar_to_cart"
    assert items[0].sku == recommender.similar(sku, 1)[0].sku
    assert sku not in {i.sku for i in items}


def test_similar_items_leave_out_the_product_itself(model_and_recommender: tuple, served: Served) -> None:
    _, recommender, _ = model_and_recommender
    similar = recommender.similar(served.skus[0], 5)
    assert len(similar) == 5 and served.skus[0] not in {i.sku for i in similar}
    assert [i.score for i in similar] == sorted((i.score for i in similar), reverse=True)
    assert recommender.similar("no-such-sku", 5) is None


@pytest.mark.parametrize("name", ["own_most_bought", "tifu_knn"])
def test_a_baseline_champion_is_served_through_the_same_path(served: Served, name: str) -> None:
    params = baseline_params({"seed": 1}, {"neighbours": 20})[name]
    events = load_events(served.workspace, NOW)
    model = NextBestProduct(**params).fit(events, NOW)
    assert model.als_ is None  # no ALS: similar products come from item kNN
    recommender = Recommender(model, "7", events, NOW, load_products(served.workspace))
    expected = model.recommend(events, NOW, [served.regular], k=5)
    items, personal = recommender.recommend(served.regular, 5, recommender.allowed(None, NONE), NONE)
    assert personal and [i.sku for i in items] == expected["sku"].tolist()
    sku = items[0].sku
    similar = recommender.similar(sku, 3)
    assert [i.sku for i in similar] == model.similar_items([sku], 3)["similar_sku"].tolist()
    cart = recommender.positions([sku])
    carted, _ = recommender.recommend(None, 3, recommender.allowed(None, cart), cart)
    assert carted[0].reason == "similar_to_cart"


def test_a_forgotten_customer_gets_the_anonymous_answer_at_once(served: Served) -> None:
    """An erasure drops the customer's folded rows: unknown to the recommender, their rows zeroed."""
    model, _ = tracking.load_champion(served.workspace, "next_best_product")
    recommender = Recommender(
        model, "1", load_events(served.workspace, NOW), NOW, load_products(served.workspace)
    )
    row = recommender.row[served.regular]
    anonymous, _ = recommender.recommend(None, 5, recommender.allowed(None, NONE), NONE)
    assert recommender.forget([served.regular, "NOBODY"]) == 1
    assert not recommender.knows(served.regular) and recommender.bought(served.regular).size == 0
    items, personal = recommender.recommend(served.regular, 5, recommender.allowed(None, NONE), NONE)
    assert not personal and items == anonymous
    folded = recommender.folded
    assert not folded.has_history[row]
    for matrix in (folded.bought, *folded.parts.values()):
        assert not matrix[row].toarray().any()
    if folded.factors is not None:
        assert not folded.factors[row].any()


def test_only_positively_similar_items_are_similar() -> None:
    # Item kNN (no ALS): P9 was only ever bought alone, so nothing is similar to it; P1 goes with P2 and P3 only.
    import pandas as pd

    baskets = {"a": ["P1", "P2"], "b": ["P1", "P2", "P3"], "c": ["P9"], "d": ["P4", "P5"]}
    events = pd.DataFrame(
        [
            {"customer_id": c, "sku": s, "kind": "purchase", "occurred_at": pd.Timestamp(NOW), "count": 1.0}
            for c, skus in baskets.items()
            for s in skus
        ]
    )
    model = NextBestProduct(**baseline_params({"seed": 1})["item_knn"]).fit(events, NOW)
    skus = sorted(events["sku"].unique())
    products = pd.DataFrame({"name": skus, "category": [None] * len(skus)}, index=skus, dtype=object)
    recommender = Recommender(model, "1", events, NOW, products)
    assert [item.sku for item in recommender.similar("P1", 5)] == ["P2", "P3"]
    assert all(item.score > 0 for item in recommender.similar("P1", 5))
    assert recommender.similar("P9", 5) is None  # the service answers best sellers, flagged
    assert recommender.lists("P9") and not recommender.lists("no-such-sku")
    # The model's batch list (notebooks, exports) says the same.
    batch = model.similar_items(["P1", "P9"], 5)
    assert batch["sku"].tolist() == ["P1", "P1"] and batch["similar_sku"].tolist() == ["P2", "P3"]
