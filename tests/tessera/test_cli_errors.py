"""`tessera` on bad input, through its real entry point (`tessera.cli.main`): exit status 2 and a message that
says what is wrong and what to do, never a traceback."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

from tessera.cli import main
from tessera.core.settings import Workspace


def tessera(
    args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str]:
    """Run `tessera ARGS` in this process: its exit status and its stderr, on one line without the box drawing."""
    monkeypatch.setattr(sys, "argv", ["tessera", *args])
    with pytest.raises(SystemExit) as exit_:
        main()
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return exit_.value.code, " ".join(err.replace("│", " ").split())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "churn", "--now", "yesterday"], "Invalid value for '--now'"),
        (["train", "forest"], "'forest' is not one of 'churn', 'cltv', 'next-best-product', 'all'"),
        (
            ["score", "next-best-product", "--out", "s.csv"],
            "'next-best-product' is not one of 'churn', 'cltv'",
        ),
        (["recommend", "--out", "r.csv"], "batch recommendations are for every customer: pass --all"),
        (["serve", "--port", "70000"], "Invalid value for '--port'"),
    ],
)
def test_a_bad_option_is_a_usage_error(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    status, err = tessera(args, capsys, monkeypatch)
    assert status == 2 and message in err


@pytest.mark.parametrize("command", ["run", "ingest", "retrain"])
def test_a_missing_sources_file_is_named(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "sources.yaml"
    status, err = tessera([command, "--sources", str(missing)], capsys, monkeypatch)
    assert status == 2 and f"Invalid value for '--sources': file '{missing}' does not exist" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["resolve"], "no canonical table with person rows in {data}/canonical: run `tessera ingest` first"),
        (["profile"], "{data}/identity/crosswalk.parquet is missing: run `tessera resolve`"),
        (["features", "materialize"], "{data}/profile/customers.parquet is missing: run `tessera profile`"),
        (
            ["train", "churn"],
            "{data}/profile/orders.parquet is missing: run `tessera profile` (or `tessera run`)",
        ),
        (["score", "cltv", "--out", "s.csv"], "no `cltv` champion in the current release of sqlite:///"),
    ],
)
def test_a_workspace_without_the_earlier_steps_says_which_to_run(
    args: list[str],
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    monkeypatch.chdir(tmp_path)  # relative --out paths land here
    status, err = tessera([*args, "--workspace", str(workspace)], capsys, monkeypatch)
    assert status == 2 and f"error: {message.format(data=workspace / 'data')}" in err


def test_evaluating_a_workspace_never_resolved_says_to_resolve_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace, truth = tmp_path / "workspace", tmp_path / "truth.csv"
    workspace.mkdir()
    truth.write_text("source,record_id,person_id\ncrm,1,p1\n")
    status, err = tessera(
        ["resolve", "--evaluate", str(truth), "--workspace", str(workspace)], capsys, monkeypatch
    )
    crosswalk = workspace / "data" / "identity" / "crosswalk.parquet"
    assert (
        status == 2 and f"error: {crosswalk} does not exist: run `tessera resolve` before evaluating" in err
    )


@pytest.mark.parametrize(
    "args",
    [
        ["train", "churn"],
        ["score", "cltv", "--out", "s.csv"],
        ["recommend", "--all", "--out", "r.csv"],
        ["serve", "--port", "3999"],
    ],
)
def test_a_command_on_a_missing_workspace_says_so_and_creates_nothing(
    args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace = tmp_path / "typo"
    monkeypatch.chdir(tmp_path)
    status, err = tessera([*args, "--workspace", str(workspace)], capsys, monkeypatch)
    assert status == 2 and f"error: workspace {workspace} does not exist: run `tessera run" in err
    assert sorted(tmp_path.iterdir()) == []


def test_serving_a_workspace_without_a_feature_store_stops_with_what_to_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A profile but no feature store: the workers could never start, so `serve` stops before starting them."""
    workspace = Workspace(tmp_path / "workspace")
    workspace.profile.mkdir(parents=True)
    pd.DataFrame({"customer_id": ["C1"]}).to_parquet(workspace.profile / "customers.parquet")
    status, err = tessera(
        ["serve", "--port", "3999", "--workspace", str(workspace.root)], capsys, monkeypatch
    )
    assert status == 2 and "error: the feature store has no customer_realtime, customer_profile view" in err
