"""Serving fixtures: the served workspace (built once a session) and the service on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from serving_fixtures import Served, build_served, serve_env


@pytest.fixture(scope="session", autouse=True)
def serving_environment() -> Iterator[None]:
    """The file offline store (nothing beyond the locked dependencies), no telemetry."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TESSERA_FEAST_OFFLINE_STORE", "file")
        patch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        patch.setenv("BENTOML_DO_NOT_TRACK", "true")
        yield


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Served:
    """The retailer, its feature store and trained champions (under a minute, once a session)."""
    return build_served(tmp_path_factory.mktemp("served"))


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
