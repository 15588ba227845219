"""The matcher: deterministic links on strong identifiers plus a Fellegi-Sunter model trained with Splink.

`IdentityMatcher` follows the scikit-learn estimator rules: `__init__` stores parameters, `fit` trains
the Splink model on DuckDB (u by seeded random sampling, m by EM over a few blocking rules) and stores
it in `model_`, `predict` scores candidate pairs and returns the links with their evidence.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
from splink import DuckDBAPI, Linker, SettingsCreator, block_on
from splink.blocking_rule_library import CustomRule
from splink.comparison_library import CustomComparison

from features.identity.conflict import conflict, people

logger = logging.getLogger(__name__)

# Columns the model reads; everything else in a record stays out of DuckDB.
MATCH_COLUMNS = [
    "identity_key",
    "first_name",
    "last_name",
    "first_name_formal",
    "email",
    "phone",
    "street",
    "house_number",
    "postcode",
    "postcode_district",
    "city",
    "birth_date",
    "loyalty_number",
]
# Deterministic rules, strongest first; each is "the exact level of this comparison".
DETERMINISTIC_RULES = ("loyalty_number", "email", "phone")
# Strongest first: records identical in every attribute, then the deterministic rules, then the model.
IDENTICAL = "identical"
LINK_KINDS = (IDENTICAL, *DETERMINISTIC_RULES, "probabilistic")

_NICKNAME = "list_has_any(string_split(first_name_formal_l, '|'), string_split(first_name_formal_r, '|'))"
_JW = "jaro_winkler_similarity({0}_l, {0}_r)"


def _level(sql: str, label: str, m: float, u: float) -> dict[str, Any]:
    # m and u are priors: what fit() starts from, and what a matcher too small to train keeps.
    return {"sql_condition": sql, "label_for_charts": label, "m_probability": m, "u_probability": u}


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


def comparisons() -> list[CustomComparison]:
    """The model's comparisons, each from most to least similar (levels become gamma values)."""
    jw_first, jw_last, jw_street = _JW.format("first_name"), _JW.format("last_name"), _JW.format("street")
    name = CustomComparison(
        output_column_name="name",
        comparison_levels=[
            _null("first_name", "last_name"),
            _level("first_name_l = first_name_r AND last_name_l = last_name_r", "exact", 0.80, 5e-4),
            _level("first_name_l = last_name_r AND last_name_l = first_name_r", "swapped", 0.02, 1e-5),
            _level(f"last_name_l = last_name_r AND {_NICKNAME}", "nickname, same last name", 0.04, 5e-5),
            _level(
                f"({_NICKNAME} OR {jw_first} >= 0.88) AND {jw_last} >= 0.88",
                "similar first and last",
                0.08,
                5e-4,
            ),
            _level(
                "last_name_l = last_name_r AND (first_name_l IS NULL OR first_name_r IS NULL"
                " OR ((length(first_name_l) = 1 OR length(first_name_r) = 1)"
                " AND left(first_name_l, 1) = left(first_name_r, 1)))",
                "same last name, first missing or an initial",
                0.02,
                2e-3,
            ),
            _level(
                f"first_name_l = first_name_r OR {_NICKNAME}", "same first name, other last name", 0.02, 3e-3
            ),
            _level("last_name_l = last_name_r", "same last name, other first name", 0.01, 1e-2),
            _level("ELSE", "different", 0.01, 0.984),
        ],
    )
    birth_date = CustomComparison(
        output_column_name="birth_date",
        comparison_levels=[
            _null("birth_date"),
            _level("birth_date_l = birth_date_r", "exact", 0.93, 3e-4),
            _level(
                "damerau_levenshtein(strftime(birth_date_l, '%Y%m%d'), strftime(birth_date_r, '%Y%m%d')) <= 1"
                " OR (year(birth_date_l) = year(birth_date_r) AND month(birth_date_l) = day(birth_date_r)"
                " AND day(birth_date_l) = month(birth_date_r))",
                "one digit wrong or day and month swapped",
                0.05,
                2e-4,
            ),
            _level("ELSE", "different", 0.02, 0.9977),
        ],
    )
    email = _identifier("email", typo_u=2e-5, different_m=0.07, different_u=0.9995)
    phone = _identifier("phone", typo_u=2e-4, different_m=0.10, different_u=0.9997)
    # Street, postcode and city describe one address: comparing them jointly avoids counting it thrice.
    address = CustomComparison(
        output_column_name="address",
        comparison_levels=[
            _null("street", "postcode"),
            _level("street_l = street_r AND postcode_l = postcode_r", "exact", 0.75, 1e-4),
            _level(
                f"postcode_l = postcode_r AND (house_number_l = house_number_r OR {jw_street} >= 0.9)",
                "same postcode, similar street",
                0.08,
                2e-4,
            ),
            _level(
                "street_l = street_r AND (postcode_district_l = postcode_district_r OR city_l = city_r)",
                "same street, postcode differs",
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
            _level("ELSE", "different", 0.08, 0.9776),
        ],
    )
    loyalty = CustomComparison(
        output_column_name="loyalty_number",
        comparison_levels=[
            _null("loyalty_number"),
            _level("loyalty_number_l = loyalty_number_r", "exact", 0.9, 1e-5),
            _level("ELSE", "different", 0.1, 0.99999),
        ],
    )
    return [name, birth_date, email, phone, address, loyalty]


def deterministic_blocking_rules() -> list[Any]:
    """Pairs sharing a strong identifier: every one is scored, whatever its match probability."""
    return [block_on(column) for column in DETERMINISTIC_RULES]


def probabilistic_blocking_rules() -> list[Any]:
    """Further candidate pairs: each rule is an equi-join, so blocks stay small even at 100k customers."""
    return [
        block_on("last_name", "birth_date"),
        block_on("first_name_formal", "birth_date"),
        block_on("first_name", "last_name"),
        CustomRule("l.first_name = r.last_name AND l.last_name = r.first_name"),
        block_on("postcode", "last_name"),
        block_on("street", "postcode"),
    ]


def training_blocking_rules() -> list[Any]:
    """EM sessions: each leaves different comparisons free to be estimated."""
    return [block_on("birth_date"), block_on("email"), block_on("postcode", "last_name")]


def settings_creator(probability_two_random_records_match: float = 1e-4) -> SettingsCreator:
    """The untrained Splink settings (dedupe of identity records keyed by identity_key)."""
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="identity_key",
        comparisons=comparisons(),
        blocking_rules_to_generate_predictions=deterministic_blocking_rules()
        + probabilistic_blocking_rules(),
        probability_two_random_records_match=probability_two_random_records_match,
        retain_matching_columns=True,
        retain_intermediate_calculation_columns=False,
        em_convergence=0.001,
        max_iterations=20,
    )


