"""Desk fixtures: the served workspace with people in it, and the service over it in this process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from desk_fixtures import People, with_people
from serving_fixtures import Chained, Served, serve_env
from steward_fixtures import copy_chained

from tessera.core.settings import Workspace


@pytest.fixture(scope="session")
def people(served: Served, tmp_path_factory: pytest.TempPathFactory) -> People:
    return with_people(served, tmp_path_factory.mktemp("desk") / "workspace")


@pytest.fixture(scope="session")
def desk_env(served: Served, people: People) -> dict[str, str]:
    """The service's environment on the desk's workspace (cookies without `Secure`: the tests speak plain HTTP)."""
    env = serve_env(served)
    env["TESSERA_SERVE_WORKSPACE"] = str(people.workspace.root)
    env["TESSERA_SERVE_ACCESS_LOG_PATH"] = str(people.workspace.root / "access.jsonl")
    return env


@pytest.fixture(scope="module")
def desk_client(desk_env: dict[str, str]) -> Iterator[object]:
    """The service through `to_asgi()` on the desk's workspace."""
    from starlette.testclient import TestClient

    from serving.service import Tessera

    with pytest.MonkeyPatch.context() as patch:
        for key, value in {**desk_env, "TESSERA_SERVE_DESK_SECURE_COOKIE": "false"}.items():
            patch.setenv(key, value)
        with TestClient(Tessera.to_asgi(), raise_server_exceptions=False) as client:
            yield client


@pytest.fixture
def steward_workspace(chained: Chained, tmp_path: Path) -> Workspace:
    """A fresh copy of the chained workspace for one test (a decision changes it)."""
    return copy_chained(chained, tmp_path / "ws")
