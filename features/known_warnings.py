"""Third-party warnings Tessera knows about and cannot act on, silenced at the entry points (the CLI, the service).

Each is matched by category and the module that raises it (and its message where the module raises others
too), so a new warning from the same library, or any warning from Tessera's own code, is still shown.
"""

from __future__ import annotations

import warnings

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
        r"mlflow\.pyfunc\.utils\.data_validation",
        ".*Add type hints",  # after the colour code MLflow puts in front
        "the signature is logged",
    ),
    (
        UserWarning,
        r"mlflow\.types\.utils",
        "Hint: Inferred schema contains integer",
        "integer inputs are logged as doubles (training.tracking)",
    ),
)


def ignore_known_warnings(feast: bool = True) -> None:
    """Silence the KNOWN warnings; call it first thing in an entry point.

    `feast=False` for an entry point that never imports Feast: importing it costs 4.5 s of CPU
    (2026-12-03), as much as an incremental `tessera resolve` of 30k customers.
    """
    # Feast's modules put `simplefilter("once", DeprecationWarning)` in front of every filter when imported:
    # imported first, the filters below go in front of theirs.
    if feast:
        import feast  # noqa: F401

    for category, module, message, _ in KNOWN:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)
