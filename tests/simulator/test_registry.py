"""The contacts-only shapes: no email, phone or loyalty number, the promised noise, truth for every record."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from features.ingest import ingest_sources
from simulator import simulate_registry
from tessera.core.settings import Settings, Workspace
from tests.simulator.conftest import load_mapping


def _read(out: Path, source: dict) -> pd.DataFrame:
    return pd.read_csv(out / source["path"], sep=source["delimiter"], dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("registry")
    simulate_registry(records=600, seed=5, out=out, shape="registry", duplicates=0.4)
    return out


def test_registry_has_no_contact_points_and_the_asked_duplicates(registry: Path) -> None:
    [source] = load_mapping(registry / "sources.yaml")
    assert source["type"] == "contacts"
    assert not {"email", "phone", "loyalty_number"} & set(source["columns"])
    assert {"middle_name", "house_number", "region", "national_id"} <= set(source["columns"])
    rows = _read(registry, source)
    truth = pd.read_csv(registry / "truth" / "identity.csv", dtype=str)
    assert len(rows) == len(truth) == 600
    assert set(rows[source["columns"]["customer_ref"]]) == set(truth["record_id"])
    assert truth["person_id"].nunique() == 360  # 40% of the records repeat a person
    # The noise promised in docs/simulator.md: some middle names as initials, ids written with spaces,
    # house numbers apart from the street, gaps.
    middle = rows[source["columns"]["middle_name"]]
    assert (middle.str.len() == 1).any() and (middle.str.len() > 1).any() and (middle == "").any()
    assert rows[source["columns"]["national_id"]].str.contains(" ").any()
    assert rows[source["columns"]["house_number"]].str.fullmatch(r"\d+").mean() > 0.9
    assert not rows[source["columns"]["street"]].str.match(r"\d").any()


def test_two_files_hold_each_person_at_most_once(tmp_path: Path) -> None:
    simulate_registry(records=500, seed=3, out=tmp_path, shape="two-files", duplicates=0.5)
    sources = load_mapping(tmp_path / "sources.yaml")
    assert [s["name"] for s in sources] == ["system_a", "system_b"]
    truth = pd.read_csv(tmp_path / "truth" / "identity.csv", dtype=str)
    assert not truth.duplicated(["source", "person_id"]).any()
    in_both = truth.groupby("person_id")["source"].nunique() == 2
    assert in_both.sum() == round(0.5 * in_both.size)
    for source in sources:
        assert len(_read(tmp_path, source)) == (truth["source"] == source["name"]).sum()


def test_same_arguments_give_identical_files(tmp_path: Path) -> None:
    for run in ("a", "b"):
        simulate_registry(records=200, seed=9, out=tmp_path / run, shape="registry", duplicates=0.2)
    for name in ("exports/registry.csv", "truth/identity.csv", "sources.yaml"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


@pytest.mark.integration
def test_ingestion_accepts_every_record_and_stores_no_raw_national_id(registry: Path, tmp_path: Path) -> None:
    workspace = Workspace(tmp_path)
    report = ingest_sources(registry / "sources.yaml", workspace, Settings())
    assert report.sources[0].rows_loaded == 600
    canonical = pd.read_parquet(workspace.canonical_file("contacts", "registry"))
    [source] = load_mapping(registry / "sources.yaml")
    raw = set(_read(registry, source)[source["columns"]["national_id"]]) - {""}
    assert canonical["national_id"].notna().mean() > 0.8
    assert not raw & set(canonical["national_id"].dropna())
    assert canonical["national_id"].dropna().str.fullmatch(r"[0-9a-f]{64}").all()
    # Its typo neighbourhood too, hashed: present wherever the id is, and no raw id in it.
    assert canonical["national_id_near"].notna().equals(canonical["national_id"].notna())
    assert not any(any(id_ in near for id_ in raw) for near in canonical["national_id_near"].dropna())
    assert canonical["house_number"].notna().mean() > 0.9 and canonical["region"].notna().mean() > 0.6
