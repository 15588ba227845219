"""The workspace lock between threads of one process: the holding thread may take it again, another thread is
refused like another process (the service's request threads against each other)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tessera.core.lock import WorkspaceBusy, lock_path, workspace_lock
from tessera.core.settings import Workspace


def test_the_holding_thread_may_take_it_again_and_another_thread_is_refused(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path / "ws")
    refused: list[str] = []

    def other() -> None:
        try:
            with workspace_lock(workspace, "tessera erase"):
                refused.append("taken")
        except WorkspaceBusy as busy:
            refused.append(str(busy))

    with workspace_lock(workspace, "DELETE /customers/{customer_id}"):
        with workspace_lock(workspace, "nested"):
            pass
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
        assert '"command": "DELETE /customers/{customer_id}"' in lock_path(workspace).read_text()
    assert len(refused) == 1 and "DELETE /customers/{customer_id}" in refused[0]
    assert "not starting `tessera erase`" in refused[0]
    # Released: another thread takes it now.
    refused.clear()
    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert refused == ["taken"]


def test_released_after_an_error_inside(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path / "ws")
    with pytest.raises(ValueError), workspace_lock(workspace, "first"):
        raise ValueError("boom")
    with workspace_lock(workspace, "second"):
        assert '"command": "second"' in lock_path(workspace).read_text()
