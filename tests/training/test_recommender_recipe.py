"""The recommender's candidates: every baseline beside the learned blend, chosen on validation, refit up to now."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from recommender_data import NOW, context, repeat_buyers

from training import tuning
from training.baselines import BASELINES
from training.errors import ModelSkipped
from training.recipes import NextBestProductRecipe
from training.recommend import NextBestProduct


@pytest.fixture(scope="module")
def repeat(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    recipe = NextBestProductRecipe(k=10)
    ctx = context(repeat_buyers(), tmp_path_factory.mktemp("repeat"))
    data = recipe.load(ctx)
    candidates = recipe.candidates(ctx, data)
    scores = {name: recipe.score(ctx, model, {}, data) for name, model in candidates.items()}
    return recipe, ctx, data, candidates, scores


def test_every_baseline_and_the_learned_blend_are_candidates(repeat: tuple) -> None:
    recipe, ctx, data, candidates, _ = repeat
    assert set(candidates) == {*BASELINES, "learned"}
    v = ctx.cutoffs.validation
    for model in candidates.values():  # fitted on the history up to the validation cutoff only
        assert model.fitted_at_ == v
    evaluation = recipe.evaluate(ctx, candidates["learned"], data)
    table = evaluation.tables["comparison"].set_index("method")
    assert set(table.index) == {"model", *candidates}
    assert {"recall_at_10", "ndcg_at_10"} <= set(table.columns)
    # The tuning window lies before the validation cutoff: TIFU-KNN's grid and the ALS grid were both tried.
    assert set(evaluation.tables["tuning"]["candidate"]) == {"tifu_knn", "learned"}
    assert recipe.logged(ctx, candidates["learned"], data).params["tuning_customers"] == 80  # all of them


def test_own_most_bought_wins_when_everyone_rebuys_the_same_items(repeat: tuple) -> None:
    *_, scores = repeat
    # Nothing can beat the staples; a model that matches them ties, and a tie goes to the baseline.
    assert scores["own_most_bought"] == max(scores.values())
    # One-off products (about half the validation purchases) are foreseeable by nobody.
    assert scores["own_most_bought"] > 0.6
    assert scores["popularity"] < scores["own_most_bought"] / 2


def test_the_winner_is_refit_on_everything_up_to_now(repeat: tuple) -> None:
    recipe, ctx, data, candidates, _ = repeat
    refit = recipe.refit(ctx, "own_most_bought", data)
    assert refit.fitted_at_ == NOW and refit.blend_ == candidates["own_most_bought"].blend_
    # A product first sold after the validation cutoff is known to the refit model only.
    assert "NEW" not in candidates["own_most_bought"].items_
    newer = pd.DataFrame(
        [
            {
                "customer_id": "C000",
                "sku": "NEW",
                "kind": "purchase",
                "occurred_at": NOW - pd.Timedelta(days=3),
                "count": 1.0,
            }
        ]
    )
    ctx.events = pd.concat([ctx.events, newer], ignore_index=True)
    assert "NEW" in recipe.refit(ctx, "own_most_bought", data).items_


@pytest.mark.parametrize(
    ("sku", "reason"),
    [("0", r"same product \(0\)"), ("", "^no purchase names a product")],
    ids=["one constant product", "no products"],
)
def test_a_catalogue_without_choice_skips_the_model_with_a_reason(
    tmp_path: Path, sku: str, reason: str
) -> None:
    events = repeat_buyers(customers=20).assign(sku=sku)
    with pytest.raises(ModelSkipped, match=reason):
        NextBestProductRecipe().load(context(events, tmp_path))


def test_too_few_buyers_in_the_validation_window_skips_the_model(tmp_path: Path) -> None:
    with pytest.raises(ModelSkipped, match="5 customers with history bought in the validation window"):
        NextBestProductRecipe().load(context(repeat_buyers(customers=5), tmp_path))


def test_without_a_tuning_window_the_baselines_remain(tmp_path: Path) -> None:
    # 120 days of history: nobody has history before the tuning window (validation - 90 days - 90 days).
    events = repeat_buyers(customers=30)
    events = events[events["occurred_at"] > NOW - pd.Timedelta(days=120)]
    recipe = NextBestProductRecipe()
    ctx = context(events, tmp_path)
    data = recipe.load(ctx)
    candidates = recipe.candidates(ctx, data)
    assert set(candidates) == set(BASELINES)
    assert data.tuning_customers == 0


def test_two_products_and_a_handful_of_customers_fit_every_candidate(tmp_path: Path) -> None:
    events = repeat_buyers(customers=12, items=2, one_offs=0.0)
    recipe = NextBestProductRecipe(k=10)
    ctx = context(events, tmp_path)
    data = recipe.load(ctx)
    for name, model in recipe.candidates(ctx, data).items():
        shown = model.recommend(data.history, ctx.cutoffs.validation, data.customers[:2], k=10)
        assert shown.groupby("customer_id").size().eq(2).all(), name
        assert isinstance(model, NextBestProduct)


def test_guest_receipts_count_for_popularity_but_are_nobodys_history(tmp_path: Path) -> None:
    events = repeat_buyers(customers=20)
    recipe = NextBestProductRecipe()
    ctx = context(events, tmp_path)
    data = recipe.load(ctx)
    least = recipe.candidates(ctx, data)["popularity"]
    last = least.items_[int(np.argmin(least.popularity_))]  # the item customers bought least lately
    v = ctx.cutoffs.validation
    guests = pd.DataFrame(
        {
            "customer_id": [f"anonymous:till:{n}" for n in range(200)],
            "sku": last,
            "kind": "purchase",
            "occurred_at": v - pd.Timedelta(days=1),
            "count": 1.0,
        }
    )
    ctx = context(events, tmp_path)
    ctx.anonymous_purchases = guests
    fitted = recipe.candidates(ctx, recipe.load(ctx))["popularity"]
    assert fitted.items_[int(np.argmax(fitted.popularity_))] == last
    assert not any(c.startswith("anonymous:") for c in recipe.load(ctx).customers)


def test_a_large_catalogue_tunes_on_fewer_customers(monkeypatch: pytest.MonkeyPatch) -> None:
    # 80 customers and 40 staples plus a one-off product in half the baskets: about 420 products.
    events = repeat_buyers(customers=80, items=40, one_offs=0.5)
    end = NOW - pd.Timedelta(days=90)
    window = tuning.tuning_window(events, end, 90, None, seed=0)
    assert window is not None and len(window.customers) == 80  # all of them: far under the limit
    products = events[events["occurred_at"] <= window.start]["sku"].nunique()
    monkeypatch.setattr(tuning, "TUNING_CELLS", products * 30)  # room for 30 customers' dense values
    smaller = tuning.tuning_window(events, end, 90, None, seed=0)
    assert smaller is not None and len(smaller.customers) == 30
    assert set(smaller.customers) <= set(window.customers)
    assert set(smaller.truth["customer_id"]) <= set(smaller.customers)
