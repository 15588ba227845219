"""What the steward tests share: the simulated retailer through the real chain (`serving_fixtures.build_chained`),
so that a split or a merge goes through real identity resolution."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from serving_fixtures import CHAIN_NOW as NOW
from serving_fixtures import Chained, copy_workspace, key_hashes

from tessera.core.settings import Workspace

__all__ = ["NOW", "Chained", "copy_chained", "split_candidate", "steward_env"]


def copy_chained(chained: Chained, root: Path) -> Workspace:
    """A copy of the chained workspace with a registry of its own: the copied one names the original's offline
    tables by absolute path, so the copy's feature store would be materialised from the original's (MLflow's
    artefacts: `copy_workspace`)."""
    from features.store import apply_feature_store, open_store
    from features.store.repo import materialize
    from features.store.settings import FeatureStoreSettings

    workspace = copy_workspace(chained.workspace, root)
    (workspace.feature_repo_data / "registry.db").unlink()
    apply_feature_store(workspace, FeatureStoreSettings())
    materialize(open_store(workspace, FeatureStoreSettings()), workspace, NOW, full=True)
    return workspace


def steward_env(workspace: Workspace) -> dict[str, str]:
    """The TESSERA_SERVE_* variables for a service on a chained workspace (plain-HTTP cookies for the tests)."""
    return {
        "TESSERA_SERVE_WORKSPACE": str(workspace.root),
        "TESSERA_SERVE_NOW": NOW.isoformat(),
        "TESSERA_SERVE_API_KEY_HASHES": key_hashes(),
        "TESSERA_SERVE_ACCESS_LOG_PATH": str(workspace.root / "access.jsonl"),
        "TESSERA_SERVE_POLL_SECONDS": "1",
        "TESSERA_SERVE_WORKERS": "1",
        "TESSERA_SERVE_DESK_SECURE_COOKIE": "false",
    }


def split_candidate(workspace: Workspace) -> tuple[str, str, str]:
    """A customer with orders under two or more identity records: (customer id, the record to split off, a record
    that stays). The record split off is one that ordered, so its orders have somewhere to move."""
    records = pd.read_parquet(workspace.identity / "records.parquet")
    ordering = {
        key
        for path in (workspace.canonical / "order_lines").glob("*.parquet")
        for key in pd.read_parquet(path, columns=["identity_key"])["identity_key"].dropna()
    }
    golden = pd.read_parquet(workspace.profile / "customers.parquet").set_index("customer_id")
    per_customer = records.groupby("customer_id")["identity_key"].agg(sorted)
    for customer, keys in per_customer.sort_index().items():
        buying = [k for k in keys if k in ordering]
        if len(keys) >= 2 and buying and golden.loc[customer, "n_orders"] >= 2:
            off = buying[-1]
            kept = next(k for k in keys if k != off)
            return str(customer), off, kept
    raise AssertionError("no customer with two records and orders in the simulated retailer")
