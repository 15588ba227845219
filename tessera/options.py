"""Options every `tessera` command shares, and turning them into a workspace and a moment."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from tessera.core.errors import InputError
from tessera.core.lock import EXIT_BUSY, WorkspaceBusy, workspace_lock
from tessera.core.settings import Settings, Workspace
from tessera.core.timeutil import as_utc

WorkspaceOption = Annotated[
    Path | None,
    typer.Option(
        "--workspace",
        help="Folder whose data/ and mlruns/ this command uses (default: TESSERA_WORKSPACE, else the current directory).",
        file_okay=False,
    ),
]
NowOption = Annotated[
    datetime | None,
    typer.Option("--now", help="The 'current time' of the run, ISO 8601 (default: now, UTC)."),
]


def workspace_settings(path: Path | None, must_exist: bool = False) -> Settings:
    """Settings from the environment, with the workspace the command line named.

    With `must_exist` (commands that only read what earlier steps wrote), a workspace folder that does not
    exist is an InputError before anything is written there.
    """
    settings = Settings() if path is None else Settings(workspace=path)
    root = settings.workspace.resolve()
    if must_exist and not root.is_dir():
        raise InputError(
            f"workspace {root} does not exist: run `tessera run --sources sources.yaml --workspace {root}` "
            "first, or name another --workspace"
        )
    return settings


def workspace_from(path: Path | None, must_exist: bool = False) -> Workspace:
    """The workspace the command line named, else the one the settings name."""
    return Workspace.from_settings(workspace_settings(path, must_exist))


def now_from(value: datetime | None) -> datetime:
    """The run's 'current time' in UTC: the one given, else now."""
    return as_utc(value) if value is not None else datetime.now(UTC)


def yesterday() -> date:
    """The day before today (UTC): where simulated exports end by default, so the clock's now follows them."""
    return (datetime.now(UTC) - timedelta(days=1)).date()


F = TypeVar("F", bound=Callable[..., Any])


def writes_workspace(name: str, must_exist: bool = False) -> Callable[[F], F]:
    """Decorate a CLI command that writes to its `workspace`: it runs under the lock or exits with status 3.

    With `must_exist` (commands that only build on what earlier steps wrote), a missing workspace is an
    InputError before the lock file would create it."""

    def decorate(command: F) -> F:
        @functools.wraps(command)
        def locked(*args: Any, **kwargs: Any) -> Any:
            try:
                with workspace_lock(workspace_from(kwargs.get("workspace"), must_exist), name):
                    return command(*args, **kwargs)
            except WorkspaceBusy as busy:
                typer.echo(f"error: {busy}", err=True)
                raise typer.Exit(EXIT_BUSY) from None

        return locked  # type: ignore[return-value]

    return decorate
