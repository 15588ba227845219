"""Incremental linkage: new and changed records scored alone give the clusters a full run gives."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from identity_fixtures import NOW, contact, write_canonical

from features.identity import resolve_customer_id, resolve_identities
from features.identity.cluster import components
from features.identity.incremental import Resolution, dirty_keys, standardise_changed
from features.identity.match import MATCH_COLUMNS
from features.identity.records import ATTRIBUTES
from features.identity.resolve import REPLAN_SHARE
from features.identity.standardise import standardise_records
from features.ingest import ingest_sources
from simulator import simulate_registry
from tessera.core.settings import Settings, Workspace

ANN = contact("c1", "Ann", "Lee", email="ann.lee@example.com", birth_date="1985-05-05")
BOB = contact("c2", "Bob", "Hart", email="bob@example.com", birth_date="1970-01-01")
CARL = contact("c3", "Carl", "Diaz", phone="07700 900111", postcode="LS2 9JT", street="4 Mill Lane")
DANA = contact("c4", "Dana", "Fox", email="dana@fox.example")
EVE = contact("c5", "Eve", "Stone", email="eve@stone.example", birth_date="1960-06-06")
# Ann under a second email: her own customer until a loyalty card carrying both emails bridges the two.
ANN_AT_WORK = contact("w9", "Ann", "Lee", email="ann@work.example", birth_date="1985-05-05")

# Gil's card is there from the first run, so both runs match on the same attributes (loyalty numbers
# included): a new kind of attribute changes the matcher's plan, which retrains it and runs in full.
GIL = contact("m7", "Gil", "Moss", email="gil@moss.example", loyalty_number="L7")
# Hal is in both shops from the first run on: his link is one that the second run leaves untouched.
HAL = contact("h1", "Hal", "Berg", email="hal@berg.example")
FIRST = {"crm": [ANN, BOB, CARL, DANA, EVE, HAL], "webshop": [ANN_AT_WORK, HAL], "loyalty": [GIL]}
SECOND = {
    # Dana's email changed, Eve was erased.
    "crm": [ANN, BOB, CARL, {**DANA, "email": "dana.fox@example.com"}, HAL],
    "webshop": [
        ANN_AT_WORK,
        HAL,
        contact("w2", "Carl", "Diaz", phone="+44 7700 900111"),  # Carl again: a phone link
        contact("w3", "Fay", "Gold", email="fay@gold.example", phone="07700 900333"),  # somebody new
        contact("w4", "Fay", "Gold", email="fay@gold.example", phone="07700 900333"),  # her identical copy
        contact("w5", "Dana", "Fox", email="dana.fox@example.com"),  # Dana's new email
    ],
    "loyalty": [GIL, contact("m1", "Ann", "Lee", email="ann.lee@example.com", loyalty_number="L1")],
}
BRIDGE = contact("m2", "Ann", "Lee", email="ann@work.example", loyalty_number="L1")


def _write(workspace: Workspace, tables: dict[str, list[dict]]) -> None:
    for source, rows in tables.items():
        source_type = "loyalty_members" if source == "loyalty" else "contacts"
        write_canonical(workspace, source_type, source, [{**row, "joined_at": NOW} for row in rows])


def _partition(workspace: Workspace) -> set[frozenset[str]]:
    records = pd.read_parquet(workspace.identity / "records.parquet")
    return {frozenset(keys) for keys in records.groupby("customer_id")["identity_key"].agg(list)}


def _ids(workspace: Workspace) -> dict[str, str]:
    records = pd.read_parquet(workspace.identity / "records.parquet")
    return dict(zip(records["identity_key"], records["customer_id"], strict=True))


def test_incremental_run_gives_the_full_runs_clusters_and_keeps_ids(tmp_path: Path) -> None:
    incremental, full = Workspace(tmp_path / "incremental"), Workspace(tmp_path / "full")
    _write(incremental, FIRST)
    resolve_identities(incremental, NOW, Settings())
    before = _ids(incremental)
    assert before["crm:c1"] != before["webshop:w9"]

    _write(incremental, SECOND)
    _write(incremental, {"loyalty": [*SECOND["loyalty"], BRIDGE]})
    summary = resolve_identities(incremental, NOW + timedelta(days=1), Settings())
    _write(full, SECOND)
    _write(full, {"loyalty": [*SECOND["loyalty"], BRIDGE]})
    full_summary = resolve_identities(full, NOW + timedelta(days=1), Settings(), full=True)

    assert summary["mode"] == "incremental"
    # The same links as a full run, counted alike (a `kept` column of Python objects once counted ~True as -2).
    assert summary["links"] == full_summary["links"]
    assert summary["links_cut_by_guards"] == full_summary["links_cut_by_guards"] == 0
    assert pd.read_parquet(incremental.identity / "links.parquet")["kept"].dtype == bool
    # New: w2, w3, w4, w5, m1, m2; changed: c4. Removed: c5.
    assert summary["incremental_records"]["dirty"] == 7
    assert summary["incremental_records"]["removed"] == 1
    assert _partition(incremental) == _partition(full)
    after = _ids(incremental)
    assert after["crm:c2"] == before["crm:c2"]  # Bob is untouched
    assert after["crm:c3"] == before["crm:c3"] == after["webshop:w2"]
    assert after["webshop:w3"] == after["webshop:w4"] != after["crm:c4"]
    assert after["crm:c4"] == after["webshop:w5"] == before["crm:c4"]
    # The card bridges Ann's two customers: the older id survives, the other resolves to it.
    assert after["crm:c1"] == after["webshop:w9"] == before["crm:c1"]
    assert resolve_customer_id(incremental, before["webshop:w9"]) == before["crm:c1"]
    assert summary["merges"] == 1


def test_full_flag_and_unchanged_data_score_nothing_new(workspace: Workspace) -> None:
    _write(workspace, FIRST)
    resolve_identities(workspace, NOW, Settings())
    again = resolve_identities(workspace, NOW + timedelta(days=1), Settings())
    assert again["mode"] == "incremental" and again["incremental_records"]["dirty"] == 0
    assert again["kept_ids"] == again["customers"] and again["new_ids"] == 0
    assert resolve_identities(workspace, NOW + timedelta(days=2), Settings(), full=True)["mode"] == "full"


def test_dirty_keys_include_unscored_copies_of_a_changed_record() -> None:
    columns = ["identity_key", "first_name", "email"]
    old = pd.DataFrame([["a", "ann", "x@y.z"], ["b", "ann", "x@y.z"], ["c", "cy", None]], columns=columns)
    links = pd.DataFrame({"identity_key_l": ["a"], "identity_key_r": ["b"], "kind": ["identical"]})
    now = pd.DataFrame([["a", "ann", "new@y.z"], ["b", "ann", "x@y.z"], ["d", "di", None]], columns=columns)

    def widen(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.reindex(columns=MATCH_COLUMNS).assign(customer_id="C1")

    changes = dirty_keys(widen(now), Resolution(widen(old), links))
    # a changed, b is a's copy (never scored itself), d is new; c is gone.
    assert sorted(changes.dirty) == ["a", "b", "d"]
    assert list(changes.removed) == ["c"]


def test_components_cover_keys_without_links() -> None:
    keys = pd.Series(["a", "b", "c", "d"])
    links = pd.DataFrame({"identity_key_l": ["a", "c"], "identity_key_r": ["b", "x"]})
    label = components(keys, links)
    assert label[0] == label[1] and len({label[0], label[2], label[3]}) == 3


def _raw(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows).reindex(columns=["identity_key", *ATTRIBUTES, "n_rows"])
    return frame.astype({c: "object" for c in ATTRIBUTES})


def test_standardise_changed_reuses_only_unchanged_records(tmp_path: Path) -> None:
    ann = {"identity_key": "a", "first_name": "Ann", "email": "Ann@Example.com ", "phone": "07700 900111"}
    bob = {"identity_key": "b", "first_name": "Bob", "phone": "not a phone"}
    first, invalid = standardise_changed(_raw([ann, bob]), "GB", tmp_path)
    assert first["phone"][0] == "+447700900111" and pd.isna(first["phone"][1])
    assert invalid["invalid_phones"] == 1
    cache = next(tmp_path.glob("standardised-*.parquet"))
    # Tamper with the cache: a reused record shows it, a changed one is standardised afresh.
    tampered = pd.read_parquet(cache).assign(city=["from cache", "from cache"])
    tampered.to_parquet(cache, index=False)
    carl = {"identity_key": "c", "first_name": "Carl", "email": "carl@example"}
    second, invalid = standardise_changed(_raw([ann, {**bob, "first_name": "Robert"}, carl]), "GB", tmp_path)
    assert second["city"].tolist()[0] == "from cache" and pd.isna(second["city"].tolist()[1])
    expected, _ = standardise_records(_raw([ann, {**bob, "first_name": "Robert"}, carl]), "GB")
    columns = ["identity_key", "first_name", "first_name_formal", "email", "phone"]
    pd.testing.assert_frame_equal(second[columns], expected[columns], check_dtype=False)
    assert invalid == {"invalid_emails": 1, "invalid_phones": 1}


@pytest.mark.integration
def test_the_plan_is_checked_again_once_enough_records_changed(tmp_path: Path) -> None:
    """A daily load is scored with the saved model as it is; once the records changed since the plan was
    last checked pass `REPLAN_SHARE` of them, the plan is checked and a model that no longer fits retrains."""
    sample, workspace = tmp_path / "sample", Workspace(tmp_path / "workspace")
    simulate_registry(records=1200, seed=17, out=sample, shape="registry", duplicates=0.3)
    ingest_sources(sample / "sources.yaml", workspace, Settings())
    first = resolve_identities(workspace, NOW, Settings())
    assert first["model"] == "trained" and "email" not in first["plan"]["attributes"]
    n = first["records"]

    def newcomers(count: int) -> list[dict]:
        # People with emails, an attribute the registry never had: enough of them change the plan.
        return [contact(f"n{i}", "New", f"Person{i}", email=f"new{i}@example.com") for i in range(count)]

    few = int(REPLAN_SHARE * n) // 2
    write_canonical(workspace, "contacts", "signups", newcomers(few))
    second = resolve_identities(workspace, NOW + timedelta(days=1), Settings())
    assert second["mode"] == "incremental" and second["model"] == "reused"
    assert second["changed_since_plan_check"] == few  # not checked: 1.2% new records with emails

    write_canonical(workspace, "contacts", "signups", newcomers(3 * few))
    third = resolve_identities(workspace, NOW + timedelta(days=2), Settings())
    assert third["changed_since_plan_check"] == 0
    assert third["model"] == "trained" and third["mode"] == "full"
    assert "email" in third["plan"]["attributes"]
