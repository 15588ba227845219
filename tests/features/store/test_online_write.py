"""Tessera's online stores (one vector per entity and view) read back exactly what Feast's own
materialisation into Feast's own SQLite store reads back; newer vectors win; partial writes merge."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import pandas as pd
import pytest
from feast import FeatureStore, RepoConfig
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value
from feature_store_fixtures import NOW, build, embedded_settings, new_workspace

from features.store import OnlineFeatures, open_store
from features.store.config import offline_folder
from features.store.repo import EPOCH, apply_declarations, materialize
from tessera.core.errors import InputError


def _stock_store(ours: FeatureStore, path: str) -> FeatureStore:
    """The same declarations and offline tables behind Feast's stock SQLite online store and a file registry."""
    raw = ours.config.model_dump(by_alias=True, exclude={"repo_path"})
    raw["online_store"] = {"type": "sqlite", "path": path}
    raw["registry"] = {"registry_type": "file", "path": path + ".registry"}
    return FeatureStore(repo_path=str(ours.repo_path), config=RepoConfig(**raw))


def _key(join_key: str, value: str) -> EntityKey:
    return EntityKey(join_keys=[join_key], entity_values=[Value(string_val=value)])


def test_online_reads_equal_feast_materialisation_into_feast_sqlite(built, tmp_path) -> None:
    workspace, settings, _ = built
    ours = open_store(workspace, settings)
    stock = _stock_store(ours, str(tmp_path / "stock.db"))
    apply_declarations(stock, workspace)
    stock.materialize(start_date=EPOCH, end_date=NOW)

    for view in ours.list_feature_views():
        (key,) = view.join_keys
        ids = pd.read_parquet(offline_folder(workspace) / f"{view.name}.parquet")[key].unique().tolist()
        keys = [_key(key, i) for i in ids] + [_key(key, "nobody")]
        for requested in (None, [f.name for f in view.features][::2]):
            mine = ours._get_provider().online_read(ours.config, view, keys, requested)
            theirs = stock._get_provider().online_read(stock.config, view, keys, requested)
            assert len(mine) == len(ids) + 1 and mine[-1] == (None, None)
            for entity, (my_ts, my_values), (their_ts, their_values) in zip(
                ids, mine[:-1], theirs[:-1], strict=True
            ):
                # Feast's SQLite store keeps whole seconds; Tessera's stores keep microseconds.
                assert int(my_ts.timestamp()) == int(their_ts.timestamp()), (view.name, entity)
                # Feast's SQLite read returns every feature of the view whatever was asked; ours only those asked.
                expected = {k: v for k, v in their_values.items() if requested is None or k in requested}
                assert my_values == expected, (view.name, entity)


def _realtime_write(store: FeatureStore, customer: str, moment, values: dict[str, Value]) -> None:
    view = store.get_feature_view("customer_realtime")
    store._get_provider().online_write_batch(
        store.config, view, [(_key("customer_id", customer), values, moment, None)], progress=None
    )


def _realtime(store: FeatureStore, customer: str) -> dict:
    reader = OnlineFeatures(store, "next_best_product_v1")
    vector = reader.vectors([customer], skus=["A"], request_time=NOW + timedelta(days=1))[0]
    return {name: vector[name] for name in ("cart_items", "last_order_skus")}


def test_an_older_write_leaves_a_newer_vector_and_a_partial_write_merges(built) -> None:
    workspace, settings, _ = built
    store = open_store(workspace, settings)
    # zoe is known to no other test: her writes leave the shared stores' other entities as they were.
    later, earlier = NOW + timedelta(hours=2), NOW + timedelta(hours=1)
    full = {
        "last_event_at": Value(unix_timestamp_val=int(later.timestamp())),
        "cart_items": Value(int64_val=4),
        "last_order_skus": Value(string_list_val={"val": ["B"]}),
    }
    _realtime_write(store, "zoe", later, full)
    assert _realtime(store, "zoe") == {"cart_items": 4, "last_order_skus": ["B"]}
    # A materialisation of older data (say, the profile's state before a live event) changes nothing.
    _realtime_write(store, "zoe", earlier, {**full, "cart_items": Value(int64_val=0)})
    assert _realtime(store, "zoe")["cart_items"] == 4
    # A write of one feature keeps the stored values of the others.
    _realtime_write(store, "zoe", later + timedelta(minutes=1), {"cart_items": Value(int64_val=5)})
    assert _realtime(store, "zoe") == {"cart_items": 5, "last_order_skus": ["B"]}


def test_the_reader_gives_repeated_and_unknown_entities_their_own_rows(embedded) -> None:
    workspace, settings, _ = embedded
    reader = OnlineFeatures.open(workspace, "churn_v1", settings)
    alice, again, nobody = reader.vectors(["alice", "alice", "nobody"], request_time=NOW)
    assert alice == again and alice != nobody
    assert nobody == reader.vectors(["someone else"], request_time=NOW)[0]


def test_an_online_store_of_feast_layout_is_a_clear_error(tmp_path) -> None:
    workspace, settings = new_workspace(tmp_path), embedded_settings()
    path = workspace.feature_repo_data / "online_store.db"
    path.parent.mkdir(parents=True)
    with sqlite3.connect(path) as conn:
        conn.execute(
            f'CREATE TABLE "{settings.project}_customer_profile" (entity_key BLOB, feature_name TEXT, '
            "value BLOB, value_text TEXT, vector_value BLOB, event_ts timestamp, created_ts timestamp, "
            "PRIMARY KEY(entity_key, feature_name))"
        )
    with pytest.raises(InputError, match="online_store.db.*one-row-per-feature layout"):
        build(workspace, settings)


def _online(store: FeatureStore, view_name: str, join_key: str, entity: str, feature: str):
    view = store.get_feature_view(view_name)
    ((_, values),) = store._get_provider().online_read(
        store.config, view, [_key(join_key, entity)], [feature]
    )
    return values[feature]


def test_a_rebuild_at_the_same_as_of_reaches_the_online_store(tmp_path) -> None:
    """New sources rebuilt at the as-of the online store was last loaded to: the rewritten tables are loaded
    again (before, every view said "up to date" and kept serving the old values)."""
    from feature_store_fixtures import orders, products

    workspace, settings = new_workspace(tmp_path / "ws"), embedded_settings()
    build(workspace, settings)
    store = open_store(workspace, settings)
    assert _online(store, "customer_transactions", "customer_id", "bob", "orders_lifetime").int64_val == 2
    assert _online(store, "product_catalog", "sku", "A", "category").string_val == "Home > Kitchen"

    late = orders().iloc[[-2]].assign(order_id="O6", ordered_at=pd.Timestamp("2025-06-20 09:00", tz="UTC"))
    pd.concat([orders(), late]).to_parquet(workspace.profile / "orders.parquet")
    renamed = products().assign(category=["Home > Cookware", "Home > Bath", "Garden"])
    renamed.to_parquet(workspace.canonical_table("products") / "catalogue.parquet")
    rebuilt = build(workspace, settings)

    assert rebuilt["materialized"]["customer_transactions"].startswith("full")
    store = open_store(workspace, settings)
    assert _online(store, "customer_transactions", "customer_id", "bob", "orders_lifetime").int64_val == 3
    assert _online(store, "product_catalog", "sku", "A", "category").string_val == "Home > Cookware"

    # Materialised again with no table rewritten since: nothing is loaded but the consent view (always whole).
    again = materialize(open_store(workspace, settings), workspace, NOW)
    assert again.pop("customer_profile").startswith("full")
    assert set(again.values()) == {"up to date"}
