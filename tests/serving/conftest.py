"""Serving fixtures: the training tests' synthetic retailer, with consent withdrawals and a merged id, its
feature store built and the three models trained once; the service's settings point at it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "training"))
from training_fixtures import retailer, write_retailer  # noqa: E402

from features.settings import Settings, Workspace  # noqa: E402
from training.settings import TrainingSettings  # noqa: E402

NOW = datetime(2025, 6, 30, 23, 59, 59, tzinfo=UTC)
API_KEY = "test-key-1"
OTHER_KEY = "test-key-2"


@dataclass(frozen=True)
class Served:
    """The workspace and the customers the tests talk about."""

    workspace: Workspace
    regular: str  # long history, every consent
    buyer: str  # long history, every consent: the live-event tests change its state
    no_personalisation: str  # withdrew consent to personalisation
    no_profiling: str  # withdrew consent to profiling
    merged: str  # an id merged into `survivor`
    survivor: str
    skus: list[str]  # products of the catalogue, most sold first


def _withdraw(workspace: Workspace, customers: pd.DataFrame, withdrawals: dict[str, str]) -> None:
    """Consent records withdrawing a purpose, and the golden records saying the same."""
    at = pd.Timestamp(NOW) - pd.Timedelta(days=30)
    events = pd.DataFrame(
        [
            {
                "customer_id": c,
                "purpose": p,
                "granted": False,
                "recorded_at": at,
                "identifier_type": "email",
                "origin": "test",
                "source": "consents",
            }
            for c, p in withdrawals.items()
        ]
    )
    events.to_parquet(workspace.profile / "consent_events.parquet")
    customers = customers.copy()
    for customer, purpose in withdrawals.items():
        customers.loc[customers["customer_id"] == customer, f"consent_{purpose}"] = False
    customers.to_parquet(workspace.profile / "customers.parquet")


@pytest.fixture(scope="session", autouse=True)
def serving_environment() -> Iterator[None]:
    """The file offline store, no telemetry, no tracking calls home."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TESSERA_FEAST_OFFLINE_STORE", "file")
        patch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        patch.setenv("BENTOML_DO_NOT_TRACK", "true")
        yield


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Served:
    """The retailer as of NOW, its feature store and trained champions (a minute or two, once a session)."""
    from features.store import build_feature_store
    from training.pipelines import train_all

    workspace = Workspace(tmp_path_factory.mktemp("served"))
    tables = retailer(360, NOW, seed=3)
    write_retailer(workspace, tables, NOW)
    orders = tables["orders"][tables["orders"]["ordered_at"] <= pd.Timestamp(NOW)]
    by_orders = (
        orders.groupby("customer_id")["order_id"].nunique().sort_values(ascending=False, kind="stable")
    )
    consenting = tables["customers"].set_index("customer_id")
    consenting = consenting[consenting["consent_profiling"] & consenting["consent_personalisation"]].index
    regular, buyer, no_personalisation, no_profiling, survivor = [
        c for c in by_orders.index if c in consenting
    ][:5]
    _withdraw(
        workspace, tables["customers"], {no_personalisation: "personalisation", no_profiling: "profiling"}
    )
    merged = "T90000"
    pd.DataFrame(
        {"alias_id": [merged], "customer_id": [survivor], "merged_at": [pd.Timestamp(NOW)]}
    ).to_parquet(workspace.identity / "aliases.parquet")
    build_feature_store(workspace, NOW, Settings(workspace=workspace.root))
    settings = TrainingSettings(
        training_cutoffs=3,
        cutoff_spacing_days=45,
        lgbm_n_estimators=60,
        lgbm_min_child_samples=10,
        als_factors=(16,),
        als_regularization=(0.1,),
        als_alpha=(10.0,),
        als_iterations=8,
    )
    train_all(workspace, NOW, settings)
    skus = orders["sku"].value_counts().index.astype(str).tolist()
    return Served(workspace, regular, buyer, no_personalisation, no_profiling, merged, survivor, skus)


def serve_env(served: Served, poll_seconds: float = 0) -> dict[str, str]:
    """The TESSERA_SERVE_* variables for a service on the served workspace."""
    return {
        "TESSERA_SERVE_WORKSPACE": str(served.workspace.root),
        "TESSERA_SERVE_NOW": NOW.isoformat(),
        "TESSERA_SERVE_API_KEYS": f"{API_KEY},{OTHER_KEY}",
        "TESSERA_SERVE_POLL_SECONDS": str(poll_seconds),
        "TESSERA_SERVE_WORKERS": "1",
    }


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


@pytest.fixture
def workspace_env(served: Served) -> dict[str, str]:
    """The full environment for a server subprocess."""
    return {**os.environ, **serve_env(served)}
