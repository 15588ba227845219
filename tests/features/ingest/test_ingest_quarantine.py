"""Rejected rows: each quarantined with its data row, the retailer's field and a reason; counts add up."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from features.ingest import ingest_sources

ORDERS = (
    "OrderNo,CustomerId,OrderDate,Sku,Qty,UnitPrice\n"
    "A1,C1,01/02/2024 10:00,S1,2,3.50\n"
    "A2,C1,31/02/2024 10:00,S2,1,1.00\n"
    "A3,C2,02/02/2024 11:00,S3,1\n"
    "A4,C2,02/02/2024 12:00,S4,1,-1.00\n"
    "A5,,03/02/2024,S5,1,2.00\n"
    ",C3,03/02/2024 09:00,S6,1,2.00\n"
    "A7,C3,03/02/2024 09:00,,1,2.00\n"
)
SOURCE = {
    "name": "webshop",
    "type": "order_lines",
    "path": "orders.csv",
    "format": "csv",
    "date_formats": ["%d/%m/%Y %H:%M", "%d/%m/%Y"],
    "columns": {
        "order_id": "OrderNo",
        "customer_ref": "CustomerId",
        "ordered_at": "OrderDate",
        "sku": "Sku",
        "quantity": "Qty",
        "unit_price": "UnitPrice",
    },
}


def test_bad_rows_are_quarantined_with_row_field_and_reason(
    tmp_path: Path, workspace, settings, write_mapping
) -> None:
    (tmp_path / "orders.csv").write_text(ORDERS, encoding="utf-8")
    report = ingest_sources(write_mapping(SOURCE), workspace, settings)

    quarantine = pd.read_parquet(workspace.quarantine_table("webshop")).set_index("source_row")
    assert list(quarantine.index) == [2, 3, 4, 6]
    assert quarantine.loc[2, "field"] == "OrderDate"
    assert quarantine.loc[2, "reason"] == (
        "unparseable date '31/02/2024 10:00' in column 'OrderDate'; expected one of %d/%m/%Y %H:%M, %d/%m/%Y"
    )
    assert json.loads(quarantine.loc[2, "raw"])["OrderDate"] == "31/02/2024 10:00"
    assert quarantine.loc[3, "field"] is None
    assert quarantine.loc[3, "reason"] == "wrong number of fields: data row 3 has 5 fields; expected 6"
    assert json.loads(quarantine.loc[3, "raw"]) == {"_line": "A3,C2,02/02/2024 11:00,S3,1"}
    assert quarantine.loc[4, "field"] == "UnitPrice"
    assert quarantine.loc[4, "reason"] == "negative price '-1.00' in column 'UnitPrice'; expected 0 or more"
    assert quarantine.loc[6, "field"] == "OrderNo"
    assert quarantine.loc[6, "reason"].startswith("required value missing: column 'OrderNo' (order_id)")
    assert set(quarantine["source"]) == {"webshop"}

    (source,) = report.sources
    assert (source.rows_read, source.rows_loaded, source.rows_quarantined) == (7, 3, 4)
    assert source.reasons == {
        "unparseable date": 1,
        "wrong number of fields": 1,
        "negative price": 1,
        "required value missing": 1,
    }
    assert report.ok

    loaded = pd.read_parquet(workspace.canonical_file("order_lines", "webshop"))
    assert list(loaded["source_row"]) == [1, 5, 7]
    assert loaded["ordered_at"].iloc[1] == pd.Timestamp("2024-02-03", tz="UTC")
    # A line without a product is an order line all the same (docs/sources.md, "Orders without products").
    assert loaded["sku"].isna().tolist() == [False, False, True]


def test_report_is_written_as_json_and_text(tmp_path: Path, workspace, settings, write_mapping) -> None:
    (tmp_path / "orders.csv").write_text(ORDERS, encoding="utf-8")
    report = ingest_sources(write_mapping(SOURCE), workspace, settings)

    written = json.loads((workspace.reports / "ingest.json").read_text())
    assert written["ok"] is True
    assert written["sources"][0]["rows_quarantined"] == 4
    text = (workspace.reports / "ingest.txt").read_text()
    assert "7 read, 3 loaded, 4 quarantined" in text
    assert report.summary() in text


def test_report_notices_rows_unaccounted_for() -> None:
    from datetime import UTC, datetime

    from features.ingest import IngestReport, SourceReport

    lost = SourceReport(
        name="s", type="contacts", read_from=["x.csv"], rows_read=3, rows_loaded=1, output="", quarantine=""
    )
    report = IngestReport(mapping="sources.yaml", started_at=datetime.now(UTC), sources=[lost])
    assert not report.ok
    assert "UNACCOUNTED" in report.summary()
