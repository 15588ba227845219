"""An export in several files (order headers, order items, customers keyed by order, as an Olist-style
marketplace writes them), joined by a DuckDB query source into order lines: `connection: duckdb`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from features.ingest import ingest_sources
from tessera.core.errors import InputError

# One customer id per order (`customer_id`), the person behind it in `customer_unique_id`.
CUSTOMERS = """customer_id,customer_unique_id,customer_zip_code_prefix,customer_city,customer_state
c1,u-ann,01001,sao paulo,SP
c2,u-ann,01001,sao paulo,SP
c3,u-bob,20040,rio de janeiro,RJ
"""
ORDERS = """order_id,customer_id,order_status,order_purchase_timestamp
o1,c1,delivered,2018-01-05 10:00:00
o2,c2,delivered,2018-03-02 18:30:00
o3,c3,canceled,2018-03-04 09:15:00
o4,c3,delivered,
"""
ITEMS = """order_id,order_item_id,product_id,seller_id,price,freight_value
o1,1,p-lamp,s1,49.90,8.00
o1,2,p-bulb,s1,9.90,8.00
o2,1,p-lamp,s1,45.00,7.50
o3,1,p-rug,s2,120.00,15.00
o4,1,p-bulb,s1,9.90,8.00
o9,1,p-lamp,s1,49.90,8.00
"""
QUERY = """
    SELECT i.order_id, i.order_item_id, o.order_purchase_timestamp, o.order_status, c.customer_unique_id,
           c.customer_zip_code_prefix, c.customer_state, i.product_id, i.price
    FROM read_csv('exports/order_items.csv', all_varchar = true) i
    LEFT JOIN read_csv('exports/orders.csv', all_varchar = true) o USING (order_id)
    LEFT JOIN read_csv('exports/customers.csv', all_varchar = true) c USING (customer_id)
    ORDER BY i.order_id, i.order_item_id
