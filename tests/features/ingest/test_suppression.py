"""The suppression list: salted hashes, and which canonical rows they drop."""

from __future__ import annotations

import pandas as pd

from features.ingest.suppression import (
    add_suppressed,
    identifier_hash,
    read_suppressed,
    suppressed_rows,
    suppression_salt,
)
from tessera.core.settings import Settings, Workspace


def test_rows_of_a_suppressed_key_or_email_are_found_whatever_the_case(tmp_path) -> None:
    workspace, settings = Workspace(tmp_path), Settings(workspace=tmp_path)
    salt = suppression_salt(workspace, settings)
    assert (workspace.data / "suppression" / "salt").stat().st_mode & 0o777 == 0o600
    assert suppression_salt(workspace, settings) == salt  # generated once, then kept
    added = add_suppressed(
        workspace, {identifier_hash("crm:C1", salt), identifier_hash("a@x.org", salt)}, "e1"
    )
    assert added == 2 and add_suppressed(workspace, {identifier_hash("crm:C1", salt)}, "e2") == 0
    rows = pd.DataFrame(
        {
            "identity_key": ["crm:C1", "crm:C2", None, "crm:C3"],
            "email": [None, "b@x.org", " A@X.org", "c@x.org"],
        },
        index=[10, 11, 12, 13],
    )
    hit = suppressed_rows(rows, read_suppressed(workspace, settings), salt)
    assert hit.tolist() == [True, False, True, False] and list(hit.index) == [10, 11, 12, 13]
    # The list holds no identifier, and another salt matches nothing.
    stored = pd.read_parquet(workspace.data / "suppression" / "suppressed.parquet")
    assert not stored.astype(str).apply(lambda c: c.str.contains("C1|x.org")).any().any()
    other = Settings(workspace=tmp_path, erasure_salt="another")
    assert not suppressed_rows(
        rows, read_suppressed(workspace, other), suppression_salt(workspace, other)
    ).any()


def test_an_id_erased_as_written_with_a_point_zero_still_matches_the_whole_number(tmp_path) -> None:
    # Erased before ingestion read `13085.0` as 13085: the list holds the hash of the key as it was written.
    workspace, settings = Workspace(tmp_path), Settings(workspace=tmp_path)
    salt = suppression_salt(workspace, settings)
    add_suppressed(
        workspace, {identifier_hash("shop:13085.0", salt), identifier_hash("1701234567.0", salt)}, "e1"
    )
    rows = pd.DataFrame(
        {
            "identity_key": ["shop:13085", "shop:13085", "shop:1308", "shop:A", "crm:9"],
            "phone": [None, None, None, None, "1701234567"],
        }
    )
    hit = suppressed_rows(rows, read_suppressed(workspace, settings), salt)
    assert hit.tolist() == [True, True, False, False, True]
