"""The five steps against the real Feast and MLflow: runs, registered versions, aliases and the gate."""

from __future__ import annotations

import pandas as pd
import pytest
from training_fixtures import NOW, small_settings

from features.store.settings import FeatureStoreSettings
from tessera.core.settings import Settings, Workspace
from tessera.pipeline import train
from training import tracking

pytestmark = pytest.mark.integration


def test_every_model_is_registered_logged_and_champion(trained: tuple[Workspace, dict]) -> None:
    workspace, results = trained
    assert set(results) == {"churn", "cltv", "next_best_product"}
    churn = results["churn"]
    # Every candidate is scored on the same window and the best one is the champion; the reference lines
    # (computed from the orders themselves) are logged beside them.
    assert set(churn["candidates"]) == {
        "recency",
        "bgnbd",
        "lightgbm_rfm",
        "model_on_bgnbd",
        "model_regularised",
        "model",
    }
    assert churn["metrics"]["roc_auc"] == max(churn["candidates"].values()) == churn["gate"]["challenger"]
    assert set(churn["baselines"]) == {"days_since_last_purchase", "bgnbd_p_no_purchase"}
    cltv = results["cltv"]
    assert set(cltv["candidates"]) == {"historical_average", "bgnbd_gamma_gamma", "model_shallow", "model"}
    assert cltv["metrics"]["normalized_gini"] == max(cltv["candidates"].values())
    # This synthetic retailer buys like BG/NBD assumes, so CLTV is only checked to be measured against it.
    assert 0 < results["cltv"]["baselines"]["bgnbd_gamma_gamma"]["normalized_gini"] <= 1
    ranking = results["next_best_product"]
    assert ranking["metrics"]["ndcg_at_10"] > ranking["baselines"]["popularity"]["ndcg_at_10"]
    with tracking.mlflow_store(workspace) as client:
        for name in results:
            assert tracking.alias_version(workspace, name) is not None
            run = client.get_run(client.get_model_version_by_alias(name, tracking.CHAMPION).tags["run_id"])
            assert {"validation_cutoff", "training_rows", "training_digest", "validation_rows"} <= set(
                run.data.params
            )
            artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
            assert artifacts, f"{name} logged no plots"
    assert (workspace.mlruns / "mlflow.db").exists()


def test_the_champion_loads_as_one_object_with_a_documented_predict(trained: tuple[Workspace, dict]) -> None:
    import mlflow

    workspace, _ = trained
    with tracking.mlflow_store(workspace):
        churn = mlflow.pyfunc.load_model("models:/churn@champion")
        example = churn.input_example
        scored = churn.predict(example)
        assert {"customer_id", "churn_probability", "reason_1"} <= set(scored.columns)
        assert scored["churn_probability"].between(0, 1).all()
        cltv = mlflow.pyfunc.load_model("models:/cltv@champion")
        assert {"cltv", "cltv_low", "cltv_high"} <= set(cltv.predict(cltv.input_example).columns)
        recommender = mlflow.pyfunc.load_model("models:/next_best_product@champion")
        shown = recommender.predict(recommender.input_example, params={"k": 3, "now": NOW.isoformat()})
        assert shown.groupby("customer_id").size().eq(3).all()
        assert not shown.loc[shown["customer_id"] == "new-customer", "personalised"].any()


def test_a_worse_model_does_not_replace_the_champion(trained: tuple[Workspace, dict]) -> None:
    workspace, _ = trained
    before = tracking.alias_version(workspace, "churn")
    # One tree of two leaves: two distinct probabilities, a much worse ranking.
    worse = train(
        workspace,
        "churn",
        NOW,
        small_settings(lgbm_n_estimators=1, lgbm_num_leaves=2),
        FeatureStoreSettings(),
    )
    assert not worse["gate"]["promoted"]
    # At most as good: on this small window a baseline may win both trainings, a tie, which keeps the champion.
    assert worse["gate"]["challenger"] <= worse["gate"]["champion"]
    assert tracking.alias_version(workspace, "churn") == before
    assert tracking.alias_version(workspace, "churn", tracking.CHALLENGER) == worse["version"]


RETRAIN_KILLED_BEFORE_THE_RELEASE_MOVES = """
import sys
from pathlib import Path
from features.store.settings import FeatureStoreSettings
from tessera.core.settings import Workspace
from tessera.pipeline import train_all
from training_fixtures import NOW, small_settings

def checkpoint(step):
    if step == "release registered":  # every model trained and registered, the new release written
        print(step, flush=True)
        sys.stdin.readline()  # killed here

# A tolerance that promotes every model (a retrain on unchanged data ties), so a new release is written.
settings = small_settings(gate_tolerance=1.0)
train_all(Workspace(Path(sys.argv[1])), NOW, settings, FeatureStoreSettings(), checkpoint=checkpoint)
"""


def test_a_retrain_killed_after_registering_leaves_every_champion_unchanged(
    trained: tuple[Workspace, dict],
) -> None:
    """A whole retrain in its own process, SIGKILLed once its three models are registered and its release
    written, just before the release is made current: every champion is still the one before, and the next
    promotion sees them as before (the new versions exist, unused)."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    workspace, _ = trained
    before = tracking.champions(workspace)
    assert set(before) == {"churn", "cltv", "next_best_product"}
    fixtures = str(Path(__file__).resolve().parent)
    process = subprocess.Popen(
        [sys.executable, "-c", RETRAIN_KILLED_BEFORE_THE_RELEASE_MOVES, str(workspace.root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [fixtures, os.environ.get("PYTHONPATH")])),
        },
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "release registered"
        assert tracking.champions(workspace) == before  # trained, registered, not yet current
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=60) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=60)
    assert tracking.champions(workspace) == before
    assert {name: tracking.alias_version(workspace, name) for name in before} == before
    with tracking.mlflow_store(workspace) as client:
        for name, version in before.items():  # the killed retrain registered a newer version of each model
            newest = max(int(v.version) for v in client.search_model_versions(f"name = '{name}'"))
            assert newest > int(version)


def test_batch_scores_respect_consent_and_carry_source_ids(trained: tuple[Workspace, dict], tmp_path) -> None:
    from training.scoring import recommend_all, score_customers, write_table

    workspace, _ = trained
    customers = pd.read_parquet(workspace.profile / "customers.parquet")
    scores = score_customers(workspace, "churn", NOW, Settings(), FeatureStoreSettings())
    assert set(scores["customer_id"]) == set(customers.loc[customers["consent_profiling"], "customer_id"])
    assert scores["source_ids"].str.startswith("shop:S").all()
    path = write_table(scores, tmp_path / "churn.csv")
    assert len(pd.read_csv(path)) == len(scores)

    recommendations = recommend_all(workspace, NOW, Settings(), k=5, exclude_purchased=True)
    per_customer = recommendations.drop_duplicates("customer_id").set_index("customer_id")
    assert len(per_customer) == len(customers)
    refused = customers.loc[~customers["consent_personalisation"], "customer_id"]
    assert not per_customer.loc[refused, "personalised"].any()
    assert recommendations.groupby("customer_id").size().eq(5).all()
    assert len(pd.read_parquet(write_table(recommendations, tmp_path / "recs.parquet"))) == len(
        recommendations
    )
