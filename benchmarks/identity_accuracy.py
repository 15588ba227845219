"""Identity resolution against the simulator's truth, and id stability when 10% more records arrive.

    uv run python benchmarks/identity_accuracy.py --customers 10000

Targets (issue 2): pairwise precision ≥ 0.99 and recall ≥ 0.97 at 10k customers; after adding the
held-back 10% of records (some joining two existing customers), ≥ 99.9% of unaffected customers keep
their id and every merged-away id still resolves.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import pandas as pd
from _measure import TESSERA, machine, run_measured, simulate_and_resolve

from features.identity import evaluate_against_truth, id_stability
from features.settings import Workspace


def _keys(workspace: Workspace) -> pd.DataFrame:
    crosswalk = pd.read_parquet(workspace.identity / "crosswalk.parquet")
    return crosswalk[["identity_key", "customer_id"]].drop_duplicates()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--holdback", type=float, default=0.1)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="tessera-identity-"))
    sample, ws = root / "sample", Workspace(root / "workspace")
    ws_flag = ["--workspace", str(ws.root)]

    _, _, first = simulate_and_resolve(sample, ws.root, args.customers, args.seed, args.holdback)
    before = _keys(ws)
    first_scores = evaluate_against_truth(ws, sample / "truth" / "identity.csv")
    run_measured("ingest+", [*TESSERA, "ingest", "--sources", str(sample / "sources_full.yaml"), *ws_flag])
    second = run_measured("resolve+", [*TESSERA, "resolve", *ws_flag])

    scores = evaluate_against_truth(ws, sample / "truth" / "identity.csv")
    stability = id_stability(
        before,
        _keys(ws),
        pd.read_parquet(ws.identity / "customers.parquet"),
        pd.read_parquet(ws.identity / "aliases.parquet"),
    )
    print(f"\n{machine()}")
    print(
        f"customers simulated: {args.customers:,}; resolve {first.seconds:.1f} s, re-run {second.seconds:.1f} s"
    )
    print("accuracy, first run (90% of records):", json.dumps(first_scores, indent=2))
    print("accuracy, second run (all records):", json.dumps(scores, indent=2))
    print("id stability:", json.dumps(stability, indent=2))


if __name__ == "__main__":
    main()
