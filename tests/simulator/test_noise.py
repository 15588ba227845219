"""Noise: present, at roughly the rates docs/simulator.md states, and never making a record unlinkable."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import phonenumbers
import pytest
from unidecode import unidecode

from simulator import noise
from simulator.config import SimConfig
from tests.simulator.conftest import read_export

CONFIG = SimConfig()


def _one_edit(a: str, b: str) -> bool:
    """Whether b is a single substitution, deletion, insertion or neighbour swap away from a."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]])
    short, long = (a, b) if len(a) < len(b) else (b, a)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


def _shown_names(out: Path, sources: dict[str, dict], truth: pd.DataFrame) -> pd.DataFrame:
    """First and last name as each name-bearing record shows them, with the person behind the record."""
    frames = []
    for name, first, last, ref in (
        ("crm_contacts", "FirstName", "LastName", "ContactId"),
        ("loyalty_members", "forename", "surname", "member_id"),
    ):
        f = read_export(out, sources[name])
        frames.append(pd.DataFrame({"source": name, "record_id": f[ref], "first": f[first], "last": f[last]}))
    web = read_export(out, sources["webshop_orders"]).drop_duplicates("OrderNo")
    rid = np.where(web["CustomerId"].ne(""), web["CustomerId"], "order:" + web["OrderNo"])
    frames.append(
        pd.DataFrame({"source": "webshop_orders", "record_id": rid, "first": web["BillingFirstName"],
                      "last": web["BillingLastName"]}).drop_duplicates("record_id")
    )  # fmt: skip
    shown = pd.concat(frames).merge(truth, on=["source", "record_id"])
    return shown[shown["first"].ne("")]


def _fold(s: pd.Series) -> pd.Series:
    return s.map(lambda v: unidecode(str(v)).lower() if isinstance(v, str) else v)


@pytest.fixture(scope="module")
def names(out: Path, sources: dict[str, dict], truth: pd.DataFrame, persons: pd.DataFrame) -> pd.DataFrame:
    shown = _shown_names(out, sources, truth).merge(
        persons[["person_id", "first_name", "last_name", "nickname"]], on="person_id"
    )
    f, ln = _fold(shown["first"]), _fold(shown["last"])
    tf, tl, nick = _fold(shown["first_name"]), _fold(shown["last_name"]), _fold(shown["nickname"])
    shown["swapped"] = (f == tl) & (ln == tf) & (tf != tl)
    shown["nickname_used"] = (f == nick) & (ln == tl)
    first_edit = np.array(
        [_one_edit(a, b) or _one_edit(c, b) for a, b, c in zip(tf, f, nick.fillna(""), strict=True)]
    )
    last_edit = np.array([_one_edit(a, b) for a, b in zip(tl, ln, strict=True)])
    shown["plain"] = (f == tf) & (ln == tl)
    one_edit = (first_edit & (ln == tl).to_numpy()) | (((f == tf) | (f == nick)).to_numpy() & last_edit)
    shown["typo"] = one_edit & ~(shown["plain"] | shown["swapped"] | shown["nickname_used"]).to_numpy()
    return shown


def test_names_are_noisy_at_the_documented_rates(names: pd.DataFrame) -> None:
    n = len(names)
    assert n > 800
    explained = names["plain"] | names["swapped"] | names["nickname_used"] | names["typo"]
    assert explained.mean() > 0.99  # every shown name is the true one, a nickname, swapped or one edit away
    assert 0.4 * CONFIG.name_typo < names["typo"].mean() < 1.8 * CONFIG.name_typo
    assert 0.1 * CONFIG.name_swap < names["swapped"].mean() < 4 * CONFIG.name_swap
    can_nick = names["nickname"].notna()
    assert 0.4 * CONFIG.nickname_use < names.loc[can_nick, "nickname_used"].mean() < 2 * CONFIG.nickname_use
    loyalty = names[names["source"] == "loyalty_members"]
    assert loyalty["first"].map(str.isascii).all()  # the loyalty system is ASCII-only
    assert 0.15 < loyalty["first"].str.isupper().mean() < 0.6
    assert not names["first"].map(str.isascii).all()  # other systems keep accents (Zoë, Seán)


