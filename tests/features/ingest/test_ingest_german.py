"""An order-lines-only export in German: latin-1, ';' between fields, ',' before decimals, its own column names."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from features.ingest import ingest_sources

EXPORT = (
    "Bestellnummer;Kundennummer;Datum;Artikel;Bezeichnung;Menge;Preis;Status;E-Mail\n"
    "B-1001;K-1;03.01.2024 14:05;A1;Käse;2;3,50;;\n"
    "B-1001;K-1;03.01.2024 14:05;A2;Brötchen;10;0,45;;\n"
    "B-1002;;04.01.2024 09:00;A1;Käse;1;3,50;;Jürgen@Beispiel.de\n"
    "B-1003;;04.01.2024 10:00;A3;Würstchen;1;1.234,00;;\n"
    "S-1004;K-2;05.01.2024 11:00;A1;Käse;1;3,50;storniert;\n"
    "B-1005;K-1;07.01.2024 08:00;A2;Brötchen;3;0,45;Retoure;\n"
    "B-1006;K-1;07.01.2024 08:00;A2;Brötchen;-1;0,45;Retoure;\n"
    "B-1007;K-3;32.01.2024 10:00;A1;Käse;1;3,50;;\n"
)
CANCELLATIONS = {
    "flag": {"by": "flag", "column": "Status", "values": ["storniert", "STORNIERT"]},
    "id_prefix": {"by": "id_prefix", "column": "order_id", "prefix": "S-"},
}


@pytest.mark.parametrize("cancellations", list(CANCELLATIONS))
def test_a_german_order_export_becomes_canonical_order_lines(
    tmp_path: Path, workspace, settings, write_mapping, cancellations: str
) -> None:
    (tmp_path / "bestellungen.csv").write_bytes(EXPORT.encode("latin-1"))
    source = {
        "name": "kasse",
        "type": "order_lines",
        "path": "bestellungen.csv",
        "encoding": "latin-1",
        "delimiter": ";",
        "decimal": ",",
        "timezone": "Europe/Berlin",
        "date_formats": ["%d.%m.%Y %H:%M"],
        "id_namespace": "shop",
        "columns": {
            "order_id": "Bestellnummer",
            "customer_ref": "Kundennummer",
            "ordered_at": "Datum",
            "sku": "Artikel",
            "product_name": "Bezeichnung",
            "quantity": "Menge",
            "unit_price": "Preis",
            "email": "E-Mail",
        },
        "constants": {"channel": "store", "currency": "EUR"},
        "returns": {"by": "flag", "column": "Status", "values": ["Retoure"]},
        "cancellations": CANCELLATIONS[cancellations],
    }
    report = ingest_sources(write_mapping(source), workspace, settings)

    rows = pd.read_parquet(workspace.canonical_file("order_lines", "kasse")).set_index("source_row")
    assert list(rows.index) == [1, 2, 3, 4, 5, 6, 7]
    assert list(rows["line_type"]) == ["sale", "sale", "sale", "sale", "cancellation", "return", "return"]
    assert list(rows["quantity"]) == [2, 10, 1, 1, 1, -3, -1]
    assert list(rows["unit_price"]) == [3.5, 0.45, 3.5, 1234.0, 3.5, 0.45, 0.45]
    assert list(rows["product_name"].iloc[:3]) == ["Käse", "Brötchen", "Käse"]
    assert rows.loc[1, "ordered_at"] == pd.Timestamp("2024-01-03 13:05", tz="UTC")  # 14:05 in Berlin, winter
    assert set(rows["channel"]) == {"store"} and set(rows["currency"]) == {"EUR"}
    assert list(rows["x_Status"].fillna("")) == ["", "", "", "", "storniert", "Retoure", "Retoure"]

    assert rows.loc[1, "record_id"] == "K-1" and rows.loc[1, "identity_key"] == "shop:K-1"
    # A guest with an email: the order is the person's id, in the source's own namespace.
    assert rows.loc[3, "record_id"] == "order:B-1002" and rows.loc[3, "identity_key"] == "kasse:order:B-1002"
    assert rows.loc[3, "email"] == "Jürgen@Beispiel.de"
    # No customer id and no person column: an anonymous line, still loaded and counted.
    assert pd.isna(rows.loc[4, "record_id"]) and pd.isna(rows.loc[4, "identity_key"])

    quarantine = pd.read_parquet(workspace.quarantine_table("kasse"))
    assert list(quarantine["source_row"]) == [8]
    assert quarantine["reason"].iloc[0].startswith("unparseable date '32.01.2024 10:00' in column 'Datum'")
    (summary,) = report.sources
    assert summary.rows_read == summary.rows_loaded + summary.rows_quarantined == 8
