"""Unattended retraining: the lock refuses a second run, scheduled runs follow the gate, the cron is read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from training_fixtures import NOW, small_settings

from features.store.settings import FeatureStoreSettings
from tessera.core.settings import Settings, Workspace
from tessera.schedule import RetrainRunning, build_scheduler, retrain, retrain_lock, scheduled_job
from training import tracking

HOLD_LOCK = """
import sys, time
from pathlib import Path
from tessera.core.settings import Workspace
from tessera.schedule import retrain_lock
with retrain_lock(Workspace(Path(sys.argv[1]))):
    print("held", flush=True)
    sys.stdin.readline()
"""


def test_a_second_concurrent_retrain_is_refused(empty_workspace: Workspace) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(empty_workspace.root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(RetrainRunning, match=f"locked by pid {holder.pid} \\(`tessera retrain`"):
            retrain(empty_workspace, NOW, Settings(), FeatureStoreSettings(), small_settings())
        assert (
            scheduled_job(
                empty_workspace, Settings(), FeatureStoreSettings(), small_settings(), None, clock=lambda: NOW
            )()
            is None
        )
    finally:
        holder.communicate("done\n", timeout=30)
    # Released when its holder ended: taking it works, and the lock file names this process.
    with retrain_lock(empty_workspace) as path:
        assert json.loads(path.read_text())["pid"] == os.getpid()


@pytest.mark.integration
def test_two_scheduled_retrains_in_a_row_behave_as_the_gate_says(trained: tuple[Workspace, dict]) -> None:
    workspace, _ = trained
    job = scheduled_job(
        workspace,
        Settings(),
        FeatureStoreSettings(),
        small_settings(models=("churn",)),
        None,
        clock=lambda: NOW,
    )
    for _ in range(2):
        before = tracking.alias_version(workspace, "churn")
        result = job()
        assert result is not None
        gate = result["models"]["churn"]["gate"]
        # The registry follows the gate's decision (the decision itself: tests/training/test_tracking.py).
        expected = gate["version"] if gate["promoted"] else before
        assert tracking.alias_version(workspace, "churn") == expected
    # Same data, same seed: the second run is exactly as good, and a tie keeps the champion in production.
    assert not gate["promoted"] and gate["challenger"] == pytest.approx(gate["champion"])


def test_the_schedule_runs_retrain_on_the_configured_cron(empty_workspace: Workspace) -> None:
    scheduler = build_scheduler(
        empty_workspace, Settings(), FeatureStoreSettings(), small_settings(retrain_cron="30 2 * * *")
    )
    (job,) = scheduler.get_jobs()
    assert job.max_instances == 1
    assert job.trigger.get_next_fire_time(None, datetime(2025, 1, 1, 12, tzinfo=UTC)) == datetime(
        2025, 1, 2, 2, 30, tzinfo=UTC
    )
