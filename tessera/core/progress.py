"""Progress bars for long work: shown by the command line, silent in tests and libraries."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from typing import TypeVar

from rich.console import Console
from rich.progress import track as rich_track

T = TypeVar("T")

# Set by the command line; steps called from a library or a test stay quiet.
show_progress: ContextVar[bool] = ContextVar("show_progress", default=False)


def track(items: Iterable[T], description: str, total: float | None = None) -> Iterator[T]:
    """Iterate over `items`, with a progress bar on stderr when the command line runs in a terminal."""
    console = Console(stderr=True)
    if not (show_progress.get() and console.is_terminal):
        yield from items
        return
    yield from rich_track(items, description=description, total=total, transient=True, console=console)
