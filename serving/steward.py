"""Steward actions: split a record off a customer, merge two customers; each recorded, then applied at once.

A decision (features/identity/decisions.py) is checked against the last resolution (an alias names its
survivor), appended to `data/identity/decisions.parquet` with who made it (the API key id), when and why, then
applied by the steps after ingest: identity resolution (incremental: only the decided records' components are
re-clustered; the decision holds in every later run too), the profile, and the feature store (offline tables
recomputed, the online store materialised in full). The running service re-reads the profile and identity files on its poll, or at once when
the caller asks its watcher, so the 360 view, scores and recommendations follow without a restart.

It sits in `serving` for the same reason as erasure: the lowest part of the tree that may import identity,
profile and the feature store together, and that the service (`POST /identity/...`, the desk) may import.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from features.identity import resolve_customer_id, resolve_identities
from features.identity.decisions import (
    UnknownCustomer,
    merge_decision,
    record_decision,
    split_decision,
)
from features.profile import build_profile
from features.store.build import materialize_feature_store
from features.store.settings import FeatureStoreSettings
from tessera.core.errors import InputError
from tessera.core.lock import WorkspaceBusy
from tessera.core.settings import Settings, Workspace


@dataclass(frozen=True)
class Applied:
    """A decision made and applied: its id, and where each record of it is now."""

    decision_id: str
    customer_id: str  # the customer left in place: the one split from, or the merge's survivor
    customers: dict[str, str]  # identity key -> customer id after the decision
    seconds: dict[str, float]  # per step, wall time


def refusal_status(exc: InputError | WorkspaceBusy) -> int:
    """The HTTP status of a decision refused: 404 an unknown id, 409 a busy workspace, 422 any other."""
    if isinstance(exc, UnknownCustomer):
        return 404
    return 409 if isinstance(exc, WorkspaceBusy) else 422


def _live(workspace: Workspace, customer_id: str, field: str) -> str:
    live = resolve_customer_id(workspace, customer_id)
    if live is None:
        raise UnknownCustomer(f"{field}: unknown customer {customer_id!r}")
    return live


def _records(workspace: Workspace) -> pd.DataFrame:
    path = workspace.identity / "records.parquet"
    if not path.exists():
        raise UnknownCustomer(f"{path}: no identity resolution yet (run `tessera resolve`)")
    return pd.read_parquet(path, columns=["identity_key", "customer_id"])


def split(
    workspace: Workspace, customer_id: str, identity_key: str, reason: str, by: str, now: datetime
) -> pd.DataFrame:
    """The rows of a split of record `identity_key` off `customer_id` (any id it was ever known by)."""
    live = _live(workspace, customer_id, "customer_id")
    return split_decision(_records(workspace), live, identity_key, reason, by, now)


def merge(
    workspace: Workspace, customer_ids: tuple[str, str], reason: str, by: str, now: datetime
) -> pd.DataFrame:
    """The rows of a merge of two customers (any ids they were ever known by)."""
    live = (
        _live(workspace, customer_ids[0], "customer_ids"),
        _live(workspace, customer_ids[1], "customer_ids"),
    )
    return merge_decision(_records(workspace), live, reason, by, now)


def apply_decision(
    workspace: Workspace,
    rows: pd.DataFrame,
    now: datetime,
    settings: Settings,
    store_settings: FeatureStoreSettings,
) -> Applied:
    """Record the decision, then re-derive identities, the profile and the feature store as of `now`.

    The caller holds the workspace's write lock.
    """
    record_decision(workspace.identity, rows)
    seconds: dict[str, float] = {}
    steps: list[tuple[str, Any]] = [
        ("resolve", lambda: resolve_identities(workspace, now, settings)),
        ("profile", lambda: build_profile(workspace, now, settings)),
        # At the same `now` (a served `TESSERA_SERVE_NOW`, or the demo's as-of) the rewritten tables are loaded whole.
        ("feature store", lambda: materialize_feature_store(workspace, now, settings, store_settings)),
    ]
    for name, step in steps:
        started = time.perf_counter()
        step()
        seconds[name] = round(time.perf_counter() - started, 2)
    after = _records(workspace)
    owner = dict(zip(after["identity_key"], after["customer_id"], strict=True))
    staying = rows.loc[rows["side"] != "off", "identity_key"].iloc[0]
    return Applied(
        decision_id=str(rows["decision_id"].iloc[0]),
        customer_id=owner[staying],
        customers={key: owner[key] for key in rows["identity_key"] if key in owner},
        seconds=seconds,
    )
