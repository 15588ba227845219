"""Serving fixtures: the served workspace and the chained one (each built once a session), and the service on
the served one."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from serving_fixtures import EMBEDDED, Chained, Served, build_chained, build_served, redis_copy, serve_env


@pytest.fixture(scope="session", autouse=True)
def serving_environment() -> Iterator[None]:
    """The offline store users get by default (DuckDB) whatever the environment says; no telemetry."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TESSERA_FEAST_OFFLINE_STORE", "duckdb")
        patch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        patch.setenv("BENTOML_DO_NOT_TRACK", "true")
        yield


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Served:
    """The retailer, its feature store and trained champions (under a minute, once a session)."""
    return build_served(tmp_path_factory.mktemp("served"))


@pytest.fixture(scope="session")
def chained(tmp_path_factory: pytest.TempPathFactory) -> Chained:
    """A simulated retailer through the whole chain and the three models, on the embedded stores: real
    identities for the erasure and steward tests. Shared read-only: a test that writes works on a copy."""
    return build_chained(tmp_path_factory.mktemp("chained"), EMBEDDED)


@pytest.fixture(scope="session")
def served_on_redis(
    served: Served, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Served, dict]]:
    """The served workspace copied onto Redis under a Feast project of its own (removed afterwards, keys and all),
    and the environment a service on it needs."""
    from features.store import open_store
    from features.store.repo import teardown_project
    from features.store.settings import FeatureStoreSettings

    settings = FeatureStoreSettings(project=f"tessera_test_{uuid.uuid4().hex[:10]}", online_store="redis")
    copy = redis_copy(served, tmp_path_factory.mktemp("redis") / "served", settings)
    try:
        yield copy, {"TESSERA_FEAST_ONLINE_STORE": "redis", "TESSERA_FEAST_PROJECT": settings.project}
    finally:
        teardown_project(open_store(copy.workspace, settings))


@pytest.fixture(scope="session")
def serving_settings(served: Served) -> Iterator[None]:
    """The service's environment, for services created in this process."""
    with pytest.MonkeyPatch.context() as patch:
        for key, value in serve_env(served).items():
            patch.setenv(key, value)
        yield


@pytest.fixture(scope="session")
def service(serving_settings: None) -> Iterator[object]:
    """One Tessera service instance, called directly (no HTTP)."""
    from serving.service import Tessera

    instance = Tessera()
    yield instance
    instance.close()
