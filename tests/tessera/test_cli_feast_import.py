"""Which `tessera` commands import Feast: the data steps before the feature store must not pay for it."""

from __future__ import annotations

import subprocess
import sys

import pytest

_PROBE = """
import sys
from tessera.cli import main
sys.argv = ["tessera", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
print("feast imported:", "feast" in sys.modules)
"""


@pytest.mark.parametrize(
    ("command", "imports_feast"),
    [(["resolve", "--help"], False), (["ingest", "--help"], False), (["features", "--help"], True)],
)
def test_only_commands_that_use_the_feature_store_import_feast(
    command: list[str], imports_feast: bool
) -> None:
    # A fresh interpreter: this test process has imported Feast long ago.
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *command], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip().endswith(f"feast imported: {imports_feast}")
