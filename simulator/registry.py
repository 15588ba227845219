"""A contacts-only export: a registry (`--shape registry`) or two systems to link (`--shape two-files`).

Neither has an email, phone or loyalty number: people are known by names (middle names sometimes),
an address with the house number apart and a region, a birth date and a national id, each with the
usual typos, swaps and gaps. The people come from the retailer simulator (`people.make_people`), so
households share surnames and addresses, and the noise from `noise`. See docs/simulator.md.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa

from simulator import fmt, noise
from simulator.config import Clock, SimConfig, global_rng
from simulator.mapping import dump_sources
from simulator.people import EmailBook, make_people, permute, tables, zipf
from simulator.simulator import prepare_output
from simulator.writers import TextSink

RegistryShape = Literal["registry", "two-files"]
_ADDRESS = r"^(?:Flat \d+, )?(\d+) (.+)$"
_NI_LETTERS = np.array(list("ABCEGHJKLMNPRSTWXYZ"), dtype=object)
# Random streams of the registry simulation (global_rng streams; the retailer uses 0-99).
_PEOPLE_STREAM, _RECORDS_STREAM = 101, 102


@dataclass(frozen=True)
class RegistryConfig:
    """Rates of the registry shapes' noise; the defaults are the documented ones."""

    middle_name_share: float = 0.40  # people who have a middle name
    middle_name_written: float = 0.70  # records that show it (of people who have one)
    middle_initial: float = 0.30  # of those, only the initial
    birth_date_missing: float = 0.03
    birth_date_typo: float = 0.01  # one digit of the day or the year wrong
    national_id_missing: float = 0.12
    national_id_typo: float = 0.005  # one digit wrong
    house_number_missing: float = 0.03
    street_missing: float = 0.03
    street_typo: float = 0.02
    postcode_missing: float = 0.04
    city_missing: float = 0.05
    region_missing: float = 0.25
    gender_missing: float = 0.05
    old_address: float = 0.5  # records of people who moved that still show the old address


@cache
def _regions() -> dict[str, str]:
    text = resources.files("simulator").joinpath("data").joinpath("regions.csv").read_text("utf-8")
    return {row["area"]: row["region"] for row in csv.DictReader(text.splitlines())}


