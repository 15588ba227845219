"""The matcher: deterministic links on strong identifiers plus a Fellegi-Sunter model trained with Splink.

`IdentityMatcher` follows the scikit-learn estimator rules: `__init__` stores parameters, `fit` plans
the comparisons, rules and EM sessions from the attributes the records populate (`plan_`, see
`plan_matching`) and trains the Splink model on DuckDB (the prior from deterministic rules, u by seeded
random sampling, m by EM) into `model_`; `predict` scores candidate pairs and returns the links with
their evidence.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from splink import DuckDBAPI, Linker, SettingsCreator, block_on
from splink.blocking_rule_library import CustomRule
from splink.comparison_library import CustomComparison

from features.identity.conflict import conflict, people
from features.identity.records import arrow_text, is_in, link_positions

logger = logging.getLogger(__name__)

# Columns the model reads; everything else in a record stays out of DuckDB.
MATCH_COLUMNS = [
    "identity_key",
    "first_name",
    "middle_name",
    "last_name",
    "first_name_formal",
    "email",
    "phone",
    "street",
    "house_number",
    "postcode",
    "postcode_district",
    "city",
    "region",
    "birth_date",
    "national_id",
    "national_id_near",
    "loyalty_number",
]
# Strong identifiers, strongest first; each present one is a deterministic rule ("the exact level").
STRONG_IDENTIFIERS = ("loyalty_number", "national_id", "email", "phone")
# Identifiers one person may share with another (a household email or landline, a national id typed
# onto the wrong record): a link on them needs the two records not to conflict.
GUARDED_IDENTIFIERS = ("national_id", "email", "phone")
# Strongest first: a steward's merge (features/identity/decisions.py), records identical in every attribute,
# then the deterministic rules, then the model.
IDENTICAL = "identical"
LINK_KINDS = ("steward", IDENTICAL, *STRONG_IDENTIFIERS, "probabilistic")
# Candidate blocking rules (equi-joins, columns of one rule joined with AND), most specific first; a plan
# keeps those whose columns are populated and whose blocks stay small. SWAPPED is the one non-equi rule.
BLOCKING_CANDIDATES: tuple[tuple[str, ...], ...] = (
    ("last_name", "birth_date"),
    ("first_name_formal", "birth_date"),
    ("first_name", "last_name"),
    ("postcode", "last_name"),
    ("street", "postcode"),
    ("postcode", "birth_date"),
    ("birth_date", "house_number"),
    ("first_name", "postcode"),
)
SWAPPED = ("first_name", "last_name")
# EM sessions: each leaves the comparisons outside its rule free to be estimated.
TRAINING_CANDIDATES: tuple[tuple[str, ...], ...] = (
    ("birth_date",),
    ("postcode", "last_name"),
    ("first_name", "last_name"),
)
# Deterministic rules for the prior match probability when no strong identifier is populated.
FALLBACK_PRIOR_RULES: tuple[tuple[str, ...], ...] = (
    ("first_name", "last_name", "birth_date"),
    ("first_name", "last_name", "postcode"),
)

# The prior probability that two records match, kept when no deterministic rule finds a pair to count.
_PRIOR = 1e-4
_JW = "jaro_winkler_similarity({0}_l, {0}_r)"


def _when(gate: str, condition: str) -> str:
    """`gate AND condition`, with `condition` evaluated only where the cheap `gate` holds (as a CASE).

    DuckDB evaluates both sides of an AND over every pair; a CASE branch only over the pairs that reach
    it. Most pairs Splink compares (the random pairs that estimate u) fail the gate, so a level written
    this way costs a fraction. A NULL gate makes the level false rather than NULL: the same level.
    """
    return f"(CASE WHEN {gate} THEN {condition} ELSE false END)"


# The first names share a formal name (`bill`, `will` -> william); split into lists only when one of them
# stands for several (`alex`), since a single formal name matches exactly when it is equal.
_NICKNAME = (
    "(first_name_formal_l = first_name_formal_r OR "
    + _when(
        "contains(first_name_formal_l, '|') OR contains(first_name_formal_r, '|')",
        "list_has_any(string_split(first_name_formal_l, '|'), string_split(first_name_formal_r, '|'))",
    )
    + ")"
)


@dataclass(frozen=True)
class MatchPlan:
    """What the matcher uses of the data it was fitted on: chosen from the columns that are populated.

    `attributes`: the match columns with enough values to count; `identifiers`: the strong identifiers
    among them (deterministic rules); `blocking` and `training`: the equi-join blocking rules of the
    probabilistic pass and of the EM sessions. JSON-able, and the model's fingerprint is built from it.
    """

    attributes: tuple[str, ...]
    identifiers: tuple[str, ...]
    blocking: tuple[tuple[str, ...], ...]
    training: tuple[tuple[str, ...], ...]
    term_frequencies: bool

    def has(self, *columns: str) -> bool:
        """Whether every one of `columns` is populated."""
        return all(c in self.attributes for c in columns)

    def to_json(self) -> dict[str, Any]:
        """The plan as JSON-able lists."""
        lists = {k: [list(v) if isinstance(v, tuple) else v for v in getattr(self, k)] for k in _PLAN_FIELDS}
        return {**lists, "term_frequencies": self.term_frequencies}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MatchPlan:
        """A plan from `to_json` output."""
        lists = {k: tuple(tuple(v) if isinstance(v, list) else v for v in data[k]) for k in _PLAN_FIELDS}
        return cls(**lists, term_frequencies=data["term_frequencies"])


_PLAN_FIELDS = ("attributes", "identifiers", "blocking", "training")


def block_pairs(records: pd.DataFrame, columns: tuple[str, ...]) -> int:
    """How many record pairs an equi-join blocking rule on `columns` compares (nulls never join)."""
    with _Counts(records[list(columns)]) as counts:
        return counts.block_pairs(columns)


class _Counts:
    """Counts over records by DuckDB, on both cores (pandas' value counts and groupbys took a second per million
    records, on one): the table is handed over once for every count."""

    def __init__(self, records: pd.DataFrame) -> None:
        self.con = duckdb.connect()
        self.con.register("records", pa.Table.from_pandas(records, preserve_index=False))

    def __enter__(self) -> _Counts:
        return self

    def __exit__(self, *_: object) -> None:
        self.con.close()

    def block_pairs(self, columns: tuple[str, ...]) -> int:
        """Pairs compared by an equi-join on `columns` (nulls never join)."""
        present = " AND ".join(f"{c} IS NOT NULL" for c in columns)
        query = f"SELECT count(*) AS n FROM records WHERE {present} GROUP BY {', '.join(columns)}"
        (pairs,) = self.con.execute(f"SELECT sum(n * (n - 1) // 2) FROM ({query})").fetchone()
        return int(pairs or 0)

    def informative(self, column: str, min_count: float) -> bool:
        """At least `min_count` values, not nearly all one value (a column every record fills with "GB")."""
        query = f"SELECT count(*) AS n FROM records WHERE {column} IS NOT NULL GROUP BY {column}"
        filled, top = (
            int(x or 0) for x in self.con.execute(f"SELECT sum(n), max(n) FROM ({query})").fetchone()
        )
        return filled >= max(min_count, 1) and not (filled >= 20 and top > 0.5 * filled)


def plan_matching(
    records: pd.DataFrame,
    min_fill: float = 0.01,
    max_pairs_per_record: float = 20.0,
    min_tf_records: int = 1000,
) -> MatchPlan:
    """The plan for these standardised records: the attributes they populate and the rules that suit them.

    An attribute counts when at least `min_fill` of the records hold it and no one value fills half of it.
    A blocking rule is kept when its columns count and it compares at most `max_pairs_per_record` pairs
    per record (a postcode that is only a region would make blocks of thousands); EM sessions, in order,
    when their columns count and they find any pair, until each comparison has been estimated in one
    (`covering_sessions`). Term-frequency adjustments from `min_tf_records` records up: in a handful of
    records every duplicate makes its name look common.
    """
    n = max(len(records), 1)
    with _Counts(records[MATCH_COLUMNS[1:]]) as counts:
        attributes = tuple(c for c in MATCH_COLUMNS[1:] if counts.informative(c, min_fill * n))
        has = set(attributes).issuperset
        limit = max_pairs_per_record * n + 10_000
        pairs = {r: counts.block_pairs(r) for r in {*BLOCKING_CANDIDATES, *TRAINING_CANDIDATES} if has(r)}
    blocking = tuple(r for r in BLOCKING_CANDIDATES if has(r) and pairs[r] <= limit)
    training = [r for r in TRAINING_CANDIDATES if has(r) and 0 < pairs[r] <= limit]
    identifiers = tuple(c for c in STRONG_IDENTIFIERS if c in attributes)
    # EM can also learn from the pairs sharing the most common strong identifier, where there is one.
    if identifiers:
        training.append((max(identifiers, key=lambda c: records[c].notna().sum()),))
    plan = MatchPlan(attributes, identifiers, blocking, (), n >= min_tf_records)
    return dataclasses.replace(plan, training=covering_sessions(plan, training))


def covering_sessions(plan: MatchPlan, sessions: list[tuple[str, ...]]) -> tuple[tuple[str, ...], ...]:
    """The first of `sessions` (EM blocking rules, in order) that together estimate every comparison.

    Splink leaves out of an EM session each comparison that reads a column of its blocking rule, so each
    comparison needs one session blocking on none of its columns; more sessions only cost time (two, as
    Splink's own examples train, where birth date and postcode + last name are populated). All of them
    when no prefix covers every comparison.
    """
    reads = [
        {
            column
            for level in comparison.create_comparison_levels()
            for column in MATCH_COLUMNS
            if re.search(rf"\b{column}_[lr]\b", level.sql_condition)
        }
        for comparison in comparisons(plan)
    ]
    estimated = [False] * len(reads)
    for count, session in enumerate(sessions, start=1):
        estimated = [
            done or not columns & set(session) for done, columns in zip(estimated, reads, strict=True)
        ]
        if all(estimated):
            return tuple(sessions[:count])
    return tuple(sessions)


def _level(
    sql: str, label: str, m: float, u: float, tf: str | None = None, tf_base_is_own_u: bool = False
) -> dict[str, Any]:
    # m and u are priors: what fit() starts from, and what a matcher too small to train keeps. `tf` is the
    # column whose value frequency scales the level's weight (agreeing on "smith" says less than on
    # "zielinski"). Splink compares that frequency with the u of the comparison's level that is exactly
    # `tf_l = tf_r`, or with this level's own u when `tf_base_is_own_u`.
    level = {"sql_condition": sql, "label_for_charts": label, "m_probability": m, "u_probability": u}
    if tf:
        level |= {"tf_adjustment_column": tf, "tf_adjustment_weight": 1.0, "tf_minimum_u_value": 1e-6}
    if tf_base_is_own_u:
        level["disable_tf_exact_match_detection"] = True
    return level


def _null(*columns: str) -> dict[str, Any]:
    either = " OR ".join(f"({' AND '.join(f'{c}_{s} IS NULL' for c in columns)})" for s in "lr")
    return {"sql_condition": either, "label_for_charts": "missing", "is_null_level": True}


def _identifier(column: str, typo_u: float, different_m: float, different_u: float) -> CustomComparison:
    """An email or phone comparison: missing, exact, a typo, different (the priors that differ as arguments)."""
    return CustomComparison(
        output_column_name=column,
        comparison_levels=[
            _null(column),
            _level(f"{column}_l = {column}_r", "exact", 0.85, 1e-4),
            # A typo only: same length, at most two characters differ (a slip or a swap). Anything looser
            # (john.smith vs john.smith67) says little beyond the name, which the name comparison counts.
            _level(
                f"CASE WHEN length({column}_l) = length({column}_r)"
                f" THEN hamming({column}_l, {column}_r) <= 2 ELSE false END",
                "typo",
                0.05,
                typo_u,
            ),
            _level("ELSE", "different", different_m, different_u),
        ],
    )


def _exact_or_different(column: str, m: float, u: float) -> CustomComparison:
    """A comparison of an identifier that is either equal or not (a loyalty card, a hashed national id)."""
    return CustomComparison(
        output_column_name=column,
        comparison_levels=[
            _null(column),
            _level(f"{column}_l = {column}_r", "exact", m, u),
            _level("ELSE", "different", 1 - m, 1 - u),
        ],
    )


def _national_id() -> CustomComparison:
    """A hashed national id: equal, one typo apart (the two ids' deletion neighbourhoods share a hash,
    `tessera.core.canonical.near_national_ids`), or different."""
    near = "list_has_any(string_split(national_id_near_l, ' '), string_split(national_id_near_r, ' '))"
    return CustomComparison(
        output_column_name="national_id",
        comparison_levels=[
            _null("national_id"),
            _level("national_id_l = national_id_r", "exact", 0.88, 1e-6),
            _level(
                _when("national_id_near_l IS NOT NULL AND national_id_near_r IS NOT NULL", near),
                "one typo",
                0.05,
                2e-5,
            ),
            _level("ELSE", "different", 0.07, 1 - 1e-6 - 2e-5),
        ],
    )


def _name(tf: bool) -> CustomComparison:
    last = "last_name" if tf else None
    jw_first, jw_last = _JW.format("first_name"), _JW.format("last_name")
    return CustomComparison(
        output_column_name="name",
        comparison_levels=[
            _null("first_name", "last_name"),
            _level("first_name_l = first_name_r AND last_name_l = last_name_r", "exact", 0.80, 5e-4, last),
            _level("first_name_l = last_name_r AND last_name_l = first_name_r", "swapped", 0.02, 1e-5),
            _level(
                _when("last_name_l = last_name_r", _NICKNAME),
                "nickname, same last name",
                0.04,
                5e-5,
                last,
            ),
            _level(
                _when(f"{jw_last} >= 0.88", f"{jw_first} >= 0.88 OR {_NICKNAME}"),
                "similar first and last",
                0.08,
                5e-4,
            ),
            _level(
                _when(
                    "last_name_l = last_name_r",
                    "first_name_l IS NULL OR first_name_r IS NULL"
                    " OR ((length(first_name_l) = 1 OR length(first_name_r) = 1)"
                    " AND left(first_name_l, 1) = left(first_name_r, 1))",
                ),
                "same last name, first missing or an initial",
                0.02,
                2e-3,
                last,
            ),
            _level(
                f"first_name_l = first_name_r OR {_NICKNAME}",
                "same first name, other last name",
                0.02,
                3e-3,
            ),
            _level("last_name_l = last_name_r", "same last name, other first name", 0.01, 1e-2, last),
            _level("ELSE", "different", 0.01, 0.984),
        ],
    )


def _middle_name(tf: bool) -> CustomComparison:
    return CustomComparison(
        output_column_name="middle_name",
        comparison_levels=[
            _null("middle_name"),
            _level("middle_name_l = middle_name_r", "exact", 0.85, 0.02, "middle_name" if tf else None),
            _level(
                _when(
                    "left(middle_name_l, 1) = left(middle_name_r, 1)",
                    f"length(middle_name_l) = 1 OR length(middle_name_r) = 1 OR {_JW.format('middle_name')} >= 0.88",
                ),
                "initial or similar",
                0.1,
                0.03,
            ),
            _level("ELSE", "different", 0.05, 0.95),
        ],
    )


def _birth_date() -> CustomComparison:
    return CustomComparison(
        output_column_name="birth_date",
        comparison_levels=[
            _null("birth_date"),
            _level("birth_date_l = birth_date_r", "exact", 0.93, 3e-4),
            # One digit wrong or two adjacent ones swapped in YYYYMMDD leaves the year or the day as it was.
            _level(
                _when(
                    "year(birth_date_l) = year(birth_date_r) OR day(birth_date_l) = day(birth_date_r)",
                    "damerau_levenshtein(strftime(birth_date_l, '%Y%m%d'), strftime(birth_date_r, '%Y%m%d')) <= 1",
                )
                + " OR (year(birth_date_l) = year(birth_date_r) AND month(birth_date_l) = day(birth_date_r)"
                " AND day(birth_date_l) = month(birth_date_r))",
                "one digit wrong or day and month swapped",
                0.05,
                2e-4,
            ),
            _level("ELSE", "different", 0.02, 0.9977),
        ],
    )


def _address(plan: MatchPlan) -> CustomComparison:
    """Street, postcode, city (and region) describe one address: compared jointly, not counted thrice."""
    jw_street = _JW.format("street")
    levels = [
        _null("street", "postcode"),
        # A postcode is about one street, so the exact address is about as rare as its postcode; the
        # "same postcode" level below is only what is left after the closer levels, no average to compare with.
        _level(
            "street_l = street_r AND postcode_l = postcode_r",
            "exact",
            0.75,
            1e-4,
            "postcode" if plan.term_frequencies else None,
            tf_base_is_own_u=True,
        ),
        _level(
            _when("postcode_l = postcode_r", f"house_number_l = house_number_r OR {jw_street} >= 0.9"),
            "same postcode, similar street",
            0.08,
            2e-4,
        ),
        # The street line holds the house number: the same one in the same district or town, or where one
        # record lacks the postcode, is nearly always the same address.
        _level(
            _when(
                "street_l = street_r",
                "postcode_district_l = postcode_district_r OR city_l = city_r"
                " OR postcode_l IS NULL OR postcode_r IS NULL",
            ),
            "same street, postcode differs or missing",
            0.03,
            1e-4,
        ),
        _level("postcode_l = postcode_r", "same postcode, other street", 0.02, 2e-3),
        _level(
            "postcode_district_l = postcode_district_r OR city_l = city_r",
            "same district or city",
            0.04,
            2e-2,
        ),
    ]
    if plan.has("region"):
        levels.append(_level("region_l = region_r", "same region", 0.04, 0.1))
    # "different" takes the rest of the prior probability, with or without the region level.
    m, u = (1 - sum(level.get(p, 0.0) for level in levels) for p in ("m_probability", "u_probability"))
    return CustomComparison(
        output_column_name="address", comparison_levels=[*levels, _level("ELSE", "different", m, u)]
    )


def comparisons(plan: MatchPlan) -> list[CustomComparison]:
    """The model's comparisons for the plan's attributes, each from most to least similar (gamma values).

    Empty when the records hold no person attribute (an order-lines export with customer numbers only).
    """
    chosen = []
    if plan.has("first_name") or plan.has("last_name"):
        chosen.append(_name(plan.term_frequencies))
    if plan.has("middle_name"):
        chosen.append(_middle_name(plan.term_frequencies))
    if plan.has("birth_date"):
        chosen.append(_birth_date())
    if plan.has("email"):
        chosen.append(_identifier("email", typo_u=2e-5, different_m=0.07, different_u=0.9995))
    if plan.has("phone"):
        chosen.append(_identifier("phone", typo_u=2e-4, different_m=0.10, different_u=0.9997))
    if plan.has("street") or plan.has("postcode"):
        chosen.append(_address(plan))
    if plan.has("national_id", "national_id_near"):
        chosen.append(_national_id())
    elif plan.has("national_id"):
        chosen.append(_exact_or_different("national_id", 0.9, 1e-6))
    if plan.has("loyalty_number"):
        chosen.append(_exact_or_different("loyalty_number", 0.9, 1e-5))
    return chosen


def deterministic_blocking_rules(plan: MatchPlan) -> list[Any]:
    """Pairs sharing a strong identifier: every one is scored, whatever its match probability."""
    return [block_on(column) for column in plan.identifiers]


def probabilistic_blocking_rules(plan: MatchPlan) -> list[Any]:
    """Further candidate pairs: each rule is an equi-join, so blocks stay small even at 100k customers."""
    rules = [block_on(*columns) for columns in plan.blocking]
    if plan.has(*SWAPPED):
        rules.append(CustomRule("l.first_name = r.last_name AND l.last_name = r.first_name"))
    return rules


def prior_rules(plan: MatchPlan) -> list[tuple[str, ...]]:
    """Deterministic rules that admit almost no false pair, to count matches for the prior probability."""
    rules = [
        (c,) if c == "loyalty_number" or not plan.has("last_name") else (c, "last_name")
        for c in plan.identifiers
    ]
    return rules or [r for r in FALLBACK_PRIOR_RULES if plan.has(*r)]


def distinct_records(records: pd.DataFrame, groups: np.ndarray | None = None) -> pd.DataFrame:
    """One row per distinct way of writing a person: what the matcher is fitted and planned on.

    Fifty identical guest checkouts of one heavy buyer would otherwise teach EM that true matches always
    agree on everything.
    """
    groups = identical_groups(records) if groups is None else groups
    _, first = np.unique(groups, return_index=True)
    return records.iloc[np.sort(first)]


def identical_groups(records: pd.DataFrame) -> np.ndarray:
    """Each record's group of records written alike (every matched attribute equal; 0, 1, ... in order of
    appearance): `fit` and `predict` can share one grouping, the costliest step of either outside Splink."""
    return records.groupby(MATCH_COLUMNS[1:], dropna=False, sort=False).ngroup().to_numpy()


def settings_creator(
    plan: MatchPlan, probability_two_random_records_match: float = _PRIOR
) -> SettingsCreator:
    """The untrained Splink settings (dedupe of identity records keyed by identity_key)."""
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="identity_key",
        comparisons=comparisons(plan),
        blocking_rules_to_generate_predictions=deterministic_blocking_rules(plan)
        + probabilistic_blocking_rules(plan),
        probability_two_random_records_match=probability_two_random_records_match,
        retain_matching_columns=True,
        retain_intermediate_calculation_columns=False,
        em_convergence=0.001,
        max_iterations=20,
    )


def model_fingerprint(plan: MatchPlan) -> str:
    """A hash of the model's structure for a plan: a saved model with another fingerprint must be retrained."""
    spec = settings_creator(plan).create_settings_dict("duckdb") if comparisons(plan) else {}
    spec.pop("linker_uid", None)
    spec["tessera_plan"] = plan.to_json()
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]


