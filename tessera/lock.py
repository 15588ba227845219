"""One lock per workspace for every command that writes to it (ingest, resolve, profile, features, train, run,
retrain; erase when it comes).

Two writers at once collide (two `ingest`s on the same `<table>.parquet.tmp`, a `profile` under a retrain), so
the second is refused, not queued: it exits with status 3 and a message naming the holder's pid, command and
start time. The lock is an exclusive `flock` on `<workspace>/data/tessera.lock`: the kernel releases it when its
holder exits, even on `kill -9`, so the lock of a dead process is simply taken (and the takeover logged); the file
only says who holds it. The holder's command is its name (`tessera ingest`), never its arguments (an erasure
names a person). A process already holding the lock may take it again (a retrain's chain inside `tessera run`).
"""

from __future__ import annotations

import fcntl
import functools
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from tessera.core.settings import Workspace

log = logging.getLogger(__name__)
EXIT_BUSY = 3
F = TypeVar("F", bound=Callable[..., Any])

_held: dict[Path, int] = {}
_guard = threading.Lock()


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
    with _guard:
        if path in _held:
            _held[path] += 1
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield path
        finally:
            with _guard:
                _held[path] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            raise WorkspaceBusy(_refusal(workspace, handle.read(), command)) from None
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
            _held[path] = 1
        try:
            yield path
        finally:
            with _guard:
                del _held[path]
            handle.seek(0)
            handle.truncate()
    finally:
        handle.close()  # closing the file releases the lock


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


def writes_workspace(name: str, must_exist: bool = False) -> Callable[[F], F]:
    """Decorate a CLI command that writes to its `workspace`: it runs under the lock or exits with status 3.

    With `must_exist` (commands that only build on what earlier steps wrote), a missing workspace is an
    InputError before the lock file would create it."""

    def decorate(command: F) -> F:
        @functools.wraps(command)
        def locked(*args: Any, **kwargs: Any) -> Any:
            import typer

            from tessera.options import workspace_from

            try:
                with workspace_lock(workspace_from(kwargs.get("workspace"), must_exist), name):
                    return command(*args, **kwargs)
            except WorkspaceBusy as busy:
                typer.echo(f"error: {busy}", err=True)
                raise typer.Exit(EXIT_BUSY) from None

        return locked  # type: ignore[return-value]

    return decorate
