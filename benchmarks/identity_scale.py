"""Tessera's identity resolution beside Splink alone, in one run: wall time and peak memory per record.

    uv run python benchmarks/identity_scale.py --customers 100000

Simulates and ingests N customers (skipped when `--dir` already holds them), then runs, each in its own
process: a cold `tessera resolve` (no model, no caches: load, standardise, train, link, cluster, ids,
writes), and Splink alone on the standardised records that run wrote: a competent hand-written model
(Splink's own comparison library, the same blocking rules, u by random sampling, EM on two rules),
predict at 0.99 and connected components. Target (issue 9): Tessera's time per record ≤ 1.0× Splink
alone's, under 4 GiB. Both run on the same machine one after the other: compare the ratio, and with
`--repeat N` the median of N such pairs.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _measure import TESSERA, benchmark_arguments, machine, run_measured, simulate_and_resolve

from tessera.core.settings import Workspace

SPLINK_COLUMNS = [
    "identity_key",
    "first_name",
    "last_name",
    "email",
    "phone",
    "street",
    "postcode",
    "city",
    "birth_date",
    "loyalty_number",
]


def splink_alone(records_path: Path, out: Path) -> None:
    """Train, predict and cluster with Splink alone; write its timings and counts to `out`."""
    import duckdb
    import pandas as pd
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    started = time.perf_counter()
    records = pd.read_parquet(records_path, columns=SPLINK_COLUMNS)
    records["birth_date"] = pd.to_datetime(records["birth_date"])
    db_api = DuckDBAPI(duckdb.connect())
    settings = SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="identity_key",
        comparisons=[
            cl.NameComparison("first_name"),
            cl.NameComparison("last_name"),
            cl.DateOfBirthComparison("birth_date", input_is_string=False),
            cl.EmailComparison("email"),
            cl.ExactMatch("phone"),
            cl.ExactMatch("street"),
            cl.ExactMatch("postcode"),
            cl.ExactMatch("city"),
            cl.ExactMatch("loyalty_number"),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("email"),
            block_on("phone"),
            block_on("loyalty_number"),
            block_on("last_name", "birth_date"),
            block_on("first_name", "last_name"),
            block_on("postcode", "last_name"),
            block_on("street", "postcode"),
        ],
    )
    linker = Linker(db_api.register(records), settings, log_level=None)
    loaded = time.perf_counter()
    linker.training.estimate_probability_two_random_records_match(
        [block_on("email", "last_name"), block_on("phone", "last_name"), block_on("loyalty_number")],
        recall=0.7,
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=2e6, seed=42)
    for rule in (block_on("birth_date"), block_on("postcode", "last_name")):
        linker.training.estimate_parameters_using_expectation_maximisation(
            rule, estimate_without_term_frequencies=True, max_pairs=2e6
        )
    trained = time.perf_counter()
    pairs = linker.inference.predict(threshold_match_probability=0.99, warning_mode="never")
    predicted = time.perf_counter()
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(pairs, 0.99)
    n_clusters = db_api.duckdb_con.execute(
        f"SELECT count(DISTINCT cluster_id) FROM {clusters.physical_name}"
    ).fetchone()[0]
    done = time.perf_counter()
    timings = {
        "records": len(records),
        "clusters": int(n_clusters),
        "seconds": {
            "load": round(loaded - started, 2),
            "train": round(trained - loaded, 2),
            "predict": round(predicted - trained, 2),
            "cluster": round(done - predicted, 2),
            "total": round(done - started, 2),
        },
    }
    out.write_text(json.dumps(timings), encoding="utf-8")


def main() -> None:
    parser = benchmark_arguments(__doc__)
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="cold resolves and Splink-alone runs, in pairs (default 1); the median ratio is the verdict, since one "
        "pair's ratio moves with the machine by more than a tenth",
    )
    parser.add_argument("--splink-alone", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.splink_alone:
        splink_alone(*args.splink_alone)
        return
    root = args.dir or Path(tempfile.mkdtemp(prefix="tessera-scale-"))
    sample, ws = root / "sample", Workspace(root / "workspace")
    if not ws.canonical.is_dir():
        simulate_and_resolve(sample, ws.root, args.customers, args.seed)
    ratios, cpu_ratios = [], []
    # Tessera then Splink alone, in pairs: a pair's ratio is the reading.
    for run in range(1, args.repeat + 1):
        shutil.rmtree(ws.identity, ignore_errors=True)  # cold: no model, no caches
        tessera = run_measured("tessera", [*TESSERA, "resolve", "--workspace", str(ws.root)])
        summary = json.loads((ws.identity / "summary.json").read_text())
        timings_path = root / "splink_alone.json"
        alone = run_measured(
            "splink alone",
            [
                sys.executable,
                __file__,
                "--splink-alone",
                str(ws.identity / "records.parquet"),
                str(timings_path),
            ],
        )
        splink = json.loads(timings_path.read_text())

        records = summary["records"]
        per_record = {
            name: step.seconds / records * 1e6 for name, step in (("tessera", tessera), ("splink", alone))
        }
        ratios.append(per_record["tessera"] / per_record["splink"])
        cpu_ratios.append(tessera.cpu_seconds / alone.cpu_seconds)
        print(f"\n{machine()}" + (f" · pair {run} of {args.repeat}" if args.repeat > 1 else ""))
        print(
            f"customers: {args.customers:,}; identity records: {records:,}; source records: {summary['source_records']:,}"
        )
        for label, measured, steps in (
            ("tessera resolve", tessera, summary["step_seconds"]),
            ("splink alone", alone, splink["seconds"]),
        ):
            print(
                f"{label + ':':16} {measured.seconds:6.1f} s (CPU {measured.cpu_seconds:6.1f} s)  peak {measured.peak_gib:5.2f} GiB  steps {steps}"
            )
        print(
            f"per record: tessera {per_record['tessera']:.1f} µs, splink alone {per_record['splink']:.1f} µs: "
            f"{ratios[-1]:.2f}× (target ≤ 1.0×, peak ≤ 4 GiB); CPU time {cpu_ratios[-1]:.2f}×"
        )
        print(f"customers: tessera {summary['customers']:,}, splink alone clusters {splink['clusters']:,}")
    if args.repeat > 1:
        print(
            f"\nmedian of {args.repeat} pairs: {statistics.median(ratios):.2f}× per record in wall time "
            f"(pairs {', '.join(f'{r:.2f}' for r in ratios)}), {statistics.median(cpu_ratios):.2f}× in CPU time"
        )


if __name__ == "__main__":
    main()
