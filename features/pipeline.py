"""The chain so far, step after step: ingest → resolve identities → build the profile → quality report."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from features.identity import resolve_identities
from features.ingest import ingest_sources
from features.profile import build_profile
from features.profile.quality import quality_report
from features.settings import Settings, Workspace


def run_chain(sources: Path, workspace: Workspace, now: datetime, settings: Settings | None = None) -> dict:
    """Run every step on the sources declared in `sources`; each step reads what the previous one wrote."""
    settings = settings or Settings()
    ingest = ingest_sources(sources, workspace, settings)
    identity = resolve_identities(workspace, now=now, settings=settings)
    profile = build_profile(workspace, now=now, settings=settings)
    quality = quality_report(workspace, now=now)
    return {
        "workspace": str(workspace.root),
        "ingest": {"ok": ingest.ok, "summary": ingest.summary()},
        "identity": identity,
        "profile": profile,
        "quality": {"identity": quality["identity"], "match_rates": quality["match_rates"]},
        "reports": str(workspace.reports),
    }
