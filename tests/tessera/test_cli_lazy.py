"""`tessera --help` and the light commands import none of the heavy libraries: the CLI imports them lazily,
inside the command that needs them (the CPU cost of each is in docs/benchmarks.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = {"feast", "mlflow", "bentoml", "splink", "lightgbm", "sklearn", "duckdb", "pandas"}
# Runs the real entry point in a fresh interpreter, then lists which heavy libraries it imported.
RUN_AND_LIST = """
import json, sys
from tessera.cli import main
sys.argv = ["tessera", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules} & set(json.loads(HEAVY)))), file=sys.stderr)
"""


def heavy_imports(args: list[str], cwd: Path) -> list[str]:
    """The heavy libraries `tessera ARGS` imported (its last stderr line)."""
    done = subprocess.run(
        [sys.executable, "-c", f"HEAVY = {json.dumps(json.dumps(sorted(HEAVY)))}\n{RUN_AND_LIST}", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return json.loads(done.stderr.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["run", "--help"],
        ["demo", "--help"],
        ["train", "--help"],
        ["serve", "--help"],
        ["features", "--help"],
        ["simulate", "--help"],
    ],
)
def test_help_imports_no_heavy_library(args: list[str], tmp_path: Path) -> None:
    assert heavy_imports(args, tmp_path) == []


def test_the_check_sees_a_heavy_import(tmp_path: Path) -> None:
    """The same check on a command that reads a feature store (here: failing on a missing one) lists Feast."""
    assert "feast" in heavy_imports(["features", "apply", "--workspace", str(tmp_path)], tmp_path)
