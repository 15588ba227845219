"""Known third-party warnings are dropped wherever they are shown, even behind a library's own filters; any
other warning, from the same library or from Tessera, is still shown."""

from __future__ import annotations

import warnings

from tessera.core.known_warnings import ignore_known_warnings, is_known

TYPES_UTILS = "/venv/site-packages/mlflow/types/utils.py"
IBIS_DUCKDB = "/venv/site-packages/ibis/backends/duckdb/__init__.py"


def test_known_warnings_are_matched_by_category_file_and_message() -> None:
    assert is_known("Hint: Inferred schema contains integer column(s)", UserWarning, TYPES_UTILS)
    assert is_known("fetch_arrow_table() is deprecated", DeprecationWarning, IBIS_DUCKDB)
    assert not is_known("something else entirely", UserWarning, TYPES_UTILS)
    assert not is_known("fetch_arrow_table() is deprecated", UserWarning, IBIS_DUCKDB)
    assert not is_known("Hint: Inferred schema contains integer", UserWarning, "/repo/training/tracking.py")
    # A module whose name only starts like a known one is another module.
    assert not is_known("fetch_arrow_table()", DeprecationWarning, "/venv/ibis/backends/duckdb_old.py")


def test_a_library_filter_in_front_does_not_bring_them_back() -> None:
    with warnings.catch_warnings(record=True) as shown:
        ignore_known_warnings()
        warnings.simplefilter("once", DeprecationWarning)  # what Feast's modules do when imported
        warnings.simplefilter("always", UserWarning)
        warnings.warn_explicit("fetch_arrow_table() is deprecated", DeprecationWarning, IBIS_DUCKDB, 332)
        warnings.warn_explicit("Hint: Inferred schema contains integer", UserWarning, TYPES_UTILS, 1)
        warnings.warn_explicit("a new deprecation", DeprecationWarning, "/venv/feast/feature_view.py", 1)
        warnings.warn_explicit("Tessera's own", UserWarning, "/repo/training/tracking.py", 1)
    assert [str(w.message) for w in shown] == ["a new deprecation", "Tessera's own"]
