"""Candidate selection through `train_model`, the real feature store and a real MLflow store in tmp."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from training_fixtures import NOW, recency_retailer, small_settings, write_retailer

from features.store.settings import FeatureStoreSettings
from tessera.core.settings import Settings, Workspace
from training import tracking

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def recency_workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """The recency retailer as of NOW with its feature store built."""
    from features.store import build_feature_store

    workspace = Workspace(tmp_path_factory.mktemp("recency"))
    write_retailer(workspace, recency_retailer(400, NOW), NOW)
    build_feature_store(workspace, NOW, Settings(workspace=workspace.root), FeatureStoreSettings())
    return workspace


def test_when_recency_is_the_signal_the_recency_baseline_wins_and_is_served(
    recency_workspace: Workspace,
) -> None:
    from features.store import OnlineFeatures, open_store
    from serving.scores import ChurnScorer
    from training.pipelines import TrainingContext, train_model
    from training.recipes import ChurnRecipe

    ctx = TrainingContext(recency_workspace, NOW, small_settings(), FeatureStoreSettings())
    result = train_model(ChurnRecipe(), ctx)
    tracking.promote(recency_workspace, [result["gate"]])  # as `train_all` does once every model is trained
    scores = result["candidates"]
    assert set(scores) == {"recency", "bgnbd", "lightgbm_rfm", "model_on_bgnbd", "model_regularised", "model"}
    assert result["candidate"] == "recency" and scores["recency"] == max(scores.values())
    assert result["margin"] == pytest.approx(
        scores["recency"] - max(v for k, v in scores.items() if k != "recency")
    )
    # The winner's validation metrics are the ones reported and gated on.
    assert result["metrics"]["roc_auc"] == scores["recency"] == result["gate"]["challenger"]

    estimator, metadata = tracking.load_champion(recency_workspace, "churn")
    assert type(estimator).__name__ == "RecencyChurn"
    assert metadata["candidate"] == "recency" and set(metadata["candidates"]) == set(scores)
    # Refit on the validation window too: trained until its end (the last sale), past the validation cutoff.
    assert metadata["trained_until"] == (ctx.cutoffs.validation + ctx.cutoffs.horizon).isoformat()
    assert pd.Timestamp(metadata["trained_until"]) > ctx.cutoffs.validation
    runs = tracking.runs(recency_workspace, "churn")
    assert runs.loc[0, "params.candidate"] == "recency"
    assert runs.loc[0, "metrics.candidate_roc_auc_model"] == pytest.approx(scores["model"])

    # Served like the learned model: probability, band, and recency as the reason of a silent customer.
    orders = pd.read_parquet(recency_workspace.profile / "orders.parquet")
    last = orders.groupby("customer_id")["ordered_at"].max().sort_values()
    silent, active = last.index[0], last.index[-1]
    reader = OnlineFeatures(
        open_store(recency_workspace, FeatureStoreSettings()), metadata["feature_service"]
    )
    scorer = ChurnScorer(estimator, "1", metadata["horizon_days"], reader, (0.3, 0.6))
    silent_score, active_score = scorer.score([silent, active], NOW)
    assert set(silent_score.fields) == {"churn_probability", "risk_band"}
    assert silent_score.fields["churn_probability"] > active_score.fields["churn_probability"]
    assert silent_score.fields["risk_band"] == "high" and active_score.fields["risk_band"] == "low"
    assert [r.feature for r in silent_score.reasons] == ["days_since_last_order"]
    assert silent_score.reasons[0].impact > 0 and active_score.reasons == []


def test_the_refit_learns_from_the_validation_window(recency_workspace: Workspace, tmp_path: Path) -> None:
    from training.pipelines import TrainingContext
    from training.recipes import CLTVRecipe

    ctx = TrainingContext(recency_workspace, NOW, small_settings(), FeatureStoreSettings())
    recipe = CLTVRecipe()
    data = recipe.load(ctx)
    candidate = recipe.candidates(ctx, data)["historical_average"]
    refit = recipe.refit(ctx, "historical_average", data)
    # Level and bands are learnt on the latest cutoff: the last training one, then the validation one.
    latest_training = data.train[data.train["cutoff"] == data.train["cutoff"].max()]
    validation = data.validation
    assert candidate.scale_ == pytest.approx(
        latest_training["value"].sum() / candidate._raw(latest_training).sum()
    )
    assert refit.scale_ == pytest.approx(validation["value"].sum() / refit._raw(validation).sum())
    assert refit.scale_ != pytest.approx(candidate.scale_)


def test_the_same_orders_in_another_order_give_the_same_training_rows(recency_workspace: Workspace) -> None:
    """LightGBM's bagging reads rows by position: the rows a model learns from come in one order, whatever
    order the profile's tables were written in, so one workspace and seed make one model."""
    from training.pipelines import TrainingContext
    from training.recipes import ChurnRecipe

    frames = []
    for seed in (None, 3):
        ctx = TrainingContext(recency_workspace, NOW, small_settings(), FeatureStoreSettings())
        if seed is not None:
            ctx.__dict__["orders"] = ctx.orders.sample(frac=1.0, random_state=seed).reset_index(drop=True)
        frames.append(ChurnRecipe().load(ctx))
    first, shuffled = frames
    assert len(first.train) > 0
    pd.testing.assert_frame_equal(first.train, shuffled.train)
    pd.testing.assert_frame_equal(first.validation, shuffled.validation)