def test_contact_fields_vary_in_format(out: Path, sources: dict[str, dict], persons: pd.DataFrame) -> None:
    web = read_export(out, sources["webshop_orders"])
    crm = read_export(out, sources["crm_contacts"])
    phones = pd.concat([web["Phone"], crm["Mobile"]])
    phones = phones[phones.ne("")]
    shapes = phones.str.replace(r"\d", "9", regex=True).value_counts()
    assert len(shapes) >= 8  # 07700 900123, +44 7700 900123, 0044 ..., (0)7700-900123, landlines ...
    emails = pd.concat([web["Email"], crm["Email"]])
    emails = emails[emails.ne("")]
    variant = emails != emails.str.strip().str.lower()
    expected = CONFIG.email_mixed_case + CONFIG.email_upper + CONFIG.email_whitespace
    assert 0.3 * expected < variant.mean() < 2.5 * expected
    clean = set(crm["Email"].str.strip().str.lower())
    assert clean & set(persons["other_email"].dropna())  # someone uses another email in the CRM
    moved = persons[persons["old_street"].notna()]
    assert set(crm["AddressLine1"]) & set(moved["old_street"])  # the CRM missed a move


def test_account_holders_also_check_out_as_guests(truth: pd.DataFrame, persons: pd.DataFrame) -> None:
    web = truth[truth["source"].str.startswith("webshop_orders")]
    guests = set(web.loc[web["record_id"].str.startswith("order:"), "person_id"])
    accounts = set(web.loc[~web["record_id"].str.startswith("order:"), "person_id"])
    assert guests & accounts


def test_typos_are_single_edits() -> None:
    rng = np.random.default_rng(0)
    words = np.array(["Elizabeth", "Smith", "O'Brien", "Zoë", "Lee"] * 200, dtype=object)
    edited = noise.typos(rng, words)
    assert all(_one_edit(a, b) for a, b in zip(words, edited, strict=True))


def test_phone_formats_are_valid_uk_numbers() -> None:
    rng = np.random.default_rng(1)
    e164 = np.array(["447700900123", "441134960123", "442079460123", "441273234567"] * 250, dtype=object)
    dial = np.array([0, 3, 2, 4] * 250)
    shown = noise.phones(rng, e164, dial, dial == 0)
    assert len(set(shown)) > 10
    for text, number in zip(shown, e164, strict=True):
        parsed = phonenumbers.parse(text, "GB")
        assert phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) == "+" + number


def test_emails_vary_only_in_case_and_spaces() -> None:
    rng = np.random.default_rng(2)
    emails = np.array(["sarah.jones84@gmail.com"] * 5000, dtype=object)
    shown = noise.emails(rng, emails, CONFIG)
    assert {e.strip().lower() for e in shown} == {"sarah.jones84@gmail.com"}
    assert 0.05 < np.mean(shown != emails) < 0.12


def test_birth_dates_swap_day_and_month_now_and_then() -> None:
    rng = np.random.default_rng(3)
    days = np.arange(0, 20_000, 2)
    shown = noise.birth_dates(rng, days, 0.05).astype("datetime64[D]").astype(np.int64)
    swapped = shown != days
    assert 0.005 < swapped.mean() < 0.05
    a = pd.to_datetime(days[swapped], unit="D")
    b = pd.to_datetime(shown[swapped], unit="D")
    assert ((a.day == b.month) & (a.month == b.day) & (a.year == b.year)).all()


def test_stats_report_linkability(sim: tuple[Path, dict]) -> None:
    linkage = sim[1]["linkage"]
    assert linkage["unlinkable_records"] == 0
    assert 0 < linkage["hard_records"] < 0.1 * linkage["records"]
    assert linkage["people_split_until_holdback"] > 0


def test_nickname_table_is_package_data() -> None:
    from simulator.people import tables

    assert tables().nicknames["Robert"] == ("Bob", "Rob")
    assert re.fullmatch(r"[A-Z][a-z]+", tables().nicknames["Elizabeth"][0])
