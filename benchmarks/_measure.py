"""Run a command as a child process and measure its wall time and peak memory (max RSS)."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class Measured:
    name: str
    seconds: float
    peak_gib: float


def run_measured(name: str, command: list[str]) -> Measured:
    """Run `command`, fail loudly if it fails, and return its wall time and peak resident memory."""
    started = time.perf_counter()
    process = subprocess.Popen(command)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{name} failed: {' '.join(command)}")
    return Measured(name, seconds, usage.ru_maxrss / 1024**2)  # ru_maxrss is in KiB on Linux


def machine() -> str:
    """One line naming the machine, for docs/benchmarks.md."""
    return f"{platform.node()} · {os.cpu_count()} cores · {platform.machine()} · Python {platform.python_version()} · {datetime.now(UTC):%Y-%m-%d}"
