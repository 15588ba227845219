"""Benchmarks of the models: training time and peak memory per model, ALS per iteration, accuracy vs the truth.

    uv run python benchmarks/training.py speed --customers 100000 [--dir DIR]
    uv run python benchmarks/training.py accuracy --customers 20000 [--dir DIR]

Both simulate a retailer and run the chain and the feature store into DIR/workspace first (skipped when DIR
already holds them). `speed` trains each model in its own process (`tessera train MODEL`) and measures wall
time and peak memory, then times ALS per iteration inside `NextBestProduct.fit` beside a bare `implicit` fit
of the same matrix. `accuracy` trains all three and scores the champions as of the simulation's last day
against the simulator's true future (truth/future_orders.parquet), beside every baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

from _measure import Measured, machine, run_measured

# This script is itself named `training`: keep its folder off the path so `import training` finds the package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
PYTHON = sys.executable
MODELS = ("churn", "cltv", "next-best-product")


def _now(sample: Path) -> datetime:
    """The end of the simulation's last day: the moment every model is trained and scored at."""
    stats = json.loads((sample / "simulation.json").read_text())
    return datetime.combine(date.fromisoformat(stats["as_of"]), datetime.max.time()).replace(tzinfo=UTC)


def prepare(root: Path, customers: int, seed: int) -> tuple[Path, Path, datetime]:
    """Simulate and build the workspace (profile and feature store) once; later runs on the same DIR reuse it."""
    sample, workspace = root / "sample", root / "workspace"
    if not (workspace / "data" / "feast" / "offline").exists():
        run_measured("prepare", [PYTHON, __file__, "_prepare", str(root), str(customers), str(seed)])
    return sample, workspace, _now(sample)


def _prepare(root: Path, customers: int, seed: int) -> None:
    from features.store import FeatureStoreSettings, build_feature_store
    from simulator import simulate_retailer
    from tessera.core.settings import Settings, Workspace
    from tessera.pipeline import run_chain

    sample, workspace = root / "sample", Workspace(root / "workspace")
    summary = simulate_retailer(customers=customers, seed=seed, out=sample)
    (sample / "simulation.json").write_text(json.dumps(summary, default=str))
    now, settings, store_settings = _now(sample), Settings(workspace=workspace.root), FeatureStoreSettings()
    chain = run_chain(sample / "sources.yaml", workspace, now, settings, store_settings)
    if "feature_store" not in chain:
        build_feature_store(workspace, now, settings, store_settings)


def _als(workspace: Path, now: str, iterations: int) -> None:
    """ALS seconds per iteration inside NextBestProduct.fit and in a bare implicit fit of the same matrix.

    Each is timed at 1 and at `iterations` iterations; the difference over (iterations - 1) is the cost of an
    iteration without the fixed costs (Tessera's: aggregating and decaying events, building the matrix).
    """
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    from features.profile.read import load_events
    from tessera.core.settings import Workspace
    from training.recommend import NextBestProduct, decayed
    from training.settings import TrainingSettings

    settings, moment = TrainingSettings(), datetime.fromisoformat(now)
    events = load_events(Workspace(workspace), moment)
    params = {
        "factors": max(settings.als_factors),
        "regularization": settings.als_regularization[0],
        "alpha": settings.als_alpha[0],
    }
    weights = dict(settings.event_weights)

    def ours(n: int) -> float:
        started = time.perf_counter()
        NextBestProduct(**params, iterations=n, event_weights=weights).fit(events, moment)
        return time.perf_counter() - started

    signals = decayed(events, moment, weights, settings.recency_half_life_days)
    users = pd.Index(signals["customer_id"].unique())
    items = pd.Index(sorted(signals["sku"].astype(str).unique()))
    rows, cols = users.get_indexer(signals["customer_id"]), items.get_indexer(signals["sku"].astype(str))
    matrix = sp.csr_matrix(
        (signals["weight"].to_numpy(np.float32), (rows, cols)), shape=(len(users), len(items))
    )

    def bare(n: int) -> float:
        with threadpool_limits(1, "blas"):
            als = AlternatingLeastSquares(**params, iterations=n, random_state=0, num_threads=2)
            started = time.perf_counter()
            als.fit(matrix, show_progress=False)
            return time.perf_counter() - started

    # Interleaved, best of three: the machine is shared, and both sides see the same disturbances.
    timings: dict[tuple[str, int], list[float]] = {}
    for _ in range(3):
        for n in (1, iterations):
            timings.setdefault(("ours", n), []).append(ours(n))
            timings.setdefault(("bare", n), []).append(bare(n))
    one, full = min(timings["ours", 1]), min(timings["ours", iterations])
    bare_one, bare_full = min(timings["bare", 1]), min(timings["bare", iterations])
    per = max(iterations - 1, 1)
    print(
        json.dumps(
            {
                "matrix": {"users": matrix.shape[0], "items": matrix.shape[1], "nonzeros": int(matrix.nnz)},
                "factors": params["factors"],
                "iterations": iterations,
                "tessera_fit_seconds": round(full, 2),
                "tessera_fixed_seconds": round(one - (full - one) / per, 2),
                "tessera_seconds_per_iteration": round((full - one) / per, 3),
                "bare_implicit_fit_seconds": round(bare_full, 2),
                "bare_implicit_seconds_per_iteration": round((bare_full - bare_one) / per, 3),
            }
        )
    )


