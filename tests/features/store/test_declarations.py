"""The Feast declarations: documented features, one service per model, tables that match the registry."""

from __future__ import annotations

import pyarrow.parquet as pq
from feast import FeatureStore

from features.store import open_store
from features.store.catalogue import CATALOGUE, render_catalogue
from features.store.config import offline_folder
from features.store.defaults import service_features
from features.store.repo import load_declarations

# Parquet types of the offline tables for each Feast type.
TYPES = {
    "Int64": "int64",
    "Float64": "double",
    "Bool": "bool",
    "String": "string",
    "UnixTimestamp": "timestamp[us, tz=UTC]",
    "Array(String)": "list<element: string>",
}


def _store(embedded) -> FeatureStore:
    workspace, settings, _ = embedded
    return open_store(workspace, settings)


def test_every_feature_says_what_it_means_and_what_it_defaults_to(embedded) -> None:
    store = _store(embedded)
    for service in ("churn_v1", "cltv_v1", "next_best_product_v1"):
        for feature in service_features(store, service):
            assert len(feature.description) > 10, feature
            assert feature.freshness, feature
    for view in store.list_feature_views():
        assert view.description and view.name.startswith(("customer_", "product_"))
        for field in view.features:
            assert field.description and "default" in field.tags, (view.name, field.name)


def test_one_feature_service_per_model_and_enough_features(embedded) -> None:
    store = _store(embedded)
    assert sorted(s.name for s in store.list_feature_services()) == [
        "churn_v1",
        "cltv_v1",
        "next_best_product_v1",
    ]
    customer_features = sum(
        len(v.features) for v in store.list_feature_views() if v.name.startswith("customer_")
    )
    assert customer_features >= 40
    assert len(service_features(store, "churn_v1")) >= 40


def test_offline_tables_have_exactly_the_declared_columns_and_types(embedded) -> None:
    workspace, _, _ = embedded
    store = _store(embedded)
    for view in store.list_feature_views():
        schema = pq.read_schema(offline_folder(workspace) / f"{view.name}.parquet")
        assert schema.names == [*view.join_keys, "event_timestamp", *(f.name for f in view.features)]
        assert str(schema.field("event_timestamp").type) == "timestamp[us, tz=UTC]"
        for field in view.features:
            assert str(schema.field(field.name).type) == TYPES[str(field.dtype)], (view.name, field.name)


def test_declarations_keep_their_relative_paths_after_loading(tmp_path) -> None:
    from tessera.core.settings import Workspace

    first, second = load_declarations(Workspace(tmp_path / "a")), load_declarations(Workspace(tmp_path / "b"))
    paths = {source.name: source.path for source in first.data_sources if hasattr(source, "path")}
    assert paths["customer_transactions"].startswith(str(tmp_path / "a"))
    assert {s.path for s in second.data_sources if hasattr(s, "path")}.isdisjoint(paths.values())


def test_the_feature_catalogue_is_up_to_date(embedded) -> None:
    expected = render_catalogue(_store(embedded))
    assert CATALOGUE.read_text() == expected, "docs/features.md is stale: run `tessera features docs`"
