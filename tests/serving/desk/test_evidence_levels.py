"""The desk's link evidence in words: each comparison level of the saved identity model by its gamma value."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from features.identity.match import IdentityMatcher
from features.identity.standardise import standardise_records
from serving.desk.evidence import level_labels


def test_the_levels_of_a_fitted_model_are_named_by_their_gamma_values(tmp_path: Path) -> None:
    raw = pd.DataFrame(
        {
            "identity_key": [f"k{i}" for i in range(6)],
            "first_name": ["ann", "ann", "bob", "bob", "cy", "cy"],
            "last_name": ["lee", "lee", "roe", "roe", "fox", "fox"],
            "national_id": ["h1", "h1", "h2", "h2", "h3", "h4"],
            "national_id_near": ["a b", "a b", "c d", "c d", "e f", "f g"],
        }
    )
    records, _ = standardise_records(raw, "GB")
    matcher = IdentityMatcher(threshold=0.0).fit(records)  # every scored pair comes back
    (tmp_path / "model.json").write_text(json.dumps(matcher.to_json()), encoding="utf-8")
    links = matcher.predict(records)

    labels = level_labels(tmp_path / "model.json")
    assert labels["national_id"] == {-1: "missing", 2: "exact", 1: "one typo", 0: "different"}
    assert labels["name"][-1] == "missing" and labels["name"][max(labels["name"])] == "exact"
    # The gamma values Splink wrote for a pair are the ones named: cy fox's two ids are one typo apart.
    cy = links[links["identity_key_l"].isin(["k4", "k5"]) & links["identity_key_r"].isin(["k4", "k5"])]
    assert labels["national_id"][int(cy["gamma_national_id"].iloc[0])] == "one typo"


def test_without_a_readable_model_there_are_no_names(tmp_path: Path) -> None:
    assert level_labels(tmp_path / "model.json") == {}
    (tmp_path / "model.json").write_text("{not json", encoding="utf-8")
    assert level_labels(tmp_path / "model.json") == {}
