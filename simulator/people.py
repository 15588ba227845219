"""The people: households, true names, birth dates, addresses, emails and phones."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np
import pandas as pd
from unidecode import unidecode

from simulator.config import DAY, Clock, SimConfig

HOUSEHOLD_SIZES = np.array([1, 2, 3, 4])
HOUSEHOLD_SIZE_P = np.array([0.42, 0.36, 0.14, 0.08])
DOMAINS = np.array(
    ["gmail.com", "hotmail.co.uk", "outlook.com", "yahoo.co.uk", "icloud.com", "btinternet.com", "hotmail.com",
     "live.co.uk", "sky.com", "aol.com", "virginmedia.com", "yahoo.com", "me.com"],
    dtype=object,
)  # fmt: skip
DOMAIN_P = np.array([32, 14, 9, 8, 8, 7, 5, 4, 4, 2, 3, 2, 2], dtype=float) / 100
POSTCODE_UNIT_LETTERS = np.array(list("ABDEFGHJLNPQRSTUWXYZ"), dtype=object)
# Where the one "other" email of a person is used: the CRM, the loyalty program or the web shop account.
ALT_CRM, ALT_LOYALTY, ALT_WEBSHOP = 1, 2, 3


@dataclass(frozen=True)
class Tables:
    """The package's name, street and town tables."""

    first: np.ndarray
    first_ascii: np.ndarray
    first_female: np.ndarray  # indices of female names, in popularity order
    first_male: np.ndarray
    nicknames: dict[str, tuple[str, ...]]
    last: np.ndarray
    last_ascii: np.ndarray
    streets: np.ndarray
    towns: pd.DataFrame  # town, area, dial, prefix, weight


def _read(name: str) -> list[dict[str, str]]:
    text = resources.files("simulator").joinpath("data").joinpath(name).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


def _ascii(names: list[str]) -> np.ndarray:
    return np.array(
        [unidecode(n).lower().replace("'", "").replace(" ", "").replace("-", "") for n in names], dtype=object
    )


@cache
def tables() -> Tables:
    """The package data, read once per process."""
    firsts = _read("first_names.csv")
    first = [r["name"] for r in firsts]
    genders = np.array([r["gender"] for r in firsts])
    nicknames: dict[str, list[str]] = {}
    for r in _read("nicknames.csv"):
        nicknames.setdefault(r["name"], []).append(r["nickname"])
    last = [r["name"] for r in _read("last_names.csv")]
    towns = pd.DataFrame(_read("towns.csv"))
    towns["weight"] = towns["weight"].astype(float)
    return Tables(
        first=np.array(first, dtype=object),
        first_ascii=_ascii(first),
        first_female=np.flatnonzero(genders == "F"),
        first_male=np.flatnonzero(genders == "M"),
        nicknames={k: tuple(v) for k, v in nicknames.items()},
        last=np.array(last, dtype=object),
        last_ascii=_ascii(last),
        streets=np.array([r["name"] for r in _read("streets.csv")], dtype=object),
        towns=towns,
    )


def zipf(rng: np.random.Generator, n_options: int, size: int, exponent: float = 0.9) -> np.ndarray:
    """Indices 0..n_options-1 drawn with Zipf-like weights (index 0 most common)."""
    w = 1.0 / (np.arange(n_options) + 8.0) ** exponent
    return rng.choice(n_options, size=size, p=w / w.sum())


def permute(index: np.ndarray, space: int, salt: int) -> np.ndarray:
    """A scrambled but one-to-one map of 0..space-1 onto itself: unique ids that do not look sequential."""
    a = 2_654_435_761 % space
    while np.gcd(a, space) != 1:
        a += 1
    return (a * (np.asarray(index, dtype=np.int64) % space) + salt) % space


class EmailBook:
    """Hands out email addresses that no other person in the whole simulation has."""

    def __init__(self) -> None:
        self._hashes = np.empty(0, dtype=np.uint64)

    def unique(self, rng: np.random.Generator, candidates: np.ndarray) -> np.ndarray:
        """The candidates, with a number added to the local part of any already taken."""
        emails = candidates.astype(object).copy()
        for _ in range(50):
            hashes = pd.util.hash_array(emails)
            clash = np.isin(hashes, self._hashes) | pd.Series(hashes).duplicated().to_numpy()
            if not clash.any():
                self._hashes = np.union1d(self._hashes, hashes)
                return emails
            idx = np.flatnonzero(clash)
            local = pd.Series(emails[idx]).str.split("@", n=1, expand=True)
            digits = rng.integers(2, 999, len(idx)).astype(str)
            emails[idx] = (local[0] + digits + "@" + local[1]).to_numpy()
        raise RuntimeError("could not make the email addresses unique")


