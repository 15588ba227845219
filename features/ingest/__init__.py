"""Ingestion: every declared source export into the canonical tables, rejected rows into the quarantine.

The contract is docs/sources.md; `ingest_sources` is the entry point the `tessera ingest` command calls.

The names below are imported when first used (PEP 562): `tessera resolve` reads only ingest's manifest
(`features.ingest.manifest`), and importing the readers would load SQLAlchemy for nothing (0.5 s of CPU).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from features.ingest.mapping import SourceConfig, SourcesConfig, load_sources
    from features.ingest.report import IngestReport, SourceReport
    from features.ingest.run import ingest_sources
    from features.ingest.transform import canonical_schema, canonicalise

_MODULES = {
    "IngestReport": "report",
    "SourceConfig": "mapping",
    "SourceReport": "report",
    "SourcesConfig": "mapping",
    "canonical_schema": "transform",
    "canonicalise": "transform",
    "ingest_sources": "run",
    "load_sources": "mapping",
}
__all__ = [
    "IngestReport",
    "SourceConfig",
    "SourceReport",
    "SourcesConfig",
    "canonical_schema",
    "canonicalise",
    "ingest_sources",
    "load_sources",
]


def __getattr__(name: str) -> Any:
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"features.ingest.{_MODULES[name]}"), name)
    globals()[name] = value  # looked up once
    return value
