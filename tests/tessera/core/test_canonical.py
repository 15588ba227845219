"""The canonical form of a national id: a salted hash, never the id as written."""

from __future__ import annotations

import pandas as pd
import pytest

from tessera.core.canonical import PERSON_COLUMNS, hash_national_ids


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
