"""The matcher as an estimator: fit learns from data, predict links duplicates, the model round-trips."""

from __future__ import annotations

import json
import random
from datetime import date, timedelta

import pandas as pd

from features.identity.match import (
    IdentityMatcher,
    MatchPlan,
    block_pairs,
    collapse_identical,
    comparisons,
    covering_sessions,
    distinct_records,
    model_fingerprint,
    plan_matching,
)
from features.identity.resolve import load_matcher
from features.identity.standardise import standardise_records

FIRST = ["anna", "ben", "carl", "dina", "emil", "fay", "gus", "hana", "ivan", "jill", "kurt", "lena"]
LAST = ["smith", "jones", "patel", "khan", "brown", "evans", "ward", "price", "hill", "cole", "reid", "moss"]


def _people(n: int, copies: int, seed: int = 7) -> pd.DataFrame:
    """n people, each written `copies` times with a little noise; identity_key `p<person>-<copy>`."""
    rng = random.Random(seed)
    rows = []
    for p in range(n):
        first, last = rng.choice(FIRST), rng.choice(LAST) + rng.choice(["", "er", "son", "ley", "ton"])
        born = date(1950, 1, 1) + timedelta(days=rng.randrange(20_000))
        street, postcode = (
            f"{rng.randrange(1, 200)} {rng.choice(LAST)} road",
            f"LS{rng.randrange(1, 30)} {rng.randrange(1, 9)}AB",
        )
        for c in range(copies):
            typo = c == 1 and len(last) > 4
            rows.append(
                {
                    "identity_key": f"p{p}-{c}",
                    "first_name": first,
                    "last_name": last[:2] + last[3] + last[2] + last[4:] if typo else last,
                    "full_name": None,
                    "email": f"{first}.{last}{p}@example.com" if c != 2 else None,
                    "phone": None,
                    "street": street,
                    "postcode": postcode,
                    "city": "leeds",
                    "country": "GB",
                    "birth_date": born if c != 1 else None,
                    "gender": None,
                    "loyalty_number": None,
                }
            )
    records, _ = standardise_records(pd.DataFrame(rows), "GB")
    return records


def test_fit_predict_and_round_trip() -> None:
    records = _people(500, 3)
    matcher = IdentityMatcher(u_max_pairs=2e5, em_max_pairs=2e5, min_training_records=1000)
    assert not hasattr(matcher, "model_")
    assert matcher.fit(records) is matcher
    assert matcher.trained_ and matcher.n_training_records_ == 1500
    assert 0 < matcher.model_["probability_two_random_records_match"] < 0.01

    links = matcher.predict(records)
    person = links["identity_key_l"].str.split("-").str[0]
    assert (person == links["identity_key_r"].str.split("-").str[0]).mean() > 0.99  # precise
    linked = pd.concat([links["identity_key_l"], links["identity_key_r"]]).str.split("-").str[0]
    assert linked.nunique() >= 0.95 * 500 and len(links) >= 2 * 500  # every person's copies are joined
    assert set(links["kind"]) <= {"email", "probabilistic"}

    again = IdentityMatcher.from_json(matcher.to_json())
    assert again.get_params() == matcher.get_params()
    pd.testing.assert_frame_equal(again.predict(records), links)


def test_identical_records_with_an_identifier_are_scored_once() -> None:
    base = {"first_name": "ann", "last_name": "lee", "email": "ann@lee.com", "phone": None, "street": None,
            "postcode": None, "city": None, "country": None, "birth_date": None, "gender": None,
            "loyalty_number": None, "full_name": None}  # fmt: skip
    bare = {**base, "email": None}
    raw = pd.DataFrame(
        [{**base, "identity_key": k} for k in ("g3", "g1", "g2")]
        + [{**bare, "identity_key": k} for k in ("b1", "b2")]
    )
    records, _ = standardise_records(raw, "GB")
    distinct, copies = collapse_identical(records)
    assert sorted(distinct["identity_key"]) == ["b1", "b2", "g1"]  # bare names are never collapsed
    assert copies[["identity_key_l", "identity_key_r"]].values.tolist() == [["g1", "g3"], ["g1", "g2"]]
    assert set(copies["kind"]) == {"identical"}


