"""MLflow through `training.tracking` on both stores a workspace can name, SQLite in `mlruns/` (the default) and
PostgreSQL (`TESSERA_MLFLOW_TRACKING_URI`): a tiny churn model logged, registered, gated, promoted and loaded.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pytest

from tessera.core.settings import Settings, Workspace
from training import tracking
from training.churn import ChurnModel

SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A database of its own on the development server (`tessera_test_<random>`), dropped afterwards."""
    name = f"tessera_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
        try:
            yield f"{SERVER}/{name}"
        finally:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


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


def test_the_gate_promotes_a_version_at_least_as_good_within_the_tolerance(
    workspace: Workspace, tiny_model: tuple[ChurnModel, pd.DataFrame]
) -> None:
    first = log_version(workspace, tiny_model, "first")
    # No champion yet: the first version is promoted whatever its metric.
    assert tracking.apply_gate(workspace, first, "roc_auc", 0.70, None, tolerance=0.01)["promoted"]
    assert tracking.alias_version(workspace, "churn") == first.version == "1"

    worse = log_version(workspace, tiny_model, "worse")
    # 0.68 < 0.70 - 0.01 = 0.69: rejected, kept as challenger beside the champion.
    decision = tracking.apply_gate(workspace, worse, "roc_auc", 0.68, 0.70, tolerance=0.01)
    assert decision["promoted"] is False and decision["previous_champion_version"] == "1"
    assert tracking.alias_version(workspace, "churn") == "1"
    assert tracking.alias_version(workspace, "churn", tracking.CHALLENGER) == worse.version == "2"

    within = log_version(workspace, tiny_model, "within")
    # 0.695 >= 0.69: a little worse, but within the tolerance, so promoted; the challenger alias goes.
    assert tracking.apply_gate(workspace, within, "roc_auc", 0.695, 0.70, tolerance=0.01)["promoted"]
    assert tracking.alias_version(workspace, "churn") == within.version == "3"
    assert tracking.alias_version(workspace, "churn", tracking.CHALLENGER) is None

    loaded = tracking.load_champion(workspace, "churn")
    assert loaded is not None
    estimator, metadata = loaded
    assert metadata["run"] == "within"
    model, frame = tiny_model
    pd.testing.assert_frame_equal(estimator.predict(frame), model.predict(frame))
    # The registry is the database the workspace names; artifacts are files in the workspace either way.
    assert aliases_in_the_database(workspace) == [("churn", "champion", 3)]
    assert (workspace.mlruns / "mlflow.db").exists() == (workspace.mlflow_tracking_uri is None)
    assert any((workspace.mlruns / "artifacts" / "churn").rglob("MLmodel"))


PROMOTE_THEN_HANG = """
import json, sys
from pathlib import Path
from mlflow import MlflowClient
from tessera.core.settings import Settings, Workspace
from training import tracking

workspace = Workspace.from_settings(Settings(workspace=Path(sys.argv[1])))
decisions = json.loads(sys.argv[2])
moved = MlflowClient.set_registered_model_alias

def move_then_hang(self, name, alias, version):
    moved(self, name, alias, version)
    print("moved", name, flush=True)
    sys.stdin.readline()  # killed here: one champion moved, the other not yet

MlflowClient.set_registered_model_alias = move_then_hang
tracking.promote(workspace, decisions)
"""


def test_a_promotion_killed_half_way_leaves_every_champion_unchanged(
    workspace: Workspace, tiny_model: tuple[ChurnModel, pd.DataFrame]
) -> None:
    import json
    import subprocess
    import sys

    model, frame = tiny_model
    old = {}
    for name in ("churn", "cltv"):
        with tracking.training_run(workspace, name, "old") as logger:
            old[name] = logger.log_model(model, name, frame.head(3), metadata={"run": "old"})
        tracking.apply_gate(workspace, old[name], "roc_auc", 0.7, None, tolerance=0.01)
    new = []
    for name in ("churn", "cltv"):
        with tracking.training_run(workspace, name, "new") as logger:
            version = logger.log_model(model, name, frame.head(3), metadata={"run": "new"})
        new.append(tracking.gate_decision(workspace, version, "roc_auc", 0.9, 0.7, tolerance=0.01))
    assert all(d["promoted"] for d in new)
    process = subprocess.Popen(
        [sys.executable, "-c", PROMOTE_THEN_HANG, str(workspace.root), json.dumps(new)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stdout.readline().split() == ["moved", "churn"]
    finally:
        process.kill()
        process.wait(timeout=30)
    # Killed with churn moved and cltv not: the journal says what the champions were ...
    assert (
        tracking.alias_version(workspace, "churn") == "2" and tracking.alias_version(workspace, "cltv") == "1"
    )
    assert tracking.promotion_journal(workspace).exists()
    # ... and the next training starts by putting them back (what `train_all` calls first).
    assert tracking.recover_promotion(workspace) == {"churn": "1", "cltv": "1"}
    assert [tracking.alias_version(workspace, n) for n in ("churn", "cltv")] == ["1", "1"]
    assert not tracking.promotion_journal(workspace).exists() and tracking.recover_promotion(workspace) == {}
    # A promotion that finishes moves both.
    tracking.promote(workspace, new)
    assert [tracking.alias_version(workspace, n) for n in ("churn", "cltv")] == ["2", "2"]
