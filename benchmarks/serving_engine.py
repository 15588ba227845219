"""CPU per request of each endpoint's work, in-process: `serving.engine.Engine` called directly, no HTTP.

    uv run python benchmarks/serving_engine.py --workspace DIR [--now 2025-12-31T23:59:59Z] [--passes 5] [--profile]

Each pass calls every endpoint once per customer (the same customers as benchmarks/serving.py, a tenth of
/recommend's unknown), serialising the answer as the service does (/churn and /cltv: the answer kept while the
online store is unchanged; "computed": the same answer computed afresh, as before they were kept); per endpoint, the median and p99 of the
CPU time of one call (`time.thread_time`, so the machine's other work barely moves it) over all passes but
the first (a warm-up). The engine's start (loading the champions, folding in every customer's history, scoring
and answering ahead) is printed first, wall and CPU. `--profile` prints cProfile's top functions per endpoint instead. Figures: in
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from _measure import customer_ids, machine

# This folder holds a script named `serving`: keep it off the path so `import serving` finds the package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

if TYPE_CHECKING:
    from serving.engine import Engine


def calls(engine: Engine, ids: list[str]) -> dict[str, list[Callable[[], object]]]:
    """Per endpoint, one call per customer, each returning the JSON the service would send."""
    from serving.schemas import RecommendRequest

    unknown = [f"ANON{i:05d}" for i in range(max(1, len(ids) // 10))]
    return {
        "/recommend": [
            (lambda c=c: engine.recommend(RecommendRequest(customer_id=c, k=10)).model_dump_json())
            for c in ids + unknown
        ],
        # What the service sends: the kept answer while the store is unchanged (Engine.scores_json).
        "/churn": [(lambda c=c: engine.churn_json([c])) for c in ids],
        "/cltv": [(lambda c=c: engine.cltv_json([c])) for c in ids],
        "/churn computed": [(lambda c=c: engine.churn([c]).model_dump_json()) for c in ids],
        "/cltv computed": [(lambda c=c: engine.cltv([c]).model_dump_json()) for c in ids],
        "/customers": [(lambda c=c: engine.customer(c).model_dump_json()) for c in ids],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workspace", type=Path, required=True, help="A workspace with trained champions.")
    parser.add_argument("--now", help="The service's current time (default: the clock).")
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--customers", type=int, default=400)
    parser.add_argument("--profile", action="store_true", help="cProfile's top functions per endpoint.")
    args = parser.parse_args()
    print(machine())
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    from features.store.settings import FeatureStoreSettings
    from serving.engine import Engine
    from serving.settings import ServeSettings

    workspace = args.workspace.resolve()
    settings = ServeSettings(workspace=workspace, now=args.now, poll_seconds=0)
    started, cpu_started = time.perf_counter(), time.process_time()
    engine = Engine(settings, FeatureStoreSettings())
    print(
        f"engine start (a worker's, before it is ready): {time.perf_counter() - started:.1f} s wall, "
        f"{time.process_time() - cpu_started:.1f} s CPU; {len(engine.snapshot.directory.ids):,} customers"
    )
    try:
        endpoints = calls(engine, customer_ids(workspace, args.customers))
        print(
            f"recommender: {type(engine.snapshot.recommender.model).__name__ if engine.snapshot.recommender else None}"
        )
        for endpoint, requests in endpoints.items():
            for call in requests:  # warm-up pass
                call()
            if args.profile:
                profiler = cProfile.Profile()
                profiler.enable()
                for _ in range(args.passes - 1):
                    for call in requests:
                        call()
                profiler.disable()
                print(f"\n== {endpoint}")
                pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
                continue
            times = []
            for _ in range(args.passes - 1):
                for call in requests:
                    started = time.thread_time()
                    call()
                    times.append(time.thread_time() - started)
            ms = np.array(times) * 1e3
            print(
                f"{endpoint:16} CPU per call: p50 {np.median(ms):6.3f} ms  p99 {np.quantile(ms, 0.99):6.3f} ms  "
                f"({len(ms)} calls)"
            )
    finally:
        engine.close()


if __name__ == "__main__":
    main()
