"""Online reads after materialisation, in both configurations: equal to offline, live pushes, request time."""

from __future__ import annotations

import math
from datetime import timedelta

import pandas as pd
import pytest
from feature_store_fixtures import NOW, build, embedded_settings, new_workspace, t

from features.store import OnlineFeatures, open_store, push_events, training_frame

CUSTOMERS = ["alice", "bob", "carol"]


def _same(online: object, offline: object) -> bool:
    if isinstance(offline, float) and math.isnan(offline):
        return online is None or (isinstance(online, float) and math.isnan(online))
    if isinstance(offline, float):
        return online == pytest.approx(offline)
    if hasattr(offline, "tolist"):
        offline = offline.tolist()
    return online == offline


@pytest.mark.parametrize("service", ["churn_v1", "cltv_v1", "next_best_product_v1"])
def test_online_values_equal_offline_values_at_the_latest_time(built, service: str) -> None:
    workspace, settings, _ = built
    entities = pd.DataFrame({"customer_id": CUSTOMERS, "cutoff": [NOW] * 3})
    skus = ["A", "B", "C"] if service == "next_best_product_v1" else None
    if skus:
        entities["sku"] = skus
    offline = training_frame(entities, service, open_store(workspace, settings))
    online = OnlineFeatures.open(workspace, service, settings).vectors(CUSTOMERS, skus=skus, request_time=NOW)
    for row, vector in zip(offline.to_dict("records"), online, strict=True):
        different = {name: (vector[name], row[name]) for name in vector if not _same(vector[name], row[name])}
        assert not different, (row["customer_id"], different)
    assert len(online[0]) >= 20
    # Equal, and not merely equally empty: alice (orders, emails, loyalty) does not read like carol (no history).
    alice, carol = online[0], online[2]
    assert any(not _same(alice[name], carol[name]) for name in alice)


def test_a_pushed_event_is_visible_in_the_next_online_read(built) -> None:
    workspace, settings, _ = built
    reader = OnlineFeatures.open(workspace, "next_best_product_v1", settings)
    # erin signed up after the last build: unknown to the store until her first live events arrive.
    assert reader.vectors(["erin"], skus=["A"])[0]["cart_items"] == 0
    moment = NOW + timedelta(hours=1)
    push_events(
        reader.store,
        [
            {"customer_id": "erin", "occurred_at": moment, "event_type": "add_to_cart", "quantity": 2},
            {
                "customer_id": "erin",
                "occurred_at": moment + timedelta(minutes=5),
                "event_type": "add_to_cart",
            },
        ],
    )
    vector = reader.vectors(["erin"], skus=["A"], request_time=moment + timedelta(hours=2))[0]
    assert vector["cart_items"] == 3
    assert vector["hours_since_last_event"] == pytest.approx(2 - 5 / 60)
    push_events(
        reader.store,
        [
            {
                "customer_id": "erin",
                "occurred_at": moment + timedelta(hours=1),
                "event_type": "order",
                "skus": ["B", "A"],
            }
        ],
    )
    vector = reader.vectors(["erin"], skus=["A"])[0]
    assert vector["cart_items"] == 0 and vector["last_order_skus"] == ["A", "B"]


def test_request_time_features_follow_the_request_time(built) -> None:
    workspace, settings, _ = built
    reader = OnlineFeatures.open(workspace, "churn_v1", settings)
    early, late = (reader.vectors(["alice"], request_time=NOW + timedelta(days=d))[0] for d in (0, 10))
    assert early["days_since_last_order"] == pytest.approx(
        (NOW - t("2025-03-01 12:00")).total_seconds() / 86400
    )
    assert late["days_since_last_order"] - early["days_since_last_order"] == pytest.approx(10)
    assert late["tenure_days"] - early["tenure_days"] == pytest.approx(10)
    assert late["orders_365d"] == early["orders_365d"]  # materialised values do not move with the clock


def test_materialise_is_incremental_and_moves_windows_forward(tmp_path) -> None:
    workspace, settings = new_workspace(tmp_path), embedded_settings()
    first = build(workspace, settings, now=t("2025-05-01").to_pydatetime())
    assert all(how.startswith("full") for how in first["materialized"].values())
    reader = OnlineFeatures.open(workspace, "churn_v1", settings)
    assert reader.vectors(["alice"])[0]["orders_90d"] == 1
    second = build(workspace, settings, now=NOW)
    # Every view from the previous end, but customer_profile (consent), reloaded whole on every run.
    assert second["materialized"].pop("customer_profile").startswith("full")
    assert all(how.startswith("from 2025-05-01") for how in second["materialized"].values())
    assert reader.vectors(["alice"])[0]["orders_90d"] == 0  # the March order left the window in June
    assert reader.vectors(["bob"])[0]["orders_lifetime"] == 2  # bob's June order arrived


@pytest.mark.parametrize("service", ["churn_v1", "next_best_product_v1"])
def test_the_reader_returns_what_feast_get_online_features_returns(built, service: str) -> None:
    workspace, settings, _ = built
    reader = OnlineFeatures.open(workspace, service, settings)
    customers, skus = ["alice", "bob", "carol", "nobody"], ["A", "B", "Z", "C"]
    rows = {"customer_id": customers, "sku": skus, "request_time": [NOW] * 4}
    if service == "churn_v1":
        del rows["sku"]
    stock = reader.store.get_online_features(features=reader.service, entity_rows=rows).to_dict()
    mine = reader.columns(customers, skus, request_time=NOW)
    assert mine == {name: stock[name] for name in reader.names}
