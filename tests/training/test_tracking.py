"""MLflow through `training.tracking` on both stores a workspace can name, SQLite in `mlruns/` (the default) and
PostgreSQL (`TESSERA_MLFLOW_TRACKING_URI`): a tiny churn model logged, registered, gated, promoted and loaded.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pytest
import training_fixtures

from tessera.core.settings import Settings, Workspace
from training import tracking
from training.churn import ChurnModel


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A database of its own on the development server, dropped afterwards."""
    with training_fixtures.postgres_database() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def workspace(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """An empty workspace on the default store (SQLite in mlruns/), or on the PostgreSQL database the settings name."""
    monkeypatch.delenv("TESSERA_MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("TESSERA_MLFLOW_REGISTRY_URI", raising=False)
    if request.param == "postgresql":
        monkeypatch.setenv("TESSERA_MLFLOW_TRACKING_URI", request.getfixturevalue("postgres_database"))
    return Workspace.from_settings(Settings(workspace=tmp_path))


@pytest.fixture(scope="module")
def tiny_model() -> tuple[ChurnModel, pd.DataFrame]:
    """A churn model fitted on 80 rows (customers quiet for longer churn more often), and those rows."""
    rng = np.random.default_rng(7)
    days = rng.integers(1, 200, size=80).astype(float)
    frame = pd.DataFrame({"customer_id": [f"C{i % 40}" for i in range(80)], "days_since_last_order": days})
    churned = pd.Series((days + rng.normal(0, 30, size=80)) > 100).astype(int)
    cutoffs = pd.Series(pd.to_datetime(["2025-01-01"] * 40 + ["2025-03-01"] * 40, utc=True))
    model = ChurnModel(n_estimators=5, num_leaves=4, min_child_samples=5, seed=7)
    return model.fit(frame, churned, cutoffs), frame


def aliases_in_the_database(workspace: Workspace) -> list[tuple[str, str, int]]:
    """The registry's aliases read straight from the workspace's database, not through MLflow."""
    query = "SELECT name, alias, version FROM registered_model_aliases"
    if workspace.mlflow_tracking_uri is None:
        with closing(sqlite3.connect(workspace.mlruns / "mlflow.db")) as connection:
            return connection.execute(query).fetchall()
    with psycopg.connect(workspace.mlflow_tracking_uri.replace("+psycopg", "")) as connection:
        return connection.execute(query).fetchall()


def log_version(
    workspace: Workspace, tiny_model: tuple[ChurnModel, pd.DataFrame], run: str
) -> tracking.LoggedVersion:
    """One run logging the tiny model and registering it as a new `churn` version (its run name in the metadata)."""
    model, frame = tiny_model
    with tracking.training_run(workspace, "churn", run) as logger:
        return logger.log_model(model, "churn", frame.head(3), metadata={"run": run})


def gate(
    workspace: Workspace, version: tracking.LoggedVersion, challenger: float, champion: float | None
) -> dict:
    """Decide and apply one model's gate on roc_auc with a tolerance of 0.01, as `train_all` does."""
    decision = tracking.gate_decision(workspace, version, "roc_auc", challenger, champion, tolerance=0.01)
    tracking.promote(workspace, [decision])
    return decision


def test_without_a_tolerance_a_tie_keeps_the_champion(
    workspace: Workspace, tiny_model: tuple[ChurnModel, pd.DataFrame]
) -> None:
    """The default gate (tolerance 0) promotes only a challenger that beats the champion: on a tie, or a hair
    worse, the version in production stays."""
    first = log_version(workspace, tiny_model, "first")
    tracking.promote(
        workspace, [tracking.gate_decision(workspace, first, "roc_auc", 0.7, None, tolerance=0.0)]
    )
    for name, metric in (("tie", 0.7), ("worse", 0.6999), ("better", 0.7001)):
        version = log_version(workspace, tiny_model, name)
        decision = tracking.gate_decision(workspace, version, "roc_auc", metric, 0.7, tolerance=0.0)
        tracking.promote(workspace, [decision])
        assert decision["promoted"] is (name == "better")
    assert tracking.alias_version(workspace, "churn") == version.version == "4"


def test_the_gate_promotes_a_version_at_least_as_good_within_the_tolerance(
    workspace: Workspace, tiny_model: tuple[ChurnModel, pd.DataFrame]
) -> None:
    first = log_version(workspace, tiny_model, "first")
    # No champion yet: the first version is promoted whatever its metric.
    assert gate(workspace, first, 0.70, None)["promoted"]
    assert tracking.alias_version(workspace, "churn") == first.version == "1"

    worse = log_version(workspace, tiny_model, "worse")
    # 0.68 < 0.70 - 0.01 = 0.69: rejected, kept as challenger beside the champion.
    decision = gate(workspace, worse, 0.68, 0.70)
    assert decision["promoted"] is False and decision["previous_champion_version"] == "1"
    assert tracking.alias_version(workspace, "churn") == "1"
    assert tracking.alias_version(workspace, "churn", tracking.CHALLENGER) == worse.version == "2"

    within = log_version(workspace, tiny_model, "within")
    # 0.695 > 0.69: a little worse, but within the tolerance, so promoted; the challenger alias goes.
    assert gate(workspace, within, 0.695, 0.70)["promoted"]
    assert tracking.alias_version(workspace, "churn") == within.version == "3"
    assert tracking.alias_version(workspace, "churn", tracking.CHALLENGER) is None

    loaded = tracking.load_champion(workspace, "churn")
    assert loaded is not None
    estimator, metadata = loaded
    assert metadata["run"] == "within"
    model, frame = tiny_model
    pd.testing.assert_frame_equal(estimator.predict(frame), model.predict(frame))
    # The registry is the database the workspace names; artifacts are files in the workspace either way. Two
    # promotions made two releases (the rejection none); the second is current and names churn v3.
    assert sorted(aliases_in_the_database(workspace)) == [
        ("churn", "champion", 3),
        (tracking.RELEASE, tracking.CURRENT, 2),
    ]
    assert tracking.champions(workspace) == {"churn": "3"}
    assert (workspace.mlruns / "mlflow.db").exists() == (workspace.mlflow_tracking_uri is None)
    assert any((workspace.mlruns / "artifacts" / "churn").rglob("MLmodel"))


PROMOTE_WITH_CHECKPOINTS = """
import json, sys
from pathlib import Path
from tessera.core.settings import Settings, Workspace
from training import tracking

def checkpoint(step):
    print(step, flush=True)
    sys.stdin.readline()  # the test reads the registry here, then lets it go on or kills it

workspace = Workspace.from_settings(Settings(workspace=Path(sys.argv[1])))
tracking.promote(workspace, json.loads(sys.argv[2]), checkpoint=checkpoint)
print("done", flush=True)
"""
# The checkpoints of a two-model promotion, in order: before any write, then after each write.
STEPS = ["started", "release registered", "release current", "aliases of churn", "aliases of cltv", "tagged"]


def test_a_promotion_killed_at_any_point_leaves_all_old_or_all_new_champions(
    workspace: Workspace, tiny_model: tuple[ChurnModel, pd.DataFrame]
) -> None:
    """A process promoting churn and cltv together is SIGKILLed after each of its writes in turn: at every
    pause and after the kill, every reader (the release, each champion, the loaded estimator) sees both old or
    both new champions, and the new ones exactly once the one `current` alias has moved."""
    import json
    import signal
    import subprocess
    import sys

    model, frame = tiny_model
    names = ("churn", "cltv")
    logged = {}
    for name in names:
        with tracking.training_run(workspace, name, "first") as logger:
            logged[name] = logger.log_model(model, name, frame.head(3), metadata={"run": "first"})
    tracking.promote(
        workspace, [tracking.gate_decision(workspace, logged[n], "roc_auc", 0.7, None, 0.01) for n in names]
    )
    assert tracking.champions(workspace) == {"churn": "1", "cltv": "1"}

    for kill_after in [None, *STEPS]:
        old = tracking.champions(workspace)
        new = {}
        decisions = []
        with tracking.mlflow_store(workspace) as client:
            for name in names:  # a new registered version of each model (same files), as a training makes
                version = client.create_model_version(
                    name, logged[name].model_uri, run_id=logged[name].run_id
                )
                new[name] = str(version.version)
                decisions.append(
                    tracking.gate_decision(
                        workspace,
                        tracking.LoggedVersion(name, new[name], logged[name].run_id, logged[name].model_uri),
                        "roc_auc",
                        0.9,
                        0.7,
                        0.01,
                    )
                )
        assert all(d["promoted"] for d in decisions) and old != new
        process = subprocess.Popen(
            [sys.executable, "-c", PROMOTE_WITH_CHECKPOINTS, str(workspace.root), json.dumps(decisions)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert process.stdin is not None and process.stdout is not None
        try:
            for step in STEPS:
                assert process.stdout.readline().strip() == step
                expected = new if STEPS.index(step) >= STEPS.index("release current") else old
                assert_champions(workspace, expected, names)
                if step == kill_after:
                    process.send_signal(signal.SIGKILL)
                    assert process.wait(timeout=60) == -signal.SIGKILL
                    break
                process.stdin.write("\n")
                process.stdin.flush()
            else:
                assert process.stdout.readline().strip() == "done"
                assert process.wait(timeout=60) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=60)
        # After the kill (or the end) the champions are what they were at the last write.
        moved = kill_after is None or STEPS.index(kill_after) >= STEPS.index("release current")
        assert_champions(workspace, new if moved else old, names)
        # The per-model aliases, for people reading the registry, may lag behind the release after a kill; the
        # next training puts them in line first.
        tracking.sync_champion_aliases(workspace)
        assert sorted(a for a in aliases_in_the_database(workspace) if a[1] == tracking.CHAMPION) == [
            (name, tracking.CHAMPION, int((new if moved else old)[name])) for name in names
        ]


def assert_champions(workspace: Workspace, expected: dict[str, str], names: tuple[str, ...]) -> None:
    """Every reader sees exactly `expected`: the release in one read, each model's champion, the serving loader's
    fingerprint."""
    from serving.champions import Fingerprint

    assert tracking.champions(workspace) == expected
    assert {n: tracking.alias_version(workspace, n) for n in names} == expected
    assert Fingerprint.now(workspace).versions == {"next_best_product": None, **expected}


def test_erasure_removes_a_customer_from_every_logged_input_example(
    workspace: Workspace, tiny_model: tuple[ChurnModel, pd.DataFrame]
) -> None:
    """The input example logged with a model holds the first rows' customer ids (C0, C1, C2 here): forgetting C1
    drops their row from both example files MLflow wrote, and the model still loads and predicts."""
    import json

    version = log_version(workspace, tiny_model, "examples")
    gate(workspace, version, 0.7, None)
    files = sorted(p for name in tracking.EXAMPLE_FILES for p in workspace.mlruns.rglob(name))
    assert [p.name for p in files] == ["input_example.json", "serving_input_example.json"]
    assert all('"C1"' in p.read_text() for p in files)

    changed = tracking.forget_in_examples(workspace, {"C1", "C9"})
    assert changed == {str(p.relative_to(workspace.root)): 1 for p in files}
    plain = json.loads(files[0].read_text())
    served = json.loads(files[1].read_text())["dataframe_split"]
    assert [row[plain["columns"].index("customer_id")] for row in plain["data"]] == ["C0", "C2"]
    assert [row[served["columns"].index("customer_id")] for row in served["data"]] == ["C0", "C2"]
    assert tracking.forget_in_examples(workspace, {"C1"}) == {}  # nothing left to remove
    loaded = tracking.load_champion(workspace, "churn")
    assert loaded is not None
    model, frame = tiny_model
    pd.testing.assert_frame_equal(loaded[0].predict(frame), model.predict(frame))


def test_a_moved_workspace_loads_and_logs_its_own_artefacts(
    trained: tuple[Workspace, dict], tmp_path: Path
) -> None:
    """MLflow names artefacts by absolute path: a copied workspace, moved again and its first folder gone, still
    loads its champions, and a run logged there writes its files into it, not into the workspace it came from."""
    import shutil

    workspace, _ = trained
    original = sorted(p.relative_to(workspace.mlruns) for p in workspace.mlruns.rglob("*") if p.is_file())
    shutil.copytree(workspace.root, tmp_path / "first")
    first = Workspace(tmp_path / "first")
    with tracking.mlflow_store(first) as client:
        location = client.get_experiment_by_name("churn").artifact_location
    assert location == f"{tracking.artifact_root(first)}/churn"
    shutil.move(tmp_path / "first", tmp_path / "moved")
    moved = Workspace(tmp_path / "moved")
    champions = tracking.champions(moved)
    for name, version in champions.items():
        assert tracking.load_champion(moved, name, version) is not None, name
    with tracking.training_run(moved, "churn", "moved") as run:
        run.log_dict({"logged": "here"}, "moved.json")
    assert list((moved.mlruns / "artifacts" / "churn").rglob("moved.json"))
    assert not list(workspace.mlruns.rglob("moved.json"))
    after = sorted(p.relative_to(workspace.mlruns) for p in workspace.mlruns.rglob("*") if p.is_file())
    assert after == original  # nothing written into the workspace it was copied from
