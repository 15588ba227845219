"""A retailer with nothing but an order-lines export: the chain, all three models and a score for everyone."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from training_fixtures import NOW, TILL_MAPPING, retailer, small_settings

from features.store.settings import FeatureStoreSettings
from tessera.core.settings import Settings, Workspace

pytestmark = pytest.mark.integration


def test_an_order_lines_only_retailer_trains_all_three_models_and_scores_every_customer(
    tmp_path: Path,
) -> None:
    from features.store import build_feature_store
    from tessera.pipeline import run_chain, train_all
    from training.scoring import recommend_all, score_customers

    orders = retailer(240, NOW, seed=11, web=False)["orders"]
    orders = orders[orders["ordered_at"] <= pd.Timestamp(NOW)]
    export = pd.DataFrame(
        {
            "Receipt": orders["order_id"],
            "Line": orders["line_no"],
            "Customer": orders["customer_id"].str.replace("T", "K"),
            "Time": orders["ordered_at"].dt.strftime("%d/%m/%Y %H:%M:%S"),
            "Item": orders["sku"],
            "Qty": orders["quantity"].astype(int),
            "Price": orders["unit_price"],
        }
    )
    export.to_csv(tmp_path / "till.csv", sep=";", index=False)
    (tmp_path / "sources.yaml").write_text(TILL_MAPPING)
    workspace = Workspace(tmp_path / "ws")
    settings, store_settings = Settings(workspace=workspace.root), FeatureStoreSettings()
    run_chain(tmp_path / "sources.yaml", workspace, NOW, settings, store_settings)
    if not (workspace.feature_repo_data / "offline").exists():
        build_feature_store(workspace, NOW, settings, store_settings)

    results = train_all(workspace, NOW, small_settings(), store_settings)
    assert {name: r["gate"]["promoted"] for name, r in results.items()} == dict.fromkeys(results, True)

    customers = set(pd.read_parquet(workspace.profile / "customers.parquet")["customer_id"])
    assert len(customers) == export["Customer"].nunique()
    for model in ("churn", "cltv"):
        assert (
            set(score_customers(workspace, model, NOW, settings, store_settings)["customer_id"]) == customers
        )
    recommendations = recommend_all(workspace, NOW, settings, k=10)
    assert set(recommendations["customer_id"]) == customers
    assert recommendations.groupby("customer_id").size().eq(10).all()
