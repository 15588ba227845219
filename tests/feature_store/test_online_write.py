"""The fast materialisation writes exactly what Feast's own `FeatureStore.materialize` writes, and the
SQLite store's read returns what Feast's SQLite read returns."""

from __future__ import annotations

import pandas as pd
from feast import FeatureStore, RepoConfig
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value
from feature_store_fixtures import NOW, build, embedded_settings, new_workspace

from features.store import open_store
from features.store.config import offline_folder
from features.store.repo import EPOCH, apply_declarations


def _stock_store(ours: FeatureStore, path: str) -> FeatureStore:
    """The same declarations and offline tables behind Feast's stock SQLite online store."""
    raw = ours.config.model_dump(by_alias=True, exclude={"repo_path"})
    raw["online_store"] = {"type": "sqlite", "path": path}
    raw["registry"] = {**raw["registry"], "path": path + ".registry"}
    return FeatureStore(repo_path=str(ours.repo_path), config=RepoConfig(**raw))


def test_fast_materialisation_equals_feast_materialisation(tmp_path) -> None:
    workspace, settings = new_workspace(tmp_path / "ws"), embedded_settings()
    build(workspace, settings)
    ours = open_store(workspace, settings)
    stock = _stock_store(ours, str(tmp_path / "stock.db"))
    apply_declarations(stock, workspace)
    stock.materialize(start_date=EPOCH, end_date=NOW)

    for view in ours.list_feature_views():
        (key,) = view.join_keys
        ids = pd.read_parquet(offline_folder(workspace) / f"{view.name}.parquet")[key].unique().tolist()
        keys = [EntityKey(join_keys=[key], entity_values=[Value(string_val=i)]) for i in ids]
        keys.append(EntityKey(join_keys=[key], entity_values=[Value(string_val="nobody")]))
        for requested in (None, [f.name for f in view.features][::2]):
            mine = ours._get_provider().online_read(ours.config, view, keys, requested)
            theirs = stock._get_provider().online_read(stock.config, view, keys, requested)
            assert len(mine) == len(ids) + 1 and mine[-1] == (None, None)
            for entity, (my_ts, my_values), (their_ts, their_values) in zip(
                ids, mine[:-1], theirs[:-1], strict=True
            ):
                assert my_ts == their_ts, (view.name, entity)
                # Feast's SQLite read returns every feature of the view whatever was asked; ours only those asked.
                expected = {k: v for k, v in their_values.items() if requested is None or k in requested}
                assert my_values == expected, (view.name, entity)
