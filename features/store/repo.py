"""Apply the declarations in `features/feature_repo/` to a workspace's store, and materialise it.

Feast's own `parse_repo` imports the repository's files by their path relative to the working directory;
Tessera must not depend on the working directory, so the declarations are imported as the package
`features.feature_repo` and collected the same way (same object types, same de-duplication), then applied
with Feast's own diff so objects removed from the declarations are removed from the registry too.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import importlib.util
import io
import json
import logging
import pkgutil
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from feast import (
    Entity,
    FeatureService,
    FeatureStore,
    FeatureView,
    FileSource,
    OnDemandFeatureView,
    PushSource,
)
from feast.data_source import DataSource
from feast.feature_view import DUMMY_ENTITY
from feast.infra.registry.sql import SqlRegistry, feature_view_version_history
from feast.repo_contents import RepoContents
from feast.repo_operations import extract_objects_for_apply_delete
from sqlalchemy import delete

from features.store.config import DECLARATIONS, load_config, offline_folder, write_config
from features.store.online_stores import replaces_online
from features.store.online_write import materialize_view
from features.store.settings import FeatureStoreSettings
from tessera.core.errors import InputError
from tessera.core.settings import Workspace
from tessera.core.timeutil import as_utc

logger = logging.getLogger(__name__)

DECLARATIONS_PACKAGE = "features.feature_repo"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
T = TypeVar("T")


def open_store(workspace: Workspace, settings: FeatureStoreSettings) -> FeatureStore:
    """The workspace's FeatureStore: writes feature_store.yaml for the settings and opens Feast on it.

    The registry names each offline table by its absolute path. A file registry lives in the workspace, so when
    its paths name another folder the workspace was moved or copied: the declarations are applied again for this
    one, so nothing reads the tables of a workspace that is gone or is not this one. (A SQL registry is shared by
    design and is left to `tessera features apply`.)
    """
    if settings.offline_store == "duckdb" and importlib.util.find_spec("ibis") is None:
        raise InputError(
            "TESSERA_FEAST_OFFLINE_STORE=duckdb needs Feast's duckdb extra (ibis-framework[duckdb]), which is "
            "not installed: add it to the project, or use TESSERA_FEAST_OFFLINE_STORE=file"
        )
    path = write_config(workspace, settings)
    store = FeatureStore(repo_path=str(DECLARATIONS), config=load_config(path, settings))
    elsewhere = settings.registry == "file" and _tables_elsewhere(store, offline_folder(workspace))
    if elsewhere:
        logger.warning(
            "the feature registry named the tables of %s (a moved or copied workspace): applied again for %s",
            elsewhere,
            workspace.root,
        )
        apply_declarations(store, workspace)
    return store


def _tables_elsewhere(store: FeatureStore, folder: Path) -> Path | None:
    """The folder the registry's offline tables are in, when it is not `folder`."""
    for view in store.list_feature_views():
        source = view.batch_source
        if isinstance(source, FileSource) and Path(source.path).parent != folder:
            return Path(source.path).parent
    return None


def load_declarations(workspace: Workspace) -> RepoContents:
    """Every Feast object declared in `features/feature_repo/`, offline paths made absolute for `workspace`."""
    package = importlib.import_module(DECLARATIONS_PACKAGE)
    declared = DataSource | Entity | FeatureView | OnDemandFeatureView | FeatureService
    found: list[object] = []
    for module_info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{DECLARATIONS_PACKAGE}.{module_info.name}")
        found += [value for value in vars(module).values() if isinstance(value, declared)]
    # A copy, so the module-level declarations keep their relative paths for the next workspace.
    objects = copy.deepcopy(_unique(found))
    _resolve_paths(objects, offline_folder(workspace))
    sources = [o for o in objects if isinstance(o, DataSource)]
    pushed = [s.batch_source for s in sources if isinstance(s, PushSource) and s.batch_source is not None]
    return RepoContents(
        projects=[],
        data_sources=_unique(sources + pushed),
        entities=[o for o in objects if isinstance(o, Entity)] + [DUMMY_ENTITY],
        feature_views=[o for o in objects if type(o) is FeatureView],
        feature_services=[o for o in objects if isinstance(o, FeatureService)],
        on_demand_feature_views=[o for o in objects if isinstance(o, OnDemandFeatureView)],
        stream_feature_views=[],
        label_views=[],
        permissions=[],
    )


def _unique(items: list[T]) -> list[T]:
    """The items without repeats of the same object (imports bring one declaration into several modules)."""
    return list({id(item): item for item in items}.values())


