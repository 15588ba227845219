"""Stable customer ids: kept across runs, merged into the oldest with aliases, split onto the largest part."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
from identity_fixtures import NOW, contact, write_canonical

from features.identity import id_stability, resolve_customer_id, resolve_identities
from features.identity.ids import assign_customer_ids
from tessera.core.settings import Settings, Workspace

ANN = contact("a", "Ann", "Lee", email="ann.lee@example.com", birth_date="1985-05-05")
BOB = contact("b", "Bob", "Hart", email="bob@example.com")


def _keys(workspace: Workspace) -> pd.DataFrame:
    return pd.read_parquet(workspace.identity / "crosswalk.parquet")[["identity_key", "customer_id"]]


def test_a_bridging_record_merges_two_customers_into_the_oldest(workspace: Workspace) -> None:
    # Run 1: Ann's CRM record. Run 2: a web-shop account of Ann under another email (a second customer).
    write_canonical(workspace, "contacts", "crm", [ANN, BOB])
    resolve_identities(workspace, NOW, Settings())
    first = _keys(workspace)
    shop = contact("w1", "Ann", "Lee", email="annlee@work.example", phone="07700 900777")
    write_canonical(workspace, "contacts", "webshop", [shop])
    resolve_identities(workspace, NOW + timedelta(days=1), Settings())
    second = _keys(workspace).set_index("identity_key")["customer_id"]
    older, newer = second["crm:a"], second["webshop:w1"]
    assert older != newer
    assert second["crm:b"] == first.set_index("identity_key")["customer_id"]["crm:b"]
    before = _keys(workspace)

    # Run 3: a loyalty card holding both of Ann's emails' worth of evidence bridges the two.
    card = {
        "customer_ref": "m1",
        "loyalty_number": "L9",
        "first_name": "Ann",
        "last_name": "Lee",
        "email": "ann.lee@example.com",
        "phone": "+447700900777",
        "joined_at": "2025-04-01",
    }
    write_canonical(workspace, "loyalty_members", "loyalty", [card])
    summary = resolve_identities(workspace, NOW + timedelta(days=2), Settings())
    third = _keys(workspace).set_index("identity_key")["customer_id"]
    assert third["crm:a"] == third["webshop:w1"] == third["loyalty:m1"] == older
    assert summary["merges"] == 1
    assert resolve_customer_id(workspace, newer) == older
    assert resolve_customer_id(workspace, older) == older
    assert resolve_customer_id(workspace, "C999999999") is None
    aliases = pd.read_parquet(workspace.identity / "aliases.parquet")
    assert aliases[["alias_id", "customer_id"]].values.tolist() == [[newer, older]]

    customers = pd.read_parquet(workspace.identity / "customers.parquet")
    report = id_stability(before, _keys(workspace), customers, aliases)
    assert report["unaffected"] == 1 and report["unaffected_kept_share"] == 1.0  # Bob
    assert report["ids_gone"] == 1 and report["all_gone_ids_resolve"]


def test_a_split_keeps_the_id_on_the_largest_part() -> None:
    previous = pd.DataFrame(
        {"identity_key": ["k1", "k2", "k3", "k4"], "customer_id": ["C1", "C1", "C1", "C2"]}
    )
    customers = pd.DataFrame({"customer_id": ["C1", "C2"], "created_at": [NOW, NOW]})
    clusters = pd.Series({"k1": "k1", "k2": "k1", "k3": "k3", "k4": "k4", "k5": "k5"})
    result = assign_customer_ids(clusters, previous, customers, None, NOW + timedelta(days=1))
    ids = result.keys.set_index("identity_key")["customer_id"]
    assert ids["k1"] == ids["k2"] == "C1"
    assert ids["k4"] == "C2"
    assert ids["k3"] not in {"C1", "C2"} and ids["k5"] not in {"C1", "C2", ids["k3"]}
    assert (result.minted, result.merged, result.kept) == (2, 0, 2)
    assert result.aliases.empty


def test_carried_customers_keep_their_ids_unlooked_at_and_new_numbers_stay_fresh() -> None:
    previous = pd.DataFrame(
        {"identity_key": ["k1", "k2", "k3", "k4"], "customer_id": ["C000000007", "C000000007", "C2", "C3"]}
    )
    customers = pd.DataFrame({"customer_id": ["C000000007", "C2", "C3"], "created_at": [NOW] * 3})
    # An incremental run touched k3 (now with new k5) and removed k4; k1 and k2 were not looked at.
    clusters = pd.Series({"k1": "k1", "k2": "k2", "k3": "k3", "k5": "k3"})
    carried = previous[previous["customer_id"] == "C000000007"]
    result = assign_customer_ids(clusters, previous, customers, None, NOW + timedelta(days=1), carried)
    ids = result.keys.set_index("identity_key")["customer_id"]
    # The clusters say k1 and k2 are apart, but a carried customer is not looked at.
    assert ids["k1"] == ids["k2"] == "C000000007"
    assert ids["k3"] == ids["k5"] == "C2"
    assert set(result.customers["customer_id"]) == {"C000000007", "C2"}
    assert (result.minted, result.kept, result.retired) == (0, 2, 1)  # C3 lost its only record
    fresh = assign_customer_ids(pd.Series({"k9": "k9"}), previous, customers, None, NOW, carried)
    assert ids.index.is_unique and fresh.keys.set_index("identity_key")["customer_id"]["k9"] == "C000000008"


def test_a_merge_keeps_the_oldest_id_and_chains_aliases() -> None:
    previous = pd.DataFrame(
        {"identity_key": ["k1", "k2", "k3"], "customer_id": ["C000000005", "C000000002", "C000000009"]}
    )
    created = [NOW, NOW - timedelta(days=3), NOW - timedelta(days=1)]
    customers = pd.DataFrame(
        {"customer_id": ["C000000005", "C000000002", "C000000009"], "created_at": created}
    )
    old_aliases = pd.DataFrame(
        {
            "alias_id": ["C000000001"],
            "customer_id": ["C000000009"],
            "merged_at": pd.to_datetime([NOW], utc=True),
        }
    )
    clusters = pd.Series({"k1": "k1", "k2": "k1", "k3": "k1"})
    result = assign_customer_ids(clusters, previous, customers, old_aliases, NOW + timedelta(days=1))
    assert set(result.keys["customer_id"]) == {"C000000002"}
    target = dict(zip(result.aliases["alias_id"], result.aliases["customer_id"], strict=True))
    assert target == {"C000000001": "C000000002", "C000000005": "C000000002", "C000000009": "C000000002"}
    fresh = assign_customer_ids(pd.Series({"k8": "k8"}), previous, customers, old_aliases, NOW)
    assert fresh.keys["customer_id"].tolist() == ["C000000010"]
