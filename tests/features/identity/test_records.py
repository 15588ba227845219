"""Identity records from canonical files: the latest value across files, and per-file summaries cached by content."""

from __future__ import annotations

import duckdb
import pandas as pd
from identity_fixtures import contact, write_canonical

from features.identity.records import canonical_files, identity_records, summarise_files
from tessera.core.settings import Workspace


def _load(workspace: Workspace) -> tuple:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    summaries = summarise_files(con, canonical_files(workspace), workspace.identity / "summaries")
    records = identity_records(con, summaries)
    ids = pd.concat([pd.read_parquet(path) for path in summaries.record_ids], ignore_index=True)
    con.close()
    return summaries, records.set_index("identity_key"), ids


def test_latest_value_across_files_and_summaries_reused_until_a_file_changes(workspace: Workspace) -> None:
    old = contact("a", "Ann", "Lee", email="ann@old.example", updated_at="2024-01-01T00:00:00Z")
    write_canonical(workspace, "contacts", "crm", [old, contact("b", "Bob", "Hart")])
    new = contact("a", None, "Lee-Smith", email="ann@new.example", updated_at="2025-01-01T00:00:00Z")
    write_canonical(workspace, "contacts", "crm_later", [new], namespace="crm")

    summaries, records, ids = _load(workspace)
    assert summaries.reused == 0
    ann = records.loc["crm:a"]
    # The latest non-null value of each attribute wins; a null does not erase an older value.
    assert (ann["email"], ann["last_name"], ann["first_name"]) == ("ann@new.example", "Lee-Smith", "Ann")
    assert list(ann["sources"]) == ["crm", "crm_later"] and ann["n_rows"] == 2
    assert len(ids) == 3  # (crm, a), (crm, b), (crm_later, a)

    again, same, _ = _load(workspace)
    assert again.reused == 2 and same.equals(records)

    write_canonical(
        workspace, "contacts", "crm_later", [{**new, "email": "ann@newer.example"}], namespace="crm"
    )
    changed, records, _ = _load(workspace)
    assert changed.reused == 1 and records.loc["crm:a", "email"] == "ann@newer.example"
    # Summaries of the file's old content are removed, not left to grow.
    assert len(list((workspace.identity / "summaries").glob("*.parquet"))) == 4


def test_a_key_with_several_rows_in_one_file_gets_each_attributes_latest_value(workspace: Workspace) -> None:
    # Keys with one row in a file are passed through, keys with several are aggregated: both must agree.
    rows = [
        contact("a", "Ann", "Lee", email="ann@old.example", updated_at="2024-01-01T00:00:00Z"),
        contact("a", None, "Lee", email="ann@new.example", city="York", updated_at="2025-06-01T00:00:00Z"),
        contact("a", "Anne", None, phone="07700 900123", updated_at="2023-01-01T00:00:00Z"),
        contact("b", "Bob", "Hart", city="Leeds", updated_at="2024-03-01T00:00:00Z"),
    ]
    write_canonical(workspace, "contacts", "crm", rows)

    _, records, _ = _load(workspace)
    ann, bob = records.loc["crm:a"], records.loc["crm:b"]
    assert (ann["first_name"], ann["email"], ann["city"], ann["phone"]) == (
        "Ann",
        "ann@new.example",
        "York",
        "07700 900123",
    )
    assert ann["n_rows"] == 3 and list(ann["sources"]) == ["crm"]
    assert (ann["first_seen"].year, ann["last_seen"].year) == (2023, 2025)
    assert (bob["first_name"], bob["last_name"], bob["city"]) == ("Bob", "Hart", "Leeds") and pd.isna(
        bob["email"]
    )
    assert bob["n_rows"] == 1 and list(bob["sources"]) == ["crm"] and bob["last_seen"].year == 2024


def test_a_daily_load_merges_only_the_new_files_keys_into_last_runs_records(workspace: Workspace) -> None:
    ann = contact("a", "Ann", "Lee", email="ann@old.example", updated_at="2024-01-01T00:00:00Z")
    write_canonical(workspace, "contacts", "crm", [ann, contact("b", "Bob", "Hart")])
    _load(workspace)
    # A daily load: a new file with a newer email for Ann, Ann's first name left out, and a new person.
    newer = contact("a", None, "Lee", email="ann@new.example", updated_at="2025-01-01T00:00:00Z")
    write_canonical(workspace, "contacts", "crm_later", [newer, contact("c", "Cy", "Moss")], namespace="crm")
    _, merged, _ = _load(workspace)
    assert (merged.loc["crm:a", "email"], merged.loc["crm:a", "first_name"]) == ("ann@new.example", "Ann")
    assert merged.loc["crm:a", "n_rows"] == 2 and list(merged.loc["crm:a", "sources"]) == ["crm", "crm_later"]
    assert merged.loc["crm:b", "first_name"] == "Bob" and merged.loc["crm:c", "last_name"] == "Moss"
    # One merged summary is kept (with the list of file summaries it holds), and it is what a merge of
    # every file summary from scratch gives.
    folder = workspace.identity / "summaries" / "merged"
    assert len(list(folder.glob("merged-*.parquet"))) == 1 and len(list(folder.glob("merged-*.json"))) == 1
    for path in folder.iterdir():
        path.unlink()
    _, afresh, _ = _load(workspace)
    assert afresh.equals(merged)


def test_small_daily_loads_are_merged_from_the_kept_summary_without_rewriting_it(
    workspace: Workspace,
) -> None:
    people = [contact(f"p{i}", "Ann", f"Lee{i}", updated_at="2024-01-01T00:00:00Z") for i in range(30)]
    write_canonical(workspace, "contacts", "crm", people)
    _load(workspace)
    folder = workspace.identity / "summaries" / "merged"
    kept = sorted(folder.iterdir())
    # Two daily loads of one record each (under REMERGE_SHARE of 30): merged from the kept summary and
    # every file added since it was written, which stays as it was.
    moved = contact("p1", None, "Lee1", email="ann@new.example", updated_at="2025-01-01T00:00:00Z")
    write_canonical(workspace, "contacts", "day1", [moved], namespace="crm")
    write_canonical(workspace, "contacts", "day2", [contact("q", "Cy", "Moss")], namespace="crm")
    _, merged, _ = _load(workspace)
    assert sorted(folder.iterdir()) == kept
    assert merged.loc["crm:p1", "email"] == "ann@new.example" and merged.loc["crm:p1", "first_name"] == "Ann"
    assert list(merged.loc["crm:p1", "sources"]) == ["crm", "day1"] and len(merged) == 31
    for path in folder.iterdir():
        path.unlink()
    _, afresh, _ = _load(workspace)
    assert afresh.equals(merged)
    kept = sorted(folder.iterdir())  # written afresh, with the three files
    # Once the added files hold REMERGE_SHARE of its rows, the merged summary is written again.
    write_canonical(workspace, "contacts", "day3", [contact(f"r{i}", "Di", "Fox") for i in range(4)])
    _, bigger, _ = _load(workspace)
    assert len(bigger) == 35 and len(list(folder.glob("*.parquet"))) == 1 and sorted(folder.iterdir()) != kept
