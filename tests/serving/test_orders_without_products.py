"""An export of orders without products (CDNOW's shape: customer, date, number of CDs, dollars) from the
mapping to the service: churn and CLTV are trained, scored and served, /recommend answers an empty list and
batch recommendations say why there are none."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pandas as pd
import pytest
from serving_fixtures import NOW, service_in_process
from training_fixtures import retailer, small_settings

from features.store.settings import FeatureStoreSettings
from tessera.core.errors import InputError
from tessera.core.settings import Settings, Workspace

pytestmark = pytest.mark.integration

# No order number and no product: an order is a customer's purchases of one day, its price the amount per CD.
MAPPING = """version: 1
sources:
  - name: cds
    type: order_lines
    path: cds.csv
    date_formats: ["%Y%m%d"]
    columns:
      order_id: {concat: [Customer, Date], separator: "-"}
      customer_ref: Customer
      ordered_at: Date
      quantity: CDs
      unit_price: {formula: "Dollars / CDs"}
"""


def cds_export(customers: int) -> pd.DataFrame:
    """The training retailer's sales summed per customer and day, with no product column."""
    orders = retailer(customers, NOW, seed=5, web=False)["orders"]
    sales = orders[(orders["ordered_at"] <= pd.Timestamp(NOW)) & (orders["line_type"] == "sale")]
    return (
        sales.assign(Customer=sales["customer_id"], Date=sales["ordered_at"].dt.strftime("%Y%m%d"))
        .groupby(["Customer", "Date"], as_index=False)
        .agg(CDs=("quantity", "sum"), Dollars=("amount", "sum"))
        .round({"Dollars": 2})
    )


def test_orders_without_products_are_profiled_scored_and_served(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tessera.pipeline import run_chain, train_all
    from training.scoring import recommend_all, score_customers

    export = cds_export(200)
    export.to_csv(tmp_path / "cds.csv", index=False)
    (tmp_path / "sources.yaml").write_text(MAPPING)
    workspace = Workspace(tmp_path / "ws")
    summary = run_chain(
        tmp_path / "sources.yaml", workspace, NOW, Settings(workspace=workspace.root), FeatureStoreSettings()
    )

    assert summary["ingest"]["ok"]
    orders = pd.read_parquet(workspace.profile / "orders.parquet")
    assert len(orders) == len(export) and orders["sku"].isna().all()
    assert orders["amount"].sum() == pytest.approx(export["Dollars"].sum())
    results = train_all(workspace, NOW, small_settings(), FeatureStoreSettings())
    assert results["next_best_product"] == {
        "skipped": "no purchase names a product: there is nothing to recommend"
    }
    assert results["churn"]["gate"]["promoted"] and results["cltv"]["gate"]["promoted"]
    customers = set(pd.read_parquet(workspace.profile / "customers.parquet")["customer_id"])
    for model in ("churn", "cltv"):
        assert (
            set(score_customers(workspace, model, NOW, Settings(), FeatureStoreSettings())["customer_id"])
            == customers
        )
    with pytest.raises(InputError, match="^no purchase names a product"):
        recommend_all(workspace, NOW, Settings())

    customer = sorted(customers)[0]
    service = service_in_process(workspace, monkeypatch)
    try:
        assert service.__is_ready__()
        for scores in (service.engine.churn([customer]), service.engine.cltv([customer])):
            assert scores.scores[0].scored
        answer = asyncio.run(service.recommend(customer_id=customer, k=5))
        assert (answer.items, answer.fallback, answer.fallback_reason) == ([], True, "no_products")
        assert asyncio.run(service.similar_items(sku="CD1", k=3)).status_code == 404
        assert service.engine.customer(customer).customer_id == customer
    finally:
        service.close()
