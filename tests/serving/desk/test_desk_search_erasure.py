"""Erasure removes a person from the desk's search index: the derived index is deleted, the next one lacks them."""

from __future__ import annotations

from pathlib import Path

from desk_fixtures import JOHN, with_people
from serving_fixtures import Served

from features.store.settings import FeatureStoreSettings
from serving.desk.search import SearchIndex
from serving.erasure import erase_person, find_person
from tessera.core.settings import Settings


def test_erasure_deletes_the_search_index_and_the_next_lacks_the_person(
    served: Served, tmp_path: Path
) -> None:
    people = with_people(served, tmp_path / "workspace")
    workspace = people.workspace
    index = SearchIndex(workspace)
    assert [h.customer_id for h in index.search(JOHN["email"])] == [people.john]
    built = list(workspace.desk.glob("search-*.sqlite"))
    assert len(built) == 1
    person = find_person(workspace, customer=people.john)
    receipt = erase_person(workspace, Settings(workspace=workspace.root), FeatureStoreSettings(), person)
    assert receipt["rows_removed"]["desk search index"] == 1
    assert not built[0].exists()
    fresh = SearchIndex(workspace)
    for query in (JOHN["email"], "john smith", JOHN["loyalty_number"], "07700 900123", people.john_order):
        assert people.john not in [h.customer_id for h in fresh.search(query)], query
    assert b"smith@example.com" not in b"".join(p.read_bytes() for p in workspace.desk.glob("search-*"))