def collapse_identical(
    records: pd.DataFrame, groups: np.ndarray | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One record per group of identical records that hold a strong identifier (email, phone, card, id).

    Fifty guest checkouts written the same way are one person's (they share an identifier and agree on
    everything else), so only one of them is scored; the others get an `identical` link to it. Records
    without a strong identifier are never collapsed: two bare "John Smith"s are not one person.
    Returns the records to score and the `identical` links.
    """
    group = identical_groups(records) if groups is None else groups
    strong = records[list(STRONG_IDENTIFIERS)].notna().any(axis=1).to_numpy()
    group = np.where(strong, group, group.max(initial=0) + 1 + np.arange(len(records)))
    # The smallest key of each group, by sorting once in Arrow (key order) and stably by group in numpy.
    keys = pa.array(records["identity_key"]).cast(pa.string())
    by_group = pc.sort_indices(keys).to_numpy()
    by_group = by_group[np.argsort(group[by_group], kind="stable")]
    sorted_groups = group[by_group]
    starts = np.r_[True, sorted_groups[1:] != sorted_groups[:-1]]
    first = np.empty(len(records), dtype=np.int64)
    first[by_group] = by_group[starts][np.cumsum(starts) - 1]
    copy = first != np.arange(len(records))
    copies = pd.DataFrame(
        {
            # The smallest key: always the left one. Keys stay Arrow text, as links read back from Parquet are.
            "identity_key_l": pd.arrays.ArrowStringArray(keys.take(first[copy])),
            "identity_key_r": pd.arrays.ArrowStringArray(keys.filter(pa.array(copy))),
            "kind": pd.Series([IDENTICAL] * int(copy.sum()), dtype="string"),
        }
    )
    return records[~copy], copies


def _ranked(table: pa.Table) -> tuple[pa.Table, pa.ChunkedArray]:
    """`table` with each identity key replaced by its rank in key order, and the keys in that order.

    Joins over millions of pairs (Splink's blocking, its `l < r`, the exclusion of pairs an earlier rule
    found) compare integers instead of text, and every pair keeps the orientation its keys would give it:
    `predict` at 1M records 10.5 -> 8.6-9.4 s, the same links.
    """
    keys = table["identity_key"]
    by_rank = pc.sort_indices(keys)
    rank = np.empty(len(table), dtype=np.int64)
    rank[by_rank.to_numpy()] = np.arange(len(table))
    column = table.schema.get_field_index("identity_key")
    return table.set_column(column, "identity_key", pa.array(rank)), keys.take(by_rank)


def _unranked(pairs: pd.DataFrame, keys: pa.ChunkedArray) -> pd.DataFrame:
    """`pairs` with ranks (as `_ranked` gives them) back as identity keys."""
    for side in ("identity_key_l", "identity_key_r"):
        pairs[side] = pd.arrays.ArrowStringArray(keys.take(pa.array(pairs[side].to_numpy())))
    return pairs


def shared_value_pairs(table: pa.Table, columns: list[str], is_new: np.ndarray | None = None) -> pd.DataFrame:
    """Every pair of records (smaller key left) equal on at least one of `columns`, and on which of them.

    A DuckDB self-join per column (nulls never join); with `is_new`, only pairs holding a new record: the
    new records joined with all of them (a join of 1% of the records with the rest, not of all with all).
    """
    table, in_order = _ranked(table)
    con = duckdb.connect()
    con.register("records", table)
    # The flags are read off each join's own rows: a pair found twice gets the same row twice, which UNION drops.
    shared = ", ".join(f"coalesce(l.{c} = r.{c}, false) AS {c}" for c in columns)
    if is_new is None:
        keys, left, order = (
            "l.identity_key AS identity_key_l, r.identity_key AS identity_key_r",
            "records",
            "<",
        )
    else:
        # Every comparison is symmetric, so the flags do not depend on which side the new record is on.
        con.register("new", table.filter(pa.array(is_new)))
        keys = (
            "least(l.identity_key, r.identity_key) AS identity_key_l,"
            " greatest(l.identity_key, r.identity_key) AS identity_key_r"
        )
        left, order = "new", "<>"
    joined = " UNION ".join(
        f"SELECT {keys}, {shared} FROM {left} l"
        f" JOIN records r ON l.{c} = r.{c} AND l.identity_key {order} r.identity_key"
        for c in columns
    )
    pairs = con.execute(f"SELECT * FROM ({joined}) ORDER BY identity_key_l, identity_key_r").df()
    con.close()
    return _unranked(pairs, in_order)


def _links_frame(found: list[pd.DataFrame], gammas: list[str]) -> pd.DataFrame:
    """Links found each way (copies, shared identifiers, scored pairs) as one frame: keys, kind, weight,
    probability and gamma levels, null where a way has none. Built column by column in numpy: reindexing
    and casting the concatenated frame cost 0.9 s at 850k links."""

    def column(name: str, dtype: Any, missing: Any) -> np.ndarray:
        return np.concatenate(
            [
                frame[name].to_numpy(dtype=dtype, na_value=missing)
                if name in frame
                else np.full(len(frame), missing, dtype=dtype)
                for frame in found
            ]
        )

    links = {
        name: pd.arrays.ArrowStringArray(pa.concat_arrays([arrow_text(frame[name]) for frame in found]))
        for name in ("identity_key_l", "identity_key_r")
    }
    links["kind"] = pd.array(column("kind", object, None), dtype="string")
    links |= {name: column(name, np.float64, np.nan) for name in ("match_weight", "match_probability")}
    for gamma in gammas:  # Splink's levels are never null: a null here is a link Splink did not score
        scored = np.concatenate([np.full(len(frame), gamma in frame) for frame in found])
        links[gamma] = pd.arrays.IntegerArray(column(gamma, np.int64, 0), ~scored)
    return pd.DataFrame(links)


def _pair_text(links: pd.DataFrame) -> pa.Array:
    """Each link's two keys as one text (left, NUL, right): pairs compared by one hash look-up."""
    return pc.binary_join_element_wise(
        arrow_text(links["identity_key_l"]), arrow_text(links["identity_key_r"]), "\0"
    )