def _train(name: str, model: str, workspace: Path, now: datetime) -> Measured:
    """`tessera train MODEL` (or `all`) as of `now`, in its own process."""
    command = ["train", model, "--workspace", str(workspace), "--now", now.isoformat()]
    return run_measured(name, [PYTHON, "-m", "tessera.training_cli", *command])


def speed(args: argparse.Namespace) -> None:
    root = args.dir or Path(tempfile.mkdtemp(prefix="tessera-train-bench-"))
    _, workspace, now = prepare(root, args.customers, args.seed)
    print(f"\n{machine()}\ncustomers: {args.customers:,}", flush=True)
    trained = []
    # Each model's figures as soon as it is trained: a long run stopped early keeps them.
    for model in args.models:
        step = _train(model, model, workspace, now)
        trained.append(step)
        print(f"{_figures(step)}  (load {_load()})", flush=True)
    print(f"\n{machine()}\ncustomers: {args.customers:,}")
    for step in trained:
        print(_figures(step))
    if "next-best-product" in args.models:
        run_measured("als", [PYTHON, __file__, "_als", str(workspace), now.isoformat(), str(args.iterations)])


def _figures(step: Measured) -> str:
    return f"{step.name:>18}: {step.seconds:7.1f} s wall  {step.cpu_seconds:7.1f} s CPU  peak {step.peak_gib:5.2f} GiB"


def _load() -> str:
    """The 1, 5 and 15 minute load averages: wall times on a shared machine are read against them."""
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def accuracy(args: argparse.Namespace) -> None:
    from features.store import FeatureStoreSettings
    from tessera.core.settings import Workspace
    from training.backtest import accuracy_against_truth
    from training.settings import TrainingSettings

    root = args.dir or Path(tempfile.mkdtemp(prefix="tessera-accuracy-"))
    sample, workspace, now = prepare(root, args.customers, args.seed)
    if not args.skip_training:
        _train("train all", "all", workspace, now)
    report = accuracy_against_truth(
        Workspace(workspace), sample / "truth", now, TrainingSettings(), FeatureStoreSettings()
    )
    print(f"\n{machine()}\ncustomers: {args.customers:,}")
    print(json.dumps(report, indent=2, default=lambda v: round(v, 4) if isinstance(v, float) else str(v)))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_prepare":
        return _prepare(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
    if len(sys.argv) > 1 and sys.argv[1] == "_als":
        return _als(Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("mode", choices=("speed", "accuracy"))
    parser.add_argument(
        "--customers", type=int, default=None, help="default: 100,000 (speed) or 20,000 (accuracy)"
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--iterations", type=int, default=15, help="ALS iterations timed (speed)")
    parser.add_argument(
        "--models",
        nargs="+",
        choices=MODELS,
        default=list(MODELS),
        help="speed: the models trained, in order",
    )
    parser.add_argument(
        "--dir", type=Path, default=None, help="working folder, reused when it holds a workspace"
    )
    parser.add_argument(
        "--skip-training", action="store_true", help="accuracy: score the champions already registered"
    )
    args = parser.parse_args()
    args.customers = args.customers or (100_000 if args.mode == "speed" else 20_000)
    (speed if args.mode == "speed" else accuracy)(args)


if __name__ == "__main__":
    main()
