"""Simulator fixtures: one small simulated retailer (with held-back records) shared by the tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from simulator import simulate_retailer

CUSTOMERS = 500
SEED = 11
HOLDBACK = 0.1


@pytest.fixture(scope="session")
def sim(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A 500-person retailer with 10% of person records held back: (folder, summary)."""
    out = tmp_path_factory.mktemp("retailer")
    return out, simulate_retailer(customers=CUSTOMERS, seed=SEED, out=out, holdback=HOLDBACK)


@pytest.fixture(scope="session")
def out(sim: tuple[Path, dict[str, Any]]) -> Path:
    return sim[0]


@pytest.fixture(scope="session")
def persons(out: Path) -> pd.DataFrame:
    return pq.read_table(out / "truth" / "persons.parquet").to_pandas()


@pytest.fixture(scope="session")
def truth(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "truth" / "identity.csv", dtype=str, keep_default_na=False)


@pytest.fixture(scope="session")
def sources(out: Path) -> dict[str, dict[str, Any]]:
    """The initial mapping's (sources.yaml) sources by name."""
    return {s["name"]: s for s in load_mapping(out / "sources.yaml")}


def load_mapping(path: Path) -> list[dict[str, Any]]:
    """The sources of a sources.yaml."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))["sources"]


def read_export(folder: Path, source: dict[str, Any]) -> pd.DataFrame:
    """One declared export as text columns ('' for empty), read as its mapping says; jsonl paths flattened."""
    path = folder / source["path"]
    if source["format"] == "parquet":
        frame = pq.read_table(path).to_pandas()
        return frame.astype(object).where(frame.notna(), "").astype(str)
    if source["format"] == "jsonl":
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        frame = pd.json_normalize(rows, sep=".")
        return frame.astype(object).where(frame.notna(), "").astype(str)
    return pd.read_csv(
        path,
        dtype=str,
        keep_default_na=False,
        sep=source.get("delimiter", ","),
        encoding=source.get("encoding", "utf-8"),
    )
