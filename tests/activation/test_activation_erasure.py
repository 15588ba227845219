"""Erasure reaches activation: members, history, outbox, dead letters, attributes and CSV exports."""

from __future__ import annotations

import csv
from pathlib import Path

from activation_fixtures import NOW, scores, write_profile

from activation.attributes import compute_attributes
from activation.erasure import erase_customers
from activation.membership import refresh
from activation.segments import SegmentSpec, plan_of
from activation.settings import exports_dir, membership_db
from activation.store import connect
from activation.triggers import TriggerSpec


def test_an_erased_customer_leaves_no_row_in_activation(tmp_path: Path) -> None:
    workspace = write_profile(tmp_path)
    plan = plan_of([SegmentSpec(name="gb", rule="country = 'GB'")])
    trigger = TriggerSpec(name="welcome", on_entry="gb", purpose="email", destination="file")
    con = connect(membership_db(workspace))
    refresh(con, plan, (trigger,), compute_attributes(workspace, plan.counts, NOW, scores()), NOW)
    con.execute(
        "INSERT INTO dead_letters (outbox_id, key, trigger, customer_id, at, error) VALUES (1, 'k', 'welcome', 'A', 'now', 'x')"
    )
    con.close()
    export = exports_dir(workspace) / "welcome.csv"
    export.parent.mkdir(parents=True)
    export.write_text("idempotency_key,customer_id\nk1,A\nk2,B\n", encoding="utf-8")

    removed = erase_customers(workspace, {"A"})

    assert removed["data/activation/membership.sqlite:members"] == 1
    assert removed["data/activation/membership.sqlite:attributes"] == 1
    assert removed["data/activation/exports/welcome.csv"] == 1
    con = connect(membership_db(workspace))
    for table in ("attributes", "members", "changes", "outbox", "dead_letters"):
        assert con.execute(f"SELECT count(*) FROM {table} WHERE customer_id = 'A'").fetchone() == (0,), table
    assert con.execute("SELECT count(*) FROM members").fetchone() == (2,)  # B and C stay
    with export.open() as handle:
        assert [row[1] for row in csv.reader(handle)] == ["customer_id", "B"]
