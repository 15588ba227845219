"""The live path on the hand-written profile: an event changes only the live segments, at once, and the next
batch refresh of the same window supersedes the live state (nothing counted twice)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
from activation_fixtures import NOW, scores, write_profile

from activation.attributes import compute_attributes
from activation.live import LiveSegments, categories
from activation.membership import refresh, segments_of
from activation.segments import SegmentSpec, plan_of
from activation.store import connect
from activation.triggers import TriggerSpec

SEGMENTS = [
    SegmentSpec(
        name="abandoned_cart",
        rule="hours_since('add_to_cart') <= 24 AND coalesce(hours_since('purchase') > hours_since('add_to_cart'), true)",
    ),
    SegmentSpec(name="shoe_browsers", rule="views_in_category('Shoes', 48) >= 2"),
    SegmentSpec(name="gb", rule="country = 'GB'"),
]
TRIGGER = TriggerSpec(name="remind", on_entry="abandoned_cart", purpose="email", destination="file")


def setup(tmp_path: Path):
    plan = plan_of(SEGMENTS)
    workspace = write_profile(tmp_path)
    path = tmp_path / "m.sqlite"
    con = connect(path)
    refresh(con, plan, (TRIGGER,), compute_attributes(workspace, plan.counts, NOW, scores()), NOW)
    return plan, workspace, con, LiveSegments(path, plan, (TRIGGER,), categories(workspace))


def test_a_purchase_exits_abandoned_cart_and_an_add_to_cart_enters(tmp_path: Path) -> None:
    plan, _, con, live = setup(tmp_path)
    assert [s.name for s in live.plan.segments] == ["abandoned_cart", "shoe_browsers"]
    assert "abandoned_cart" in segments_of(con, "A")
    later = NOW + timedelta(minutes=5)
    changes = live.on_event("A", "purchase", ["S2"], later, later)
    assert [(c[0], c[1], c[2]) for c in changes] == [("abandoned_cart", "A", "exit")]
    assert "now false" in changes[0][4]
    assert "abandoned_cart" not in segments_of(con, "A")
    changes = live.on_event("C", "add_to_cart", ["S1"], later, later)
    assert [(c[0], c[2]) for c in changes] == [("abandoned_cart", "entry")]
    assert segments_of(con, "C") == ["abandoned_cart", "gb"]
    # the entry decided an activation in the same transaction
    assert con.execute(
        "SELECT count(*) FROM outbox WHERE customer_id = 'C' AND trigger = 'remind'"
    ).fetchone() == (1,)
    # an event that changes nothing records nothing
    assert live.on_event("D", "product_view", ["S3"], later, later) == []


def test_views_count_by_category_and_the_batch_supersedes_live_counts(tmp_path: Path) -> None:
    plan, workspace, con, live = setup(tmp_path)
    later = NOW + timedelta(minutes=1)
    assert live.on_event("D", "product_view", ["S1"], later, later) == []  # one Shoes view
    assert live.on_event("D", "product_view", ["S2"], later, later) == []  # a Bags view does not count
    changes = live.on_event("D", "product_view", ["S1"], later, later)
    assert [(c[0], c[2]) for c in changes] == [("shoe_browsers", "entry")]
    # The export then carries the same two views: the batch recomputes the window, it does not add to it.
    interactions = pd.read_parquet(workspace.profile / "interactions.parquet")
    extra = pd.DataFrame(
        {
            "customer_id": ["D", "D"],
            "occurred_at": [pd.Timestamp(later)] * 2,
            "channel": ["web"] * 2,
            "event_type": ["product_view"] * 2,
            "sku": ["S1", "S1"],
        }
    )
    pd.concat([interactions, extra]).to_parquet(workspace.profile / "interactions.parquet", index=False)
    summary = refresh(
        con, plan, (TRIGGER,), compute_attributes(workspace, plan.counts, later, scores()), later
    )
    assert (summary["entries"], summary["exits"]) == (0, 0)
    count = con.execute(
        "SELECT "
        + plan.get("shoe_browsers").rule.counts.copy().pop().column
        + " FROM attributes WHERE customer_id = 'D'"
    ).fetchone()
    assert count == (2.0,)
