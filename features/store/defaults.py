"""The declared default of every feature (its `default` tag), read from the registry.

A feature is null when its entity has no row yet (a customer with no history, a cutoff before the first
event) or the value is unknown; training frames and online reads both replace nulls with these defaults,
so a model sees the same value in training and serving.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pandas as pd
from feast import FeatureService, FeatureStore, FeatureView, OnDemandFeatureView
from feast.field import Field
from feast.types import Array, Bool, Float64, Int64


@dataclass(frozen=True)
class Feature:
    """One feature of a service as declared: its view, name, type, description, default and freshness."""

    view: str
    name: str
    dtype: str
    description: str
    default: Any
    freshness: str


def _parse_default(text: str, dtype: object) -> Any:
    if text == "null":
        return None
    if dtype == Bool:
        return text == "true"
    if dtype == Int64:
        return int(text)
    if dtype == Float64:
        return float(text)
    if isinstance(dtype, Array):
        return json.loads(text)
    return text


def field_doc(view: FeatureView | OnDemandFeatureView, field: Field, key: str) -> str:
    # On-demand views keep field documentation in view tags (feast-dev/feast#3617, see on_demand.py).
    value = field.description if key == "description" else field.tags.get("default", "")
    return value or view.tags.get(f"{key}.{field.name}", "null" if key == "default" else "")


def service_features(store: FeatureStore, service: FeatureService | str) -> list[Feature]:
    """The features of a service, in its order, with their declared defaults."""
    if isinstance(service, str):
        service = store.get_feature_service(service)
    views: dict[str, FeatureView | OnDemandFeatureView] = {v.name: v for v in store.list_feature_views()}
    views.update({v.name: v for v in store.list_on_demand_feature_views()})
    features = []
    for projection in service.feature_view_projections:
        view = views[projection.name]
        declared = {f.name: f for f in view.features}
        for field in projection.features:
            field = declared.get(field.name, field)
            features.append(
                Feature(
                    view=projection.name_to_use(),
                    name=field.name,
                    dtype=str(field.dtype),
                    description=field_doc(view, field, "description"),
                    default=_parse_default(field_doc(view, field, "default"), field.dtype),
                    freshness=view.tags.get("freshness", ""),
                )
            )
    return features


@dataclass(frozen=True)
class ServiceReads:
    """What a service's values are made of: the stored views' columns to read and the on-demand views to run.

    An on-demand view's inputs are read too, as Feast reads them, even when the service omits them.
    """

    reads: list[tuple[FeatureView, list[str]]]  # view, its columns, in the service's order
    on_demand: list[tuple[OnDemandFeatureView, list[str]]]  # view, the outputs the service takes

    @property
    def join_keys(self) -> list[str]:
        """The stored views' entity keys (on-demand views have none of their own)."""
        return sorted({key for view, _ in self.reads for key in view.join_keys})


def service_reads(store: FeatureStore, service: FeatureService) -> ServiceReads:
    """The stored columns and on-demand views behind a feature service."""
    views = {view.name: view for view in store.list_feature_views()}
    on_demand = {view.name: view for view in store.list_on_demand_feature_views()}
    wanted: dict[str, list[str]] = {}
    runs: list[tuple[OnDemandFeatureView, list[str]]] = []
    for projection in service.feature_view_projections:
        if projection.name in on_demand:
            odfv = on_demand[projection.name]
            runs.append((odfv, [f.name for f in projection.features]))
            for source in odfv.source_feature_view_projections.values():
                wanted.setdefault(source.name, []).extend(f.name for f in source.features)
        else:
            wanted.setdefault(projection.name, []).extend(f.name for f in projection.features)
    reads = [(views[name], list(dict.fromkeys(names))) for name, names in wanted.items()]
    return ServiceReads(reads, runs)


def fill_defaults(frame: pd.DataFrame, features: list[Feature]) -> pd.DataFrame:
    """Replace nulls by each feature's default; counts become int64, flags bool, measures float64 (NaN)."""
    out = frame.copy()
    for feature in features:
        column = out[feature.name]
        if isinstance(feature.default, list):
            out[feature.name] = [list(feature.default) if _missing(v) else list(v) for v in column]
            continue
        if feature.default is not None:
            column = column.where(column.notna(), feature.default)
        if feature.dtype == str(Float64):
            column = column.astype("float64")
        elif feature.default is not None and feature.dtype == str(Int64):
            column = column.astype("int64")
        elif feature.default is not None and feature.dtype == str(Bool):
            column = column.astype(bool)
        out[feature.name] = column
    return out


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def fill_column(values: list[Any], feature: Feature) -> list[Any]:
    """One online column with nulls replaced by the feature's declared default."""
    default = feature.default
    if default is None:
        return values
    if isinstance(default, list):
        return [list(default) if v is None else v for v in values]
    return [default if v is None else v for v in values]
