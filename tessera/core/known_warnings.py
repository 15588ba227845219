"""Third-party warnings Tessera knows about and cannot act on, silenced at the entry points (the CLI, the service).

Each is matched by category and the module that raises it (and its message where the module raises others
too), so a new warning from the same library, or any warning from Tessera's own code, is still shown.

They are dropped where a warning is shown (`warnings.showwarning`), not by a filter: Feast's modules put
`simplefilter("once", ...)` in front of every filter when they are imported, which would shadow ours unless
Feast were imported first, and importing Feast costs seconds a command like `tessera --help` should not pay.
"""

from __future__ import annotations

import re
import warnings
from typing import Any, TextIO

# (category, module raising it, message start or "", why it is harmless here)
KNOWN: tuple[tuple[type[Warning], str, str, str], ...] = (
    (
        DeprecationWarning,
        r"ibis\.backends\.duckdb",
        "",
        "ibis calls DuckDB's fetch_arrow_table, renamed in 1.4",
    ),
    (DeprecationWarning, r"mlflow\.store\.tracking\.sqlalchemy_store", "", "MLflow's SQLAlchemy mappers"),
    (DeprecationWarning, r"pathspec\.(pathspec|pattern)", "", "BentoML's .bentoignore patterns"),
    (DeprecationWarning, r"_bentoml_sdk\.io_models", "", "BentoML's IO models on pydantic 2.11"),
    (
        RuntimeWarning,
        r"feast\.feature_store",
        "On demand feature view is an experimental feature",
        "the request-time view only computes ages; it is tested against get_online_features",
    ),
    (
        UserWarning,
        r"mlflow\.types\.utils",
        "Hint: Inferred schema contains integer",
        "integer inputs are logged as doubles (training.tracking)",
    ),
)


def _path_pattern(module: str) -> re.Pattern[str]:
    """The module pattern as a pattern over the raising file's path (`a\\.b` matches `.../a/b.py`, `.../a/b/...`)."""
    return re.compile(r"(^|[/\\])" + module.replace(r"\.", r"[/\\]") + r"([/\\]|\.py$)")


_MATCHERS = tuple(
    (category, _path_pattern(module), re.compile(message, re.IGNORECASE))
    for category, module, message, _ in KNOWN
)


def is_known(message: Warning | str, category: type[Warning], filename: str) -> bool:
    """Whether a warning raised in `filename` is one of the KNOWN."""
    text = str(message)
    return any(
        issubclass(category, known) and path.search(filename) and start.match(text)
        for known, path, start in _MATCHERS
    )


def ignore_known_warnings() -> None:
    """Drop the KNOWN warnings wherever they are shown from now on; call it first thing in an entry point."""
    shown = warnings.showwarning
    if getattr(shown, "drops_known_warnings", False):
        return

    def showwarning(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> Any:
        if not is_known(message, category, filename):
            return shown(message, category, filename, lineno, file, line)
        return None

    showwarning.drops_known_warnings = True  # type: ignore[attr-defined]
    warnings.showwarning = showwarning
