"""Excel workbooks (typed cells, several sheets that overlap) and compressed text exports, read as a user hands
them over: no conversion to CSV first."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from features.ingest import ingest_sources, load_sources
from tessera.core.errors import InputError

LINES = {
    "order_id": "Invoice",
    "sku": "StockCode",
    "quantity": "Quantity",
    "ordered_at": "InvoiceDate",
    "unit_price": "Price",
    "customer_ref": "Customer ID",
}


def year(first_invoice: int, start: dt.datetime, rows: int) -> pd.DataFrame:
    """An Online Retail-shaped sheet: invoice numbers with cancellations (C...), product codes of digits or
    letters, whole-number customer ids written as numbers with gaps, date-times (a midnight among them)."""
    return pd.DataFrame(
        {
            "Invoice": [f"C{first_invoice + i}" if i % 4 == 3 else first_invoice + i for i in range(rows)],
            "StockCode": [85123 if i % 2 else "85123A" for i in range(rows)],
            "Quantity": [-1 if i % 4 == 3 else i + 1 for i in range(rows)],
            "InvoiceDate": [start + dt.timedelta(hours=6 * i) for i in range(rows)],
            "Price": [2.55] * rows,
            "Customer ID": [None if i % 3 == 0 else 17850.0 + i for i in range(rows)],
        }
    )


def workbook(path: Path, sheets: dict[str, pd.DataFrame]) -> Path:
    with pd.ExcelWriter(path, engine="xlsxwriter") as writer:
        for name, frame in sheets.items():
            frame.to_excel(writer, sheet_name=name, index=False)
    return path


def orders(path: str, **options: object) -> dict:
    cancellations = {"by": "id_prefix", "prefix": "C"}
    return {
        "name": "retail",
        "type": "order_lines",
        "path": path,
        "id_namespace": "retail",
        "columns": LINES,
    } | {
        "cancellations": cancellations,
        **options,
    }


def test_an_excel_workbook_keeps_its_cells_types_and_reads_overlapping_sheets_once(
    tmp_path: Path, workspace, settings, write_mapping
) -> None:
    first = year(489434, dt.datetime(2009, 12, 1), 6)  # the first at midnight: calamine gives it as a date
    second = pd.concat([first.tail(2), year(600000, dt.datetime(2010, 12, 20, 9), 3)])  # two rows overlap
    workbook(tmp_path / "online_retail_II.xlsx", {"Year 2009-2010": first, "Year 2010-2011": second})
    report = ingest_sources(write_mapping(orders("online_retail_II.xlsx", sheet="*")), workspace, settings)

    source = report.sources[0]
    assert (source.rows_read, source.rows_loaded, source.rows_quarantined) == (11, 9, 2)
    rows = pd.read_parquet(workspace.canonical_file("order_lines", "retail")).set_index("source_row")
    assert list(rows.index) == [1, 2, 3, 4, 5, 6, 9, 10, 11]  # data rows count on across the sheets
    assert rows.loc[1, "order_id"] == "489434" and rows.loc[4, "order_id"] == "C489437"
    assert rows.loc[4, "line_type"] == "cancellation" and rows.loc[1, "line_type"] == "sale"
    assert rows.loc[1, "sku"] == "85123A" and rows.loc[2, "sku"] == "85123"  # 85123, not 85123.0
    assert pd.isna(rows.loc[1, "customer_ref"]) and rows.loc[2, "identity_key"] == "retail:17851"
    assert rows.loc[1, "ordered_at"] == pd.Timestamp("2009-12-01 00:00", tz="UTC")
    assert rows.loc[9, "ordered_at"] == pd.Timestamp("2010-12-20 09:00", tz="UTC")
    assert rows.loc[2, "quantity"] == 2.0 and rows.loc[2, "unit_price"] == 2.55

    quarantine = pd.read_parquet(workspace.quarantine_table("retail")).set_index("source_row")
    assert list(quarantine.index) == [7, 8]
    assert quarantine.loc[7, "file"].endswith("online_retail_II.xlsx [sheet Year 2010-2011]")
    assert quarantine.loc[7, "reason"].startswith("repeats a row of an earlier file of this source: ")
    assert "[sheet Year 2009-2010]" in quarantine.loc[7, "reason"]
    assert json.loads(quarantine.loc[7, "raw"])["Invoice"] == "489438"


def test_an_excel_source_reads_its_first_sheet_unless_told_and_names_a_missing_one(
    tmp_path: Path, workspace, settings, write_mapping
) -> None:
    workbook(
        tmp_path / "export.xlsx",
        {"2010": year(1, dt.datetime(2010, 1, 1, 8), 2), "2011": year(100, dt.datetime(2011, 1, 1, 8), 3)},
    )
    ingest_sources(write_mapping(orders("export.xlsx")), workspace, settings)
    first = pd.read_parquet(workspace.canonical_file("order_lines", "retail"))
    assert list(first["order_id"]) == ["1", "2"]
    ingest_sources(write_mapping(orders("export.xlsx", sheet="2011")), workspace, settings)
    assert list(pd.read_parquet(workspace.canonical_file("order_lines", "retail"))["order_id"]) == [
        "100",
        "101",
        "102",
    ]

    with pytest.raises(InputError, match=r"has no sheet '2012'; expected one of its sheets: '2010', '2011'"):
        ingest_sources(write_mapping(orders("export.xlsx", sheet="2012")), workspace, settings)
    with pytest.raises(InputError, match=r"`sheet` names a sheet of an Excel workbook"):
        load_sources(write_mapping(orders("export.csv", sheet="2011")))
    (tmp_path / "broken.xlsx").write_text("not a workbook", encoding="utf-8")
    with pytest.raises(InputError, match=r"broken.xlsx' is not a readable Excel workbook"):
        ingest_sources(write_mapping(orders("broken.xlsx")), workspace, settings)


def test_a_compressed_text_export_is_read_by_the_format_before_its_compression_suffix(
    tmp_path: Path, workspace, settings, write_mapping
) -> None:
    csv = "Invoice,StockCode,Quantity,InvoiceDate,Price,Customer ID\n1,S1,2,2024-01-01,3.5,7\n2,S2,1,2024-01-02,1,\n"
    (tmp_path / "orders.csv.gz").write_bytes(gzip.compress(csv.encode()))
    lines = [{"id": "e1", "ts": "2024-03-01T10:00:00Z", "type": "page_view", "anon": "a1"}]
    (tmp_path / "events.jsonl.gz").write_bytes(gzip.compress("\n".join(map(json.dumps, lines)).encode()))
    events = {
        "name": "clicks",
        "type": "web_events",
        "path": "events.jsonl.gz",
        "columns": {"event_id": "id", "occurred_at": "ts", "event_type": "type", "anonymous_id": "anon"},
    }
    report = ingest_sources(write_mapping(orders("orders.csv.gz"), events), workspace, settings)

    assert [(s.name, s.rows_read, s.rows_loaded) for s in report.sources] == [
        ("retail", 2, 2),
        ("clicks", 1, 1),
    ]
    rows = pd.read_parquet(workspace.canonical_file("order_lines", "retail"))
    assert list(rows["sku"]) == ["S1", "S2"] and rows["customer_ref"].fillna("-").tolist() == ["7", "-"]
    assert pd.read_parquet(workspace.canonical_file("web_events", "clicks"))["anonymous_id"].tolist() == [
        "a1"
    ]


def test_a_sheet_without_a_header_is_named_by_column_names_and_a_row_wider_than_them_is_quarantined(
    tmp_path: Path, workspace, settings, write_mapping
) -> None:
    rows = pd.DataFrame(
        [
            ["A1", "S1", 1, dt.datetime(2024, 1, 1, 9), 2.0, None],
            ["A2", "S2", 1, dt.datetime(2024, 1, 2, 9), 3.0, 9],
        ]
    )
    with pd.ExcelWriter(tmp_path / "noheader.xlsx", engine="xlsxwriter") as writer:
        rows.to_excel(writer, index=False, header=False)
    names = ["No", "Sku", "Qty", "At", "Price"]
    columns = {"order_id": "No", "sku": "Sku", "quantity": "Qty", "ordered_at": "At", "unit_price": "Price"}
    source = {"name": "till", "type": "order_lines", "path": "noheader.xlsx", "header": False}
    report = ingest_sources(
        write_mapping({**source, "column_names": names, "columns": columns}), workspace, settings
    )

    assert (report.sources[0].rows_read, report.sources[0].rows_loaded) == (2, 1)
    assert pd.read_parquet(workspace.canonical_file("order_lines", "till"))["order_id"].tolist() == ["A1"]
    quarantine = pd.read_parquet(workspace.quarantine_table("till"))
    assert quarantine["reason"].tolist() == ["wrong number of fields: data row 2 has 6 fields; expected 5"]
    assert json.loads(quarantine["raw"].iloc[0])["_line"] == "A2\tS2\t1\t2024-01-02 09:00:00\t3\t9"
