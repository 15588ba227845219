"""Membership of each kind of rule on the hand-written profile (activation_fixtures), counted by hand."""

from __future__ import annotations

from pathlib import Path

import pytest
from activation_fixtures import NOW, scores, write_profile

from activation.attributes import compute_attributes
from activation.membership import refresh
from activation.segments import SegmentSpec, load_segments, plan_of
from activation.settings import EXAMPLES
from activation.store import connect
from activation.triggers import load_triggers


def members(tmp_path: Path, rule: str, score: bool = True) -> set[str]:
    plan = plan_of([SegmentSpec(name="s", rule=rule)])
    workspace = write_profile(tmp_path)
    attributes = compute_attributes(workspace, plan.counts, NOW, scores() if score else None)
    con = connect(tmp_path / "m.sqlite")
    refresh(con, plan, (), attributes, NOW)
    return {r[0] for r in con.execute("SELECT customer_id FROM members WHERE segment = 's'")}


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("country = 'GB'", {"A", "B", "C"}),  # golden record
        ("lower(city) LIKE 'l%'", {"A"}),
        ("loyalty_tier IS NOT NULL", {"B", "D"}),
        ("frequency >= 2", {"A", "C"}),  # computed traits
        ("monetary > 100", {"A"}),
        ("recency_days > 90", {"B"}),
        ("tenure_days <= 30", {"C"}),
        ("uses_store AND uses_online", {"A"}),
        ("n_channels = 0", {"D"}),
        ("risk_band = 'high'", {"A", "B"}),  # model outputs
        ("value_band = 'high'", {"A"}),
        ("value_band = 'medium'", {"B"}),
        ("churn_probability BETWEEN 0.05 AND 0.75", {"A", "C"}),
        ("top_category IN ('Shoes', 'Hats')", {"B", "C"}),
        ("consent_email", {"A", "C"}),  # consent
        ("NOT consent_profiling", {"D"}),
        ("events_in('product_view', 240) >= 3", {"B"}),  # event windows
        ("events_in('product_view', 24 * 7) >= 1", {"B"}),
        ("views_in_category('Shoes', 24 * 11) >= 1", {"A", "B"}),  # A's view is 10.5 days old
        ("views_in_category('Shoes', 240) >= 1", {"B"}),
        (
            "hours_since('add_to_cart') <= 24 AND coalesce(hours_since('purchase') > hours_since('add_to_cart'), true)",
            {"A"},
        ),
        ("hours_since('purchase_store') > 90 * 24", {"A", "B"}),  # A's store sale is 171 days old
    ],
)
def test_each_rule_kind_counts_its_members(tmp_path: Path, rule: str, expected: set[str]) -> None:
    assert members(tmp_path, rule) == expected


def test_without_scores_model_rules_match_nobody(tmp_path: Path) -> None:
    assert members(tmp_path, "risk_band = 'high' OR value_band IS NOT NULL", score=False) == set()


def test_other_segments_are_inlined(tmp_path: Path) -> None:
    plan = plan_of(
        [
            SegmentSpec(name="gb", rule="country = 'GB'"),
            SegmentSpec(name="gb_email", rule="in_segment('gb') AND consent_email"),
            SegmentSpec(name="not_gb", rule="NOT in_segment('gb')"),
        ]
    )
    workspace = write_profile(tmp_path)
    con = connect(tmp_path / "m.sqlite")
    summary = refresh(con, plan, (), compute_attributes(workspace, plan.counts, NOW, scores()), NOW)
    assert summary["members"] == {"gb": 3, "gb_email": 2, "not_gb": 1}


def test_the_shipped_segments_on_the_tiny_profile(tmp_path: Path) -> None:
    """at-risk high-value email: A; abandoned cart: A; lapsed in store browsing online: A and B (store sales 171
    and 149 days old, views 10 and 5 days old); new: C; VIP needs 3 orders: nobody."""
    plan = load_segments(EXAMPLES / "segments.yaml")
    triggers = load_triggers(EXAMPLES / "triggers.yaml", plan)
    workspace = write_profile(tmp_path)
    con = connect(tmp_path / "m.sqlite")
    summary = refresh(con, plan, triggers, compute_attributes(workspace, plan.counts, NOW, scores()), NOW)
    assert summary["members"] == {
        "at_risk_high_value_email": 1,
        "abandoned_cart": 1,
        "lapsed_store_browsing_online": 2,
        "new_customers": 1,
        "vip": 0,
    }
    # entries of segments with triggers go to the outbox in the same transaction
    decided = con.execute("SELECT trigger, customer_id FROM outbox ORDER BY trigger").fetchall()
    assert decided == [("cart_reminder", "A"), ("new_customers_file", "C"), ("winback_email", "A")]


def test_entries_and_exits_keep_their_reason(tmp_path: Path) -> None:
    plan = plan_of([SegmentSpec(name="s", rule="country = 'GB' AND consent_email")])
    workspace = write_profile(tmp_path)
    con = connect(tmp_path / "m.sqlite")
    refresh(con, plan, (), compute_attributes(workspace, plan.counts, NOW, scores()), NOW)
    workspace = write_profile(tmp_path, consent_email={"A": False, "B": True})
    summary = refresh(con, plan, (), compute_attributes(workspace, plan.counts, NOW, scores()), NOW)
    assert (summary["entries"], summary["exits"]) == (1, 1)
    changes = con.execute(
        "SELECT customer_id, kind, reason FROM changes WHERE origin = 'batch' ORDER BY id DESC LIMIT 2"
    ).fetchall()
    assert sorted(changes) == [
        ("A", "exit", "consent_email (now false)"),
        ("B", "entry", "consent_email (now true)"),
    ]
    # a refresh without changes records nothing
    again = refresh(con, plan, (), compute_attributes(workspace, plan.counts, NOW, scores()), NOW)
    assert (again["entries"], again["exits"]) == (0, 0)
