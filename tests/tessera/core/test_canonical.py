"""The canonical form of a national id: a salted hash, never the id as written, and its typo neighbourhood."""

from __future__ import annotations

import pandas as pd
import pytest

from tessera.core.canonical import PERSON_COLUMNS, hash_national_ids, near_national_ids


def test_national_ids_are_salted_hashes_that_ignore_spaces_dashes_and_case() -> None:
    written = pd.Series(["AB123456C", "ab 12 34 56 c", "AB-123456-C", "CD654321A", None, " "])
    hashed = hash_national_ids(written, salt="s1")
    assert hashed.iloc[0] == hashed.iloc[1] == hashed.iloc[2] != hashed.iloc[3]
    assert hashed.iloc[:4].str.fullmatch(r"[0-9a-f]{64}").all()
    assert hashed.iloc[4:].isna().all()
    assert "123456" not in "".join(hashed.dropna())
    assert hash_national_ids(written, salt="s2").iloc[0] != hashed.iloc[0]  # the salt matters


def test_an_empty_salt_is_refused() -> None:
    with pytest.raises(ValueError, match="TESSERA_ID_SALT"):
        hash_national_ids(pd.Series(["AB123456C"]), salt="")


def test_person_columns_include_the_attributes_of_real_contact_files() -> None:
    names = {c.name for c in PERSON_COLUMNS}
    assert {"middle_name", "house_number", "region", "national_id"} <= names


def test_ids_one_typo_apart_share_a_near_hash_and_others_do_not() -> None:
    ids = {
        "id": "5098690",
        "one digit wrong": "5098190",
        "two neighbours swapped": "5096890",
        "a digit missing": "509690",
        "a digit extra": "50986930",
        "written with spaces": "50 98 690",
        "two digits wrong": "5198190",
        "another id": "7898665",
    }
    near = near_national_ids(pd.Series(list(ids.values())), salt="s1")
    sets = dict(zip(ids, near.str.split(" ").map(set), strict=True))
    shared = {name for name, hashes in sets.items() if hashes & sets["id"]}
    assert shared == set(ids) - {"two digits wrong", "another id"}
    assert len(sets["id"]) == 8  # the id and its seven one shorter
    assert near.str.fullmatch(r"[0-9a-f]{16}( [0-9a-f]{16})*").all()
    assert not any(part in near.iloc[0] for part in ("5098690", "509869", "098690"))
    assert near_national_ids(pd.Series(["5098690"]), salt="s2").iloc[0] != near.iloc[0]  # salted
    assert near_national_ids(pd.Series([None, ""]), salt="s1").isna().all()
