"""One lock per workspace for everything that writes to it: every writing command (ingest, resolve, profile,
features, train, run, retrain, erase) and the service's `DELETE /customers/{id}`.

Two writers at once collide (two `ingest`s on the same `<table>.parquet.tmp`, a `profile` under a retrain), so
the second is refused, not queued: it exits with status 3 and a message naming the holder's pid, command and
start time. The lock is an exclusive `flock` on `<workspace>/data/tessera.lock`: the kernel releases it when its
holder exits, even on `kill -9`, so the lock of a dead process is simply taken (and the takeover logged); the file
only says who holds it. The holder's command is its name (`tessera ingest`), never its arguments (an erasure
names a person). A thread already holding the lock may take it again (a retrain's chain inside `tessera run`);
another thread of the same process is refused like another process (the service's request threads).

It is a foundation (`tessera.core`) so that the service, which may import only the core of `tessera`, takes the
same lock as the commands; the CLI's decorator over it is `tessera.options.writes_workspace`.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tessera.core.settings import Workspace

log = logging.getLogger(__name__)
EXIT_BUSY = 3

# (lock file, thread) -> how many times that thread holds it
_held: dict[tuple[Path, int], int] = {}
_guard = threading.Lock()
# How long a refusal waits for a holder that has the lock but has not written its name yet (or has just cleared it).
_NAMING_WAIT = 2.0


class WorkspaceBusy(RuntimeError):
    """Another process holds the workspace's lock."""


def lock_path(workspace: Workspace) -> Path:
    """The workspace's lock file."""
    return workspace.data / "tessera.lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def workspace_lock(workspace: Workspace, command: str) -> Iterator[Path]:
    """Hold the workspace's write lock for the block; raise `WorkspaceBusy` naming the holder if another has it."""
    path = lock_path(workspace).resolve()
    mine = (path, threading.get_ident())
    with _guard:
        if mine in _held:
            _held[mine] += 1
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield path
        finally:
            with _guard:
                _held[mine] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+")
    try:
        _take(handle, workspace, command)
        handle.seek(0)
        previous = _holder(handle.read())
        if previous and previous.get("pid") != os.getpid() and not _alive(int(previous.get("pid", 0))):
            log.warning(
                "taking over the workspace lock of pid %s (`%s`), which died without releasing it",
                previous.get("pid"),
                previous.get("command"),
            )
        handle.seek(0)
        handle.truncate()
        handle.write(
            json.dumps({"pid": os.getpid(), "command": command, "started": datetime.now(UTC).isoformat()})
        )
        handle.flush()
        with _guard:
            _held[mine] = 1
        try:
            yield path
        finally:
            with _guard:
                del _held[mine]
            handle.seek(0)
            handle.truncate()
    finally:
        handle.close()  # closing the file releases the lock


def _take(handle: Any, workspace: Workspace, command: str) -> None:
    """Take the lock on `handle`, or raise `WorkspaceBusy` naming the holder.

    The holder writes its name just after taking the lock and clears it just before letting go, so a refusal
    that finds the file empty is either early or late: it tries again for up to `_NAMING_WAIT` seconds, and
    either takes the lock (the holder has finished) or reads the holder's name (it has written it).
    """
    deadline = time.monotonic() + _NAMING_WAIT
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            handle.seek(0)
            text = handle.read()
        if _holder(text) or time.monotonic() >= deadline:
            raise WorkspaceBusy(_refusal(workspace, text, command))
        time.sleep(0.01)


def _holder(text: str) -> dict[str, Any]:
    try:
        found = json.loads(text)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _refusal(workspace: Workspace, text: str, command: str) -> str:
    holder = _holder(text)
    who = (
        f"pid {holder.get('pid', '?')} (`{holder.get('command', '?')}`, since {holder.get('started', '?')})"
        if holder
        else "another process"
    )
    return (
        f"the workspace {workspace.root} is locked by {who}: not starting `{command}`; "
        "run it again when that command has finished"
    )
