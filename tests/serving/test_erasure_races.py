"""An erasure that lands while a worker reads its snapshot (a worker starting, or a reload under way) is not undone
by that snapshot: the customer is unknown once the worker serves it, whoever erased them.

Found by `test_erase_over_http.py` failing under load: the second worker was still loading when the first erased
the customer, so its erasure watch took the erasure log as it already stood and never looked at the directory; it
knew the customer until it restarted.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from serving_fixtures import Served, copy_workspace, serve_env

from features.store.settings import FeatureStoreSettings
from serving.customers import Directory
from serving.engine import Engine, UnknownCustomer
from serving.erasure import erase_person, find_person
from serving.settings import ServeSettings
from tessera.core.settings import Settings, Workspace

pytestmark = pytest.mark.integration
STORE = FeatureStoreSettings()


@pytest.fixture
def copy(served: Served, tmp_path: Path) -> Iterator[Served]:
    """A copy of the served workspace (erasures rewrite its files), with the service's environment set."""
    copied = dataclasses.replace(served, workspace=copy_workspace(served.workspace, tmp_path / "ws"))
    with pytest.MonkeyPatch.context() as patch:
        for key, value in serve_env(copied).items():
            patch.setenv(key, value)
        yield copied


def _customer(copy: Served) -> str:
    """A customer with a golden record that no other test names."""
    golden = pd.read_parquet(copy.workspace.profile / "customers.parquet")
    named = {copy.regular, copy.buyer, copy.no_personalisation, copy.no_profiling, copy.survivor}
    return str(sorted(set(golden["customer_id"]) - named)[0])


def _erase(workspace: Workspace, customer: str) -> None:
    """Another worker's `DELETE /customers/{id}` (or `tessera erase`): every store rewritten, the log appended."""
    erase_person(
        workspace, Settings(workspace=workspace.root), STORE, find_person(workspace, customer=customer)
    )


def _knows(engine: Engine, customer: str) -> bool:
    try:
        engine.customer(customer)
    except UnknownCustomer:
        return False
    return True


def test_an_erasure_while_the_worker_starts_is_honoured(
    copy: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    customer = _customer(copy)
    load = Directory.load

    def erased_after_reading(workspace: Workspace) -> Directory:
        """The directory as the starting worker reads it, then the erasure (once) before it serves."""
        directory = load(workspace)
        if customer in directory.ids and not erased:
            erased.append(customer)
            _erase(workspace, customer)
        return directory

    erased: list[str] = []
    monkeypatch.setattr(Directory, "load", staticmethod(erased_after_reading))
    engine = Engine(ServeSettings(), STORE)
    try:
        assert erased == [customer]
        assert customer not in load(copy.workspace).ids  # the erasure did happen
        assert engine.resolve(customer) is None  # the directory read before the erasure is not served
        assert not _knows(engine, customer)
    finally:
        engine.close()


def test_an_erasure_during_a_reload_is_honoured_by_the_reloaded_snapshot(copy: Served) -> None:
    customer = _customer(copy)
    engine = Engine(ServeSettings(), STORE)
    try:
        assert _knows(engine, customer)
        golden = copy.workspace.profile / "customers.parquet"
        later = golden.stat().st_mtime + 60
        os.utime(golden, (later, later))  # the golden records rewritten (a new profile)...
        read = engine.loader.load(engine.snapshot)  # ...a reload reads them before the erasure...
        _erase(copy.workspace, customer)
        engine._erasures.check()  # ...the erasure watch fires on the snapshot still served...
        engine._install(read)  # ...and the reload lands afterwards.
        assert not _knows(engine, customer)
        assert engine.resolve(customer) is None
    finally:
        engine.close()


def test_a_failed_erasure_check_is_retried(copy: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    customer = _customer(copy)
    engine = Engine(ServeSettings(), STORE)
    engine._erasures.stop()  # its ticks are taken by hand below
    try:
        _erase(copy.workspace, customer)
        load = Directory.load

        def unreadable(workspace: Workspace) -> Directory:
            raise OSError("the directory's files could not be read")

        monkeypatch.setattr(Directory, "load", staticmethod(unreadable))
        with pytest.raises(OSError):
            engine._erasures.check()  # the watch's thread logs it and ticks again
        assert engine.resolve(customer) == customer
        monkeypatch.setattr(Directory, "load", staticmethod(load))
        assert engine._erasures.check()  # the next tick still sees the erasure as new
        assert engine.resolve(customer) is None
    finally:
        engine.close()
