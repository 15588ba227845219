"""Removing a project from the shared Redis and registry database leaves nothing of it, and nothing else goes."""

from __future__ import annotations

import pytest
import redis
import sqlalchemy as sa
from feature_store_fixtures import build, new_workspace, production_settings

from features.store import open_store
from features.store.repo import teardown_project


def _registry_rows(url: str, project: str) -> dict[str, int]:
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        tables = connection.execute(
            sa.text("SELECT table_name FROM information_schema.columns WHERE column_name = 'project_id'")
        ).scalars()
        counts = {
            table: connection.execute(
                sa.text(f'SELECT count(*) FROM "{table}" WHERE project_id = :p'), {"p": project}
            ).scalar_one()
            for table in tables
        }
    engine.dispose()
    return {table: n for table, n in counts.items() if n}


def _redis_keys(project: str) -> int:
    return sum(1 for _ in redis.Redis(host="127.0.0.1", port=6379).scan_iter(match=f"*{project}"))


@pytest.mark.integration
def test_teardown_removes_one_project_and_only_it(tmp_path) -> None:
    kept, removed = production_settings(), production_settings()
    workspaces = {"kept": new_workspace(tmp_path / "kept"), "removed": new_workspace(tmp_path / "removed")}
    build(workspaces["kept"], kept)
    build(workspaces["removed"], removed)
    url = kept.registry_url.get_secret_value()
    try:
        assert _registry_rows(url, removed.project) and _redis_keys(removed.project) > 0
        teardown_project(open_store(workspaces["removed"], removed))
        assert _registry_rows(url, removed.project) == {}
        assert _redis_keys(removed.project) == 0
        assert _registry_rows(url, kept.project) and _redis_keys(kept.project) > 0
    finally:
        teardown_project(open_store(workspaces["kept"], kept))
    assert _registry_rows(url, kept.project) == {} and _redis_keys(kept.project) == 0