"""


@pytest.fixture
def exports(tmp_path: Path) -> Path:
    folder = tmp_path / "exports"
    folder.mkdir()
    for name, text in (("customers", CUSTOMERS), ("orders", ORDERS), ("order_items", ITEMS)):
        (folder / f"{name}.csv").write_text(text)
    return folder


def order_lines(query: str = QUERY) -> dict:
    return {
        "name": "marketplace",
        "type": "order_lines",
        "query": query,
        "connection": "duckdb",
        "columns": {
            "order_id": "order_id",
            "line_no": "order_item_id",
            "customer_ref": "customer_unique_id",
            "ordered_at": "order_purchase_timestamp",
            "sku": "product_id",
            "unit_price": "price",
            "postcode": "customer_zip_code_prefix",
            "region": "customer_state",
        },
        "constants": {"quantity": "1", "currency": "BRL"},
        "cancellations": {"by": "flag", "column": "order_status", "values": ["canceled"]},
    }


def test_files_joined_by_a_duckdb_query_become_order_lines(
    exports, workspace, settings, write_mapping, monkeypatch
) -> None:
    monkeypatch.chdir(exports.parent.parent)  # relative paths are the sources file's folder's, not the cwd's
    report = ingest_sources(write_mapping(order_lines()), workspace, settings)

    rows = pd.read_parquet(workspace.canonical_file("order_lines", "marketplace"))
    # One line per item, each with its order's date and the person (not the per-order customer id).
    assert list(rows["order_id"]) == ["o1", "o1", "o2", "o3"]
    assert list(rows["customer_ref"]) == ["u-ann", "u-ann", "u-ann", "u-bob"]
    assert list(rows["sku"]) == ["p-lamp", "p-bulb", "p-lamp", "p-rug"]
    assert list(rows["unit_price"]) == [49.90, 9.90, 45.00, 120.00]
    assert rows["ordered_at"].iloc[2] == pd.Timestamp("2018-03-02 18:30", tz="UTC")
    assert list(rows["region"]) == ["SP", "SP", "SP", "RJ"]
    assert list(rows["line_type"]) == ["sale", "sale", "sale", "cancellation"]
    # The items of an order without a purchase time, and of one missing from the headers, are quarantined,
    # named by the query's row.
    quarantine = pd.read_parquet(workspace.quarantine_table("marketplace"))
    assert list(quarantine["source_row"]) == [5, 6]
    assert list(quarantine["field"]) == ["order_purchase_timestamp"] * 2
    assert quarantine["reason"].str.startswith("required value missing").all()
    (summary,) = report.sources
    assert (summary.rows_read, summary.rows_loaded, summary.rows_quarantined) == (6, 4, 2)
    assert summary.read_from == ["query"]


def test_a_failing_duckdb_query_names_the_source_and_duckdb_s_reason(
    exports, workspace, settings, write_mapping
) -> None:
    broken = QUERY.replace("exports/orders.csv", "exports/no_such_file.csv")
    with pytest.raises(InputError) as raised:
        ingest_sources(write_mapping(order_lines(broken)), workspace, settings)
    message = str(raised.value)
    assert "sources.yaml" in message and "source 'marketplace'" in message
    assert "the DuckDB query failed" in message and "no_such_file.csv" in message
    assert not workspace.canonical_file("order_lines", "marketplace").exists()


def test_a_column_the_duckdb_query_does_not_return_is_named_with_those_it_does(
    exports, workspace, settings, write_mapping
) -> None:
    mapping = order_lines(QUERY.replace(", i.price", ""))
    with pytest.raises(InputError, match=r"'price' not found in the query's result; expected one of"):
        ingest_sources(write_mapping(mapping), workspace, settings)


def test_a_query_fills_order_fields_down_and_turns_day_numbers_into_dates(
    tmp_path: Path, workspace, settings, write_mapping
) -> None:
    """Two shapes docs/sources.md gives a query for: order fields on an order's first line only, and a day
    number instead of a date."""
    (tmp_path / "lines.csv").write_text(
        "Name,Created at,Email,DAY,Lineitem sku,Lineitem quantity,Lineitem price\n"
        "#1001,2023-01-05 10:22:31 -0500,ann@example.com,1,A,1,10.00\n"
        "#1001,,,1,B,2,5.00\n"
        "#1002,2023-01-09 08:00:00 -0500,bob@example.com,5,A,1,10.00\n"
    )
    query = """
        SELECT "Name", max("Created at") OVER (PARTITION BY "Name") AS created_at,
               max("Email") OVER (PARTITION BY "Name") AS email,
               DATE '2019-01-01' + CAST("DAY" AS INTEGER) - 1 AS day,
               "Lineitem sku", "Lineitem quantity", "Lineitem price"
        FROM read_csv('lines.csv', all_varchar = true) ORDER BY "Name", "Lineitem sku"
    """
    source = {
        "name": "shop",
        "type": "order_lines",
        "connection": "duckdb",
        "query": query,
        "date_formats": ["%Y-%m-%d %H:%M:%S %z"],
        "columns": {
            "order_id": "Name",
            "ordered_at": "created_at",
            "email": "email",
            "sku": "Lineitem sku",
            "quantity": "Lineitem quantity",
            "unit_price": "Lineitem price",
        },
    }
    by_day = {**source, "name": "shop_days", "columns": {**source["columns"], "ordered_at": "day"}}
    ingest_sources(write_mapping(source, by_day), workspace, settings)
    rows = pd.read_parquet(workspace.canonical_file("order_lines", "shop"))
    assert list(rows["ordered_at"]) == [pd.Timestamp("2023-01-05 15:22:31", tz="UTC")] * 2 + [
        pd.Timestamp("2023-01-09 13:00", tz="UTC")
    ]
    assert list(rows["email"]) == ["ann@example.com", "ann@example.com", "bob@example.com"]
    days = pd.read_parquet(workspace.canonical_file("order_lines", "shop_days"))["ordered_at"]
    assert list(days) == [pd.Timestamp(d, tz="UTC") for d in ("2019-01-01", "2019-01-01", "2019-01-05")]
