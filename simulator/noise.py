"""The ways people and systems write the same person differently: names, emails, phones, addresses, dates.

Every function takes the true values of a batch of records and returns how one system shows them. Only
the small share of values that gets an edit goes through Python; the rest is array work.
"""

from __future__ import annotations

import string

import numpy as np
import pandas as pd
from unidecode import unidecode

from simulator.config import SimConfig

LETTERS = np.array(list(string.ascii_lowercase))
STREET_ABBREVIATIONS = {" Road": " Rd", " Street": " St", " Avenue": " Ave", " Lane": " Ln", " Close": " Cl",
                        " Drive": " Dr", " Crescent": " Cres"}  # fmt: skip


def _upper(values: np.ndarray) -> np.ndarray:
    return pd.Series(values, dtype=object).str.upper().to_numpy()


def _lower(values: np.ndarray) -> np.ndarray:
    return pd.Series(values, dtype=object).str.lower().to_numpy()


def _typo(rng: np.random.Generator, word: str) -> str:
    """One random single-character edit: substitute, delete, insert or swap two neighbours."""
    if len(word) < 3:
        return word + word[-1:]
    for _ in range(20):  # an edit can leave the word as it was (swapping "ee"): draw again
        i = int(rng.integers(1, len(word) - 1))  # keep the first letter: people rarely get that wrong
        edit = int(rng.integers(4))
        c = str(LETTERS[rng.integers(26)])
        if edit == 0:
            typed = word[:i] + c + word[i + 1 :]
        elif edit == 1:
            typed = word[:i] + word[i + 1 :]
        elif edit == 2:
            typed = word[:i] + c + word[i:]
        else:
            typed = word[: i - 1] + word[i] + word[i - 1] + word[i + 1 :]
        if typed != word:
            return typed
    return word[:1] + word[2:]


def typos(rng: np.random.Generator, values: np.ndarray) -> np.ndarray:
    """Each value with one single-character edit (values must be non-null)."""
    return np.array([_typo(rng, str(v)) for v in values], dtype=object)


def strip_accents(values: np.ndarray) -> np.ndarray:
    """Values without diacritics (Zoë -> Zoe), as an ASCII-only system stores them."""
    s = pd.Series(values, dtype=object)
    uniques = s.dropna().unique()
    mapping = {u: unidecode(u) for u in uniques}
    return s.map(mapping).to_numpy(dtype=object)