def _alike(records: pd.DataFrame, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Which pairs (row positions) agree on first name and birth date, or lack one of them."""
    alike = np.ones(len(left), dtype=bool)
    for column in ("first_name", "birth_date"):
        values = pa.array(records[column])  # Arrow-backed: compared in Arrow, no Python object per value
        same = pc.equal(values.take(pa.array(left)), values.take(pa.array(right)))
        alike &= same.fill_null(True).to_numpy(zero_copy_only=False)
    return alike


class IdentityMatcher:
    """Fellegi-Sunter matcher for identity records, trained with Splink on DuckDB."""

    def __init__(
        self,
        threshold: float = 0.99,
        seed: int = 42,
        u_max_pairs: float = 2e6,
        em_max_pairs: float = 2e6,
        min_training_records: int = 500,
        m_floor: float = 1e-3,
        prior_recall: float = 0.7,
        min_sampling_records: int = 100,
    ) -> None:
        self.threshold = threshold
        self.seed = seed
        self.u_max_pairs = u_max_pairs
        self.em_max_pairs = em_max_pairs
        self.m_floor = m_floor
        self.min_training_records = min_training_records
        self.prior_recall = prior_recall
        self.min_sampling_records = min_sampling_records

    def fit(self, records: pd.DataFrame, groups: np.ndarray | None = None) -> IdentityMatcher:
        """Choose the plan from the populated attributes, then train the Splink model on the records.

        `groups`: `identical_groups(records)`, when the caller has them already."""
        distinct = distinct_records(records, groups)
        plan = plan_matching(distinct)
        n = len(distinct)
        self.plan_, self.fingerprint_, self.n_training_records_ = plan, model_fingerprint(plan), n
        if not comparisons(plan):
            logger.warning("identity records hold no person attribute: each identity key is its own customer")
            self.trained_, self.model_ = False, {}
            return self
        db_api = DuckDBAPI(duckdb.connect())
        linker = Linker(
            db_api.register(_for_splink(distinct)), settings_creator(plan, _PRIOR), log_level=None
        )
        # A handful of records says nothing about how often strangers agree: they keep every prior.
        sampled = n >= self.min_sampling_records
        rules = [r for r in prior_rules(plan) if block_pairs(distinct, r)] if sampled else []
        if rules:
            linker.training.estimate_probability_two_random_records_match(
                [block_on(*r) for r in rules], recall=self.prior_recall
            )
        elif sampled:  # no rule finds a single pair: keep the documented prior, never 0
            logger.warning("no deterministic rule links any identity records: prior match probability kept")
        if sampled:
            # One chunk per comparison: in chunks (Splink's default, 10 and a probe) the rare levels of every
            # comparison (a swapped name, an exact loyalty card) never reach Splink's early-exit count, so
            # all chunks ran anyway, each with its own SQL to build and parse: 66 passes instead of 8 for
            # the same u values at 100k (2026-12-03: 2.26 -> 1.56 s of CPU, the model identical).
            linker.training.estimate_u_using_random_sampling(
                max_pairs=min(self.u_max_pairs, n * (n - 1) / 2), seed=self.seed, num_chunks=1
            )
        trained = n >= self.min_training_records
        if trained:
            for columns in plan.training:
                linker.training.estimate_parameters_using_expectation_maximisation(
                    block_on(*columns), estimate_without_term_frequencies=True, max_pairs=self.em_max_pairs
                )
        else:  # too few records for EM: the m priors written into the comparisons stay
            logger.warning("only %d identity records: m probabilities are the priors, not trained", n)
        self.trained_ = trained
        self.model_ = _floor_m(linker.misc.save_model_to_json(), self.m_floor)
        db_api.duckdb_con.close()
        return self

    def predict(
        self, records: pd.DataFrame, new: pd.Series | None = None, groups: np.ndarray | None = None
    ) -> pd.DataFrame:
        """Links between records: both keys, kind, match weight and probability, and the gamma levels.

        Pairs sharing a strong identifier are linked deterministically, without Splink scoring them
        (their evidence is the identifier they share: the link's kind); Splink scores the pairs the
        probabilistic blocking rules find and keeps those above the threshold. With `new` (identity
        keys), only the links of new records: each scored against the other records and against the
        other new ones, never two old records (incremental linkage). `groups`: as `fit` takes them.
        """
        distinct, copies = collapse_identical(records, groups)
        gammas = [f"gamma_{c.create_output_column_name()}" for c in comparisons(self.plan_)]
        is_new = None
        if new is not None:
            is_new = is_in(distinct["identity_key"], new)
            copies = copies[is_in(copies["identity_key_l"], new) | is_in(copies["identity_key_r"], new)]
        table = _for_splink(distinct)
        rules = probabilistic_blocking_rules(self.plan_)
        # The deterministic links (a DuckDB join, then conflict checks in Python) are found in a thread while
        # Splink scores: its queries leave the GIL and part of a core free.
        with ThreadPoolExecutor(max_workers=1) as pool:
            sharing = pool.submit(self._shared_identifiers, table, distinct, is_new)
            scored = self._score(table, rules, is_new) if self.model_ and rules else None
            shared = sharing.result()
        found = [copies, shared]
        if scored is not None:
            # A pair both sharing an identifier and scored keeps the stronger kind: the deterministic one. (An
            # identical copy is never scored: only one record of its group is.)
            found.append(scored[~is_in(_pair_text(scored), _pair_text(shared))].assign(kind="probabilistic"))
        return _links_frame(found, gammas)

    def _shared_identifiers(
        self, table: pa.Table, records: pd.DataFrame, is_new: np.ndarray | None
    ) -> pd.DataFrame:
        """Deterministic links: pairs sharing a strong identifier, each with the strongest one that holds.

        Loyalty cards are held by one person; a national id, email or phone may be written on another's
        record or shared by a household, so a link on those needs the two records not to conflict.
        """
        identifiers = list(self.plan_.identifiers)
        if not identifiers:
            return pd.DataFrame(columns=["identity_key_l", "identity_key_r", "kind"])
        pairs = shared_value_pairs(table.select(["identity_key", *identifiers]), identifiers, is_new)
        shared = {c: pairs[c].to_numpy(dtype=bool) for c in identifiers}
        guarded = [c for c in identifiers if c in GUARDED_IDENTIFIERS]
        left, right = link_positions(records["identity_key"], pairs)  # pairs of these records only
        # Only a pair that differs on first name or birth date can conflict: most share both.
        check = np.logical_or.reduce([shared[c] for c in guarded]) if guarded else np.zeros(len(pairs), bool)
        check = np.flatnonzero(check & ~_alike(records, left, right))
        left, right = left[check], right[check]
        needed = np.union1d(left, right)
        persons = dict(zip(needed.tolist(), people(records.iloc[needed]), strict=True))
        clash = np.zeros(len(pairs), dtype=bool)
        clash[check] = [
            conflict(persons[i], persons[j]) is not None for i, j in zip(left, right, strict=True)
        ]
        kind = np.full(len(pairs), None, dtype=object)
        for rule in reversed(identifiers):
            kind[shared[rule] & ~clash if rule in GUARDED_IDENTIFIERS else shared[rule]] = rule
        links = pairs[["identity_key_l", "identity_key_r"]].assign(kind=kind)
        return links[links["kind"].notna()]

    def _score(self, table: pa.Table, rules: list[Any], is_new: np.ndarray | None = None) -> pd.DataFrame:
        """Splink's scores of the pairs the rules find, above the threshold, with their gamma levels.

        With `is_new`, only pairs with a new record in them (Splink's `predict_between` and `predict_within`).
        """
        table, keys = _ranked(table)
        db_api = DuckDBAPI(duckdb.connect())
        settings = dict(self.model_, blocking_rules_to_generate_predictions=rules)
        # Validation only logs, and the model was validated when it was fitted on these columns.
        linker = Linker(db_api.register(table), settings, log_level=None, validate_settings=False)
        gammas = ", ".join(f"gamma_{c.create_output_column_name()}" for c in comparisons(self.plan_))
        if is_new is None:
            scored = [
                linker.inference.predict(threshold_match_probability=self.threshold, warning_mode="never")
            ]
        else:
            scored = _predict_new(linker, db_api, table, is_new, self.threshold)
        # Keys in order (smaller left), as a full run's dedupe gives them; every comparison is symmetric.
        pairs = db_api.duckdb_con.execute(
            " UNION ALL ".join(
                "SELECT least(identity_key_l, identity_key_r) AS identity_key_l,"
                " greatest(identity_key_l, identity_key_r) AS identity_key_r,"
                f" match_weight, match_probability, {gammas} FROM {frame.physical_name}"
                " WHERE identity_key_l <> identity_key_r"
                for frame in scored
            )
        ).df()
        if is_new is not None:  # predict_between(new, all) finds a pair of two new records both ways
            pairs = pairs.drop_duplicates(["identity_key_l", "identity_key_r"], ignore_index=True)
        db_api.duckdb_con.close()
        return _unranked(pairs, keys)

    def get_params(self) -> dict[str, Any]:
        """The constructor parameters (as scikit-learn's `get_params`)."""
        names = (
            "threshold",
            "seed",
            "u_max_pairs",
            "em_max_pairs",
            "m_floor",
            "min_training_records",
            "prior_recall",
            "min_sampling_records",
        )
        return {name: getattr(self, name) for name in names}

    def to_json(self) -> dict[str, Any]:
        """The fitted matcher as JSON: its parameters, plan, fingerprint and the Splink model."""
        return {
            "format": "tessera-identity-matcher/2",
            "params": self.get_params(),
            "plan": self.plan_.to_json(),
            "fingerprint": self.fingerprint_,
            "n_training_records": self.n_training_records_,
            "trained": self.trained_,
            "splink_model": self.model_,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> IdentityMatcher:
        """A fitted matcher from `to_json` output."""
        matcher = cls(**data["params"])
        matcher.plan_ = MatchPlan.from_json(data["plan"])
        matcher.model_ = data["splink_model"]
        matcher.fingerprint_ = data["fingerprint"]
        matcher.n_training_records_ = data["n_training_records"]
        matcher.trained_ = data["trained"]
        return matcher


def _predict_new(
    linker: Linker, db_api: DuckDBAPI, table: pa.Table, is_new: np.ndarray, threshold: float | None
) -> list[Any]:
    """New records scored against every record (old and new), with the model's blocking rules.

    One `predict_between(new, all)` pass: Splink's fixed cost per pass (building and parsing its SQL) is
    paid once instead of twice (`predict_between(new, old)` + `predict_within(new)`). It also pairs each new
    record with itself and every new pair twice; `_score` drops the first and keeps the second once.
    """
    new = db_api.register(table.filter(pa.array(is_new)))
    every = db_api.register(table)
    # Term frequencies from all records, as a full run computes them (predict_between requires them).
    for column in _tf_columns(linker.misc.save_model_to_json()):
        linker.table_management.compute_tf_table(column)
    options = {"threshold_match_probability": threshold, "warning_mode": "never"}
    return [linker.inference.predict_between(new, every, **options)]


def _tf_columns(model: dict[str, Any]) -> list[str]:
    """The columns a Splink model adjusts for term frequency."""
    columns = {
        level["tf_adjustment_column"]
        for comparison in model["comparisons"]
        for level in comparison["comparison_levels"]
        if level.get("tf_adjustment_column")
    }
    return sorted(columns)


def _floor_m(model: dict[str, Any], floor: float) -> dict[str, Any]:
    """Raise every m probability to at least `floor`, renormalised per comparison.

    EM drives the m of a level it hardly sees (a phone typo among true matches) towards zero, which
    would make that level a veto of -60 bits; a floor keeps it an ordinary piece of evidence.
    """
    for comparison in model["comparisons"]:
        levels = [level for level in comparison["comparison_levels"] if not level.get("is_null_level")]
        raised = [max(level.get("m_probability") or floor, floor) for level in levels]
        for level, m in zip(levels, raised, strict=True):
            level["m_probability"] = m / sum(raised)
    return model


_SCHEMA = pa.schema([(c, pa.date32() if c == "birth_date" else pa.string()) for c in MATCH_COLUMNS])


def _for_splink(records: pd.DataFrame) -> pa.Table:
    # A fixed Arrow schema: dates stay dates, and an all-null column still has its type.
    return pa.Table.from_pandas(
        records[MATCH_COLUMNS].reset_index(drop=True), schema=_SCHEMA, preserve_index=False
    )
