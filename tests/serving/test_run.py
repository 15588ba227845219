"""What `serve_forever` passes to the workers and prints for the demo."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from serving_fixtures import Served

from serving.auth import SCOPES, ApiKeyMiddleware, parse_key_hashes
from serving.run import OVERRIDES, bentoml_overrides, example_ids, example_requests, serve_environment
from serving.settings import ServeSettings


def test_arguments_reach_the_workers_through_the_environment(tmp_path: Path) -> None:
    env = serve_environment(
        tmp_path, 3100, now=datetime(2025, 12, 31, tzinfo=UTC), api_keys=["a", "b"], workers=1
    )
    assert env["TESSERA_SERVE_WORKSPACE"] == str(tmp_path.resolve())
    assert env["TESSERA_SERVE_PORT"] == "3100" and "TESSERA_SERVE_API_KEYS" not in env
    # The keys reach the workers as salted hashes only, each with every scope.
    keys = parse_key_hashes(env["TESSERA_SERVE_API_KEY_HASHES"])
    assert [k.key_id for k in keys] == ["api-1", "api-2"] and all(k.scopes == set(SCOPES) for k in keys)
    assert "a" not in env["TESSERA_SERVE_API_KEY_HASHES"].split(":")
    middleware = ApiKeyMiddleware(app=None, keys=keys)  # type: ignore[arg-type]
    assert middleware.identify(b"b").key_id == "api-2" and middleware.identify(b"c") is None
    assert env["TESSERA_SERVE_NOW"] == "2025-12-31T00:00:00+00:00" and env["TESSERA_SERVE_WORKERS"] == "1"
    assert "TESSERA_SERVE_POLL_SECONDS" not in env


def test_the_settings_reach_bentoml_through_its_own_overrides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bentoml._internal.configuration.containers import BentoMLContainer

    from serving.service import Tessera

    settings = ServeSettings(workspace=tmp_path, workers=3, timeout_seconds=7, access_log=True)
    theirs = '{"services": {"tessera": {"traffic": {"max_concurrency": 9}}}}'
    monkeypatch.setenv(OVERRIDES, bentoml_overrides(settings, theirs))
    Tessera.inject_config()  # what BentoML does in the serving process and in each worker
    config = BentoMLContainer.config.services["tessera"].get()
    assert config["workers"] == 3 and config["threads"] == 4
    assert config["traffic"]["timeout"] == 7 and config["traffic"]["max_concurrency"] == 9
    assert BentoMLContainer.api_server_config.logging.access.enabled.get() is True
    # BentoML's per-path request metrics are off: serving.metrics records by route template instead.
    assert config["metrics"]["namespace"] == "tessera" and config["metrics"]["enabled"] is False


def test_the_example_requests_cover_every_endpoint(served: Served) -> None:
    customer, sku = example_ids(served.workspace)
    assert customer.startswith("T") and sku in served.skus
    text = example_requests("http://127.0.0.1:3000", "secret", customer, sku, served.workspace)
    for path in (
        "/recommend",
        "/events",
        "/similar-items",
        "/churn",
        "/cltv",
        f"/customers/{customer}",
        "/metrics",
    ):
        assert f"http://127.0.0.1:3000{path}" in text
    assert "Bearer secret" in text and f"sqlite:///{served.workspace.mlruns}/mlflow.db" in text
