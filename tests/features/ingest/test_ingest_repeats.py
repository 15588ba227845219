"""Overlapping exports: a later file's rows that repeat an earlier file's are quarantined, not counted twice."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from features.ingest import ingest_sources

HEADER = "No,At,Sku,Qty,Price\n"
SHOP = {
    "name": "shop",
    "type": "order_lines",
    "path": "exports/orders_*.csv",
    "columns": {"order_id": "No", "ordered_at": "At", "sku": "Sku", "quantity": "Qty", "unit_price": "Price"},
}


def test_a_week_sent_again_in_the_next_export_is_read_once(
    tmp_path: Path, workspace, settings, write_mapping
) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    twice = "O2,2024-03-07,B,1,5.00\n"  # two identical lines on one receipt: both real
    (folder / "orders_1.csv").write_text(
        HEADER + "O1,2024-03-01,A,1,9.99\n" + twice + twice + "O3,2024-03-08,C,2,1.50\n", encoding="utf-8"
    )
    (folder / "orders_2.csv").write_text(  # from 03-07: the receipt again (three lines now), O3 again, O4 new
        "Price,No,At,Sku,Qty\n"  # the same fields in another order
        "5.00,O2,2024-03-07,B,1\n5.00,O2,2024-03-07,B,1\n5.00,O2,2024-03-07,B,1\n"
        "1.50,O3,2024-03-08,C,2\n3.00,O4,2024-03-09,D,1\n",
        encoding="utf-8",
    )
    report = ingest_sources(write_mapping(SHOP), workspace, settings)

    rows = pd.read_parquet(workspace.canonical_file("order_lines", "shop"))
    assert rows["order_id"].tolist() == ["O1", "O2", "O2", "O3", "O2", "O4"]  # the third B line is new
    quarantine = pd.read_parquet(workspace.quarantine_table("shop"))
    assert quarantine["source_row"].tolist() == [5, 6, 8]  # file 2's first two B lines and its O3
    assert quarantine["file"].str.endswith("orders_2.csv").all()
    assert quarantine["reason"].str.contains("orders_1.csv").all()
    assert quarantine["reason"].str.startswith("repeats a row of an earlier file").all()
    (shop,) = report.sources
    assert (shop.rows_read, shop.rows_loaded, shop.rows_quarantined) == (9, 6, 3)
    assert shop.reasons == {"repeats a row of an earlier file of this source": 3}


def test_one_file_keeps_its_identical_lines(tmp_path: Path, workspace, settings, write_mapping) -> None:
    (tmp_path / "orders.csv").write_text(HEADER + "O1,2024-03-01,A,1,9.99\n" * 3, encoding="utf-8")
    report = ingest_sources(write_mapping({**SHOP, "path": "orders.csv"}), workspace, settings)

    assert len(pd.read_parquet(workspace.canonical_file("order_lines", "shop"))) == 3
    assert report.sources[0].rows_quarantined == 0
