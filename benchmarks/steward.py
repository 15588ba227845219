"""What a steward decision costs to apply: a split, then the merge that undoes it, on a workspace, in process.

    uv run python benchmarks/steward.py --workspace DIR --now 2025-12-31T23:59:59Z

Works on the workspace itself (it records two decisions and leaves the customers as they were, the split-off id
an alias): run it on a scratch workspace such as the demo's (`tessera demo --no-serve --workspace DIR`). Picks the
customer with the most identity records, splits its last record off, then merges the two customers back, each
through `serving.steward` as the service does (record, incremental resolve, profile, feature tables and a full
materialisation). Prints per decision the wall time of each step, the process's CPU seconds and the load average.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    import pandas as pd

    from features.store.settings import FeatureStoreSettings
    from serving.steward import apply_decision, merge, split
    from tessera.core.settings import Settings, Workspace

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, required=True)
    parser.add_argument("--now", required=True, help="ISO 8601, the workspace's as-of")
    args = parser.parse_args()
    workspace, now = Workspace(args.workspace), datetime.fromisoformat(args.now)
    settings, store = Settings(workspace=workspace.root), FeatureStoreSettings()
    records = pd.read_parquet(workspace.identity / "records.parquet", columns=["identity_key", "customer_id"])
    sizes = records.groupby("customer_id").size().sort_index()
    customer = str(sizes.idxmax())
    off = sorted(records.loc[records["customer_id"] == customer, "identity_key"])[-1]
    print(f"{len(sizes):,} customers; {customer} has {sizes.max()} records, splitting off {off}")
    decisions = [
        ("split", lambda: split(workspace, customer, off, "benchmark", "bench", now)),
        ("merge", lambda: merge(workspace, (customer, new), "benchmark", "bench", now)),
    ]
    new = ""
    for kind, rows in decisions:
        started, cpu = time.perf_counter(), _cpu()
        applied = apply_decision(workspace, rows(), now, settings, store)
        wall, used = time.perf_counter() - started, _cpu() - cpu
        new = applied.customers[off]
        steps = ", ".join(f"{step} {seconds:.2f} s" for step, seconds in applied.seconds.items())
        print(
            f"{kind}: wall {wall:.2f} s ({steps}), CPU {used:.2f} s, load {os.getloadavg()[0]:.1f}; "
            f"{off} -> {new}"
        )


if __name__ == "__main__":
    main()
