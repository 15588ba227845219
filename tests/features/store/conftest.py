"""Feature-store fixtures: built stores on the hand-made profile, embedded and production (Redis + PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from feature_store_fixtures import build, embedded_settings, new_workspace, production_settings

from features.store import open_store
from features.store.repo import teardown_project
from features.store.settings import FeatureStoreSettings
from tessera.core.settings import Workspace


@pytest.fixture(scope="session")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, FeatureStoreSettings, dict]:
    """The full hand-made retailer, built into an embedded store (SQLite, file registry)."""
    workspace = new_workspace(tmp_path_factory.mktemp("embedded"))
    settings = embedded_settings()
    return workspace, settings, build(workspace, settings)


@pytest.fixture(scope="session")
def production(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Workspace, FeatureStoreSettings, dict]]:
    """The same retailer built into Redis and a PostgreSQL registry, under a project of its own."""
    workspace = new_workspace(tmp_path_factory.mktemp("production"))
    settings = production_settings()
    try:
        yield workspace, settings, build(workspace, settings)
    finally:
        teardown_project(open_store(workspace, settings))


@pytest.fixture(params=["embedded", pytest.param("production", marks=pytest.mark.integration)])
def built(request: pytest.FixtureRequest) -> tuple[Workspace, FeatureStoreSettings, dict]:
    """Each of the two built stores in turn."""
    return request.getfixturevalue(request.param)


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return new_workspace(tmp_path)
