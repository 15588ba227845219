"""`tessera features apply | materialize | docs` on a workspace given with --workspace."""

from __future__ import annotations

import json

from feature_store_fixtures import new_workspace
from typer.testing import CliRunner

from tessera.features_cli import app

EMBEDDED = {
    "TESSERA_FEAST_ONLINE_STORE": "sqlite",
    "TESSERA_FEAST_REGISTRY": "file",
    "TESSERA_FEAST_OFFLINE_STORE": "duckdb",
}


def test_apply_materialize_and_docs_from_the_command_line(tmp_path) -> None:
    workspace = new_workspace(tmp_path / "ws")
    runner = CliRunner()
    applied = runner.invoke(app, ["apply", "--workspace", str(workspace.root)], env=EMBEDDED)
    assert applied.exit_code == 0, applied.output
    assert json.loads(applied.stdout)["feature_services"] == 3
    assert (workspace.feature_repo_data / "feature_store.yaml").exists()

    args = ["materialize", "--workspace", str(workspace.root), "--now", "2025-07-01T00:00:00"]
    materialized = runner.invoke(app, args, env=EMBEDDED)
    assert materialized.exit_code == 0, materialized.output
    summary = json.loads(materialized.stdout)  # nothing but the summary on stdout
    assert summary["tables"]["customer_transactions"]["rows"] > 0
    assert all(how.startswith("full") for how in summary["materialized"].values())

    # An emptied online store: `materialize` writes the tables again, so at the same as-of every view is loaded
    # again whole (the registry alone would say "up to date" and leave the store empty).
    (workspace.feature_repo_data / "online_store.db").unlink()
    assert runner.invoke(app, ["apply", "--workspace", str(workspace.root)], env=EMBEDDED).exit_code == 0
    again = json.loads(runner.invoke(app, args, env=EMBEDDED).stdout)
    assert again["materialized"] == summary["materialized"]
    full = json.loads(runner.invoke(app, [*args, "--full"], env=EMBEDDED).stdout)
    assert full["materialized"] == summary["materialized"]

    out = tmp_path / "features.md"
    documented = runner.invoke(
        app, ["docs", "--workspace", str(workspace.root), "--out", str(out)], env=EMBEDDED
    )
    assert documented.exit_code == 0, documented.output
    assert "`churn_v1`" in out.read_text()


def test_generated_config_keeps_secrets_out(tmp_path) -> None:
    workspace = new_workspace(tmp_path / "ws")
    env = {
        **EMBEDDED,
        "TESSERA_FEAST_ONLINE_STORE": "redis",
        "TESSERA_FEAST_REDIS_URL": "127.0.0.1:6379,password=s3cret",
    }
    from features.store.config import write_config
    from features.store.settings import FeatureStoreSettings

    settings = FeatureStoreSettings(
        _env_file=None, **{k.removeprefix("TESSERA_FEAST_").lower(): v for k, v in env.items()}
    )
    text = write_config(workspace, settings).read_text()
    assert "s3cret" not in text and "${TESSERA_FEAST_REDIS_URL}" in text
