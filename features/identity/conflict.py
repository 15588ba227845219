"""Conflict rules: when two identity records cannot be one person, whatever links them.

Used twice with one definition: a shared email or phone is a deterministic link only between records
that do not conflict (`match`), and a cluster is split so that no two conflicting records stay
together (`cluster`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

import pandas as pd
import pyarrow as pa
from rapidfuzz.distance import OSA

from features.identity.standardise import formal_names, known_given_names


@dataclass(frozen=True)
class Person:
    """The attributes that tell two people apart, for the conflict rules."""

    first_name: str | None
    last_name: str | None
    birth_date: date | None
    national_id: str | None = None  # its salted hash, as every identity record holds it


def jaro_winkler(a: str, b: str) -> float:
    """Jaro-Winkler similarity of two strings (1.0 identical, 0.0 nothing in common)."""
    if a == b:
        return 1.0
    window = max(max(len(a), len(b)) // 2 - 1, 0)
    a_hit, b_hit = [False] * len(a), [False] * len(b)
    matches = 0
    for i, ch in enumerate(a):
        for j in range(max(0, i - window), min(len(b), i + window + 1)):
            if not b_hit[j] and b[j] == ch:
                a_hit[i] = b_hit[j] = True
                matches += 1
                break
    if matches == 0:
        return 0.0
    a_seq = [ch for ch, hit in zip(a, a_hit, strict=True) if hit]
    b_seq = [ch for ch, hit in zip(b, b_hit, strict=True) if hit]
    transpositions = sum(x != y for x, y in zip(a_seq, b_seq, strict=True)) / 2
    jaro = (matches / len(a) + matches / len(b) + (matches - transpositions) / matches) / 3
    prefix = 0
    for x, y in zip(a[:4], b[:4], strict=False):
        if x != y:
            break
        prefix += 1
    return jaro + prefix * 0.1 * (1 - jaro)


@lru_cache(maxsize=1_000_000)
def _same_first_name(a: str, b: str) -> bool:
    """Could two first names be one person's: equal, an initial, a shared formal name, or a typo."""
    if (len(a) == 1 or len(b) == 1) and a[0] == b[0]:
        return True
    left, right = {a, *formal_names(a)}, {b, *formal_names(b)}
    if left & right:
        return True
    known = known_given_names()
    if a in known and b in known:
        return False  # two real names (paul, paula) are two people, however alike they look
    # A typo (one edit or swap of neighbours: optimal string alignment), also of a nickname's formal name:
    # bob (robert) ~ robrt.
    return any(jaro_winkler(x, y) >= 0.85 or OSA.distance(x, y) <= 1 for x in left for y in right)


def _birth_dates_conflict(a: date, b: date) -> bool:
    if a == b:
        return False
    same_parts = (a.year == b.year) + (a.month == b.month) + (a.day == b.day)
    swapped = a.year == b.year and a.month == b.day and a.day == b.month
    return same_parts < 2 and not swapped


def conflict(a: Person, b: Person) -> str | None:
    """Why two records cannot be one person, or None: clearly different first names or birth dates.

    First names are the same when equal, an initial, sharing a formal name (nickname), or a typo
    (Jaro-Winkler >= 0.85 or one edit) unless both are known given names; a record whose first and
    last names are swapped is compared the other way round. Birth dates are the same when equal,
    when only one of day, month and year differs, or when day and month are swapped.

    Two records with the same national id conflict only when both differ: a household shares an email, a
    phone and an address but never a national id, so one differing attribute beside the same id is a
    mistyped or replaced value (in the FEBRL registries, one true pair in seven), and so is one beside a
    missing other; both differing is the id written on another person's record.
    """
    birth_dates = (
        a.birth_date is not None
        and b.birth_date is not None
        and _birth_dates_conflict(a.birth_date, b.birth_date)
    )
    same_id = a.national_id is not None and a.national_id == b.national_id
    if birth_dates and not same_id:
        return "birth_date"  # the first names need no look
    first_names = _first_names_conflict(a, b)
    if same_id and not (birth_dates and first_names):
        return None
    return "birth_date" if birth_dates else "first_name" if first_names else None


def known_as(persons: Iterable[Person]) -> list[list[Person]]:
    """The people among some records, each with the variants it is known by: the records with one national id
    are one person's, every record without one is a person of its own."""
    by_id: dict[str, list[Person]] = {}
    alone: list[list[Person]] = []
    for person in persons:
        if person.national_id is None:
            alone.append([person])
        else:
            by_id.setdefault(person.national_id, []).append(person)
    return [*by_id.values(), *alone]


def people_conflict(a: list[Person], b: list[Person]) -> str | None:
    """Why two people, each known by some variants (`known_as`), cannot be one: every variant of one conflicts
    with every variant of the other ("birth_date" named before "first_name").

    A person whose national id ties a mistyped or replaced first name to the right one (caleb and nathan
    challenor, both 2694239) is still nathan: a third record of nathan's is compared with both names.
    """
    reasons = set()
    for x in a:
        for y in b:
            reason = conflict(x, y)
            if reason is None:
                return None
            reasons.add(reason)
    return "birth_date" if "birth_date" in reasons else "first_name"


def _first_names_conflict(a: Person, b: Person) -> bool:
    if not (a.first_name and b.first_name) or _same_first_name(a.first_name, b.first_name):
        return False
    swapped = (
        a.last_name
        and b.last_name
        and _same_first_name(a.first_name, b.last_name)
        and _same_first_name(a.last_name, b.first_name)
    )
    return not swapped


def people(records: pd.DataFrame) -> list[Person]:
    """The conflict-relevant attributes of each record, in row order."""
    absent = [None] * len(records)
    columns = [_python_values(records[c]) if c in records.columns else absent for c in CONFLICT_COLUMNS]
    return [Person(*values) for values in zip(*columns, strict=True)]


def _python_values(values: pd.Series) -> list:
    """Through Arrow: nulls (None, NaN, NA) come out as None, Arrow text and dates as str and date.

    Dates by way of numpy: Arrow's `to_pylist` makes each date in Python, twenty times slower."""
    array = pa.array(values)
    if pa.types.is_date(array.type):
        return array.to_pandas(date_as_object=True).tolist()
    return array.to_pylist()


CONFLICT_COLUMNS = ("first_name", "last_name", "birth_date", "national_id")