def national_ids(person: np.ndarray) -> np.ndarray:
    """A unique UK-style national insurance number per person (`AB123456C`)."""
    v = permute(person, len(_NI_LETTERS) ** 2 * 1_000_000, 31_337)
    pair = v // 1_000_000
    digits = pd.Series(v % 1_000_000).astype(str).str.zfill(6).to_numpy(dtype=object)
    suffix = np.array(list("ABCD"), dtype=object)[v % 4]
    return _NI_LETTERS[pair // len(_NI_LETTERS)] + _NI_LETTERS[pair % len(_NI_LETTERS)] + digits + suffix


def _written_ids(rng: np.random.Generator, ids: np.ndarray, typo: float) -> np.ndarray:
    """National ids as typed: compact, spaced (`AB 12 34 56 C`) or lower case, some with a digit wrong."""
    s = pd.Series(ids, dtype=object)
    wrong = rng.random(len(s)) < typo
    position = 2 + rng.integers(0, 6, len(s))
    digit = rng.integers(0, 10, len(s)).astype(str)
    changed = [
        v[:i] + (d if d != v[i] else str((int(d) + 1) % 10)) + v[i + 1 :]
        for v, i, d in zip(s[wrong], position[wrong], digit[wrong], strict=True)
    ]
    s[wrong] = changed
    style = rng.choice(3, size=len(s), p=[0.6, 0.3, 0.1])
    spaced = s.str[:2] + " " + s.str[2:4] + " " + s.str[4:6] + " " + s.str[6:8] + " " + s.str[8:]
    return np.select([style == 1, style == 2], [spaced, s.str.lower()], s).astype(object)


def _birth_dates(rng: np.random.Generator, birth_day: np.ndarray, config: RegistryConfig) -> pd.Series:
    """Birth dates as typed: some day/month swaps (as the retailer's), a digit of the day or year wrong, gaps."""
    d = pd.to_datetime(noise.birth_dates(rng, birth_day, SimConfig().dob_swap))
    year, month, day = d.year.to_numpy(), d.month.to_numpy(), d.day.to_numpy()
    n = len(d)
    wrong = rng.random(n) < config.birth_date_typo
    in_year = rng.random(n) < 0.5
    digit = (rng.integers(1, 10, n) + np.where(in_year, year, day)) % 10  # never the digit it was
    year = np.where(wrong & in_year, year - year % 10 + digit, year)
    day = np.where(wrong & ~in_year, day - day % 10 + digit, day)
    typed = pd.to_datetime({"year": year, "month": month, "day": day}, errors="coerce")
    typed = typed.where(typed.notna(), d)  # a typo that is no date (31 February) was not made
    missing = rng.random(n) < config.birth_date_missing
    return pd.Series(typed.to_numpy().astype("datetime64[D]")).where(~missing)


def _blank(rng: np.random.Generator, values: np.ndarray, share: float) -> np.ndarray:
    return np.where(rng.random(len(values)) < share, None, values).astype(object)


def describe_records(
    rng: np.random.Generator, people: pd.DataFrame, rows: np.ndarray, config: RegistryConfig
) -> pd.DataFrame:
    """How a registry shows the people at `rows` (one record each, duplicates are repeated rows)."""
    sim = SimConfig()
    p = people.iloc[rows].reset_index(drop=True)
    n = len(p)
    first, last, _ = noise.names(
        rng, p["first"].to_numpy(), p["last"].to_numpy(), p["nickname"].to_numpy(), sim, upper=0.05
    )
    middle = p["middle"].to_numpy(dtype=object)
    shown = (middle != None) & (rng.random(n) < config.middle_name_written)  # noqa: E711
    initial = shown & (rng.random(n) < config.middle_initial)
    middle = np.where(initial, pd.Series(middle, dtype=object).str[:1], middle)
    old = (p["old_street"].notna() & (rng.random(n) < config.old_address)).to_numpy()
    line = np.where(old, p["old_street"], p["street"])
    postcode = np.where(old, p["old_postcode"], p["postcode"])
    city = np.where(old, p["old_city"], p["city"])
    parts = pd.Series(line, dtype=object).str.extract(_ADDRESS)  # a flat's number is not kept
    street = noise.streets(rng, parts[1].to_numpy(dtype=object), abbreviate=0.3, upper=0.05)
    typo = rng.random(n) < config.street_typo
    street[typo] = noise.typos(rng, street[typo])
    region = pd.Series(postcode, dtype=object).str.extract(r"^([A-Z]+)")[0].map(_regions())
    return pd.DataFrame(
        {
            "person_id": p["person_id"],
            "first": first,
            "middle": np.where(shown, middle, None),
            "last": last,
            "gender": _blank(rng, p["gender"].to_numpy(dtype=object), config.gender_missing),
            "birth_date": _birth_dates(rng, p["birth_day"].to_numpy(), config),
            "national_id": _blank(
                rng,
                _written_ids(rng, p["national_id"].to_numpy(dtype=object), config.national_id_typo),
                config.national_id_missing,
            ),
            "house_number": _blank(rng, parts[0].to_numpy(dtype=object), config.house_number_missing),
            "street": _blank(rng, street, config.street_missing),
            "city": _blank(rng, city, config.city_missing),
            "region": _blank(rng, region.to_numpy(dtype=object), config.region_missing),
            "postcode": _blank(
                rng, noise.postcodes(rng, postcode.astype(object), 0.3, 0.05), config.postcode_missing
            ),
        }
    )


def registry_people(seed: int, n: int, config: RegistryConfig) -> pd.DataFrame:
    """`n` people (the retailer's households, names, addresses and birth dates), middle names and national ids."""
    rng = global_rng(seed, _PEOPLE_STREAM)
    sim = SimConfig()
    people = make_people(rng, n, 0, 0, Clock.for_as_of(date(2025, 12, 31), sim), sim, EmailBook())
    t = tables()
    female = (people["gender"] == "F").to_numpy()
    drawn = np.where(
        female,
        t.first_female[zipf(rng, len(t.first_female), n)],
        t.first_male[zipf(rng, len(t.first_male), n)],
    )
    middle = t.first[drawn]
    has = (rng.random(n) < config.middle_name_share) & (middle != people["first"].to_numpy())
    people["middle"] = np.where(has, middle, None)
    people["national_id"] = national_ids(people["person"].to_numpy())
    # The retailer's children are at least 18, so many share the day they turned 18 (its placeholder
    # birth date); registry people are born on their own days.
    birth_day = people["birth_day"].to_numpy()
    youngest = birth_day == birth_day.max()
    people["birth_day"] = np.where(youngest, birth_day - rng.integers(0, 15 * 365, n), birth_day)
    return people


# Each file's columns: (canonical column, the export's column), in the export's order.
_FILES: dict[str, dict[str, Any]] = {
    "registry": {
        "file": "registry.csv", "id_prefix": "R", "delimiter": ",", "date_format": "%d/%m/%Y",
        "columns": [("customer_ref", "RecordId"), ("first_name", "GivenName"), ("middle_name", "MiddleName"),
                    ("last_name", "Surname"), ("gender", "Sex"), ("birth_date", "DateOfBirth"),
                    ("national_id", "NationalInsuranceNo"), ("house_number", "HouseNo"), ("street", "Street"),
                    ("city", "Town"), ("region", "Region"), ("postcode", "Postcode")],
    },
    "system_a": {
        "file": "system_a.csv", "id_prefix": "A", "delimiter": ",", "date_format": "%d/%m/%Y",
        "columns": [("customer_ref", "PatientId"), ("first_name", "Forename"), ("middle_name", "OtherNames"),
                    ("last_name", "Surname"), ("gender", "Sex"), ("birth_date", "DOB"),
                    ("national_id", "NINumber"), ("house_number", "HouseNumber"), ("street", "Street"),
                    ("city", "Town"), ("region", "County"), ("postcode", "Postcode")],
    },
    "system_b": {
        "file": "system_b.csv", "id_prefix": "B", "delimiter": ";", "date_format": "%Y-%m-%d",
        "columns": [("customer_ref", "member_ref"), ("last_name", "family_name"), ("first_name", "given_name"),
                    ("middle_name", "middle_names"), ("birth_date", "born"), ("gender", "gender"),
                    ("house_number", "house_no"), ("street", "street_name"), ("postcode", "post_code"),
                    ("city", "city"), ("region", "region"), ("national_id", "ni_number")],
    },
}  # fmt: skip
_FIELDS = {
    "customer_ref": "record_id", "first_name": "first", "middle_name": "middle", "last_name": "last",
    "gender": "gender", "birth_date": "birth_date", "national_id": "national_id", "house_number": "house_number",
    "street": "street", "city": "city", "region": "region", "postcode": "postcode",
}  # fmt: skip


def _export(records: pd.DataFrame, spec: dict[str, Any]) -> pa.Table:
    dates = records["birth_date"].dt.strftime(spec["date_format"]).to_numpy(dtype=object)
    values = records.assign(birth_date=np.where(pd.isna(dates), None, dates))
    return pa.table({theirs: fmt.column(values, _FIELDS[ours]) for ours, theirs in spec["columns"]})


def _source(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "type": "contacts",
        "path": f"exports/{spec['file']}",
        "format": "csv",
        "encoding": "utf-8",
        "delimiter": spec["delimiter"],
        "date_formats": [spec["date_format"]],
        "id_namespace": name,
        "columns": {ours: theirs for ours, theirs in spec["columns"]},
    }


def _files(
    shape: RegistryShape, people: int, records: int, duplicates: float, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """The person (position) behind each record of each file."""
    if shape == "registry":
        extra = rng.choice(people, size=records - people, replace=True)
        return {"registry": np.concatenate([np.arange(people), extra])}
    both = round(duplicates * people)
    only_a = (people - both) // 2
    order = rng.permutation(people)
    return {
        "system_a": np.sort(order[: both + only_a]),
        "system_b": np.sort(np.concatenate([order[:both], order[both + only_a :]])),
    }


def simulate_registry(
    records: int, seed: int, out: Path, shape: RegistryShape = "registry", duplicates: float = 0.3
) -> dict[str, Any]:
    """Write a contacts-only export of about `records` records, its sources.yaml and the truth into `out`.

    `registry`: one file, `duplicates` is the share of records that repeat a person already in it.
    `two-files`: two systems, each person at most once per file; `duplicates` is the share of people in both.
    """
    if records < 2:
        raise ValueError(f"records must be at least 2, got {records}")
    if not 0.0 <= duplicates < 1.0:
        raise ValueError(f"duplicates must be in [0, 1), got {duplicates}")
    started = time.perf_counter()
    out = prepare_output(out)
    n_people = round(records * (1 - duplicates)) if shape == "registry" else round(records / (1 + duplicates))
    config = RegistryConfig()
    people = registry_people(seed, max(n_people, 1), config)
    rng = global_rng(seed, _RECORDS_STREAM)
    truth = TextSink(out / "truth" / "identity.csv")
    rows: dict[str, int] = {}
    sources = []
    for name, persons in _files(shape, len(people), records, duplicates, rng).items():
        spec = _FILES[name]
        described = describe_records(rng, people, persons, config)
        # Record ids in a scrambled order, so a file is not sorted by person.
        number = permute(np.arange(len(described)), 10_000_000, 4_099 + len(name))
        described["record_id"] = spec["id_prefix"] + pd.Series(number).astype(str).str.zfill(7)
        described = described.sort_values("record_id", kind="stable").reset_index(drop=True)
        sink = TextSink(out / "exports" / spec["file"], delimiter=spec["delimiter"])
        sink.write(_export(described, spec))
        sink.close()
        truth.write(
            pa.table(
                {
                    "source": fmt.strings(np.full(len(described), name, dtype=object)),
                    "record_id": fmt.column(described, "record_id"),
                    "person_id": fmt.column(described, "person_id"),
                }
            )
        )
        rows[f"exports/{spec['file']}"] = len(described)
        sources.append(_source(name, spec))
    truth.close()
    dump_sources(out / "sources.yaml", sources)
    summary = {
        "shape": shape,
        "people": len(people),
        "duplicates": duplicates,
        "rows": rows,
        "records_in_truth": truth.rows,
        "seconds": round(time.perf_counter() - started, 2),
    }
    (out / "truth" / "stats.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary
