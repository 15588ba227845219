"""Benchmark of the profile chain: simulate N customers, then ingest and resolve; wall time and peak memory.

    uv run python benchmarks/profile_pipeline.py --customers 100000

Target on the 2-core machine (issue 2): ingest + resolve of 100k customers (≥ 1M source records)
within 3 minutes and 8 GiB. Each step runs as its own process, as `tessera` would.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from _measure import benchmark_arguments, machine, simulate_and_resolve


def main() -> None:
    parser = benchmark_arguments(__doc__)
    args = parser.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="tessera-bench-"))
    sample, workspace = root / "sample", root / "workspace"

    steps = simulate_and_resolve(sample, workspace, args.customers, args.seed)
    report = json.loads((workspace / "data" / "reports" / "ingest.json").read_text())
    records = sum(source["rows_read"] for source in report["sources"])
    ingest_resolve = steps[1].seconds + steps[2].seconds
    print(f"\n{machine()}")
    print(f"customers: {args.customers:,}; source records read: {records:,}")
    for step in steps:
        print(f"{step.name:>9}: {step.seconds:7.1f} s  peak {step.peak_gib:5.2f} GiB")
    print(
        f"ingest + resolve: {ingest_resolve:.1f} s (target ≤ 180 s); peak {max(s.peak_gib for s in steps[1:]):.2f} GiB (target ≤ 8 GiB)"
    )


if __name__ == "__main__":
    main()
