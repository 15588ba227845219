"""What the serving tests share (a module of its own: `from conftest import` is ambiguous across test folders).

The retailer is the training tests' synthetic one (`tests/training/training_fixtures.py`), with two consent
withdrawals and a merged id added, its feature store built and the three models trained.
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "training"))
from training_fixtures import NOW, retailer, small_settings, write_retailer  # noqa: E402

from features.store.settings import FeatureStoreSettings  # noqa: E402
from tessera.core.settings import Settings, Workspace  # noqa: E402

API_KEY = "test-key-1"
OTHER_KEY = "test-key-2"
READ_KEY = "test-key-read"
EVENTS_KEY = "test-key-events"
ADMIN_KEY = "test-key-admin"
STEWARD_KEY = "test-key-steward"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
# Key id, scopes, key: two keys with the shop's scopes (a rotation), one key per scope alone.
KEYS = (
    ("shop-1", ("read", "events"), API_KEY),
    ("shop-2", ("read", "events"), OTHER_KEY),
    ("desk", ("read",), READ_KEY),
    ("tracker", ("events",), EVENTS_KEY),
    ("ops", ("admin",), ADMIN_KEY),
    ("steward", ("read", "admin"), STEWARD_KEY),  # the desk's steward actions: viewing and acting
)
__all__ = [
    "ADMIN_KEY",
    "API_KEY",
    "AUTH",
    "CHAIN_NOW",
    "Chained",
    "EMBEDDED",
    "EVENTS_KEY",
    "KEYS",
    "NOW",
    "OTHER_KEY",
    "READ_KEY",
    "STEWARD_KEY",
    "Served",
    "build_chained",
    "build_served",
    "copy_workspace",
    "key_hashes",
    "redis_copy",
    "serve_env",
]


def key_hashes() -> str:
    """TESSERA_SERVE_API_KEY_HASHES for the test keys (salts derived from the ids: the same every run)."""
    import hashlib

    from serving.auth import hashed_key

    return ",".join(
        hashed_key(key_id, scopes, key, hashlib.sha256(key_id.encode()).digest()[:16]).entry()
        for key_id, scopes, key in KEYS
    )


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
    skus: list[str]  # products sold, most sold first
    scored_live: str  # long history, every consent: only the kept-scores tests send it live events


def _withdraw(workspace: Workspace, customers: pd.DataFrame, withdrawals: dict[str, str]) -> None:
    """Consent records withdrawing a purpose, and the golden records saying the same."""
    at = pd.Timestamp(NOW) - pd.Timedelta(days=30)
    pd.DataFrame(
        [
            {
                "customer_id": customer,
                "purpose": purpose,
                "granted": False,
                "recorded_at": at,
                "identifier_type": "email",
                "origin": "test",
                "source": "consents",
            }
            for customer, purpose in withdrawals.items()
        ]
    ).to_parquet(workspace.profile / "consent_events.parquet")
    customers = customers.copy()
    for customer, purpose in withdrawals.items():
        customers.loc[customers["customer_id"] == customer, f"consent_{purpose}"] = False
    customers.to_parquet(workspace.profile / "customers.parquet")


def build_served(root: Path) -> Served:
    """Write the retailer as of NOW into `root`, build its feature store and train the champions."""
    from features.store import build_feature_store
    from tessera.pipeline import train_all

    workspace = Workspace(root)
    tables = retailer(360, NOW, seed=3)
    write_retailer(workspace, tables, NOW)
    orders = tables["orders"][tables["orders"]["ordered_at"] <= pd.Timestamp(NOW)]
    by_orders = (
        orders.groupby("customer_id")["order_id"].nunique().sort_values(ascending=False, kind="stable")
    )
    flags = tables["customers"].set_index("customer_id")
    consenting = set(flags.index[flags["consent_profiling"] & flags["consent_personalisation"]])
    regular, buyer, no_personalisation, no_profiling, survivor, scored_live = [
        c for c in by_orders.index if c in consenting
    ][:6]
    _withdraw(
        workspace, tables["customers"], {no_personalisation: "personalisation", no_profiling: "profiling"}
    )
    merged = "T90000"
    pd.DataFrame(
        {"alias_id": [merged], "customer_id": [survivor], "merged_at": [pd.Timestamp(NOW)]}
    ).to_parquet(workspace.identity / "aliases.parquet")
    store_settings = FeatureStoreSettings()
    build_feature_store(workspace, NOW, Settings(workspace=workspace.root), store_settings)
    train_all(workspace, NOW, small_settings(), store_settings)
    skus = orders["sku"].value_counts().index.astype(str).tolist()
    return Served(
        workspace, regular, buyer, no_personalisation, no_profiling, merged, survivor, skus, scored_live
    )


def copy_workspace(source: Workspace, root: Path) -> Workspace:
    """A copy of a workspace for a test that writes (its MLflow store names the copy's own artefacts once opened:
    `training.tracking.follow_moved_workspace`; Feast's file registry its own tables: `features.store.open_store`)."""
    shutil.copytree(source.root, root)
    return Workspace(root)


def redis_copy(served: Served, root: Path, store_settings: FeatureStoreSettings) -> Served:
    """A copy of the served workspace (the same tables and champions) whose online store is Redis alone, loaded
    under the settings' project."""
    from features.store import apply_feature_store, open_store
    from features.store.repo import materialize

    workspace = copy_workspace(served.workspace, root)
    (workspace.feature_repo_data / "online_store.db").unlink()
    apply_feature_store(workspace, store_settings)
    materialize(open_store(workspace, store_settings), workspace, NOW)
    return dataclasses.replace(served, workspace=workspace)


def workspace_env(workspace: Workspace, poll_seconds: float = 0) -> dict[str, str]:
    """The TESSERA_SERVE_* variables for one worker serving `workspace` as of NOW with the test keys."""
    return {
        "TESSERA_SERVE_WORKSPACE": str(workspace.root),
        "TESSERA_SERVE_NOW": NOW.isoformat(),
        "TESSERA_SERVE_API_KEY_HASHES": key_hashes(),
        "TESSERA_SERVE_POLL_SECONDS": str(poll_seconds),
        "TESSERA_SERVE_WORKERS": "1",
    }


def serve_env(served: Served, poll_seconds: float = 0) -> dict[str, str]:
    """The TESSERA_SERVE_* variables for a service on the served workspace, its accesses logged in it."""
    access_log = str(served.workspace.root / "access.jsonl")
    return {**workspace_env(served.workspace, poll_seconds), "TESSERA_SERVE_ACCESS_LOG_PATH": access_log}


def service_in_process(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The BentoML service class instantiated here on `workspace` (called directly: BentoML's HTTP metrics are set
    up once a process, by the `to_asgi` tests' app). Close it."""
    from serving.service import Tessera

    for key, value in workspace_env(workspace).items():
        monkeypatch.setenv(key, value)
    return Tessera()


CHAIN_NOW = datetime(2025, 7, 1, tzinfo=UTC)
# The embedded stores (SQLite online store, file registry, DuckDB), named whatever the environment says.
EMBEDDED = FeatureStoreSettings(online_store="sqlite", registry="file", offline_store="duckdb")


@dataclass(frozen=True)
class Chained:
    """A simulated retailer's exports and a workspace built from them through the whole chain."""

    workspace: Workspace
    sources: Path  # the exports' sources.yaml


def build_chained(root: Path, store_settings: FeatureStoreSettings) -> Chained:
    """300 simulated customers (seed 12) through `tessera.pipeline.run` as of CHAIN_NOW: real ingestion, identity
    resolution, profile, feature store and the three models."""
    from simulator import simulate_retailer
    from simulator.config import profile_config
    from tessera.pipeline import run

    exports = root / "exports"
    simulate_retailer(
        customers=300, seed=12, out=exports, as_of=date(2025, 6, 30), config=profile_config("default", 12)
    )
    workspace = Workspace(root / "ws")
    run(
        exports / "sources.yaml",
        workspace,
        CHAIN_NOW,
        Settings(workspace=workspace.root),
        store_settings,
        small_settings(min_customers=50),
    )
    return Chained(workspace, exports / "sources.yaml")
