"""Benchmark of erasure: erase N customers at once from a simulated workspace, time and peak memory.

    uv run python benchmarks/erasure.py --customers 100000 --erase 1000 [--dir DIR] [--seed 42]

Simulates the retailer and runs the feature chain (ingest, identity, profile, feature store; no training)
into DIR/workspace once (reused when DIR already holds it), copies it, then in a child process finds the N
customers with the lowest ids that have orders and erases them together (`serving.erasure`), printing the
find and erase times, CPU time and the child's peak resident memory, and the receipt's row counts.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

from _measure import SIMULATED_AS_OF, benchmark_arguments, machine, run_measured

# benchmarks/training.py would shadow the `training` package: keep this folder off the path once imported from.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
PYTHON = sys.executable
NOW = datetime.combine(date.fromisoformat(SIMULATED_AS_OF), datetime.max.time()).replace(tzinfo=UTC)


def _prepare(root: Path, customers: int, seed: int) -> None:
    from features.store import FeatureStoreSettings
    from simulator import simulate_retailer
    from tessera.core.settings import Settings, Workspace
    from tessera.pipeline import run_chain

    simulate_retailer(
        customers=customers, seed=seed, out=root / "sample", as_of=date.fromisoformat(SIMULATED_AS_OF)
    )
    workspace = Workspace(root / "workspace")
    run_chain(
        root / "sample" / "sources.yaml",
        workspace,
        NOW,
        Settings(workspace=workspace.root),
        FeatureStoreSettings(),
    )


def _erase(workspace_root: Path, count: int) -> None:
    import pandas as pd

    from features.store import FeatureStoreSettings
    from serving.erasure import erase_person, find_person
    from tessera.core.settings import Settings, Workspace

    workspace = Workspace(workspace_root)
    orders = pd.read_parquet(workspace.profile / "orders.parquet", columns=["customer_id"])
    chosen = sorted(orders["customer_id"].dropna().unique())[:count]
    started, cpu = time.perf_counter(), time.process_time()
    person = find_person(workspace, customers=chosen)
    found, found_cpu = time.perf_counter() - started, time.process_time() - cpu
    receipt = erase_person(workspace, Settings(workspace=workspace.root), FeatureStoreSettings(), person)
    print(
        json.dumps(
            {
                "erased": len(chosen),
                "find_seconds": round(found, 1),
                "find_cpu_seconds": round(found_cpu, 1),
                "erase_seconds": receipt["seconds"],
                "total_cpu_seconds": round(time.process_time() - cpu, 1),
                "rows_removed": receipt["rows_removed"],
            },
            indent=2,
        )
    )


def main() -> None:
    parser = benchmark_arguments(__doc__)
    parser.add_argument("--erase", type=int, default=1000, help="customers erased together")
    args = parser.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="tessera-erasure-"))
    if not (root / "workspace" / "data" / "feast").exists():
        run_measured(
            "prepare", [PYTHON, __file__, "_prepare", str(root), str(args.customers), str(args.seed)]
        )
    copy = root / "erased"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(root / "workspace", copy)
    measured = run_measured("erase", [PYTHON, __file__, "_erase", str(copy), str(args.erase)])
    print(machine())
    print(
        f"erase {args.erase} of {args.customers}: {measured.seconds:.1f} s wall (process), "
        f"{measured.cpu_seconds:.1f} s CPU, peak {measured.peak_gib:.2f} GiB"
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_prepare":
        _prepare(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
    elif len(sys.argv) > 1 and sys.argv[1] == "_erase":
        _erase(Path(sys.argv[2]), int(sys.argv[3]))
    else:
        main()
