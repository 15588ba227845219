"""CPU seconds a process spends starting: `tessera --help` and importing the service, each in a fresh interpreter.

    uv run python benchmarks/startup.py [--repeat 5] [--source DIR]

`--source DIR` runs another checkout of the code (e.g. `git archive REV | tar -x -C DIR`) on this environment,
for a before/after on the same installed libraries. The figures are user + system CPU of the child (the
machine's load moves them far less than wall time); the median of `--repeat` runs is printed, beside the
minimum. Whether the libraries' bytecode was compiled (`uv sync --compile-bytecode`) is printed too: with
PYTHONDONTWRITEBYTECODE set, a library without it is compiled again in every process.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import sysconfig
from pathlib import Path

from _measure import machine, run_measured

COMMANDS = {
    "tessera --help": [
        "-c",
        "import sys; sys.argv = ['tessera', '--help']; from tessera.cli import main; main()",
    ],
    "import serving.service": ["-c", "import serving.service"],
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--source", type=Path, help="Another checkout to measure on this environment.")
    args = parser.parse_args()
    if args.source is not None:
        os.environ["PYTHONPATH"] = str(args.source.resolve())
    site = Path(sysconfig.get_paths()["purelib"])
    compiled = any(site.glob("feast/__pycache__/*.pyc"))
    print(machine())
    print(f"load average at start: {os.getloadavg()[0]:.2f}; libraries' bytecode compiled: {compiled}")
    for name, command in COMMANDS.items():
        cpu = [
            run_measured(name, [sys.executable, *command], quiet=True).cpu_seconds for _ in range(args.repeat)
        ]
        print(
            f"{name:24} CPU {statistics.median(cpu):5.2f} s (median of {args.repeat}; min {min(cpu):.2f} s)"
        )


if __name__ == "__main__":
    main()
