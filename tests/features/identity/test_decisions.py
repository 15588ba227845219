"""Steward decisions: a split or a merge holds through every later resolution, incremental, full and retrained,
with stable ids (the split-off record gets a new id; a merged-away id becomes an alias)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from identity_fixtures import NOW, contact, write_canonical

from features.identity import resolve_customer_id, resolve_identities
from features.identity.cluster import cluster_records
from features.identity.decisions import (
    constraints,
    forget_decisions,
    merge_decision,
    read_decisions,
    record_decision,
    split_decision,
)
from tessera.core.errors import InputError
from tessera.core.settings import Settings, Workspace

# Ann's shop account and CRM contact share an email: one customer. The shop account is really her daughter's.
ANN = contact("c1", "Ann", "Lee", email="ann.lee@example.com", birth_date="1985-05-05")
ANN_SHOP = contact("w1", "Ann", "Lee", email="ann.lee@example.com", birth_date="1985-05-05")
ANN_CARD = contact("m1", "Ann", "Lee", email="ann.lee@example.com", loyalty_number="L1")
# Bob moved and changed email: two customers nothing links. A steward knows they are one.
BOB = contact("c2", "Bob", "Hart", email="bob@hart.example")
BOB_NEW = contact("w2", "Robert", "Hart", email="r.hart@new.example")


def _write(workspace: Workspace, extra_crm: list[dict] | None = None) -> None:
    write_canonical(workspace, "contacts", "crm", [ANN, BOB, *(extra_crm or [])])
    write_canonical(workspace, "contacts", "webshop", [ANN_SHOP, BOB_NEW])
    write_canonical(workspace, "loyalty_members", "loyalty", [{**ANN_CARD, "joined_at": NOW}])


def _ids(workspace: Workspace) -> dict[str, str]:
    records = pd.read_parquet(workspace.identity / "records.parquet")
    return dict(zip(records["identity_key"], records["customer_id"], strict=True))


def test_a_split_and_a_merge_hold_through_every_later_run(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path / "ws")
    _write(workspace)
    resolve_identities(workspace, NOW, Settings())
    before = _ids(workspace)
    ann = before["crm:c1"]
    assert before["webshop:w1"] == ann == before["loyalty:m1"]
    assert before["crm:c2"] != before["webshop:w2"]

    records = pd.read_parquet(workspace.identity / "records.parquet")
    split = split_decision(records, ann, "webshop:w1", "her daughter's account", "desk-1", NOW)
    record_decision(workspace.identity, split)
    merge = merge_decision(
        records, (before["crm:c2"], before["webshop:w2"]), "moved house", "desk-1", NOW + timedelta(minutes=1)
    )
    record_decision(workspace.identity, merge)

    summary = resolve_identities(workspace, NOW + timedelta(hours=1), Settings())
    assert summary["mode"] == "incremental" and summary["steward_decisions"] == 2
    after = _ids(workspace)
    # The old id stays with the rest of Ann's records; the split-off record gets a new one.
    assert after["crm:c1"] == ann == after["loyalty:m1"]
    assert after["webshop:w1"] not in set(before.values())
    # Bob's two customers are one; the oldest id survives, the other resolves to it.
    assert after["crm:c2"] == after["webshop:w2"]
    absorbed = ({before["crm:c2"], before["webshop:w2"]} - {after["crm:c2"]}).pop()
    assert resolve_customer_id(workspace, absorbed) == after["crm:c2"]
    links = pd.read_parquet(workspace.identity / "links.parquet")
    cut = links[(links["cut_reason"] == "steward split")]
    assert len(cut) and not cut["kept"].any()
    assert (links["kind"] == "steward").sum() == 1

    # New data arrives (a new record of Ann's): the next runs, incremental, full and retrained, keep both.
    _write(workspace, [contact("c9", "Ann", "Lee", email="ann.lee@example.com", birth_date="1985-05-05")])
    for options in ({}, {"full": True}, {"retrain": True}):
        resolve_identities(workspace, NOW + timedelta(days=1), Settings(), **options)
        again = _ids(workspace)
        assert again["webshop:w1"] == after["webshop:w1"], options
        assert again["crm:c1"] == ann == again["crm:c9"], options
        assert again["crm:c2"] == again["webshop:w2"] == after["crm:c2"], options


def test_a_later_decision_overrides_an_earlier_one() -> None:
    records = pd.DataFrame({"identity_key": ["a", "b", "c"], "customer_id": ["C1", "C1", "C1"]})
    split = split_decision(records, "C1", "b", "wrong merge", "desk", NOW)
    undone = merge_decision(
        pd.DataFrame({"identity_key": ["a", "b", "c"], "customer_id": ["C1", "C2", "C1"]}),
        ("C1", "C2"),
        "it was her after all",
        "desk",
        NOW + timedelta(minutes=5),
    )
    assert constraints(split).cannot == {("a", "b"), ("b", "c")}
    both = constraints(pd.concat([split, undone]))
    assert not both.cannot and both.left.empty and len(both.must) == 2


def test_a_cannot_link_holds_through_a_third_record() -> None:
    # a - b - c linked in a chain, a and c split apart: the weaker link goes, never both.
    records = pd.DataFrame(
        {
            "identity_key": ["a", "b", "c"],
            "first_name": ["ann"] * 3,
            "last_name": ["lee"] * 3,
            "birth_date": [None] * 3,
        }
    )
    links = pd.DataFrame(
        {
            "identity_key_l": ["a", "b"],
            "identity_key_r": ["b", "c"],
            "kind": ["email", "probabilistic"],
            "match_weight": [None, 12.0],
        }
    )
    clusters, marked = cluster_records(records, links, frozenset({("a", "c")}))
    assert clusters["a"] == clusters["b"] != clusters["c"]
    assert marked["kept"].tolist() == [True, False]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda r: split_decision(r, "C9", "a", "x", "k", NOW), "unknown customer 'C9'"),
        (lambda r: split_decision(r, "C1", "c", "x", "k", NOW), "is not one of customer 'C1'"),
        (lambda r: split_decision(r, "C2", "c", "x", "k", NOW), "only record"),
        (lambda r: merge_decision(r, ("C1", "C1"), "x", "k", NOW), "with itself"),
        (lambda r: merge_decision(r, ("C1", "C2"), " ", "k", NOW), "needs a reason"),
    ],
)
def test_bad_decisions_are_refused_naming_the_field(call, message: str) -> None:  # noqa: ANN001
    records = pd.DataFrame({"identity_key": ["a", "b", "c"], "customer_id": ["C1", "C1", "C2"]})
    with pytest.raises(InputError, match=message):
        call(records)


def test_forgetting_a_person_removes_every_decision_naming_them(tmp_path: Path) -> None:
    records = pd.DataFrame({"identity_key": ["a", "b", "c"], "customer_id": ["C1", "C1", "C2"]})
    record_decision(tmp_path, split_decision(records, "C1", "b", "wrong merge", "desk", NOW))
    record_decision(tmp_path, merge_decision(records, ("C1", "C2"), "one person", "desk", NOW))
    assert forget_decisions(tmp_path, frozenset({"C2", "c"})) == 3  # the merge's three rows
    assert set(read_decisions(tmp_path)["kind"]) == {"split"}
