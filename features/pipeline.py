"""The features chain, step after step: ingest → resolve identities → profile → quality report → feature store.

Training comes after it (`training.pipelines.train_all`); `tessera run` calls both.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from features.identity import resolve_identities
from features.ingest import ingest_sources
from features.profile import build_profile
from features.profile.quality import quality_report
from features.settings import Settings, Workspace
from features.store import build_feature_store
from features.store.settings import FeatureStoreSettings


def run_chain(
    sources: Path,
    workspace: Workspace,
    now: datetime,
    settings: Settings,
    store_settings: FeatureStoreSettings,
) -> dict:
    """Run every step on the sources declared in `sources`; each step reads what the previous one wrote."""
    ingest = ingest_sources(sources, workspace, settings)
    identity = resolve_identities(workspace, now=now, settings=settings)
    profile = build_profile(workspace, now=now, settings=settings)
    quality = quality_report(workspace, now=now)
    feature_store = build_feature_store(workspace, now, settings, store_settings)
    return {
        "workspace": str(workspace.root),
        "ingest": {"ok": ingest.ok, "summary": ingest.summary()},
        "identity": identity,
        "profile": profile,
        "quality": {"identity": quality["identity"], "match_rates": quality["match_rates"]},
        "feature_store": feature_store,
        "reports": str(workspace.reports),
    }
