"""Headerless exports whose fields are separated by runs of blanks, like the CDNOW purchase log."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from features.ingest import ingest_sources
from tessera.core.errors import InputError
from tessera.core.settings import Settings, Workspace

LOG = """ 00004 0001 19970101  2   29.33
 00004 0001 19970118  2   29.73

 00018 0002 19970102  1   15.36 EXTRA
 00021 0003 19970101  3   34.54
"""

MAPPING = """version: 1
sources:
  - name: log
    type: order_lines
    path: log.txt
    format: csv
    header: false
    column_names: [master_id, sample_id, date, cds, dollars]
    delimiter: whitespace
    date_formats: ["%Y%m%d"]
    columns: {customer_ref: master_id, order_id: date, ordered_at: date, quantity: cds, unit_price: dollars}
    constants: {sku: CD}
"""


def test_runs_of_blanks_separate_fields_and_a_bad_line_is_quarantined(tmp_path: Path) -> None:
    (tmp_path / "log.txt").write_text(LOG)
    (tmp_path / "sources.yaml").write_text(MAPPING)
    workspace = Workspace(tmp_path / "ws")
    report = ingest_sources(tmp_path / "sources.yaml", workspace, Settings())
    lines = pd.read_parquet(workspace.canonical_file("order_lines", "log"))
    quarantine = pd.read_parquet(workspace.quarantine_table("log"))
    assert report.ok and report.sources[0].rows_read == 4  # the blank line is not a row
    assert list(lines["customer_ref"]) == ["00004", "00004", "00021"]
    assert list(lines["unit_price"]) == [29.33, 29.73, 34.54]
    assert list(quarantine["source_row"]) == [3]
    assert "has 6 fields; expected 5" in quarantine["reason"].iloc[0]


def test_a_headerless_export_needs_its_column_names(tmp_path: Path) -> None:
    (tmp_path / "log.txt").write_text(LOG)
    (tmp_path / "sources.yaml").write_text(
        MAPPING.replace("    column_names: [master_id, sample_id, date, cds, dollars]\n", "")
    )
    with pytest.raises(InputError, match="column_names"):
        ingest_sources(tmp_path / "sources.yaml", Workspace(tmp_path / "ws"), Settings())
