"""docs/features.md, generated from the registry: every feature with its type, default, meaning and freshness."""

from __future__ import annotations

from pathlib import Path

from feast import FeatureStore, FeatureView, OnDemandFeatureView

from features.store.defaults import field_doc
from tessera.core.settings import REPO_ROOT

CATALOGUE = REPO_ROOT / "docs" / "features.md"

HEADER = """# Feature catalogue

Generated from the Feast registry by `tessera features docs`: do not edit by hand (a test fails when this
page and the declarations in `features/feature_repo/` disagree). How the values are computed, and what
"freshness" means for each kind of view: [feature_store.md](feature_store.md).

A feature's **default** is what a training frame or an online read gives when there is no value: the
entity has no history yet, or the value is unknown. `null` stays missing.
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _entities(view: FeatureView | OnDemandFeatureView) -> str:
    if isinstance(view, FeatureView):
        return ", ".join(f"`{key}`" for key in view.join_keys)
    return "request (plus the inputs' entities)"


def render_catalogue(store: FeatureStore) -> str:
    """The catalogue page for the store's registry (deterministic: sorted views, declared feature order)."""
    store.refresh_registry()
    views: list[FeatureView | OnDemandFeatureView] = sorted(store.list_feature_views(), key=lambda v: v.name)
    views += sorted(store.list_on_demand_feature_views(), key=lambda v: v.name)
    services = sorted(store.list_feature_services(), key=lambda s: s.name)
    used_by: dict[tuple[str, str], list[str]] = {}
    for service in services:
        for projection in service.feature_view_projections:
            for field in projection.features:
                used_by.setdefault((projection.name, field.name), []).append(service.name)

    lines = [
        HEADER,
        "## Feature services",
        "",
        "| service | features | views | what it is for |",
        "|---|---|---|---|",
    ]
    for service in services:
        count = sum(len(p.features) for p in service.feature_view_projections)
        names = ", ".join(f"`{p.name}`" for p in service.feature_view_projections)
        lines.append(f"| `{service.name}` | {count} | {names} | {_cell(service.description)} |")
    total = sum(len(v.features) for v in views)
    lines += ["", f"## Feature views ({len(views)} views, {total} features)", ""]
    for view in views:
        lines += [
            f"### `{view.name}`",
            "",
            _cell(view.description),
            "",
            f"- entity: {_entities(view)}",
            f"- freshness: {_cell(view.tags.get('freshness', ''))}",
            "",
            "| feature | type | default | description | services |",
            "|---|---|---|---|---|",
        ]
        for field in view.features:
            services_using = ", ".join(used_by.get((view.name, field.name), [])) or "—"
            lines.append(
                f"| `{field.name}` | {field.dtype} | `{field_doc(view, field, 'default')}` | "
                f"{_cell(field_doc(view, field, 'description'))} | {services_using} |"
            )
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def write_catalogue(store: FeatureStore, path: Path = CATALOGUE) -> Path:
    """Write the catalogue page for the store's registry; returns its path."""
    path.write_text(render_catalogue(store))
    return path
