"""A retailer with order lines only (profile: customers.parquet and orders.parquet) still gets a working store."""

from __future__ import annotations

import pandas as pd
from feature_store_fixtures import NOW, build, embedded_settings, new_workspace, t

from features.store import OnlineFeatures, open_store, training_frame


def test_order_lines_only_retailer_gets_defaults_for_what_it_does_not_have(tmp_path) -> None:
    workspace, settings = new_workspace(tmp_path, order_lines_only=True), embedded_settings()
    summary = build(workspace, settings)
    assert summary["profile_inputs"] == {
        "customers": True,
        "orders": True,
        "interactions": False,
        "consent_events": False,
        "products": False,
    }
    entities = pd.DataFrame({"customer_id": ["alice", "bob"], "cutoff": [t("2025-05-01"), NOW]})
    frame = training_frame(entities, "churn_v1", open_store(workspace, settings))
    assert list(frame["orders_lifetime"]) == [2, 2]
    assert (frame[["email_opens_90d", "web_sessions_90d", "tickets_365d", "cart_items"]] == 0).all().all()
    assert list(frame["loyalty_tier"]) == ["none", "none"] and list(frame["age_band"]) == [
        "unknown",
        "unknown",
    ]
    assert list(frame["region"]) == ["GB", "FR"]

    products = training_frame(
        entities.assign(sku=["A", "C"]), "next_best_product_v1", open_store(workspace, settings)
    )
    assert list(products["category"]) == ["unknown", "unknown"]
    assert list(products["units_sold_90d"]) == [1.0, 3.0]  # A: the March sale only; C: three in June

    vector = OnlineFeatures.open(workspace, "cltv_v1", settings).vectors(["alice"], request_time=NOW)[0]
    assert (
        vector["spend_lifetime"] == 30.0 and vector["email_opens_90d"] == 0 and not vector["loyalty_member"]
    )
