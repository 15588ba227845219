"""Pairwise evaluation against truth on a case small enough to count by hand."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from features.identity import evaluate_against_truth
from tessera.core.errors import InputError
from tessera.core.settings import Workspace


def test_pairwise_precision_and_recall(workspace: Workspace, tmp_path) -> None:
    truth = tmp_path / "identity.csv"
    # Person p1 has three records, p2 one; r5 was never ingested.
    truth.write_text("source,record_id,person_id\ncrm,r1,p1\ncrm,r2,p1\nshop,r3,p1\nshop,r4,p2\nshop,r5,p2\n")
    workspace.identity.mkdir(parents=True)
    crosswalk = pd.DataFrame(
        {
            "source": ["crm", "crm", "shop", "shop", "shop"],
            "record_id": ["r1", "r2", "r3", "r4", "x9"],
            "identity_key": ["crm:r1", "crm:r2", "shop:r3", "shop:r4", "shop:x9"],
            "customer_id": ["C1", "C1", "C2", "C2", "C2"],
        }
    )
    crosswalk.to_parquet(workspace.identity / "crosswalk.parquet")
    scores = evaluate_against_truth(workspace, truth)
    # True pairs: r1r2, r1r3, r2r3. Predicted: r1r2, r3r4. Correct: r1r2.
    assert scores["precision"] == pytest.approx(1 / 2)
    assert scores["recall"] == pytest.approx(1 / 3, abs=1e-6)
    assert scores["f1"] == pytest.approx(0.4)
    assert (scores["records"], scores["true_clusters"], scores["predicted_clusters"]) == (4, 2, 2)
    assert scores["truth_records_not_found"] == 1


def test_evaluating_before_resolving_says_what_to_do(workspace: Workspace, tmp_path) -> None:
    truth = tmp_path / "identity.csv"
    truth.write_text("source,record_id,person_id\n")
    with pytest.raises(InputError, match="tessera resolve"):
        evaluate_against_truth(workspace, truth)


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "no such file"), ("source,record_id,person\n", r"missing column\(s\) \['person_id'\]")],
)
def test_a_truth_file_that_is_missing_or_lacks_a_column_is_named(
    workspace: Workspace, tmp_path, content: str | None, message: str
) -> None:
    truth = tmp_path / "identity.csv"
    if content is not None:
        truth.write_text(content)
    workspace.identity.mkdir(parents=True)
    pd.DataFrame(
        {"source": ["crm"], "record_id": ["r1"], "identity_key": ["crm:r1"], "customer_id": ["C1"]}
    ).to_parquet(workspace.identity / "crosswalk.parquet")
    with pytest.raises(InputError, match=re.escape(f"{truth}: ") + message):
        evaluate_against_truth(workspace, truth)
