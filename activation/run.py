"""Refreshing every segment after a run: attributes from the profile and the champions, then membership.

`tessera.pipeline.run` calls `refresh_segments` at its end (so `run`, `retrain` and `demo` refresh), and so
does `tessera segments refresh`.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from activation.attributes import champion_scores, compute_attributes
from activation.membership import evaluate, refresh
from activation.segments import Plan, load_segments
from activation.settings import ActivationSettings, membership_db
from activation.store import connect
from activation.triggers import TriggerSpec, load_triggers
from tessera.core.errors import InputError
from tessera.core.settings import Settings, Workspace

if TYPE_CHECKING:
    from features.store.settings import FeatureStoreSettings


def declarations(settings: ActivationSettings) -> tuple[Plan, tuple[TriggerSpec, ...]]:
    """The checked segments and triggers the settings name."""
    plan = load_segments(settings.segments)
    return plan, load_triggers(settings.triggers, plan)


def refresh_segments(
    workspace: Workspace,
    now: datetime,
    settings: Settings,
    store_settings: FeatureStoreSettings,
    activation: ActivationSettings,
) -> dict[str, Any]:
    """Every segment's membership as of `now`; entries, exits and the activations they decide are stored."""
    plan, triggers = declarations(activation)
    scores = champion_scores(workspace, now, settings, store_settings, activation)
    attributes = compute_attributes(
        workspace, plan.counts, now, scores, activation.risk_bands, activation.value_band_quantiles
    )
    con = connect(membership_db(workspace))
    try:
        return refresh(con, plan, triggers, attributes, now)
    finally:
        con.close()


def stored_attributes(workspace: Workspace) -> pd.DataFrame:
    """The attributes table of the last refresh (with live updates since)."""
    path = membership_db(workspace)
    if not path.exists():
        raise InputError(f"{path} is missing: run `tessera segments refresh` (or `tessera run`) first")
    con = connect(path)
    try:
        return pd.read_sql_query("SELECT * FROM attributes", con)
    except pd.errors.DatabaseError:
        raise InputError(f"{path} holds no attributes: run `tessera segments refresh` first") from None
    finally:
        con.close()


def preview_segment(
    workspace: Workspace, activation: ActivationSettings, name: str, now: datetime, limit: int
) -> dict[str, Any]:
    """One segment evaluated now over the stored attributes; nothing is stored."""
    plan, _ = declarations(activation)
    segment = plan.get(name)
    if segment is None:
        raise InputError(f"unknown segment {name!r}: declared are {', '.join(plan.names)}")
    attributes = stored_attributes(workspace)
    missing = [c.column for c in segment.rule.counts if c.column not in attributes.columns]
    if missing:
        raise InputError(
            f"segment {name!r} needs {', '.join(missing)}, which the last refresh did not compute: "
            "run `tessera segments refresh`"
        )
    evaluated = evaluate(Plan((segment,)), attributes, now)
    ids = evaluated.loc[evaluated[f"member_{name}"].astype(bool), "customer_id"].tolist()
    return {
        "segment": name,
        "rule": " ".join(segment.spec.rule.split()),
        "members": len(ids),
        "sample": ids[:limit],
    }
