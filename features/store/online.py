"""Online feature vectors for serving: one feature service, read from the online store with defaults.

    reader = OnlineFeatures.open(workspace, "churn_v1", store_settings)
    reader.vectors(["C1", "C2"])        # [{"orders_30d": 1, ...}, {...}] in the order asked

Feast's `get_online_features` re-resolves the feature service on every call, serialises each entity key
once per view, reads view by view and passes every value through generic response building twice. The
reader resolves the service once, serialises each key once, reads every view in one call to the online
store's `read_columns` (features.store.online_stores: one JSON vector per entity and view, decoded straight
to Python), and runs the on-demand view's registered transformation (`OnDemandFeatureView.transform_dict`)
on the columns. A test checks it returns exactly what `get_online_features` returns. Create a new reader
after `tessera features apply` changes the registry.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from feast import FeatureStore, FeatureView, OnDemandFeatureView

from features.store.defaults import Feature, fill_column, service_features, service_reads
from features.store.online_stores import PackedVectors, string_keys
from features.store.repo import open_store
from features.store.settings import FeatureStoreSettings
from tessera.core.errors import InputError
from tessera.core.settings import Workspace


class OnlineFeatures:
    """Reads one feature service's vectors from the online store."""

    def __init__(self, store: FeatureStore, feature_service: str) -> None:
        self.store = store
        self.service = store.get_feature_service(feature_service)
        self.features: list[Feature] = service_features(store, self.service)
        self.names = [f.name for f in self.features]
        plan = service_reads(store, self.service)
        self.reads: list[tuple[FeatureView, list[str]]] = plan.reads
        self.on_demand: list[tuple[OnDemandFeatureView, list[str]]] = plan.on_demand
        self.join_keys = plan.join_keys
        # Each read's entity key, looked up once per reader rather than per call.
        self._read_keys = [view.join_keys[0] for view, _ in self.reads]
        self._online_store = store._get_provider().online_store
        if not isinstance(self._online_store, PackedVectors):
            raise InputError(
                f"the online store {type(self._online_store).__name__} is not one of Tessera's "
                "(features.store.online_stores): open the store with features.store.open_store"
            )

    @classmethod
    def open(
        cls, workspace: Workspace, feature_service: str, store_settings: FeatureStoreSettings
    ) -> OnlineFeatures:
        """A reader on the workspace's store as the settings configure it."""
        return cls(open_store(workspace, store_settings), feature_service)

    def _entity_keys(
        self, customer_ids: Sequence[str] | None, skus: Sequence[str] | None
    ) -> dict[str, list[bytes]]:
        given = {"customer_id": customer_ids, "sku": skus}
        keys = {}
        for key in self.join_keys:
            values = given.get(key)
            if values is None:
                raise ValueError(f"the feature service {self.service.name} needs `{key}` values")
            keys[key] = self._online_store.serialize_keys(self.store.config, string_keys(key, values))
        if len({len(v) for v in keys.values()}) > 1:
            raise ValueError(f"entity columns of different lengths: { {k: len(v) for k, v in keys.items()} }")
        return keys

    def columns(
        self,
        customer_ids: Sequence[str] | None = None,
        skus: Sequence[str] | None = None,
        request_time: datetime | None = None,
    ) -> dict[str, list[Any]]:
        """Feature values column-wise, one entry per entity row, nulls left as None (no defaults)."""
        keys = self._entity_keys(customer_ids, skus)
        size = len(next(iter(keys.values())))
        values = self._online_store.read_columns(
            self.store.config,
            [
                (view, names, keys[key])
                for (view, names), key in zip(self.reads, self._read_keys, strict=True)
            ],
        )
        if self.on_demand:
            moment = request_time or datetime.now(UTC)
            inputs = {**values, "request_time": [moment] * size}
            for odfv, outputs in self.on_demand:
                computed = odfv.transform_dict(inputs)
                values.update({name: list(computed[name]) for name in outputs})
        return {name: values[name] for name in self.names}

    def vectors(
        self,
        customer_ids: Sequence[str] | None = None,
        skus: Sequence[str] | None = None,
        request_time: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """One feature vector per entity row (feature name → value, declared defaults for nulls)."""
        columns = self.columns(customer_ids, skus, request_time)
        filled = [fill_column(columns[f.name], f) for f in self.features]
        return [dict(zip(self.names, row, strict=True)) for row in zip(*filled, strict=True)]
