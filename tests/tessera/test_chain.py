"""The whole chain on the smallest retailer: one order-lines export in its own column names and encoding."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from features.store.config import offline_folder
from features.store.settings import FeatureStoreSettings
from tessera.core.settings import Settings, Workspace
from tessera.pipeline import run_chain

# A German shop's till export: latin-1, ';'-separated, decimal commas, its own column names. Cancelled
# lines carry "S" (storniert) in Status; some receipts have no customer number; one row is broken.
EXPORT = """Bestellnummer;Kundennummer;Datum;Artikel;Bezeichnung;Menge;Preis;Status
B1;K100;03.01.2025 10:15;A1;Käse;2;3,50;
B1;K100;03.01.2025 10:15;A2;Brötchen;6;0,45;
B2;K200;04.01.2025 11:00;A1;Käse;1;3,50;
B3;;04.01.2025 12:30;A3;Äpfel;1;2,99;
B4;K100;10.01.2025 09:00;A2;Brötchen;4;0,45;S
B5;K300;11.01.2025 17:45;A3;Äpfel;-1;2,99;
B6;K200;31.02.2025 08:00;A1;Käse;1;3,50;
"""

MAPPING = """version: 1
sources:
  - name: kasse
    type: order_lines
    path: kasse.csv
    format: csv
    encoding: latin-1
    delimiter: ";"
    decimal: ","
    timezone: Europe/Berlin
    date_formats: ["%d.%m.%Y %H:%M"]
    columns:
      order_id: Bestellnummer
      customer_ref: Kundennummer
      ordered_at: Datum
      sku: Artikel
      product_name: Bezeichnung
      quantity: Menge
      unit_price: Preis
    constants: {channel: store, currency: EUR}
    returns: {by: negative_quantity}
    cancellations: {by: flag, column: Status, values: [S]}
"""


@pytest.mark.integration
def test_order_lines_only_retailer_gets_a_profile_per_customer(tmp_path: Path) -> None:
    (tmp_path / "kasse.csv").write_bytes(EXPORT.encode("latin-1"))
    (tmp_path / "sources.yaml").write_text(MAPPING)
    workspace = Workspace(tmp_path / "ws")
    summary = run_chain(
        tmp_path / "sources.yaml",
        workspace,
        now=datetime(2025, 2, 1, tzinfo=UTC),
        settings=Settings(workspace=workspace.root),
        store_settings=FeatureStoreSettings(),
    )

    assert summary["ingest"]["ok"]
    customers = pd.read_parquet(workspace.profile / "customers.parquet")
    orders = pd.read_parquet(workspace.profile / "orders.parquet")
    quarantine = pd.read_parquet(workspace.quarantine_table("kasse"))
    # Every customer number of the export is one profile; the anonymous receipt belongs to none.
    assert len(customers) == 3
    assert customers["customer_id"].is_unique
    # 7 rows in = 6 order lines + 1 quarantined (31 February).
    assert len(orders) + len(quarantine) == 7
    assert quarantine["reason"].str.contains("31.02.2025").all()
    assert orders.loc[orders["order_id"] == "B3", "customer_id"].isna().all()
    assert sorted(orders["line_type"]) == ["cancellation", "return", "sale", "sale", "sale", "sale"]
    assert orders["product_name"].str.contains("Käse").any()  # decoded from latin-1
    # K100 has two sales lines in one order and a cancelled order: one order counts.
    k100 = orders.loc[orders["order_id"] == "B1", "customer_id"].iloc[0]
    assert customers.set_index("customer_id").loc[k100, "n_orders"] == 1


# A web shop's order lines where a third have no customer number: guest lines with only a shipping
# country (or country and town), and lines with nothing at all. None of them is a person.
ANONYMOUS_EXPORT = """OrderNo,CustomerNo,OrderDate,Sku,Qty,Price,Country,Town
W1,K1,2025-01-03T10:00:00Z,A1,1,2.00,GB,Leeds
W1,K1,2025-01-03T10:00:00Z,A2,2,1.00,GB,Leeds
W2,K2,2025-01-04T10:00:00Z,A1,1,2.00,GB,
W3,K3,2025-01-05T10:00:00Z,A2,1,1.00,,
W4,K1,2025-01-06T10:00:00Z,A1,1,2.00,GB,Leeds
W5,K2,2025-01-07T10:00:00Z,A2,1,1.00,GB,
W6,,2025-01-08T10:00:00Z,A3,1,5.00,GB,
W7,,2025-01-09T10:00:00Z,A3,2,5.00,GB,York
W8,,2025-01-10T10:00:00Z,A1,1,2.00,,
"""

ANONYMOUS_MAPPING = """version: 1
sources:
  - name: shop
    type: order_lines
    path: shop.csv
    columns:
      order_id: OrderNo
      customer_ref: CustomerNo
      ordered_at: OrderDate
      sku: Sku
      quantity: Qty
      unit_price: Price
      country: Country
      city: Town
"""


@pytest.mark.integration
def test_anonymous_order_lines_create_no_customers_but_still_count_as_sales(tmp_path: Path) -> None:
    (tmp_path / "shop.csv").write_text(ANONYMOUS_EXPORT, encoding="utf-8")
    (tmp_path / "sources.yaml").write_text(ANONYMOUS_MAPPING, encoding="utf-8")
    workspace = Workspace(tmp_path / "ws")
    now = datetime(2025, 2, 1, tzinfo=UTC)
    run_chain(
        tmp_path / "sources.yaml", workspace, now, Settings(workspace=workspace.root), FeatureStoreSettings()
    )

    customers = pd.read_parquet(workspace.profile / "customers.parquet")
    orders = pd.read_parquet(workspace.profile / "orders.parquet")
    # Three customer numbers, three customers: the three anonymous orders made none of their own.
    assert len(customers) == 3
    assert len(orders) == 9
    assert sorted(orders.loc[orders["customer_id"].isna(), "order_id"]) == ["W6", "W7", "W8"]
    # A3 was only ever bought anonymously, and still sold 3 units.
    popularity = pd.read_parquet(offline_folder(workspace) / "product_popularity.parquet")
    a3 = popularity[popularity["sku"] == "A3"].sort_values("event_timestamp")
    assert a3["units_sold_90d"].iloc[-1] == 3
