"""Standardisation: each messy way of writing a value ends up as one comparable value."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import phonenumbers

from features.identity.standardise import (
    _parsed_e164,
    _plus_e164,
    canonical_first_names,
    null_placeholders,
    phone_region,
    split_full_name,
    standardise_birth_dates,
    standardise_emails,
    standardise_names,
    standardise_phones,
    standardise_postcodes,
    standardise_records,
    standardise_streets,
)


def test_emails_are_trimmed_lower_cased_and_validated() -> None:
    emails, invalid = standardise_emails(
        pd.Series(
            [" Jane.Doe@Example.COM ", "mailto:jane.doe@example.com", "not-an-email", "jane@nodot", None, ""]
        )
    )
    assert emails.tolist()[:2] == ["jane.doe@example.com", "jane.doe@example.com"]
    assert emails.iloc[2:].isna().all()
    assert invalid == 2


def test_phone_formats_become_one_e164_number() -> None:
    raw = pd.Series(
        ["07700 900123", "+44 7700 900123", "0044 (0)7700-900123", "7700900123", "(07700) 900 123"]
    )
    regions = phone_region(pd.Series(["GB", "United Kingdom", None, "uk", "England"]), "GB")
    phones, invalid = standardise_phones(raw, regions)
    assert set(phones.dropna()) == {"+447700900123"}
    assert invalid == int(phones.isna().sum())
    assert phones.notna().sum() >= 4


def test_phone_uses_the_record_country_before_the_default() -> None:
    regions = phone_region(pd.Series(["IE", None]), "GB")
    phones, _ = standardise_phones(pd.Series(["087 123 4567", "020 7946 0018"]), regions)
    assert phones.tolist() == ["+353871234567", "+442079460018"]


def test_the_quick_plus_check_agrees_with_phonenumbers() -> None:
    """Wherever `_plus_e164` answers, it answers what a full parse does: every country code, many lengths."""
    rng = np.random.default_rng(7)
    codes = sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
    numbers = [
        f"+{code}{lead}{''.join(map(str, rng.integers(0, 10, size=length)))}"
        for code in codes
        for lead in ("", "0", "1", "8", "00")
        for length in range(0, 19, 2)
    ]
    numbers += ["+447700900123", "+4407700900123", "+44 7700 900123", "+0447700900123", "+9991234567", "+4"]
    answered = 0
    for number in numbers:
        quick = _plus_e164(number)
        if quick is not False:
            answered += 1
            assert quick == _parsed_e164(number, None), number
    assert answered > len(numbers) // 2  # the quick path does answer most of them
    assert _plus_e164("+447700900123") == "+447700900123"
    assert _plus_e164("+4407700900123") is False  # a national prefix after the country code: parse it


def test_unreadable_phone_is_null_and_counted() -> None:
    phones, invalid = standardise_phones(pd.Series(["12", "call me"]), pd.Series(["GB", "GB"]))
    assert phones.isna().all()
    assert invalid == 2


def test_names_lose_accents_case_punctuation_and_titles() -> None:
    names = standardise_names(
        pd.Series(["  Zoë ", "Mr. José-María", None]),
        pd.Series(["O'Brien", "Núñez", None]),
        pd.Series([None, None, "Dr Anne-Marie Brontë"]),
    )
    assert names["first_name"].tolist() == ["zoe", "jose maria", "anne"]
    assert names["last_name"].tolist() == ["obrien", "nunez", "bronte"]


def test_full_name_is_split_in_either_order() -> None:
    assert split_full_name("Smith, John Paul") == ("john", "smith")
    assert split_full_name("John Paul Smith") == ("john", "smith")
    assert split_full_name("Cher") == (None, "cher")


def test_nicknames_map_to_the_formal_names_they_stand_for() -> None:
    formal = canonical_first_names(pd.Series(["bob", "robert", "alex", "zebedee", None]))
    assert formal.tolist()[:4] == ["robert", "robert", "alexander|alexandra", "zebedee"]
    assert pd.isna(formal.iloc[4])


def test_streets_and_postcodes_are_unified() -> None:
    streets = standardise_streets(pd.Series(["12 High Street", "12, high st.", "Flat 3, 7A Church Road"]))
    assert streets["street"].tolist() == ["12 high st", "12 high st", "flat 3 7a church rd"]
    assert streets["house_number"].tolist() == ["12", "12", "7a"]
    postcodes = standardise_postcodes(pd.Series(["sw1a 1aa", " SW1A1AA", "75001"]))
    assert postcodes["postcode"].tolist() == ["SW1A1AA", "SW1A1AA", "75001"]
    assert postcodes["postcode_district"].tolist()[:2] == ["SW1A", "SW1A"]
    assert pd.isna(postcodes["postcode_district"].iloc[2])


def test_birth_dates_become_dates() -> None:
    dates = standardise_birth_dates(pd.Series([date(1980, 4, 2), "1975-12-31", "garbage", None]))
    assert dates.dropna().tolist() == [date(1980, 4, 2), date(1975, 12, 31)]
    assert dates.isna().tolist() == [False, False, True, True]


def test_a_value_shared_by_many_people_is_a_placeholder() -> None:
    people = pd.DataFrame(
        {
            "first_name": [f"name{i}" for i in range(40)],
            "last_name": ["x"] * 40,
            "email": ["none@none.com"] * 30 + [f"own{i}@example.com" for i in range(10)],
        }
    )
    cleaned, counts = null_placeholders(people, ("email",), min_names=20)
    assert cleaned["email"].isna().sum() == 30 and counts == {"email": 1}
    assert cleaned["email"].iloc[-1] == "own9@example.com"


def test_a_house_number_kept_apart_joins_its_street_either_way() -> None:
    streets = standardise_streets(
        pd.Series(["High Street", "12 High Street", "Park Road", None]), pd.Series(["12", "12", " 7 a", "9"])
    )
    assert streets["street"].tolist()[:3] == ["12 high st", "12 high st", "7a pk rd"]
    assert streets["house_number"].tolist() == ["12", "12", "7a", "9"]


def test_middle_names_regions_and_national_ids_are_standardised() -> None:
    raw = pd.DataFrame(
        {
            "identity_key": ["a", "b"],
            "first_name": ["Ann", "Ann"],
            "middle_name": ["Marie-Louise", " M. "],
            "last_name": ["Lee", "Lee"],
            "region": ["Île-de-France", None],
            "national_id": [" 3f2a ", ""],
        }
    )
    records, _ = standardise_records(raw, "GB")  # attributes the frame lacks are read as empty
    assert records["middle_name"].tolist() == ["marie louise", "m"]
    assert records["region"].tolist()[0] == "ile de france" and pd.isna(records["region"].iloc[1])
    assert records["national_id"].tolist()[0] == "3f2a" and pd.isna(records["national_id"].iloc[1])
    assert records["email"].isna().all() and records["street"].isna().all()


def test_contact_points_standardised_in_a_forked_process_come_out_as_in_this_one() -> None:
    raw = pd.DataFrame(
        {
            "identity_key": [f"k{i}" for i in range(6)],
            "first_name": ["Ann", "Bob", None, "Cy", "Di", "Ed"],
            "last_name": ["Lee", "Ray", "Poe", "Fox", "Oak", "Elm"],
            "email": [" ANN@Example.com ", "bad@", None, "cy@example.org", "", "ed@example.net"],
            "phone": ["07700 900123", "+44 7700 900124", "0033 1 23 45 67 89", None, "123", "(0)7700 900125"],
            "country": ["UK", "GB", "France", None, "US", "gb"],
        },
        index=[10, 11, 12, 13, 14, 15],  # not a range: the halves are put back by index
    )
    here, invalid_here = standardise_records(raw, "GB", beside_from=len(raw) + 1)
    forked, invalid_forked = standardise_records(raw, "GB", beside_from=0)
    pd.testing.assert_frame_equal(forked, here)
    assert invalid_forked == invalid_here == {"invalid_emails": 1, "invalid_phones": 1}
    assert here["phone"].tolist()[:3] == ["+447700900123", "+447700900124", "+33123456789"]
