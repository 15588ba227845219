"""JSON Lines with nested fields, Parquet with typed columns, `values` maps, extra columns kept as x_<column>."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from features.ingest import canonical_schema, ingest_sources, jsonl
from tessera.core.settings import Settings

EVENTS = [
    '{"id": "e1", "ts": "2024-03-01T10:00:00+01:00", "type": "PV", "user": {"id": "u1", "anon": "a1"},'
    ' "page": {"url": "/p/1", "sku": "S1"}, "device": {"os": "ios"}}',
    '{"id": "e2", "ts": "2024-03-01T10:01:00", "type": "ATC", "user": {"id": null, "anon": "a2"},'
    ' "page": {"url": "/p/2", "sku": "S2"}, "n": 12.50}',
    '{"id": "e3", "ts": "2024-03-01T10:02:00Z", "type": "PV", "user": {"id": "u1"',
    "",
    '{"id": "e4", "ts": "2024-03-01T10:03:00Z", "type": "search", "user": {"anon": "a3"}, "q": "rote Schuhe"}',
    "[1, 2]",
    '{"id": "e6", "ts": "2024-03-01T10:04:00Z", "type": "teleport", "user": {"anon": "a3"}}',
]
WEB_EVENTS = {
    "name": "clickstream",
    "type": "web_events",
    "path": "events.jsonl",
    "timezone": "Europe/Paris",
    "id_namespace": "shop",
    "columns": {
        "event_id": "id",
        "occurred_at": "ts",
        "event_type": "type",
        "customer_ref": "user.id",
        "anonymous_id": "user.anon",
        "page_url": "page.url",
        "sku": "page.sku",
        "search_query": "q",
    },
    "values": {"event_type": {"PV": "product_view", "ATC": "add_to_cart"}},
}


def test_json_lines_with_nested_fields_and_a_broken_line(
    tmp_path: Path, workspace, write_mapping, monkeypatch
) -> None:
    (tmp_path / "events.jsonl").write_text("\n".join(EVENTS) + "\n", encoding="utf-8")
    monkeypatch.setattr(jsonl, "_BLOCK_LINES", 2)  # chunks of 5 lines, parsed 2 lines at a time
    report = ingest_sources(write_mapping(WEB_EVENTS), workspace, Settings(ingest_chunk_rows=5))

    rows = pd.read_parquet(workspace.canonical_file("web_events", "clickstream")).set_index("source_row")
    assert list(rows.index) == [1, 2, 4]  # data rows: the blank line is not one
    assert list(rows["event_type"]) == ["product_view", "add_to_cart", "search"]
    assert list(rows["customer_ref"].fillna("-")) == ["u1", "-", "-"]
    assert list(rows["anonymous_id"]) == ["a1", "a2", "a3"]
    assert rows.loc[1, "occurred_at"] == pd.Timestamp("2024-03-01 09:00", tz="UTC")
    assert rows.loc[2, "occurred_at"] == pd.Timestamp("2024-03-01 09:01", tz="UTC")  # Paris wall time
    assert rows.loc[4, "search_query"] == "rote Schuhe"
    assert rows.loc[1, "identity_key"] == "shop:u1" and pd.isna(rows.loc[2, "record_id"])
    assert rows.loc[1, "x_device.os"] == "ios" and rows.loc[2, "x_n"] == "12.50"  # numbers kept as written

    quarantine = pd.read_parquet(workspace.quarantine_table("clickstream")).set_index("source_row")
    assert list(quarantine.index) == [3, 5, 6]
    assert quarantine.loc[3, "reason"].startswith("unparseable JSON: line 3:")
    assert json.loads(quarantine.loc[3, "raw"]) == {"_line": EVENTS[2]}
    assert quarantine.loc[5, "reason"].startswith("not a JSON object: line 6")
    assert quarantine.loc[6, "field"] == "type"
    assert quarantine.loc[6, "reason"].startswith(
        "value not allowed 'teleport' in column 'type'; expected one of"
    )
    assert report.ok and report.sources[0].rows_read == 6


def test_parquet_keeps_its_types_and_extra_columns(
    tmp_path: Path, workspace, settings, write_mapping
) -> None:
    products = pa.table(
        {
            "Sku": ["P1", "P2", "P3", "P4"],
            "Title": ["Mug", "Tee", None, "Bag"],
            "Price": pa.array([4.5, None, 12.0, -1.0], type=pa.float64()),
            "InStock": ["ja", "nein", "ja", "ja"],
            "Supplier": [7, 8, None, 9],
        }
    )
    pq.write_table(products, tmp_path / "products.parquet")
    source = {
        "name": "catalogue",
        "type": "products",
        "path": "products.parquet",
        "columns": {"sku": "Sku", "name": "Title", "price": "Price", "available": "InStock"},
        "values": {"available": {"ja": "true", "nein": "false"}},
    }
    report = ingest_sources(write_mapping(source), workspace, settings)

    rows = pd.read_parquet(workspace.canonical_file("products", "catalogue"))
    # A negative price is an optional value gone bad: blanked and counted, the product kept.
    assert list(rows["sku"]) == ["P1", "P2", "P3", "P4"]
    assert list(rows["available"]) == [True, False, True, True]
    assert rows["price"].iloc[0] == 4.5 and rows["price"].iloc[1:].isna().tolist() == [True, False, True]
    assert list(rows["x_Supplier"].fillna("-")) == ["7", "8", "-", "9"]
    assert pd.read_parquet(workspace.quarantine_table("catalogue")).empty
    blanked = report.sources[0].blanked["Price"]
    assert (blanked.values, blanked.reasons) == (1, {"negative price": 1})
    assert blanked.example == "negative price '-1.0' in column 'Price'; expected 0 or more"
    assert report.sources[0].rows_read == 4 and report.ok


def test_sources_of_one_type_read_as_one_data_set(tmp_path: Path, workspace, settings, write_mapping) -> None:
    (tmp_path / "web.csv").write_text(
        "No,Customer,At,Sku,Qty,Price,Coupon\n1,C1,2024-01-01T10:00:00,S1,1,2.5,X\n2,,2024-01-02,S2,2,3,\n"
        "3,C2,2024-01-03 10:00,S1,1,2.5,\n",
        encoding="utf-8",
    )
    pos = pa.table(
        {
            "receipt": ["R1", "R2"],
            "card": ["L9", None],
            "at": pa.array([pd.Timestamp("2024-02-01 09:00"), pd.Timestamp("2024-02-02 10:00")]),
            "sku": ["S1", "S3"],
            "qty": [1, -1],
            "price": [2.5, 4.0],
        }
    )
    pq.write_table(pos, tmp_path / "pos.parquet")
    web = {
        "name": "web",
        "type": "order_lines",
        "path": "web.csv",
        "columns": {
            "order_id": "No",
            "customer_ref": "Customer",
            "ordered_at": "At",
            "sku": "Sku",
            "quantity": "Qty",
            "unit_price": "Price",
        },
    }
    store = {
        "name": "pos",
        "type": "order_lines",
        "path": "pos.parquet",
        "columns": {
            "order_id": "receipt",
            "loyalty_number": "card",
            "ordered_at": "at",
            "sku": "sku",
            "quantity": "qty",
            "unit_price": "price",
        },
        "returns": {"by": "negative_quantity"},
    }
    report = ingest_sources(write_mapping(web, store), workspace, settings)
    assert report.ok

    expected = canonical_schema("order_lines")
    for name in ("web", "pos"):
        schema = pq.read_schema(workspace.canonical_file("order_lines", name))
        assert schema.names[: len(expected)] == expected.names
        assert [schema.field(n).type for n in expected.names] == expected.types
    together = ds.dataset(workspace.canonical_table("order_lines"), format="parquet").to_table().to_pandas()
    assert len(together) == 5
    pos_rows = together[together["source"] == "pos"].set_index("order_id")
    assert (
        pos_rows.loc["R1", "record_id"] == "card:L9" and pos_rows.loc["R1", "identity_key"] == "pos:card:L9"
    )
    assert pos_rows.loc["R2", "line_type"] == "return" and pd.isna(pos_rows.loc["R2", "record_id"])
    assert pos_rows.loc["R1", "ordered_at"] == pd.Timestamp("2024-02-01 09:00", tz="UTC")


def test_a_glob_reads_every_file_and_counts_rows_on(
    tmp_path: Path, workspace, settings, write_mapping
) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "contacts_1.csv").write_text("Id,Mail\n1,a@x.com\n2,b@x.com\n3,c@x.com\n", encoding="utf-8")
    (folder / "contacts_2.csv").write_text("Id,Mail,Phone\n4,d@x.com,123\n,e@x.com,456\n", encoding="utf-8")
    source = {
        "name": "crm",
        "type": "contacts",
        "path": "exports/contacts_*.csv",
        "columns": {"customer_ref": "Id", "email": "Mail"},
    }
    report = ingest_sources(write_mapping(source), workspace, settings)

    rows = pd.read_parquet(workspace.canonical_file("contacts", "crm"))
    assert list(rows["source_row"]) == [1, 2, 3, 4]
    assert list(rows["x_Phone"].fillna("-")) == ["-", "-", "-", "123"]
    quarantine = pd.read_parquet(workspace.quarantine_table("crm"))
    assert list(quarantine["source_row"]) == [5]
    assert quarantine["file"].iloc[0].endswith("contacts_2.csv")
    assert report.sources[0].rows_read == 5 and report.ok


def test_a_source_no_longer_declared_is_removed(tmp_path: Path, workspace, settings, write_mapping) -> None:
    (tmp_path / "a.csv").write_text("Id\n1\n", encoding="utf-8")
    first = {"name": "old", "type": "contacts", "path": "a.csv", "columns": {"customer_ref": "Id"}}
    ingest_sources(write_mapping(first), workspace, settings)
    report = ingest_sources(write_mapping({**first, "name": "new"}), workspace, settings)

    assert not workspace.canonical_file("contacts", "old").exists()
    assert workspace.canonical_file("contacts", "new").exists()
    assert str(workspace.canonical_file("contacts", "old")) in report.removed


def test_a_header_spaced_after_its_commas_names_the_columns_without_the_blanks(
    tmp_path: Path, workspace, settings, write_mapping
) -> None:
    # A registry export as FEBRL writes it: `rec_id, given_name, surname, ...`, values spaced the same way.
    (tmp_path / "registry.csv").write_text(
        "rec_id, given_name, surname, address_2, date_of_birth\n"
        "rec-1-org, kayla, harrington, coaling, 19150612\n"
        "rec-2-org, lachlan, berry\n"
        "rec-1-dup-0, kayla, harington, coaling, 19150631\n",
        encoding="utf-8",
    )
    contacts = {
        "name": "registry",
        "type": "contacts",
        "path": "registry.csv",
        "date_formats": ["%Y%m%d"],
        "columns": {
            "customer_ref": "rec_id",
            "first_name": "given_name",
            "last_name": "surname",
            "birth_date": "date_of_birth",
        },
    }
    report = ingest_sources(write_mapping(contacts), workspace, settings)

    rows = pd.read_parquet(workspace.canonical_file("contacts", "registry")).set_index("source_row")
    assert list(rows.index) == [1, 3]
    assert list(rows["last_name"]) == ["harrington", "harington"]
    assert list(rows["x_address_2"]) == ["coaling", "coaling"]
    assert rows.loc[1, "birth_date"] == pd.Timestamp("1915-06-12").date() and pd.isna(
        rows.loc[3, "birth_date"]
    )
    quarantine = pd.read_parquet(workspace.quarantine_table("registry")).set_index("source_row")
    assert list(quarantine.index) == [2]
    assert quarantine.loc[2, "reason"].startswith(
        "wrong number of fields: data row 2 has 3 fields; expected 5"
    )
    assert report.sources[0].rows_read == 3
