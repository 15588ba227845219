"""Score a resolution against known truth: pairwise precision, recall and F1 over shared records."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tessera.core.errors import InputError
from tessera.core.settings import Workspace

RECORD = ["source", "record_id"]


def _pairs(sizes: pd.Series) -> int:
    return int((sizes * (sizes - 1) // 2).sum())


def pairwise_scores(truth: pd.DataFrame, predicted: pd.DataFrame) -> dict:
    """Pairwise scores of `predicted` (source, record_id, customer_id) against `truth` (..., person_id).

    A pair is two records in one cluster; only records present in both tables count.
    """
    both = (
        truth[[*RECORD, "person_id"]]
        .drop_duplicates(RECORD)
        .merge(predicted[[*RECORD, "customer_id"]].drop_duplicates(RECORD), on=RECORD, how="inner")
    )
    true_pairs = _pairs(both.groupby("person_id").size())
    predicted_pairs = _pairs(both.groupby("customer_id").size())
    correct = _pairs(both.groupby(["person_id", "customer_id"]).size())
    precision = correct / predicted_pairs if predicted_pairs else 1.0
    recall = correct / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    truth_records = truth.drop_duplicates(RECORD)
    return {
        "records": len(both),
        "true_clusters": int(both["person_id"].nunique()),
        "predicted_clusters": int(both["customer_id"].nunique()),
        "true_pairs": true_pairs,
        "predicted_pairs": predicted_pairs,
        "correct_pairs": correct,
        "precision": round(precision, 6),
        "recall": round(recall, 6),
        "f1": round(f1, 6),
        "truth_records_not_found": len(truth_records) - len(both),
    }


def read_truth(truth_csv: Path) -> pd.DataFrame:
    """A truth CSV (source, record_id, person_id), every column read as text."""
    if not Path(truth_csv).is_file():
        raise InputError(f"{truth_csv}: no such file; expected a truth CSV (source, record_id, person_id)")
    truth = pd.read_csv(truth_csv, dtype=str, keep_default_na=False)
    missing = {"source", "record_id", "person_id"} - set(truth.columns)
    if missing:
        raise InputError(
            f"{truth_csv}: missing column(s) {sorted(missing)}; expected source, record_id, person_id"
        )
    return truth


def evaluate_against_truth(workspace: Workspace, truth_csv: Path) -> dict:
    """Pairwise precision, recall and F1 of the workspace's crosswalk against a truth CSV."""
    crosswalk_path = workspace.identity / "crosswalk.parquet"
    if not crosswalk_path.exists():
        raise InputError(f"{crosswalk_path} does not exist: run `tessera resolve` before evaluating")
    crosswalk = pd.read_parquet(crosswalk_path, columns=[*RECORD, "customer_id"]).astype(str)
    return pairwise_scores(read_truth(truth_csv), crosswalk)
