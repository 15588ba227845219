"""Rules: invalid ones are refused before anything runs, naming the segment and the position."""

from __future__ import annotations

import pytest

from activation.rules import RuleError, check_rules
from activation.segments import SegmentSpec, plan_of


def refused(rules: dict[str, str]) -> str:
    with pytest.raises(RuleError) as caught:
        check_rules(rules)
    return str(caught.value)


def test_an_unknown_attribute_names_the_segment_and_the_position() -> None:
    message = refused({"big": "frequency >= 3 AND\n  shoe_size > 40"})
    assert "segment 'big'" in message
    assert "unknown attribute `shoe_size`" in message
    assert "line 2, column 11" in message


def test_a_type_error_names_the_segment() -> None:
    message = refused({"odd": "risk_band > 3"})
    assert "segment 'odd'" in message and "type error" in message


def test_a_boolean_compared_with_text_is_a_type_error() -> None:
    assert "type error" in refused({"odd": "consent_email = 'yes'"})


def test_a_syntax_error_names_the_segment_and_where() -> None:
    message = refused({"broken": "frequency >= AND"})
    assert "segment 'broken'" in message and "syntax error at line 1" in message


def test_a_cycle_between_segments_is_refused() -> None:
    message = refused(
        {"a": "in_segment('b') AND frequency > 1", "b": "in_segment('c')", "c": "in_segment('a')"}
    )
    assert "segment 'a'" in message and "cycle: a -> b -> c -> a" in message


def test_a_segment_naming_an_undeclared_one_is_refused() -> None:
    assert "names no declared segment" in refused({"a": "in_segment('nope')"})


def test_unknown_functions_and_event_kinds_are_refused() -> None:
    assert "unknown function shell()" in refused({"x": "shell('rm') = 1"})
    assert "unknown event kind 'teleport'" in refused({"x": "events_in('teleport', 24) > 0"})
    assert "takes a literal number" in refused({"x": "events_in('purchase', frequency) > 0"})


def test_a_rule_that_is_not_a_condition_is_refused() -> None:
    assert "expected a condition" in refused({"x": "frequency + 1"})


def test_subqueries_and_other_sql_are_outside_the_language() -> None:
    assert "not part of the rule language" in refused({"x": "frequency = (SELECT 1)"})
    assert "IN takes a list of values" in refused({"x": "frequency IN (SELECT 1)"})


def test_a_segment_using_a_live_one_is_live_and_inherits_its_counts() -> None:
    plan = plan_of(
        [
            SegmentSpec(name="browsers", rule="events_in('product_view', 48) >= 2"),
            SegmentSpec(name="rich_browsers", rule="in_segment('browsers') AND value_band = 'high'"),
            SegmentSpec(name="rich", rule="value_band = 'high'"),
        ]
    )
    assert [s.name for s in plan.live] == ["browsers", "rich_browsers"]
    assert {c.column for c in plan.get("rich_browsers").rule.counts} == {"n_product_view_48h"}
