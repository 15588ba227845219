"""A newcomer's first commands: `tessera simulate` then `tessera run` with the defaults; `tessera demo`'s console."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from training_fixtures import small_environment
from typer.testing import CliRunner

from tessera.cli import app

pytestmark = pytest.mark.integration

CUSTOMERS = "150"


def test_simulate_then_run_with_the_defaults_trains_every_model(tmp_path: Path) -> None:
    runner = CliRunner()
    simulated = runner.invoke(app, ["simulate", "--customers", CUSTOMERS, "--out", str(tmp_path / "sample")])
    assert simulated.exit_code == 0, simulated.output
    # The exports end yesterday, so the clock's now (run's default) follows the data.
    assert json.loads(simulated.stdout)["as_of"] == (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    ran = runner.invoke(
        app,
        ["run", "--sources", str(tmp_path / "sample" / "sources.yaml"), "--workspace", str(tmp_path / "ws")],
        env=small_environment(),
    )
    assert ran.exit_code == 0, f"{ran.output}\n{ran.exception!r}"
    assert ran.stderr.splitlines()[0].startswith("now: ") and "the clock" in ran.stderr.splitlines()[0]
    models = json.loads(ran.stdout)["models"]
    assert {name for name, result in models.items() if "gate" in result} == {
        "churn",
        "cltv",
        "next_best_product",
    }


def test_the_demo_prints_a_short_summary_and_writes_the_full_report(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    # As a user runs it: the entry point's warning filters and logging included, stderr on the same console.
    done = subprocess.run(
        [sys.executable, "-m", "tessera.cli", "demo", "--no-serve", "--customers", CUSTOMERS],
        env={**os.environ, **small_environment(), "TESSERA_WORKSPACE": str(workspace)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout
    lines = done.stdout.splitlines()
    assert len(lines) <= 25, done.stdout
    # One is left: MLflow shows its "Add type hints" notice inside its own `simplefilter("once")`.
    assert [line for line in lines if "Warning" in line and "Add type hints" not in line] == [], done.stdout
    assert lines[0].startswith(f"Simulating a retailer with {CUSTOMERS} customers")
    stages = lines.index(next(line for line in lines if line.startswith("stage ")))
    assert [line.split()[0] for line in lines[stages + 1 : stages + 4]] == ["ingest", "identity", "profile"]
    models = lines.index(next(line for line in lines if line.startswith("model ")))
    assert {line.split()[0] for line in lines[models + 1 : models + 4]} == {
        "churn",
        "cltv",
        "next_best_product",
    }
    report = workspace / "data" / "reports" / "demo.json"
    assert f"Full report (JSON): {report}" in lines
    assert set(json.loads(report.read_text())["models"]) == {"churn", "cltv", "next_best_product"}
