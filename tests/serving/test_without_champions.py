"""A service whose models are not all trained (not yet, or skipped by training): /recommend degrades to the recent
best sellers, flagged `no_model`, and the service is ready; /cltv says which champion is missing with a 503."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pandas as pd
import pytest
from serving_fixtures import NOW, service_in_process
from training_fixtures import retailer, small_settings, write_retailer

from features.store.settings import FeatureStoreSettings
from tessera.core.settings import Settings, Workspace

pytestmark = pytest.mark.integration


def test_without_a_recommender_champion_best_sellers_stand_in_and_a_missing_cltv_is_a_503(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from features.store import build_feature_store
    from tessera.pipeline import train_all

    workspace = Workspace(tmp_path / "ws")
    tables = retailer(160, NOW, seed=11)
    write_retailer(workspace, tables, NOW)
    store_settings = FeatureStoreSettings()
    build_feature_store(workspace, NOW, Settings(workspace=workspace.root), store_settings)
    train_all(workspace, NOW, small_settings(), store_settings, models=("churn",))

    orders = tables["orders"][tables["orders"]["ordered_at"] <= pd.Timestamp(NOW)]
    recent = orders[orders["ordered_at"] > pd.Timestamp(NOW) - pd.Timedelta(days=28)]
    buyers = recent.groupby("sku")["customer_id"].nunique()
    best_sellers = set(buyers.index[buyers == buyers.max()].astype(str))
    flags = tables["customers"].set_index("customer_id")
    consenting = sorted(c for c in orders["customer_id"].unique() if flags.loc[c, "consent_personalisation"])[
        :2
    ]
    service = service_in_process(workspace, monkeypatch)
    try:
        assert service.__is_ready__()
        anyone = asyncio.run(service.recommend(customer_id="nobody", k=20))
        assert anyone.fallback_reason == "unknown_customer" and anyone.items[0].sku in best_sellers
        ranking = [item.sku for item in anyone.items]
        for customer in consenting:
            answer = asyncio.run(service.recommend(customer_id=customer, k=5))
            assert (answer.fallback, answer.fallback_reason, answer.model_version) == (
                True,
                "no_model",
                "none",
            )
            assert not answer.personalised and {item.reason for item in answer.items} == {"popular"}
            # The same ranking for everyone, less the live rules' exclusions (the last order's items).
            mine = [item.sku for item in answer.items]
            assert len(mine) == 5 and [sku for sku in ranking if sku in mine] == mine

        assert service.engine.churn(consenting).scores[0].scored
        refused = asyncio.run(service.cltv(customer_ids=consenting))
        assert refused.status_code == 503
        assert json.loads(refused.body) == {
            "error": "no cltv champion is registered yet: run `tessera train cltv`"
        }
    finally:
        service.close()
