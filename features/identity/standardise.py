"""Standardise identity records: pure functions from raw person attributes to comparable values.

Every function works on the distinct values of a column and maps them back, so the slow parts
(phonenumbers, unidecode) run once per distinct value, not once per record.
"""

from __future__ import annotations

import csv
import multiprocessing
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from functools import cache
from importlib import resources

import duckdb
import numpy as np
import pandas as pd
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc
from rapidfuzz.distance import OSA
from unidecode import unidecode

from tessera.core.canonical import PERSON_COLUMNS

# Standardised text and dates are Arrow-backed: grouping, counting and writing them is several times
# quicker than with Python objects, and DuckDB and Splink read them without a copy.
TEXT = pd.StringDtype("pyarrow")
DATE = pd.ArrowDtype(pa.date32())

# Deliberately simple: one @, a dotted domain with a 2+ letter top level, no spaces. A regex rather than
# email-validator: on 100k distinct emails validate_email(check_deliverability=False) took 10.8 s against
# 0.42 s for this pattern over the column (2026-12-03, 2 cores, load 12), with the same 2,000 rejected.
_EMAIL = re.compile(r"^[a-z0-9!#$%&'*+/=?^_`{|}~.-]+@[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}$")
_NOT_NAME = re.compile(r"[^a-z\s]")
_SPACES = re.compile(r"\s+")
_NOT_PHONE = re.compile(r"[^\d+]")
_TITLES = frozenset({"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "dame", "rev", "lord", "lady"})
_SUFFIXES = frozenset({"jr", "snr", "sr", "jnr", "ii", "iii", "iv", "phd", "esq"})
_STREET_WORDS = {
    "street": "st",
    "road": "rd",
    "avenue": "ave",
    "av": "ave",
    "lane": "ln",
    "drive": "dr",
    "close": "cl",
    "court": "ct",
    "crescent": "cres",
    "place": "pl",
    "square": "sq",
    "terrace": "ter",
    "gardens": "gdns",
    "grove": "gr",
    "park": "pk",
    "mews": "mws",
    "hill": "hl",
    "parade": "pde",
    "apartment": "apt",
    "flat": "flat",
    "north": "n",
    "south": "s",
    "east": "e",
    "west": "w",
}
# The house number: the first number that is not a flat's.
_HOUSE_NUMBER = re.compile(r"(?<!flat )(?<!apt )(?<!unit )\b(\d+[a-z]?)\b")
# A UK postcode: outward code (area + district) then a 3-character inward code.
_UK_POSTCODE = re.compile(r"^([A-Z]{1,2}\d[A-Z\d]?)(\d[A-Z]{2})$")
_COUNTRY_NAMES = {
    "uk": "GB",
    "united kingdom": "GB",
    "great britain": "GB",
    "britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northern ireland": "GB",
    "ireland": "IE",
    "republic of ireland": "IE",
    "france": "FR",
    "germany": "DE",
    "spain": "ES",
    "italy": "IT",
    "netherlands": "NL",
    "belgium": "BE",
    "united states": "US",
    "usa": "US",
    "canada": "CA",
    "australia": "AU",
}


def standardise_emails(emails: pd.Series) -> tuple[pd.Series, int]:
    """Emails trimmed and lower-cased; invalid ones become null. Returns them and how many were invalid."""
    cleaned = emails.astype(TEXT).str.strip().str.lower().str.removeprefix("mailto:").str.rstrip(".")
    cleaned = cleaned.mask(cleaned == "")
    valid = cleaned.str.fullmatch(_EMAIL).fillna(False).astype(bool)
    invalid = int((cleaned.notna() & ~valid).sum())
    return cleaned.where(valid), invalid


def phone_region(countries: pd.Series, default_region: str) -> pd.Series:
    """The phone region (ISO 3166 alpha-2) for each record's country, or the default when unknown."""
    regions = phonenumbers.SUPPORTED_REGIONS

    def one(country: str) -> str:
        text = country.strip()
        code = "GB" if text.upper() == "UK" else text.upper()
        if len(code) == 2 and code in regions:
            return code
        return _COUNTRY_NAMES.get(text.lower(), default_region)

    return _map_distinct(countries.astype(TEXT), one).fillna(default_region)


def standardise_phones(phones: pd.Series, regions: pd.Series) -> tuple[pd.Series, int]:
    """Phones in E.164 (`+447700900123`), read in each record's region; unreadable ones become null."""
    written = phones.astype(TEXT).str.strip()
    written = written.mask(written == "")
    phone_codes, phone_values = pd.factorize(written)  # a missing phone is -1
    region_codes, region_values = pd.factorize(regions.astype(TEXT))
    region_list = [None, *region_values]  # code 0: no region
    present = phone_codes >= 0
    # One look-up per distinct (phone as written, region); each is reduced to a key first, so that the
    # ways of writing one number are parsed once.
    pair = phone_codes[present].astype(np.int64) * len(region_list) + region_codes[present] + 1
    distinct, position = np.unique(pair, return_inverse=True)
    phone_list = phone_values.tolist()  # plain str: indexing an Arrow-backed index costs per element
    keys = [
        _phone_key(phone_list[code // len(region_list)], region_list[code % len(region_list)])
        for code in distinct.tolist()
    ]
    parsed = {key: _e164(*key) for key in set(keys)}
    # Taken back by position in Arrow (the last entry: no phone), not through an object array per record.
    per_pair = pa.array([*(parsed[key] for key in keys), None], type=pa.string())
    index = np.full(len(written), len(keys), dtype=np.int64)
    index[present] = position
    out = pd.Series(pd.arrays.ArrowStringArray(per_pair.take(pa.array(index))), index=phones.index)
    return out, int((present & out.isna().to_numpy()).sum())


@cache
def _trunk_prefix(region: str) -> tuple[int, str | None]:
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    return (metadata.country_code, metadata.national_prefix) if metadata else (0, None)


def _phone_key(raw: str, region: str) -> tuple[str, str | None]:
    """The number as `+<country><digits>` where that is certain (00 or a trunk 0), else digits and region."""
    digits = _NOT_PHONE.sub("", raw.replace("(0)", ""))
    if digits.startswith("00"):
        return "+" + digits[2:], None
    if digits.startswith("+"):
        return digits, None
    country, trunk = _trunk_prefix(region)
    if trunk == "0" and digits.startswith("0"):
        return f"+{country}{digits[1:]}", None
    return raw, region


@cache
def _plus_rules(country: int) -> tuple[re.Pattern[str] | None, tuple[int, ...], frozenset[int]] | None:
    """What `phonenumbers` checks of a `+<country><digits>` number: its national prefix and possible lengths.

    None for a country calling code it does not know.
    """
    region = phonenumbers.region_code_for_country_code(country)
    metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(country, region)
    if metadata is None:
        return None
    prefix = metadata.national_prefix_for_parsing
    general = metadata.general_desc
    return (
        re.compile(prefix) if prefix else None,
        tuple(general.possible_length),
        frozenset(general.possible_length_local_only),
    )


def _plus_e164(number: str) -> str | None | bool:
    """`+<country><digits>` checked without `phonenumbers.parse`: the E.164 number, None when no length is
    possible, or False when only the full parse can tell (a national prefix, an unknown or odd form).

    The same answer as `_e164` wherever it gives one (tests/identity compare them): the country code is the
    shortest known prefix of 1-3 digits, the digits after it are the national number unless they start
    with the national prefix (which `phonenumbers` may strip), and the number is possible when its length
    is one the country's numbers have (or have locally).
    """
    digits = number[1:]
    if (
        number[:1] != "+"
        or not (digits.isascii() and digits.isdigit())
        or len(digits) < 4
        or digits[0] == "0"
    ):
        return False
    width = next((w for w in (1, 2, 3) if int(digits[:w]) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE), 0)
    rules = _plus_rules(int(digits[:width])) if width else None
    if rules is None:
        return False
    prefix, lengths, local = rules
    national = digits[width:]
    if len(national) < 2 or len(national) > 17 or (prefix is not None and prefix.match(national)):
        return False
    if not lengths:
        return False
    if lengths[0] == -1:
        return None
    return "+" + digits if len(national) in lengths or len(national) in local else None


def _e164(raw: str, region: str | None) -> str | None:
    """The number in E.164, or None when it cannot be read or has no possible length.

    Numbers already written `+<country><digits>` (most, once `_phone_key` has read their trunk 0 or
    00) are checked by `_plus_e164`, about twenty times quicker than a parse; the rest are parsed.
    """
    quick = _plus_e164(raw) if region is None else False
    return _parsed_e164(raw, region) if quick is False else quick


def _parsed_e164(raw: str, region: str | None) -> str | None:
    try:
        number = phonenumbers.parse(raw, region or None)
    except phonenumbers.NumberParseException:
        return None
    # "Possible" (right length for the region) rather than "valid": number plans change faster than
    # the library's metadata, and a retailer's customers keep their numbers regardless.
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def clean_name(value: str | None) -> str | None:
    """A name transliterated to ASCII, lower-cased, apostrophes dropped, other punctuation as spaces."""
    if value is None:
        return None
    text = unidecode(value).lower().replace("'", "").replace("`", "")
    text = _SPACES.sub(" ", _NOT_NAME.sub(" ", text)).strip()
    words = [w for w in text.split(" ") if w and w not in _TITLES and w not in _SUFFIXES]
    return " ".join(words) or None


def split_full_name(full_name: str | None) -> tuple[str | None, str | None]:
    """First and last name of a whole name: `Last, First` or `First [Middle] Last`."""
    if full_name is None:
        return None, None
    if "," in full_name:
        last, _, first = full_name.partition(",")
        return clean_name(first.strip().split(" ")[0] if first.strip() else None), clean_name(last)
    words = (clean_name(full_name) or "").split(" ")
    if not words[0]:
        return None, None
    if len(words) == 1:
        return None, words[0]
    return words[0], words[-1]


def standardise_names(first: pd.Series, last: pd.Series, full: pd.Series) -> pd.DataFrame:
    """Clean first and last names; a whole name fills whichever of them is missing."""
    out = pd.DataFrame(
        {
            "first_name": _map_distinct(first.astype(TEXT), clean_name),
            "last_name": _map_distinct(last.astype(TEXT), clean_name),
        },
        index=first.index,
    )
    need = full.notna() & (out["first_name"].isna() | out["last_name"].isna())
    if need.any():
        split = full[need].astype(TEXT).map(split_full_name, na_action="ignore")
        for position, column in enumerate(out.columns):
            part = pd.Series(split.str[position], index=split.index, dtype=TEXT)
            out[column] = out[column].fillna(part.reindex(out.index))
    return out.astype(TEXT)


@cache
def nickname_table() -> dict[str, tuple[str, ...]]:
    """The curated nickname table shipped with the package: nickname -> formal names it can stand for."""
    text = resources.files("features.identity").joinpath("nicknames.csv").read_text(encoding="utf-8")
    table: dict[str, list[str]] = {}
    for row in csv.DictReader(text.splitlines()):
        table.setdefault(row["nickname"].strip(), []).append(row["canonical"].strip())
    return {name: tuple(sorted(formal)) for name, formal in table.items()}


@cache
def known_given_names() -> frozenset[str]:
    """Names known to be names in their own right: the shipped list plus every name in the nickname table."""
    text = resources.files("features.identity").joinpath("given_names.txt").read_text(encoding="utf-8")
    listed = {line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")}
    table = nickname_table()
    return frozenset(listed | set(table) | {f for formal in table.values() for f in formal})


@cache
def _nickname_neighbours() -> dict[str, set[str]]:
    """Every nickname with one letter deleted -> the nicknames it came from (to find typos cheaply)."""
    index: dict[str, set[str]] = {}
    for name in nickname_table():
        for variant in {name, *(name[:i] + name[i + 1 :] for i in range(len(name)))}:
            index.setdefault(variant, set()).add(name)
    return index


@cache
def formal_names(name: str) -> tuple[str, ...]:
    """The formal names a first name can stand for: `bob` -> robert; `doave` (a typo of dave) -> david, doave."""
    head = name.split(" ")[0]
    table = nickname_table()
    if head in table:
        return table[head]
    if head in known_given_names() or len(head) < 2:
        return (head,)
    # An unknown name one typo away from a nickname also stands for that nickname's formal names.
    index = _nickname_neighbours()
    candidates = set().union(
        *(index.get(v, set()) for v in {head, *(head[:i] + head[i + 1 :] for i in range(len(head)))})
    )
    formal = {f for c in candidates if OSA.distance(head, c) <= 1 for f in table[c]}
    return tuple(sorted(formal | {head}))


def canonical_first_names(first_names: pd.Series) -> pd.Series:
    """The formal names each first name can stand for (`bill` -> `william`), sorted, joined by `|`.

    A name that is not a nickname stands for itself; an ambiguous one (`alex`) for several.
    """
    return _map_distinct(first_names.astype(TEXT), lambda name: "|".join(formal_names(name)))


def null_placeholders(
    records: pd.DataFrame, columns: tuple[str, ...], min_names: int = 20, factor: float = 5.0
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Null out values that many different people share: placeholders, not identifiers.

    A value is a placeholder when it appears under more different names than both `min_names` and
    `factor` times the column's median (`none@none.com`, a shop's landline, a form's default birth
    date). Left in, it would link strangers and blow up the blocks that join on it.
    """
    out = records.copy()
    counts: dict[str, int] = {}
    # Names per value counted by DuckDB: pandas' groupby-nunique over 270k records cost half a second.
    con = duckdb.connect()
    con.register(
        "people", pa.Table.from_pandas(out[["first_name", "last_name", *columns]], preserve_index=False)
    )
    for column in columns:
        per_value = con.sql(
            f"""SELECT {column} AS value, count(DISTINCT coalesce(first_name, '') || ' ' || coalesce(last_name, ''))
                AS names FROM people WHERE {column} IS NOT NULL GROUP BY ALL"""
        ).to_arrow_table()
        names = per_value["names"].to_numpy()
        limit = max(min_names, factor * float(np.median(names))) if len(names) else min_names
        shared = per_value["value"].filter(pa.array(names > limit))
        counts[column] = len(shared)
        if len(shared):
            values = pa.Array.from_pandas(out[column])
            placeholder = pc.is_in(values, value_set=shared.combine_chunks()).fill_null(False)
            out[column] = out[column].where(~placeholder.to_numpy(zero_copy_only=False), None)
    con.close()
    return out, counts


def clean_street(street: str) -> str | None:
    """A street line lower-cased, punctuation as spaces, common words abbreviated (road -> rd)."""
    text = _SPACES.sub(" ", re.sub(r"[^a-z0-9\s]", " ", unidecode(street).lower())).strip()
    words = [_STREET_WORDS.get(w, w) for w in text.split(" ") if w]
    return " ".join(words) or None


def standardise_streets(streets: pd.Series, house_numbers: pd.Series | None = None) -> pd.DataFrame:
    """Standardised street lines and their house numbers.

    A house number kept apart (`12`, `12 A`) goes before its street unless the street already starts
    with it, so `12` + `High Street` and `12 High Street` standardise alike, however a source splits them.
    """
    cleaned = _map_distinct(streets.astype(TEXT), clean_street)
    if house_numbers is not None:
        apart = _map_distinct(house_numbers.astype(TEXT), lambda v: clean_street(v.replace(" ", "")))
        first_word = cleaned.str.replace(r" .*", "", regex=True)  # in Arrow; a split goes through Python
        missing = apart.notna() & (first_word != apart).fillna(True)
        cleaned = cleaned.where(~missing, (apart + " " + cleaned.fillna("")).str.strip())
    number = cleaned.str.extract(_HOUSE_NUMBER, expand=False).astype(TEXT)
    return pd.DataFrame({"street": cleaned, "house_number": number}, index=streets.index)


def standardise_postcodes(postcodes: pd.Series) -> pd.DataFrame:
    """Postcodes upper-case without spaces, and the UK outward code (district) where it is one."""
    cleaned = _map_distinct(postcodes.astype(TEXT), lambda p: re.sub(r"[^A-Z0-9]", "", p.upper()) or None)
    district = _map_distinct(cleaned, lambda p: m.group(1) if (m := _UK_POSTCODE.match(p)) else None)
    return pd.DataFrame({"postcode": cleaned, "postcode_district": district}, index=postcodes.index)


def standardise_cities(cities: pd.Series) -> pd.Series:
    """City (or region) names transliterated, lower-cased, punctuation removed."""
    return _map_distinct(cities.astype(TEXT), clean_name)


def standardise_birth_dates(values: pd.Series) -> pd.Series:
    """Birth dates as dates; anything unreadable, in the future of 1900-2100 or empty becomes null."""
    if values.dtype == DATE:  # already dates (identity records read them so): only the range to check
        days = pa.array(values)
        year = pc.year(days)
        keep = pc.and_(pc.greater_equal(year, 1900), pc.less_equal(year, 2100))
        return pd.Series(pd.arrays.ArrowExtensionArray(pc.if_else(keep, days, None)), index=values.index)
    parsed = pd.to_datetime(values, errors="coerce")
    parsed = parsed.where((parsed.dt.year >= 1900) & (parsed.dt.year <= 2100))
    return parsed.astype(DATE)


def standardise_contact_points(
    records: pd.DataFrame, default_region: str
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Emails, phones (E.164, read in each record's country) and countries (ISO 3166 alpha-2) standardised.

    Returns a copy of `records` with those three columns replaced, and the invalid-value counts.
    """
    out = records.copy()
    out["email"], bad_emails = standardise_emails(records["email"])
    regions = phone_region(records["country"], default_region)
    out["phone"], bad_phones = standardise_phones(records["phone"], regions)
    out["country"] = regions.where(records["country"].notna())
    return out, {"invalid_emails": bad_emails, "invalid_phones": bad_phones}


# The columns `standardise_contact_points` replaces, and from how many records a forked process does them.
CONTACT_POINTS = ("email", "phone", "country")
CONTACT_POINTS_BESIDE_FROM = 200_000


def standardise_records(
    records: pd.DataFrame, default_region: str, beside_from: int = CONTACT_POINTS_BESIDE_FROM
) -> tuple[pd.DataFrame, dict[str, int]]:
    """All person attributes of identity records standardised; returns the frame and invalid-value counts.

    An attribute the frame lacks (a source without middle names, say) is read as empty. From `beside_from`
    records on, emails, phones and countries are standardised in a forked process while this one does the
    names and addresses: both halves are Python work per distinct value, which threads would take in turns.
    """
    missing = [name for name in RAW_ATTRIBUTES if name not in records.columns]
    records = records.assign(**{name: pd.Series(None, index=records.index, dtype=object) for name in missing})
    contact_points = records[list(CONTACT_POINTS)]
    with _beside(len(records) >= beside_from) as pool:
        contact = pool.submit(_contact_points, contact_points, default_region) if pool else None
        out = records.drop(columns=["full_name"])
        names = standardise_names(records["first_name"], records["last_name"], records["full_name"])
        out["first_name"], out["last_name"] = names["first_name"], names["last_name"]
        out["first_name_formal"] = canonical_first_names(out["first_name"])
        out["middle_name"] = _map_distinct(records["middle_name"].astype(TEXT), clean_name)
        streets = standardise_streets(records["street"], records["house_number"])
        out["street"], out["house_number"] = streets["street"], streets["house_number"]
        postcodes = standardise_postcodes(records["postcode"])
        out["postcode"], out["postcode_district"] = postcodes["postcode"], postcodes["postcode_district"]
        out["city"] = standardise_cities(records["city"])
        out["region"] = standardise_cities(records["region"])
        national_id = records["national_id"].astype(TEXT).str.strip()
        out["national_id"] = national_id.mask(national_id == "")
        out["birth_date"] = standardise_birth_dates(records["birth_date"])
        loyalty = records["loyalty_number"].astype(TEXT).str.strip().str.upper()
        out["loyalty_number"] = loyalty.mask(loyalty == "")
        standardised, invalid = (
            contact.result() if contact else _contact_points(contact_points, default_region)
        )
    for column in CONTACT_POINTS:
        out[column] = standardised[column].set_axis(out.index)
    return out, invalid


def _contact_points(records: pd.DataFrame, default_region: str) -> tuple[pd.DataFrame, dict[str, int]]:
    out, invalid = standardise_contact_points(records, default_region)
    return out.reset_index(drop=True), invalid  # (an index is sent back for nothing)


@contextmanager
def _beside(wanted: bool) -> Iterator[ProcessPoolExecutor | None]:
    """A one-process pool forked from this one, or None when not `wanted` or where processes cannot be forked."""
    if not wanted or "fork" not in multiprocessing.get_all_start_methods():
        yield None
        return
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("fork")) as pool:
        yield pool


# The raw person attributes `standardise_records` reads (identity records, see records.py).
RAW_ATTRIBUTES = (*(c.name for c in PERSON_COLUMNS), "loyalty_number")


def _map_distinct(values: pd.Series, func: Callable[[str], str | None]) -> pd.Series:
    """Apply `func` once per distinct non-null value; nulls stay null.

    The values are factorised and the results taken back by code in Arrow: a `Series.map` through a dict
    hashes every value again (a third of standardising 270k records went there).
    """
    codes, distinct = pd.factorize(values)  # a null is -1
    results = pa.array([*(func(v) for v in distinct.tolist()), None], type=pa.string())
    taken = results.take(pa.array(np.where(codes < 0, len(distinct), codes)))
    return pd.Series(pd.arrays.ArrowStringArray(taken), index=values.index, name=values.name)
