"""Feast is imported without typeguard's instrumentation; everything else keeps its run-time type checks."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typeguard

from tessera.core.feast_import import typechecked


def test_feast_modules_bind_the_pass_through_decorator_whatever_is_imported_first() -> None:
    for first in ("serving", "features.store"):
        code = (
            f"import {first}, feast.data_source, feast.feature_view, tessera.core.feast_import as f; "
            "assert feast.data_source.typechecked is f.typechecked, 'data_source'; "
            "assert feast.feature_view.typechecked is f.typechecked, 'feature_view'"
        )
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr[-2000:]


def test_a_feast_function_comes_back_unchanged() -> None:
    def push(rows: int) -> int:
        return rows

    push.__module__ = "feast.feature_store"
    assert typechecked(push) is push
    assert typechecked()(push) is push
    assert push("not a number") == "not a number"  # type: ignore[arg-type]


def test_any_other_function_is_still_type_checked() -> None:
    def rows(count: int) -> int:
        return count

    checked = typechecked(rows)
    assert checked(3) == 3
    with pytest.raises(typeguard.TypeCheckError):
        checked("three")  # type: ignore[arg-type]
    with pytest.raises(typeguard.TypeCheckError):
        typechecked()(rows)("three")  # type: ignore[arg-type]
