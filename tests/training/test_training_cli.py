"""The training commands: thin, typed, and helpful when something is missing."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from training_fixtures import NOW
from typer.testing import CliRunner

from tessera.core.errors import InputError
from tessera.core.settings import Workspace
from tessera.training_cli import app

runner = CliRunner()


def test_every_command_documents_its_options() -> None:
    for command in ("train", "score", "recommend", "retrain", "schedule"):
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0, result.output
        assert "--workspace" in result.output
    assert "--horizon-days" in runner.invoke(app, ["train", "--help"]).output


def test_scoring_without_a_champion_says_what_to_run(empty_workspace: Workspace, tmp_path: Path) -> None:
    (empty_workspace.profile).mkdir(parents=True)
    pd.DataFrame({"customer_id": ["C1"]}).to_parquet(empty_workspace.profile / "customers.parquet")
    result = runner.invoke(
        app, ["score", "churn", "--out", str(tmp_path / "s.csv"), "--workspace", str(empty_workspace.root)]
    )
    assert isinstance(result.exception, InputError)
    assert "tessera train churn" in str(result.exception)


def test_recommend_asks_for_all(empty_workspace: Workspace, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["recommend", "--out", str(tmp_path / "r.csv"), "--workspace", str(empty_workspace.root)]
    )
    assert result.exit_code == 2 and "--all" in result.output


@pytest.mark.integration
def test_score_and_recommend_write_files(trained: tuple[Workspace, dict], tmp_path: Path) -> None:
    workspace, _ = trained
    common = ["--workspace", str(workspace.root), "--now", NOW.isoformat()]
    scored = runner.invoke(app, ["score", "cltv", "--out", str(tmp_path / "cltv.parquet"), *common])
    assert scored.exit_code == 0, scored.output
    assert {"customer_id", "source_ids", "cltv", "cltv_low", "cltv_high"} <= set(
        pd.read_parquet(tmp_path / "cltv.parquet").columns
    )
    wrong = runner.invoke(
        app, ["score", "churn", "--out", str(tmp_path / "c.csv"), "--horizon-days", "30", *common]
    )
    assert isinstance(wrong.exception, InputError) and "predicts over 90 days, not 30" in str(wrong.exception)
    shown = runner.invoke(
        app,
        ["recommend", "--all", "--k", "3", "--exclude-purchased", "--out", str(tmp_path / "r.csv"), *common],
    )
    assert shown.exit_code == 0, shown.output
    assert pd.read_csv(tmp_path / "r.csv").groupby("customer_id").size().eq(3).all()
