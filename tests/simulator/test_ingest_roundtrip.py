"""The simulated exports through real ingestion: accepted, nothing quarantined, record ids as in the truth."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest

from features.ingest import ingest_sources
from tessera.core.settings import Settings, Workspace


@pytest.mark.integration
@pytest.mark.parametrize("mapping", ["sources.yaml", "sources_full.yaml"])
def test_ingestion_accepts_everything_and_agrees_with_the_truth(
    out: Path, truth: pd.DataFrame, tmp_path: Path, mapping: str
) -> None:
    workspace = Workspace(tmp_path)
    ingest_sources(out / mapping, workspace, Settings())
    quarantined = list(workspace.quarantine.glob("*.parquet"))
    rejected = sum(len(pd.read_parquet(p)) for p in quarantined)
    assert rejected == 0
    found = duckdb.sql(
        f"""SELECT DISTINCT source, record_id
            FROM read_parquet('{workspace.canonical}/*/*.parquet', union_by_name=true)
            WHERE record_id IS NOT NULL AND source <> 'consents'"""
    ).df()
    if mapping == "sources.yaml":
        truth = truth[~truth["source"].str.endswith("_later")]
    assert set(map(tuple, found.to_numpy())) == set(map(tuple, truth[["source", "record_id"]].to_numpy()))
