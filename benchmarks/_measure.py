"""Child processes measured for wall time and peak memory (max RSS), and the `tessera` steps benchmarks share."""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

TESSERA = [sys.executable, "-m", "tessera.cli"]
SIMULATED_AS_OF = "2025-12-31"  # the last day of the benchmarks' simulated exports


@dataclass(frozen=True)
class Measured:
    name: str
    seconds: float
    peak_gib: float
    cpu_seconds: float  # user + system: on a shared machine it moves far less with the load than wall time


def run_measured(name: str, command: list[str], quiet: bool = False) -> Measured:
    """Run `command`, fail loudly if it fails, and return its wall time and peak resident memory (`quiet`: its
    standard output is dropped)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL if quiet else None)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{name} failed: {' '.join(command)}")
    cpu = usage.ru_utime + usage.ru_stime
    return Measured(name, seconds, usage.ru_maxrss / 1024**2, cpu)  # ru_maxrss is in KiB on Linux


def benchmark_arguments(doc: str | None) -> argparse.ArgumentParser:
    """The arguments every simulated-retailer benchmark takes: --customers, --seed and --dir."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--dir", type=Path, default=None, help="working folder (default: a temporary one)")
    return parser


def machine() -> str:
    """One line naming the machine, for docs/benchmarks.md."""
    return f"{platform.node()} · {os.cpu_count()} cores · {platform.machine()} · Python {platform.python_version()} · {datetime.now(UTC):%Y-%m-%d}"


def simulate_and_resolve(
    sample: Path, workspace: Path, customers: int, seed: int, holdback: float = 0.0
) -> list[Measured]:
    """`tessera simulate` into `sample`, `ingest` of its sources.yaml and `resolve`, each in its own process.

    The exports end on SIMULATED_AS_OF (not the simulator's default, yesterday) so every figure can be reproduced.
    """
    size = ["--customers", str(customers), "--seed", str(seed), "--holdback", str(holdback)]
    size += ["--as-of", SIMULATED_AS_OF]
    on_workspace = ["--workspace", str(workspace)]
    sources = str(sample / "sources.yaml")
    return [
        run_measured("simulate", [*TESSERA, "simulate", *size, "--out", str(sample)]),
        run_measured("ingest", [*TESSERA, "ingest", "--sources", sources, *on_workspace]),
        run_measured("resolve", [*TESSERA, "resolve", *on_workspace]),
    ]


def customer_ids(workspace: Path, n: int = 400) -> list[str]:
    """Customers with orders (in a fixed, shuffled order): whom the serving benchmarks ask about."""
    import duckdb

    orders = workspace / "data" / "profile" / "orders.parquet"
    with duckdb.connect() as con:
        known = [
            r[0]
            for r in con.execute(
                "SELECT DISTINCT customer_id FROM read_parquet(?) WHERE customer_id IS NOT NULL ORDER BY hash(customer_id) LIMIT ?",
                [str(orders), n],
            ).fetchall()
        ]
    return known