def model_fingerprint() -> str:
    """A hash of the model's structure: a saved model with another fingerprint must be retrained."""
    spec = settings_creator().create_settings_dict("duckdb")
    spec.pop("linker_uid", None)
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]


def collapse_identical(records: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One record per group of identical records that hold an email, phone or loyalty number.

    Fifty guest checkouts written the same way are one person's (they share an identifier and agree on
    everything else), so only one of them is scored; the others get an `identical` link to it. Records
    without a strong identifier are never collapsed: two bare "John Smith"s are not one person.
    Returns the records to score and the `identical` links.
    """
    attributes = MATCH_COLUMNS[1:]
    group = records.groupby(attributes, dropna=False, sort=False).ngroup().to_numpy()
    strong = records[list(DETERMINISTIC_RULES)].notna().any(axis=1).to_numpy()
    group = np.where(strong, group, group.max(initial=0) + 1 + np.arange(len(records)))
    keys = records["identity_key"].astype(str).to_numpy()
    by_key = pd.DataFrame({"group": group, "key": keys}).sort_values(["group", "key"])
    first = by_key.groupby("group")["key"].transform("first").reindex(range(len(keys))).to_numpy()
    copy = first != keys
    copies = pd.DataFrame(
        {
            "identity_key_l": np.minimum(first[copy], keys[copy]),
            "identity_key_r": np.maximum(first[copy], keys[copy]),
            "kind": pd.Series([IDENTICAL] * int(copy.sum()), dtype="string"),
        }
    )
    return records[~copy], copies


class IdentityMatcher:
    """Fellegi-Sunter matcher for identity records, trained with Splink on DuckDB."""

    def __init__(
        self,
        threshold: float = 0.99,
        seed: int = 42,
        u_max_pairs: float = 2e6,
        em_max_pairs: float = 2e6,
        min_training_records: int = 1000,
        m_floor: float = 1e-3,
    ) -> None:
        self.threshold = threshold
        self.seed = seed
        self.u_max_pairs = u_max_pairs
        self.em_max_pairs = em_max_pairs
        self.m_floor = m_floor
        self.min_training_records = min_training_records

    def fit(self, records: pd.DataFrame) -> IdentityMatcher:
        """Train the model on standardised identity records."""
        # One row per distinct way of writing a person: fifty identical guest checkouts of one heavy
        # buyer would otherwise teach EM that true matches always agree on everything.
        distinct = records.drop_duplicates(subset=MATCH_COLUMNS[1:])
        db_api = DuckDBAPI(duckdb.connect())
        linker = Linker(db_api.register(_for_splink(distinct)), settings_creator(), log_level=None)
        if len(distinct) < self.min_training_records:
            # Too few records to estimate anything: keep the priors written into the comparisons.
            logger.warning("only %d identity records: using the prior model, not training", len(distinct))
        else:
            linker.training.estimate_probability_two_random_records_match(
                [block_on("email", "last_name"), block_on("phone", "last_name"), block_on("loyalty_number")],
                recall=0.7,
            )
            linker.training.estimate_u_using_random_sampling(max_pairs=self.u_max_pairs, seed=self.seed)
            for rule in training_blocking_rules():
                linker.training.estimate_parameters_using_expectation_maximisation(
                    rule, estimate_without_term_frequencies=True, max_pairs=self.em_max_pairs
                )
        self.trained_ = len(distinct) >= self.min_training_records
        self.model_ = _floor_m(linker.misc.save_model_to_json(), self.m_floor)
        self.fingerprint_ = model_fingerprint()
        self.n_training_records_ = len(distinct)
        db_api.duckdb_con.close()
        return self

    def predict(self, records: pd.DataFrame, new: pd.Series | None = None) -> pd.DataFrame:
        """Links between records: both keys, kind, match weight and probability, and the gamma levels.

        With `new` (identity keys), only the links of new records: each scored against the other records
        and against the other new ones, never two old records (incremental linkage).
        """
        distinct, copies = collapse_identical(records)
        is_new = None
        if new is not None:
            is_new = distinct["identity_key"].isin(new).to_numpy()
            copies = copies[copies["identity_key_l"].isin(new) | copies["identity_key_r"].isin(new)]
        table = _for_splink(distinct)
        # Pairs sharing an identifier are all kept (the rules decide); the rest only above the threshold.
        passes = [(deterministic_blocking_rules(), None), (probabilistic_blocking_rules(), self.threshold)]
        found = [self._score(table, rules, threshold, is_new) for rules, threshold in passes]
        pairs = pd.concat(found, ignore_index=True).drop_duplicates(["identity_key_l", "identity_key_r"])
        links = self._label(pairs.reset_index(drop=True), distinct)
        gammas = {c: "Int64" for c in links.columns if c.startswith("gamma_")}
        return pd.concat([copies, links.astype(gammas)], ignore_index=True)

    def _score(
        self, table: pa.Table, rules: list[Any], threshold: float | None, is_new: np.ndarray | None = None
    ) -> pd.DataFrame:
        """Splink's scores of the pairs the rules find (each pass on its own connection and cache).

        With `is_new`, only pairs with a new record in them (Splink's `predict_between` and `predict_within`).
        """
        db_api = DuckDBAPI(duckdb.connect())
        settings = dict(self.model_, blocking_rules_to_generate_predictions=rules)
        linker = Linker(db_api.register(table), settings, log_level=None)
        gammas = ", ".join(f"gamma_{c.create_output_column_name()}" for c in comparisons())
        if is_new is None:
            scored = [linker.inference.predict(threshold_match_probability=threshold, warning_mode="never")]
        else:
            scored = _predict_new(linker, db_api, table, is_new, threshold)
        # Keys in order (smaller left), as a full run's dedupe gives them; every comparison is symmetric.
        pairs = db_api.duckdb_con.execute(
            " UNION ALL ".join(
                "SELECT least(identity_key_l, identity_key_r) AS identity_key_l,"
                " greatest(identity_key_l, identity_key_r) AS identity_key_r,"
                f" match_weight, match_probability, {gammas} FROM {frame.physical_name}"
                for frame in scored
            )
        ).df()
        db_api.duckdb_con.close()
        return pairs

    def _label(self, pairs: pd.DataFrame, records: pd.DataFrame) -> pd.DataFrame:
        """Give each pair its kind: the strongest deterministic rule that holds, else probabilistic."""
        exact = {c: pairs[f"gamma_{c}"].to_numpy() == _exact_gamma(c) for c in DETERMINISTIC_RULES}
        kind = np.full(len(pairs), None, dtype=object)
        kind[pairs["match_probability"].to_numpy() >= self.threshold] = "probabilistic"
        # Loyalty cards are held by one person; an email or phone may be a household's, so those links
        # need the two records not to conflict (checked only where such a link could be made).
        shared = [c for c in DETERMINISTIC_RULES if c != "loyalty_number"]
        check = np.flatnonzero(np.logical_or.reduce([exact[c] for c in shared]))
        position = pd.Series(np.arange(len(records)), index=records["identity_key"].to_numpy())
        left = position.reindex(pairs["identity_key_l"].iloc[check]).to_numpy()
        right = position.reindex(pairs["identity_key_r"].iloc[check]).to_numpy()
        needed = np.union1d(left, right)
        persons = dict(zip(needed.tolist(), people(records.iloc[needed]), strict=True))
        clash = np.zeros(len(pairs), dtype=bool)
        clash[check] = [
            conflict(persons[i], persons[j]) is not None for i, j in zip(left, right, strict=True)
        ]
        for rule in reversed(DETERMINISTIC_RULES):
            kind[exact[rule] if rule == "loyalty_number" else exact[rule] & ~clash] = rule
        out = pairs.assign(kind=pd.Series(kind, dtype="string"))
        out = out[out["kind"].notna()].reset_index(drop=True)
        return out[
            [
                "identity_key_l",
                "identity_key_r",
                "kind",
                *[c for c in pairs.columns if c.startswith(("match_", "gamma_"))],
            ]
        ]

    def get_params(self) -> dict[str, Any]:
        """The constructor parameters (as scikit-learn's `get_params`)."""
        names = (
            "threshold",
            "seed",
            "u_max_pairs",
            "em_max_pairs",
            "m_floor",
            "min_training_records",
        )
        return {name: getattr(self, name) for name in names}

    def to_json(self) -> dict[str, Any]:
        """The fitted matcher as JSON: its parameters, fingerprint and the Splink model."""
        return {
            "format": "tessera-identity-matcher/1",
            "params": self.get_params(),
            "fingerprint": self.fingerprint_,
            "n_training_records": self.n_training_records_,
            "trained": self.trained_,
            "splink_model": self.model_,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> IdentityMatcher:
        """A fitted matcher from `to_json` output."""
        matcher = cls(**data["params"])
        matcher.model_ = data["splink_model"]
        matcher.fingerprint_ = data["fingerprint"]
        matcher.n_training_records_ = data["n_training_records"]
        matcher.trained_ = data["trained"]
        return matcher


def _predict_new(
    linker: Linker, db_api: DuckDBAPI, table: pa.Table, is_new: np.ndarray, threshold: float | None
) -> list[Any]:
    """New records scored against the old ones and among themselves, with the model's blocking rules."""
    new = db_api.register(table.filter(pa.array(is_new)))
    old = db_api.register(table.filter(pa.array(~is_new)))
    # Term frequencies from all records, as a full run computes them (predict_between requires them).
    for column in _tf_columns(linker.misc.save_model_to_json()):
        linker.table_management.compute_tf_table(column)
    options = {"threshold_match_probability": threshold, "warning_mode": "never"}
    return [
        linker.inference.predict_between(new, old, **options),
        linker.inference.predict_within(new, **options),
    ]


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


def _exact_gamma(output_column: str) -> int:
    """The gamma value of a comparison's 'exact' level (the first level after the null level)."""
    comparison = next(c for c in comparisons() if c.create_output_column_name() == output_column)
    return len(comparison.create_comparison_levels()) - 2


_SCHEMA = pa.schema([(c, pa.date32() if c == "birth_date" else pa.string()) for c in MATCH_COLUMNS])


def _for_splink(records: pd.DataFrame) -> pa.Table:
    # A fixed Arrow schema: dates stay dates, and an all-null column still has its type.
    return pa.Table.from_pandas(
        records[MATCH_COLUMNS].reset_index(drop=True), schema=_SCHEMA, preserve_index=False
    )
