"""Training fixtures: a synthetic retailer's profile with a built feature store, and the models trained on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from training_fixtures import NOW, retailer, small_settings, write_retailer

from features.store.settings import FeatureStoreSettings
from tessera.core.settings import Settings, Workspace


@pytest.fixture(scope="session", autouse=True)
def embedded_feature_store() -> Iterator[None]:
    """The offline store users get by default (DuckDB) whatever the environment says; no MLflow telemetry."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TESSERA_FEAST_OFFLINE_STORE", "duckdb")
        patch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        yield


@pytest.fixture(scope="session")
def tables() -> dict:
    """The synthetic retailer's tables, future included (360 customers)."""
    return retailer(360, NOW, seed=3)


@pytest.fixture(scope="session")
def built_workspace(tmp_path_factory: pytest.TempPathFactory, tables: dict) -> Workspace:
    """The synthetic retailer as of NOW with its feature store built (no models yet)."""
    from features.store import build_feature_store

    workspace = Workspace(tmp_path_factory.mktemp("retailer"))
    write_retailer(workspace, tables, NOW)
    build_feature_store(workspace, NOW, Settings(workspace=workspace.root), FeatureStoreSettings())
    return workspace


@pytest.fixture(scope="session")
def trained(built_workspace: Workspace) -> tuple[Workspace, dict]:
    """The three models trained and registered once; tests that add versions only assert relative changes."""
    from tessera.pipeline import train_all

    return built_workspace, train_all(built_workspace, NOW, small_settings(), FeatureStoreSettings())


@pytest.fixture
def empty_workspace(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path)
