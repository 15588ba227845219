"""Ingestion: every declared source export into the canonical tables, rejected rows into the quarantine.

The contract is docs/sources.md; `ingest_sources` is the entry point the `tessera ingest` command calls.
"""

from features.ingest.mapping import SourceConfig, SourcesConfig, load_sources
from features.ingest.report import IngestReport, SourceReport
from features.ingest.run import ingest_sources
from features.ingest.transform import canonical_schema, canonicalise

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