def make_people(
    rng: np.random.Generator,
    n: int,
    first_person: int,
    first_household: int,
    clock: Clock,
    config: SimConfig,
    emails: EmailBook,
) -> pd.DataFrame:
    """`n` people in households, with their true attributes; indices are global across chunks."""
    t = tables()
    sizes = rng.choice(HOUSEHOLD_SIZES, size=n, p=HOUSEHOLD_SIZE_P)
    sizes = sizes[: np.searchsorted(np.cumsum(sizes), n) + 1]
    sizes[-1] -= sizes.sum() - n
    n_households = len(sizes)
    household = np.repeat(np.arange(n_households), sizes)
    member = np.arange(n) - np.repeat(np.cumsum(sizes) - sizes, sizes)

    head_female = rng.random(n_households) < 0.5
    female = np.where(member == 0, head_female[household], rng.random(n) < 0.5)
    female = np.where(member == 1, ~head_female[household] ^ (rng.random(n) < 0.1), female)
    first = np.where(
        female,
        t.first_female[zipf(rng, len(t.first_female), n)],
        t.first_male[zipf(rng, len(t.first_male), n)],
    )
    household_last = zipf(rng, len(t.last), n_households, exponent=0.8)
    own_last = zipf(rng, len(t.last), n, exponent=0.8)
    keeps = np.where(member == 1, rng.random(n) < 0.85, rng.random(n) < 0.95)
    last = np.where((member == 0) | keeps, household_last[household], own_last)

    head_age = 19 + 66 * rng.beta(2.0, 2.4, n_households)
    age = np.select(
        [member == 0, member == 1],
        [head_age[household], np.maximum(19, head_age[household] + rng.normal(0, 4, n))],
        np.maximum(18, head_age[household] - rng.uniform(22, 36, n)),
    )
    birth_day = ((clock.end - age * 365.25 * DAY) // DAY).astype(np.int64)

    people = pd.DataFrame(
        {
            "person": first_person + np.arange(n),
            "household": first_household + household,
            "member": member,
            "gender": np.where(female, "F", "M"),
            "first": t.first[first],
            "last": t.last[last],
            "birth_day": birth_day,
        }
    )
    people["person_id"] = "P" + pd.Series(people["person"] + 1).astype(str).str.zfill(7)
    people["nickname"] = _nicknames(rng, people["first"].to_numpy(), t.nicknames)
    _add_addresses(rng, people, household, n_households, clock, config)
    _add_emails(rng, people, household, first, last, config, emails)
    _add_phones(rng, people, household, n_households, config)
    return people


def _nicknames(rng: np.random.Generator, first: np.ndarray, table: dict[str, tuple[str, ...]]) -> np.ndarray:
    out = np.full(len(first), None, dtype=object)
    for name, options in table.items():
        idx = np.flatnonzero(first == name)
        if len(idx):
            out[idx] = np.array(options, dtype=object)[rng.integers(0, len(options), len(idx))]
    return out


def _address(rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Street lines, postcodes, towns and town indices of `count` new addresses."""
    t = tables()
    w = t.towns["weight"].to_numpy()
    town = rng.choice(len(w), size=count, p=w / w.sum())
    area = t.towns["area"].to_numpy(dtype=object)[town]
    district = rng.integers(1, 20, count).astype(str)
    sector = rng.integers(0, 10, count).astype(str)
    units = POSTCODE_UNIT_LETTERS[rng.integers(0, 20, (count, 2))]
    postcode = area + district + " " + sector + units[:, 0] + units[:, 1]
    # A postcode unit is usually one street, so neighbours share the street name.
    street_idx = pd.util.hash_array(postcode.astype(object)) % np.uint64(len(t.streets))
    number = (1 + rng.geometric(1 / 40, count)).astype(str)
    street = number + " " + t.streets[street_idx.astype(np.int64)]
    flat = rng.random(count) < 0.08
    street = np.where(flat, "Flat " + rng.integers(1, 12, count).astype(str) + ", " + street, street)
    return street.astype(object), postcode.astype(object), t.towns["town"].to_numpy(dtype=object)[town], town


def _add_addresses(
    rng: np.random.Generator, people: pd.DataFrame, household: np.ndarray, n_households: int, clock: Clock,
    config: SimConfig,
) -> None:  # fmt: skip
    street, postcode, city, town = _address(rng, n_households)
    moved = rng.random(n_households) < config.moved_share
    old_street, old_postcode, old_city, _ = _address(rng, n_households)
    moved_at = rng.integers(clock.start + 60 * DAY, clock.end - 30 * DAY, n_households)
    people["street"], people["postcode"], people["city"] = (
        street[household],
        postcode[household],
        city[household],
    )
    people["town"] = town[household]
    m = moved[household]
    people["old_street"] = np.where(m, old_street[household], None)
    people["old_postcode"] = np.where(m, old_postcode[household], None)
    people["old_city"] = np.where(m, old_city[household], None)
    people["moved_at"] = np.where(m, moved_at[household], -1)


def _local_parts(
    rng: np.random.Generator, first: np.ndarray, last: np.ndarray, birth_day: np.ndarray
) -> np.ndarray:
    t = tables()
    f, ln = t.first_ascii[first], t.last_ascii[last]
    yy = pd.Series(1970 + birth_day // 365).astype(str).str[-2:].to_numpy(dtype=object)
    pattern = rng.choice(6, size=len(first), p=[0.30, 0.15, 0.15, 0.20, 0.08, 0.12])
    initial = np.array([s[:1] for s in f], dtype=object)
    return np.select(
        [pattern == 0, pattern == 1, pattern == 2, pattern == 3, pattern == 4],
        [f + "." + ln, f + ln, initial + ln, f + "." + ln + yy, f + "_" + ln],
        ln + "." + f,
    )


def _add_emails(
    rng: np.random.Generator, people: pd.DataFrame, household: np.ndarray, first: np.ndarray, last: np.ndarray,
    config: SimConfig, emails: EmailBook,
) -> None:  # fmt: skip
    n = len(people)
    birth = people["birth_day"].to_numpy()
    domain = DOMAINS[rng.choice(len(DOMAINS), size=n, p=DOMAIN_P)]
    main = emails.unique(rng, _local_parts(rng, first, last, birth) + "@" + domain)
    alt_domain = DOMAINS[rng.choice(len(DOMAINS), size=n, p=DOMAIN_P)]
    alt = emails.unique(rng, _local_parts(rng, first, last, birth) + "@" + alt_domain)
    has_alt = rng.random(n) < config.alt_email_share
    # Two people of one household may use one family address everywhere: same email, different people.
    sizes = np.bincount(household)
    shared_household = (sizes >= 2) & (rng.random(len(sizes)) < config.shared_email_households)
    member = people["member"].to_numpy()
    shared = shared_household[household] & (member <= 1)
    t = tables()
    heads = np.flatnonzero(shared & (member == 0))
    family_local = np.where(
        rng.random(len(heads)) < 0.5,
        "the" + t.last_ascii[last[heads]] + "s",
        t.last_ascii[last[heads]] + "family",
    )
    family = emails.unique(
        rng, family_local + "@" + DOMAINS[rng.choice(len(DOMAINS), len(heads), p=DOMAIN_P)]
    )
    family_of_household = np.full(len(sizes), None, dtype=object)
    family_of_household[household[heads]] = family
    main = np.where(shared, family_of_household[household], main)
    people["email"] = main
    people["shared_email"] = shared
    people["alt_email"] = np.where(has_alt & ~shared, alt, None)
    people["alt_system"] = np.where(has_alt & ~shared, rng.integers(ALT_CRM, ALT_WEBSHOP + 1, n), 0)


def _add_phones(
    rng: np.random.Generator,
    people: pd.DataFrame,
    household: np.ndarray,
    n_households: int,
    config: SimConfig,
) -> None:
    t = tables()
    n = len(people)
    # Mobiles: 07[45789] + 8 digits, one number per person across the whole simulation.
    v = permute(people["person"].to_numpy(), 500_000_000, 7_919)
    prefix = np.array(["74", "75", "77", "78", "79"], dtype=object)[v // 100_000_000]
    mobile = "44" + prefix + pd.Series(v % 100_000_000).astype(str).str.zfill(8).to_numpy(dtype=object)
    people["mobile"] = np.where(rng.random(n) < 0.92, mobile, None)
    # Landlines: the household's town code; shared by everyone who lives there.
    town = people["town"].to_numpy()
    dial = t.towns["dial"].to_numpy(dtype=object)[town]
    local_prefix = t.towns["prefix"].to_numpy(dtype=object)[town]
    width = 10 - pd.Series(dial).str.len().to_numpy() - pd.Series(local_prefix).str.len().to_numpy()
    # Six free digits from a one-to-one scramble of the household number; where only five are free
    # (five-digit area codes), the sixth becomes the first local digit (2-7, all valid there).
    v = permute(people["household"].to_numpy(), 600_000, 104_729)
    six = pd.Series(v).astype(str).str.zfill(6).to_numpy(dtype=object)
    five = pd.Series(v % 100_000).astype(str).str.zfill(5).to_numpy(dtype=object)
    lead = (2 + v // 100_000).astype(str).astype(object)
    local = np.select([width == 5, width == 6], [lead + five, local_prefix + six], local_prefix + "9" + six)
    landline = "44" + dial + local
    has_landline = (rng.random(n_households) < config.landline_households)[household]
    people["landline"] = np.where(has_landline, landline, None)
    people["dial_len"] = pd.Series(dial).str.len().to_numpy()
