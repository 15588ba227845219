"""A bad value in an optional field is blanked and counted, its row kept; a bad required value still
quarantines the row; rows read = rows loaded + rows quarantined either way."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from features.ingest import ingest_sources

CONTACTS = (
    "Id,First,Last,DOB,Points\n"
    "C1,Ann,Lee,1980-05-17,3\n"
    "C2,Bob,Roe,1975-02-31,x\n"  # no 31 February; points not a number
    "C3,Cid,Poe,someday,4\n"
    ",Dee,Fox,1990-01-01,5\n"  # no id: the row cannot be used at all
)
CONTACTS_SOURCE = {
    "name": "crm",
    "type": "contacts",
    "path": "contacts.csv",
    "columns": {"customer_ref": "Id", "first_name": "First", "last_name": "Last", "birth_date": "DOB"},
}


def test_a_bad_birth_date_keeps_the_contact_with_the_field_blanked_and_counted(
    tmp_path: Path, workspace, settings, write_mapping
) -> None:
    (tmp_path / "contacts.csv").write_text(CONTACTS, encoding="utf-8")
    report = ingest_sources(write_mapping(CONTACTS_SOURCE), workspace, settings)

    rows = pd.read_parquet(workspace.canonical_file("contacts", "crm"))
    assert list(rows["customer_ref"]) == ["C1", "C2", "C3"]
    assert list(rows["last_name"]) == ["Lee", "Roe", "Poe"]
    assert [str(d) if pd.notna(d) else None for d in rows["birth_date"]] == ["1980-05-17", None, None]
    quarantine = pd.read_parquet(workspace.quarantine_table("crm"))
    assert list(quarantine["source_row"]) == [4]
    assert quarantine["reason"].iloc[0].startswith("required value missing: column 'Id'")

    (source,) = report.sources
    assert (source.rows_read, source.rows_loaded, source.rows_quarantined) == (4, 3, 1) and report.ok
    dob = source.blanked["DOB"]
    assert dob.values == 2 and dob.reasons == {"unparseable date": 2}
    assert dob.example == "unparseable date '1975-02-31' in column 'DOB'; expected one of ISO 8601"
    written = json.loads((workspace.reports / "ingest.json").read_text())
    assert written["sources"][0]["blanked"]["DOB"]["values"] == 2
    assert "values blanked: DOB 2" in (workspace.reports / "ingest.txt").read_text()


def test_a_value_of_a_row_that_is_quarantined_anyway_is_not_counted_as_blanked(
    tmp_path: Path, workspace, settings, write_mapping
) -> None:
    (tmp_path / "contacts.csv").write_text("Id,DOB\n,1975-02-31\nC2,1980-01-01\n", encoding="utf-8")
    source = {**CONTACTS_SOURCE, "columns": {"customer_ref": "Id", "birth_date": "DOB"}}
    report = ingest_sources(write_mapping(source), workspace, settings)
    assert report.sources[0].rows_quarantined == 1
    assert report.sources[0].blanked == {}


ORDERS = (
    "No,At,Sku,Qty,Price,Channel,Type\n"
    "O1,2024-01-01,S1,1,2.00,WEB,sale\n"
    "O2,2024-01-02,S1,1,2.00,telepathy,sale\n"  # an unknown channel: optional, blanked
    "O3,not a date,S1,1,2.00,WEB,sale\n"  # the event time is required: quarantined
    "O4,2024-01-03,S1,1,2.00,WEB,refund\n"  # an unknown line type would change what the line means
)


def test_an_order_line_keeps_a_bad_optional_value_out_but_not_a_bad_required_one(
    tmp_path: Path, workspace, settings, write_mapping
) -> None:
    (tmp_path / "orders.csv").write_text(ORDERS, encoding="utf-8")
    source = {
        "name": "shop",
        "type": "order_lines",
        "path": "orders.csv",
        "columns": {
            "order_id": "No",
            "ordered_at": "At",
            "sku": "Sku",
            "quantity": "Qty",
            "unit_price": "Price",
            "channel": "Channel",
            "line_type": "Type",
        },
        "values": {"channel": {"WEB": "online"}},
    }
    report = ingest_sources(write_mapping(source), workspace, settings)

    rows = pd.read_parquet(workspace.canonical_file("order_lines", "shop"))
    assert list(rows["order_id"]) == ["O1", "O2"]
    assert list(rows["channel"].fillna("-")) == ["online", "-"]
    quarantine = pd.read_parquet(workspace.quarantine_table("shop")).set_index("source_row")
    assert list(quarantine.index) == [3, 4]
    assert quarantine.loc[3, "field"] == "At" and quarantine.loc[4, "field"] == "Type"
    (result,) = report.sources
    assert result.blanked["Channel"].reasons == {"value not allowed": 1}
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (4, 2, 2) and report.ok


def test_a_well_formed_date_out_of_range_says_so(tmp_path: Path, workspace, settings, write_mapping) -> None:
    (tmp_path / "contacts.csv").write_text(
        "Id,DOB\nC1,9999-12-31\nC2,0001-01-01\nC4,1980-01-01\n", encoding="utf-8"
    )
    source = {**CONTACTS_SOURCE, "columns": {"customer_ref": "Id", "birth_date": "DOB"}}
    (report,) = ingest_sources(write_mapping(source), workspace, settings).sources
    dob = report.blanked["DOB"]
    # A year-9999 date is ISO 8601: it is refused for its range, not called unparseable.
    assert dob.reasons == {"date out of range": 2}
    assert dob.example == "date out of range '9999-12-31' in column 'DOB'; expected a year from 1678 to 2261"
