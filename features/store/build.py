"""The feature-store step of the chain: profile → offline tables → registry → online store."""

from __future__ import annotations

import time
from datetime import datetime

from features.profile.snapshots import write_feature_tables
from features.store.config import offline_folder
from features.store.repo import apply_declarations, materialize, open_store
from features.store.settings import FeatureStoreSettings
from tessera.core.settings import Settings, Workspace
from tessera.core.timeutil import as_utc


def apply_feature_store(workspace: Workspace, store_settings: FeatureStoreSettings) -> dict:
    """Write feature_store.yaml and register the declarations (`tessera features apply`)."""
    store = open_store(workspace, store_settings)
    applied = apply_declarations(store, workspace)
    return {"project": store.project, "config": _describe(store_settings), **applied}


def materialize_feature_store(
    workspace: Workspace,
    now: datetime,
    settings: Settings,
    store_settings: FeatureStoreSettings,
    full: bool = False,
) -> dict:
    """Recompute the offline tables from the profile as of `now`, then materialise up to `now`.

    Incrementally from each view's previous end, or from the start with `full` (an emptied online store).
    """
    now = as_utc(now)
    started = time.perf_counter()
    tables = write_feature_tables(
        workspace,
        now,
        settings.consent_defaults,
        offline_folder(workspace),
        store_settings.duckdb_memory_limit,
    )
    computed = time.perf_counter()
    store = open_store(workspace, store_settings)
    materialized = materialize(store, workspace, now, full=full)
    return {
        "as_of": now.isoformat(),
        "tables": tables["tables"],
        "profile_inputs": tables["inputs"],
        "materialized": materialized,
        "seconds": {
            "tables": round(computed - started, 2),
            "materialize": round(time.perf_counter() - computed, 2),
        },
    }


def build_feature_store(
    workspace: Workspace,
    now: datetime,
    settings: Settings,
    store_settings: FeatureStoreSettings,
) -> dict:
    """Compute the feature tables from the profile as of `now`, apply the declarations and materialise."""
    applied = apply_feature_store(workspace, store_settings)
    built = materialize_feature_store(workspace, now, settings, store_settings)
    return {"applied": applied, **built}


def _describe(settings: FeatureStoreSettings) -> dict[str, str]:
    return {
        "online_store": settings.online_store,
        "registry": settings.registry,
        "offline_store": settings.offline_store,
    }