def _resolve_paths(objects: list[object], folder: Path) -> None:
    """Point every FileSource (standalone, behind a push source or in a view) at `folder`."""
    sources: list[FileSource] = []
    for obj in objects:
        if isinstance(obj, FileSource):
            sources.append(obj)
        if isinstance(obj, PushSource | FeatureView) and isinstance(obj.batch_source, FileSource):
            sources.append(obj.batch_source)
    for source in sources:
        uri = source.file_options.uri
        if uri.startswith("offline/"):
            source.file_options.uri = str(folder / uri.removeprefix("offline/"))


def apply_declarations(store: FeatureStore, workspace: Workspace) -> dict[str, int]:
    """Register the declarations in the store's registry (adding, updating and deleting), create online tables."""
    repo = load_declarations(workspace)
    to_apply, to_delete, _, _ = extract_objects_for_apply_delete(store.project, store.registry, repo)
    store.apply(to_apply, objects_to_delete=to_delete, partial=False)
    return {
        "feature_views": len(repo.feature_views),
        "on_demand_feature_views": len(repo.on_demand_feature_views),
        "feature_services": len(repo.feature_services),
        "deleted": len(to_delete),
    }


def materialize(
    store: FeatureStore, workspace: Workspace, now: datetime, full: bool = False
) -> dict[str, str]:
    """Bring the online store up to `now`: from the start for a view never materialised (or all, with
    `full`), else incrementally from the previous run's end. A view already loaded up to `now` is loaded again
    whole when its offline table was rewritten since (a rebuild at the same as-of: new sources, a steward's
    decision), and left as it is when not."""
    store.refresh_registry()
    # Feast prints its progress on stdout, which belongs to the command's own output: log it instead.
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        done = _materialize_views(store, LoadedTables(workspace), now, full)
    for line in printed.getvalue().splitlines():
        if line.strip():
            logger.info("feast: %s", line.strip())
    return done


def _materialize_views(
    store: FeatureStore, loaded: LoadedTables, now: datetime, full: bool
) -> dict[str, str]:
    done: dict[str, str] = {}
    for view in store.list_feature_views():
        if not view.online:
            continue
        last = None if full or replaces_online(view) else view.most_recent_end_time
        # A view never materialised is read from the start (Feast's own first incremental run starts at
        # "wall clock minus TTL", which misses history and backtests); later runs from the last end.
        start = EPOCH if last is None else as_utc(last)
        if start >= now:
            if loaded.unchanged(view):
                done[view.name] = "up to date"
                continue
            start, last = EPOCH, None  # rewritten at the same as-of: its history may have changed too
        rows = materialize_view(store, view, start, now)
        loaded.record(view)
        done[view.name] = f"{'full' if last is None else 'from ' + start.isoformat()}: {rows} rows"
    loaded.save()
    return done


class LoadedTables:
    """What each view's offline table was (size and modification time) when it was last loaded online, kept in
    the workspace's feature data (`data/feast/loaded_tables.json`) beside the registry that records up to when."""

    def __init__(self, workspace: Workspace) -> None:
        self.path = workspace.feature_repo_data / "loaded_tables.json"
        self.stamps: dict[str, list[int]] = json.loads(self.path.read_text()) if self.path.exists() else {}

    @staticmethod
    def _stamp(view: FeatureView) -> list[int] | None:
        try:
            found = Path(view.batch_source.path).stat()
        except (AttributeError, OSError):  # not a file source, or no table yet
            return None
        return [found.st_size, found.st_mtime_ns]

    def unchanged(self, view: FeatureView) -> bool:
        stamp = self._stamp(view)
        return stamp is not None and self.stamps.get(view.name) == stamp

    def record(self, view: FeatureView) -> None:
        stamp = self._stamp(view)
        if stamp is not None:
            self.stamps[view.name] = stamp

    def save(self) -> None:
        self.path.write_text(json.dumps(self.stamps, indent=1, sort_keys=True))


def teardown_project(store: FeatureStore) -> None:
    """Delete this project's online values and registry entries, and nothing of any other project.

    (`FeatureStore.teardown` deletes every project of the registry, which a shared registry database must
    never see; the SQL registry's `delete_project` leaves the project's feature-view version history behind,
    which makes the next apply under the same name fail.)
    """
    views = store.list_feature_views()
    store._get_provider().teardown_infra(store.project, views, store.list_entities())
    if store.project in {project.name for project in store.list_projects()}:
        store.registry.delete_project(store.project, commit=True)
    if isinstance(store.registry, SqlRegistry):
        history = feature_view_version_history
        with store.registry.write_engine.begin() as connection:
            connection.execute(delete(history).where(history.c.project_id == store.project))
