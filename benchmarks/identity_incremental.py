"""Incremental linkage: a daily load of ~1% new records resolved incrementally vs a full re-run.

    uv run python benchmarks/identity_incremental.py --customers 100000 --holdback 0.01

Simulates N customers holding back a share of their records, ingests and resolves the rest (a full run
that trains the model), then ingests everything and resolves it twice on copies of that workspace: once
incrementally (the default) and once with `--full`, each in its own process. Targets (issue 9): the
incremental resolve takes ≤ 15% of the full run's wall time; ≥ 99.9% of unaffected customers keep their
id; every merged-away id resolves; and the incremental clusters agree with the full run's.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pandas as pd
from _measure import TESSERA, benchmark_arguments, machine, run_measured, simulate_and_resolve

from features.identity import evaluate_against_truth, id_stability
from features.identity.evaluate import pairwise_scores
from tessera.core.settings import Workspace


def _crosswalk(workspace: Workspace) -> pd.DataFrame:
    return pd.read_parquet(workspace.identity / "crosswalk.parquet")


def _keys(workspace: Workspace) -> pd.DataFrame:
    return _crosswalk(workspace)[["identity_key", "customer_id"]].drop_duplicates()


def main() -> None:
    parser = benchmark_arguments(__doc__)
    parser.add_argument("--holdback", type=float, default=0.01)
    args = parser.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="tessera-incremental-"))
    sample, ws, ws_full = root / "sample", Workspace(root / "workspace"), Workspace(root / "workspace-full")

    steps = simulate_and_resolve(sample, ws.root, args.customers, args.seed, args.holdback)
    before = _keys(ws)
    on = ["--workspace", str(ws.root)]
    ingest = run_measured(
        "ingest+", [*TESSERA, "ingest", "--sources", str(sample / "sources_full.yaml"), *on]
    )
    shutil.rmtree(ws_full.root, ignore_errors=True)
    shutil.copytree(ws.root, ws_full.root)
    incremental = run_measured("incremental", [*TESSERA, "resolve", *on])
    full = run_measured("full", [*TESSERA, "resolve", "--full", "--workspace", str(ws_full.root)])

    summary = json.loads((ws.identity / "summary.json").read_text())
    full_summary = json.loads((ws_full.identity / "summary.json").read_text())
    stability = id_stability(
        before,
        _keys(ws),
        pd.read_parquet(ws.identity / "customers.parquet"),
        pd.read_parquet(ws.identity / "aliases.parquet"),
    )
    # The full run's clusters as the truth for the incremental ones: 1.0 is the same partition.
    agreement = pairwise_scores(
        _crosswalk(ws_full).rename(columns={"customer_id": "person_id"}), _crosswalk(ws)
    )
    truth = sample / "truth" / "identity.csv"
    print(f"\n{machine()}")
    print(f"customers simulated: {args.customers:,}; holdback {args.holdback:.0%}")
    for step in [*steps, ingest, incremental, full]:
        print(
            f"{step.name:>12}: {step.seconds:7.1f} s  CPU {step.cpu_seconds:7.1f} s  peak {step.peak_gib:5.2f} GiB"
        )
    print(
        f"incremental run: {json.dumps(summary['incremental_records'])}; model {summary['model']}, records "
        f"changed since its plan was checked: {summary['changed_since_plan_check']:,}"
    )
    for name, run in (("incremental", summary), ("full", full_summary)):
        print(f"{name} run steps: wall {run['step_seconds']}; CPU {run['step_cpu_seconds']}")
    first = steps[2]
    print(
        f"incremental / full wall time: {incremental.seconds / full.seconds:.1%} (target ≤ 15%), CPU time "
        f"{incremental.cpu_seconds / full.cpu_seconds:.1%}; / first run (trains): wall "
        f"{incremental.seconds / first.seconds:.1%}, CPU {incremental.cpu_seconds / first.cpu_seconds:.1%}"
    )
    print(
        f"unaffected customers that kept their id: {stability['unaffected_kept_id']:,} of "
        f"{stability['unaffected']:,} ({stability['unaffected_kept_share']:.4%}; target ≥ 99.9%); "
        f"ids gone {stability['ids_gone']:,}, all resolve: {stability['all_gone_ids_resolve']}"
    )
    print(
        f"incremental vs full clusters: pairwise precision {agreement['precision']:.6f}, "
        f"recall {agreement['recall']:.6f}"
    )
    for name, workspace in (("incremental", ws), ("full", ws_full)):
        scores = evaluate_against_truth(workspace, truth)
        print(f"{name} vs truth: precision {scores['precision']:.4f}, recall {scores['recall']:.4f}")


if __name__ == "__main__":
    main()
