"""Live membership: on each /events call, only the rules that depend on events are evaluated again, for that
customer, in the same SQLite database the batch wrote — an indexed update and one indexed select.

The event updates the customer's row of the attributes table (the last time of each kind it counts as, the
windowed counts whose window it falls in); the live segments' compiled expressions (the same sqlglot trees
as the batch, written as SQLite SQL, prepared once and reused) are read back for that row; the entries and
exits, their reasons and the outbox rows they decide commit in one transaction. The next batch refresh
replaces the attributes table with its own computation of the same windows, so an event the export later
carries is never counted twice. Counts do not age between refreshes (an event leaves a window at the next
batch), which errs towards keeping a customer in a segment a little longer.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import duckdb
from sqlglot import exp

from activation.catalogue import last_column
from activation.membership import bits_column, evaluation
from activation.rules import reason
from activation.segments import Plan
from activation.store import Change, connect, iso, record_changes
from activation.triggers import TriggerSpec
from tessera.core.settings import Workspace
from tessera.core.timeutil import as_utc

log = logging.getLogger(__name__)

# The event kinds a live event counts as (a purchase through /events is an online one).
KINDS = {
    "purchase": ("purchase", "purchase_online"),
    "add_to_cart": ("add_to_cart",),
    "remove_from_cart": ("remove_from_cart",),
    "product_view": ("product_view",),
}


def categories(workspace: Workspace) -> dict[str, str]:
    """SKU → category from the product catalogue, for views_in_category."""
    folder = workspace.canonical_table("products")
    if not any(folder.glob("*.parquet")):
        return {}
    with duckdb.connect() as con:
        rows = con.execute(
            f"SELECT CAST(sku AS VARCHAR), first(category) FROM read_parquet('{folder / '*.parquet'}', "
            "union_by_name = true) WHERE sku IS NOT NULL GROUP BY 1"
        ).fetchall()
    return {sku: category for sku, category in rows if category is not None}


class LiveSegments:
    """The live segments of one plan over one membership database: `on_event` per /events call."""

    def __init__(
        self,
        path: Path,
        plan: Plan,
        triggers: tuple[TriggerSpec, ...],
        sku_categories: dict[str, str],
    ) -> None:
        self.plan = Plan(plan.live)
        self.triggers = tuple(t for t in triggers if self.plan.get(t.segment) is not None)
        self.counts = sorted(self.plan.counts, key=lambda c: c.column)
        self.categories = sku_categories
        self.con: sqlite3.Connection = connect(path)
        row = exp.select("*").from_("attributes").where(exp.column("customer_id").eq(exp.Placeholder()))
        self.select = evaluation(self.plan, row.subquery("r"), "sqlite")
        self.names = [s.name for s in self.plan.segments]
        self.bits = ", ".join(bits_column(s) for s in self.plan.segments)
        self.read_bits = f"SELECT {self.bits} FROM attributes WHERE customer_id = ?"
        self.write_bits = exp.update(
            "attributes",
            {bits_column(s): exp.Placeholder() for s in self.plan.segments},
            where=exp.column("customer_id").eq(exp.Placeholder()),
        ).sql("sqlite")
        # Written once per shape, not per event: generating SQL from a tree costs milliseconds.
        self._updates: dict[tuple[str, ...], str] = {}
        self._reasons: dict[tuple[str, int | None, int], str] = {}

    def _update(
        self, kinds: Sequence[str], sku_list: Sequence[str], at: float, now: float
    ) -> tuple[str, list]:
        """The UPDATE of the customer's attributes row for one event, and its parameters."""
        values: dict[str, exp.Expression] = {}
        params: list[object] = []
        for kind in kinds:
            column = last_column(kind)
            values[column] = exp.func(
                "max", exp.func("coalesce", exp.column(column), exp.Literal.number(0)), exp.Placeholder()
            )
            params.append(at)
        viewed = {self.categories.get(s) for s in sku_list}
        for count in self.counts:
            if count.kind not in kinds or at <= now - count.hours * 3600:
                continue
            if count.category is not None and count.category not in viewed:
                continue
            column = exp.column(count.column)
            values[count.column] = exp.Add(
                this=exp.func("coalesce", column, exp.Literal.number(0)), expression=exp.Literal.number(1)
            )
        return exp.update("attributes", values, where=exp.column("customer_id").eq(exp.Placeholder())).sql(
            "sqlite"
        ), params

    def on_event(
        self, customer_id: str, event_type: str, skus: Sequence[str], at: datetime, now: datetime
    ) -> list[Change]:
        """Apply one live event; the entries and exits it caused (stored, with their outbox rows)."""
        kinds = KINDS.get(event_type, ())
        if not kinds or not self.plan.segments:
            return []
        moment, when = as_utc(now).timestamp(), as_utc(at).timestamp()
        statement, params = self._update(kinds, skus, when, moment)
        con = self.con
        con.execute("BEGIN IMMEDIATE")
        try:
            before = con.execute(self.read_bits, [customer_id]).fetchone()
            if before is None:  # a customer the last refresh did not know: the next refresh will
                con.execute("COMMIT")
                return []
            con.execute(statement, [*params, customer_id])
            row = con.execute(self.select, [moment, customer_id]).fetchone()
            current = {
                r[0]
                for r in con.execute(
                    "SELECT segment FROM members WHERE customer_id = ?", [customer_id]
                ).fetchall()
            }
            changes: list[Change] = []
            stamp = iso(as_utc(now))
            new_bits: dict[str, int] = {}
            for i, segment in enumerate(self.plan.segments):
                member, bits = bool(row[1 + 2 * i]), int(row[2 + 2 * i])
                new_bits[bits_column(segment)] = bits
                was = segment.name in current
                if member != was:
                    prior = None if before[i] is None else int(before[i])
                    key = (segment.name, prior, bits)
                    why = self._reasons.get(key)
                    if why is None:
                        why = self._reasons[key] = reason(segment.rule, prior, bits)
                    changes.append((segment.name, customer_id, "entry" if member else "exit", stamp, why))
            con.execute(self.write_bits, [*new_bits.values(), customer_id])
            if changes:
                record_changes(con, changes, self.triggers, "live")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return changes

    def close(self) -> None:
        self.con.close()