def test_a_saved_model_is_reused_only_when_trained_and_built_for_the_same_attributes(tmp_path) -> None:
    records = _people(30, 2)
    plan = plan_matching(distinct_records(records))
    saved = {"format": "tessera-identity-matcher/2", "params": IdentityMatcher(threshold=0.95).get_params(),
             "plan": plan.to_json(), "fingerprint": model_fingerprint(plan), "n_training_records": 5000,
             "trained": True, "splink_model": {"comparisons": []}}  # fmt: skip
    path = tmp_path / "model.json"
    path.write_text(json.dumps(saved))
    loaded = load_matcher(path, plan)
    assert loaded.threshold == 0.95 and loaded.plan_ == plan
    assert load_matcher(path, None).plan_ == plan  # the plan not checked: the saved one
    # The same model on records without emails: another plan, so it must be retrained.
    without_email = plan_matching(distinct_records(records.assign(email=None)))
    assert "email" not in without_email.attributes
    assert load_matcher(path, without_email) is None
    path.write_text(json.dumps({**saved, "fingerprint": "an older model"}))
    assert load_matcher(path, plan) is None
    assert load_matcher(path, None) is None  # comparisons changed in the code since: retrained all the same
    path.write_text(json.dumps({**saved, "trained": False}))
    assert load_matcher(path, plan) is None
    assert load_matcher(tmp_path / "absent.json", plan) is None


def test_without_any_strong_identifier_the_plan_uses_names_dates_and_addresses() -> None:
    # The crash case of issue 9: no email, phone, card or id; 1,200 distinct records, so EM is trained.
    records = _people(600, 3).assign(email=None)
    matcher = IdentityMatcher(u_max_pairs=2e5, em_max_pairs=2e5).fit(records)
    plan = matcher.plan_
    assert plan.identifiers == () and matcher.trained_
    assert not {"email", "phone", "loyalty_number", "national_id", "middle_name"} & set(plan.attributes)
    assert {c.create_output_column_name() for c in comparisons(plan)} == {"name", "birth_date", "address"}
    assert all("email" not in rule for rule in (*plan.blocking, *plan.training))
    assert 0 < matcher.model_["probability_two_random_records_match"] < 0.01
    links = matcher.predict(records)
    assert set(links["kind"]) == {"probabilistic"}
    person = links["identity_key_l"].str.split("-").str[0]
    assert (person == links["identity_key_r"].str.split("-").str[0]).mean() > 0.99
    assert len(links) >= 600  # at least the two copies with a birth date of every person


def test_em_sessions_stop_once_every_comparison_has_been_estimated() -> None:
    attributes = ("first_name", "last_name", "first_name_formal", "birth_date", "email", "street", "postcode")
    plan = MatchPlan(attributes, ("email",), (), (), True)
    retailer = [("birth_date",), ("postcode", "last_name"), ("first_name", "last_name"), ("email",)]
    # Blocking on birth date estimates name, email and address; postcode + last name then birth date.
    assert covering_sessions(plan, retailer) == (("birth_date",), ("postcode", "last_name"))
    # Names alone never estimate the name comparison: the email session is needed for it.
    names_first = [("first_name", "last_name"), ("postcode", "last_name"), ("email",)]
    assert covering_sessions(plan, names_first) == tuple(names_first)
    # No order of these covers birth date and address together: every session is kept.
    assert covering_sessions(plan, [("birth_date", "postcode")]) == (("birth_date", "postcode"),)


