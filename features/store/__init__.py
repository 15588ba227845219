"""The feature store: profile tables → Feast offline tables → registry → online store, and the ways to read it.

- `build_feature_store(workspace, now, settings, store_settings)`: compute, apply and materialise (the step of
  `tessera run`);
- `open_store(workspace, store_settings)`: the workspace's Feast store;
- `training_frame(entities, feature_service, store)`: point-in-time-correct training data;
- `OnlineFeatures`: serving-time vectors of one feature service; `push_events`: live events online.
"""

from features.store.build import apply_feature_store, build_feature_store, materialize_feature_store
from features.store.online import OnlineFeatures
from features.store.push import push_events
from features.store.repo import open_store
from features.store.settings import FeatureStoreSettings
from features.store.training import training_frame

__all__ = [
    "FeatureStoreSettings",
    "OnlineFeatures",
    "apply_feature_store",
    "build_feature_store",
    "materialize_feature_store",
    "open_store",
    "push_events",
    "training_frame",
]
