"""Commands that need no feature store do not import Feast (2-3 s of CPU at start, 10-14 s before `tessera.core.feast_import`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

# Run `tessera ARGS` through its real entry point, then say whether Feast was imported.
RUN = """
import sys
from tessera.cli import main
sys.argv = ["tessera", *sys.argv[1:]]
try:
    main()
except SystemExit as exit_:
    print("exit", exit_.code)
print("feast imported:", "feast" in sys.modules)
"""


def _feast_imported(args: list[str]) -> tuple[bool, str]:
    done = subprocess.run(
        [sys.executable, "-c", RUN, *args], capture_output=True, text=True, timeout=600, check=True
    )
    return "feast imported: True" in done.stdout, done.stdout


@pytest.mark.parametrize("command", ["resolve", "profile"])
def test_a_command_without_the_feature_store_does_not_import_feast(command: str, tmp_path: Path) -> None:
    imported, out = _feast_imported([command, "--workspace", str(tmp_path)])
    assert "exit 2" in out  # the empty workspace is an input error, after the command started
    assert not imported