def test_a_national_id_links_deterministically_unless_the_records_conflict() -> None:
    base = {"last_name": "lee", "street": "1 mill ln", "postcode": "LS1 1AA", "national_id": "h1"}
    raw = pd.DataFrame(
        [
            {**base, "identity_key": "a", "first_name": "ann", "birth_date": date(1980, 5, 1)},
            {**base, "identity_key": "b", "first_name": "anne", "birth_date": None, "street": None},
            # The same id typed onto a relative's record: another first name and birth date.
            {**base, "identity_key": "c", "first_name": "tom", "birth_date": date(1950, 2, 3)},
            {"identity_key": "d", "first_name": "max", "last_name": "roe", "national_id": "h2"},
            # The same id and birth date, the first name replaced (as registries' clerks do): one person.
            {**base, "identity_key": "e", "first_name": "sarsha", "birth_date": date(1980, 5, 1)},
        ]
    )
    records, _ = standardise_records(raw, "GB")
    matcher = IdentityMatcher().fit(records)
    assert matcher.plan_.identifiers == ("national_id",)
    links = matcher.predict(records)
    pairs = {
        (left, right): k for left, right, k in links[["identity_key_l", "identity_key_r", "kind"]].to_numpy()
    }
    assert pairs.get(("a", "b")) == "national_id" and pairs.get(("a", "e")) == "national_id"
    assert pairs.get(("a", "c")) != "national_id" and pairs.get(("c", "e")) != "national_id"


def test_a_middle_name_is_compared_only_when_records_have_one() -> None:
    records = _people(20, 2)
    assert "middle_name" not in {c.create_output_column_name() for c in comparisons(plan_matching(records))}
    with_middle = records.assign(middle_name=["j", "john"] * 20)
    plan = plan_matching(with_middle)
    assert "middle_name" in {c.create_output_column_name() for c in comparisons(plan)}
    assert model_fingerprint(plan) != model_fingerprint(plan_matching(records))


def test_records_without_any_person_attribute_give_no_links() -> None:
    # An order-lines export with customer numbers only: nothing to match on, nothing to crash on.
    records, _ = standardise_records(pd.DataFrame({"identity_key": ["a", "b", "c"]}), "GB")
    matcher = IdentityMatcher().fit(records)
    assert matcher.plan_.attributes == () and not matcher.trained_
    links = matcher.predict(records)
    assert links.empty and {"identity_key_l", "identity_key_r", "kind", "match_weight"} <= set(links.columns)


def test_block_pairs_counts_the_pairs_of_each_block_and_never_joins_nulls() -> None:
    records = pd.DataFrame(
        {
            "last_name": ["smith", "smith", "smith", "jones", "jones", "lee", None, None],
            "postcode": ["A1", "A1", "A1", "B2", "B2", "A1", "A1", "A1"],
        }
    )
    # smith/A1: three records, three pairs; jones/B2: one pair; lee and the null names: none.
    assert block_pairs(records, ("last_name", "postcode")) == 4
    assert block_pairs(records, ("last_name",)) == 4
    assert block_pairs(records, ("postcode",)) == 6 * 5 // 2 + 1  # A1 holds six records, B2 two
    assert block_pairs(records.iloc[:0], ("last_name",)) == 0


def test_a_person_whose_names_and_postcode_were_retyped_is_found_by_birth_date_and_house_number() -> None:
    # No rule on names or postcodes pairs these two (FEBRL's rec-337): only the birth date and the house number.
    moved = pd.DataFrame(
        [
            {
                "identity_key": "x-0",
                "first_name": "kyle",
                "last_name": "bullivant",
                "street": "4 woolrych st",
            },
            {
                "identity_key": "x-1",
                "first_name": "kyale",
                "last_name": "bullivnt",
                "street": "4 woolrych st",
            },
        ]
    ).assign(postcode=["LS3 9AB", "LS9 3AB"], birth_date=date(1959, 5, 23), country="GB")
    extra, _ = standardise_records(moved, "GB")
    records = pd.concat([_people(600, 3).assign(email=None), extra], ignore_index=True)
    matcher = IdentityMatcher(u_max_pairs=2e5, em_max_pairs=2e5).fit(records)
    assert ("birth_date", "house_number") in matcher.plan_.blocking
    links = matcher.predict(records)
    assert len(links[(links["identity_key_l"] == "x-0") & (links["identity_key_r"] == "x-1")]) == 1