def names(
    rng: np.random.Generator,
    first: np.ndarray,
    last: np.ndarray,
    nickname: np.ndarray,
    config: SimConfig,
    *,
    accents_lost: float = 0.0,
    upper: float = 0.0,
    lower: float = 0.0,
    swap: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """How a system shows names: nicknames, typos, swapped order, lost accents, case. Returns first, last, noisy."""
    n = len(first)
    f, ln = first.astype(object).copy(), last.astype(object).copy()
    use_nick = (nickname != None) & (rng.random(n) < config.nickname_use)  # noqa: E711
    f[use_nick] = nickname[use_nick]
    typo = rng.random(n) < config.name_typo
    in_first = rng.random(n) < 0.6
    f[typo & in_first] = typos(rng, f[typo & in_first])
    ln[typo & ~in_first] = typos(rng, ln[typo & ~in_first])
    swapped = (rng.random(n) < config.name_swap) if swap else np.zeros(n, dtype=bool)
    f[swapped], ln[swapped] = ln[swapped], f[swapped].copy()
    lost = rng.random(n) < accents_lost
    f[lost], ln[lost] = strip_accents(f[lost]), strip_accents(ln[lost])
    up = rng.random(n) < upper
    f[up], ln[up] = _upper(f[up]), _upper(ln[up])
    lo = ~up & (rng.random(n) < lower)
    f[lo], ln[lo] = _lower(f[lo]), _lower(ln[lo])
    return f, ln, use_nick | typo | swapped


def emails(rng: np.random.Generator, values: np.ndarray, config: SimConfig) -> np.ndarray:
    """Emails as typed: mostly as is, some capitalised or in capitals, some with stray spaces."""
    n = len(values)
    out = values.astype(object).copy()
    present = out != None  # noqa: E711
    u = rng.random(n)
    cap = present & (u < config.email_mixed_case)
    out[cap] = pd.Series(out[cap], dtype=object).str.capitalize().to_numpy()
    up = present & (u >= config.email_mixed_case) & (u < config.email_mixed_case + config.email_upper)
    out[up] = _upper(out[up])
    space = present & (rng.random(n) < config.email_whitespace)
    out[space] = np.where(rng.random(int(space.sum())) < 0.5, " " + out[space], out[space] + " ")
    return out


MOBILE_FORMAT_P = np.array([30, 25, 20, 10, 5, 5, 5], dtype=float) / 100
LANDLINE_FORMAT_P = np.array([45, 20, 15, 10, 10], dtype=float) / 100


def _mobile_form(k: int, nsn: pd.Series) -> pd.Series:
    a, b = nsn.str[:4], nsn.str[4:]
    if k == 0:
        return "0" + a + " " + b  # 07700 900123
    if k == 1:
        return "0" + nsn  # 07700900123
    if k == 2:
        return "+44 " + a + " " + b  # +44 7700 900123
    if k == 3:
        return "+44" + nsn  # +447700900123
    if k == 4:
        return "0044 " + a + " " + b  # 0044 7700 900123
    if k == 5:
        return "+44 (0)" + a + "-" + b  # +44 (0)7700-900123
    return "0" + a + "-" + nsn.str[4:7] + "-" + nsn.str[7:]  # 07700-900-123


def _landline_form(k: int, nsn: pd.Series, area_length: int) -> pd.Series:
    area, rest = nsn.str[:area_length], nsn.str[area_length:]
    split = {2: 4, 3: 3}.get(area_length, 6)
    grouped = (rest.str[:split] + " " + rest.str[split:]).str.strip()
    if k == 0:
        return "0" + area + " " + grouped  # 0113 496 0123
    if k == 1:
        return "0" + nsn  # 01134960123
    if k == 2:
        return "+44 " + area + " " + grouped  # +44 113 496 0123
    if k == 3:
        return "+44" + nsn  # +441134960123
    return "(0" + area + ") " + rest  # (0113) 4960123


def phones(
    rng: np.random.Generator, e164: np.ndarray, dial_len: np.ndarray, is_mobile: np.ndarray
) -> np.ndarray:
    """UK numbers written the many ways people write them (07700 900123, +44 7700 900123, (0)...)."""
    present = pd.notna(e164)
    out = np.full(len(e164), None, dtype=object)
    choice = rng.choice(len(MOBILE_FORMAT_P), size=len(e164), p=MOBILE_FORMAT_P)
    land_choice = rng.choice(len(LANDLINE_FORMAT_P), size=len(e164), p=LANDLINE_FORMAT_P)
    for k in range(len(MOBILE_FORMAT_P)):
        rows = np.flatnonzero(present & is_mobile & (choice == k))
        out[rows] = _mobile_form(k, pd.Series(e164[rows], dtype=object).str[2:]).to_numpy()
    for length in (2, 3, 4):
        for k in range(len(LANDLINE_FORMAT_P)):
            rows = np.flatnonzero(present & ~is_mobile & (dial_len == length) & (land_choice == k))
            out[rows] = _landline_form(k, pd.Series(e164[rows], dtype=object).str[2:], length).to_numpy()
    return out


def streets(
    rng: np.random.Generator, values: np.ndarray, abbreviate: float, upper: float = 0.0
) -> np.ndarray:
    """Street lines, some with the usual abbreviations (Road -> Rd) or in capitals."""
    out = values.astype(object).copy()
    present = out != None  # noqa: E711
    ab = present & (rng.random(len(out)) < abbreviate)
    s = pd.Series(out[ab], dtype=object)
    for long, short in STREET_ABBREVIATIONS.items():
        s = s.str.replace(long, short, regex=False)
    out[ab] = s.to_numpy()
    up = present & (rng.random(len(out)) < upper)
    out[up] = _upper(out[up])
    return out


def postcodes(rng: np.random.Generator, values: np.ndarray, squash: float, lower: float) -> np.ndarray:
    """Postcodes, some without the space, some in lower case."""
    out = values.astype(object).copy()
    present = out != None  # noqa: E711
    sq = present & (rng.random(len(out)) < squash)
    out[sq] = pd.Series(out[sq], dtype=object).str.replace(" ", "", regex=False).to_numpy()
    lo = present & (rng.random(len(out)) < lower)
    out[lo] = _lower(out[lo])
    return out


def birth_dates(rng: np.random.Generator, birth_day: np.ndarray, swap: float) -> np.ndarray:
    """Birth dates (numpy days), with day and month swapped now and then where that is still a date."""
    d = pd.to_datetime(np.asarray(birth_day, dtype=np.int64), unit="D")
    day, month, year = d.day.to_numpy(), d.month.to_numpy(), d.year.to_numpy()
    swapped = (rng.random(len(d)) < swap) & (day <= 12) & (day != month)
    new = pd.to_datetime(
        {"year": year, "month": np.where(swapped, day, month), "day": np.where(swapped, month, day)}
    )
    return new.to_numpy().astype("datetime64[D]")
