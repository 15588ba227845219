"""Membership of every segment for every customer, computed with DuckDB, stored in SQLite with its history.

`refresh` evaluates every rule over the attributes table in one DuckDB query (member or not, and which of
the rule's conditions held), compares with the stored members, and in one SQLite transaction replaces the
attributes, records each entry and exit with its time and reason (the conditions that changed) and writes
the activations the triggers decide to the outbox. The batch supersedes live state: the attributes the live
path updated are replaced by the batch computation of the same window, so no event is counted twice.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import datetime
from typing import Any

import duckdb
import numpy as np
import pandas as pd
from sqlglot import exp

from activation.catalogue import ATTRIBUTES, NOW
from activation.rules import reason
from activation.segments import Plan, Segment
from activation.store import Change, iso, record_changes
from activation.triggers import TriggerSpec
from tessera.core.timeutil import as_utc


def member_column(segment: Segment) -> str:
    return f"member_{segment.name}"


def bits_column(segment: Segment) -> str:
    return f"bits_{segment.name}"


def evaluation(plan: Plan, source: exp.Expression, dialect: str) -> str:
    """SELECT customer_id, member_<s>, bits_<s> ... over `source` with the moment as `now_epoch` (parameter)."""
    rows = exp.select(exp.Star(), exp.alias_(exp.Placeholder(), NOW)).from_(source)
    columns: list[exp.Expression] = [exp.column("customer_id")]
    for segment in plan.segments:
        columns.append(exp.alias_(segment.member_expression(), member_column(segment)))
        columns.append(exp.alias_(segment.bits_expression(), bits_column(segment)))
    return exp.select(*columns).from_(rows.subquery("a")).sql(dialect)


def evaluate(plan: Plan, attributes: pd.DataFrame, now: datetime) -> pd.DataFrame:
    """Every customer's membership and condition bits, by DuckDB."""
    con = duckdb.connect()
    con.register("attributes", attributes)
    frame = con.execute(
        evaluation(plan, exp.to_table("attributes"), "duckdb"), [as_utc(now).timestamp()]
    ).df()
    con.close()
    return frame


def _sqlite_type(column: str, dtype: Any) -> str:
    kind = ATTRIBUTES.get(column)
    if kind == "text" or (kind is None and pd.api.types.is_object_dtype(dtype)):
        return "TEXT"
    if kind == "bool" or column.startswith("bits_"):
        return "INTEGER"
    return "REAL"


def _write_attributes(con: sqlite3.Connection, frame: pd.DataFrame) -> None:
    columns = list(frame.columns)
    declared = ", ".join(
        f'"{c}" {"TEXT PRIMARY KEY" if c == "customer_id" else _sqlite_type(c, frame[c].dtype)}'
        for c in columns
    )
    con.execute("DROP TABLE IF EXISTS attributes")
    con.execute(f"CREATE TABLE attributes ({declared})")
    values = frame.astype(object).where(frame.notna(), None)
    for column in values.columns:
        if values[column].map(type).isin([bool, np.bool_]).any():
            values[column] = values[column].map(lambda v: None if v is None else int(v))
    marks = ", ".join("?" for _ in columns)
    con.executemany(f"INSERT INTO attributes VALUES ({marks})", values.itertuples(index=False, name=None))


def _stored(con: sqlite3.Connection, plan: Plan) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    members = pd.read_sql_query("SELECT segment, customer_id FROM members", con)
    present = {row[1] for row in con.execute("PRAGMA table_info(attributes)").fetchall()}
    wanted = [bits_column(s) for s in plan.segments if bits_column(s) in present]
    bits = (
        pd.read_sql_query(f"SELECT customer_id, {', '.join(wanted)} FROM attributes", con) if wanted else None
    )
    return members, bits


def diff(
    plan: Plan, evaluated: pd.DataFrame, members: pd.DataFrame, old_bits: pd.DataFrame | None, at: str
) -> list[Change]:
    """Entries and exits of every segment between the stored members and the new evaluation, with reasons."""
    changes: list[Change] = []
    before = old_bits.set_index("customer_id") if old_bits is not None else None
    by_segment = members.groupby("segment")["customer_id"].agg(set).to_dict()
    ids = evaluated["customer_id"].to_numpy()
    position = {c: i for i, c in enumerate(ids)}
    for segment in plan.segments:
        now_in = evaluated[member_column(segment)].to_numpy(bool)
        new = set(ids[now_in])
        old = by_segment.get(segment.name, set())
        bits = evaluated[bits_column(segment)].to_numpy()
        column = bits_column(segment)
        old_column = before[column] if before is not None and column in before.columns else None
        memo: dict[tuple[int | None, int], str] = {}
        for kind, who in (("entry", sorted(new - old)), ("exit", sorted(old - new))):
            for customer in who:
                i = position.get(customer)
                after = int(bits[i]) if i is not None else 0
                prior = old_column.get(customer) if old_column is not None else None
                prior = None if prior is None or pd.isna(prior) else int(prior)
                key = (prior, after)
                if key not in memo:
                    memo[key] = reason(segment.rule, prior, after)
                text = memo[key] if i is not None else "the customer is no longer in the profile"
                changes.append((segment.name, customer, kind, at, text))
    return changes


def refresh(
    con: sqlite3.Connection,
    plan: Plan,
    triggers: tuple[TriggerSpec, ...],
    attributes: pd.DataFrame,
    now: datetime,
) -> dict[str, Any]:
    """Recompute every segment's membership from `attributes` as of `now`; store changes and the outbox."""
    started = time.perf_counter()
    evaluated = evaluate(plan, attributes, now)
    members, old_bits = _stored(con, plan)
    at = iso(as_utc(now))
    changes = diff(plan, evaluated, members, old_bits, at)
    table = attributes.merge(
        evaluated[["customer_id", *[bits_column(s) for s in plan.segments]]], on="customer_id"
    )
    con.execute("BEGIN IMMEDIATE")
    try:
        _write_attributes(con, table)
        entries, exits, decided = record_changes(con, changes, triggers, "batch")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    counts = {s.name: int(evaluated[member_column(s)].sum()) for s in plan.segments}
    return {
        "customers": len(attributes),
        "members": counts,
        "entries": entries,
        "exits": exits,
        "activations": decided,
        "seconds": round(time.perf_counter() - started, 2),
    }


def members_of(con: sqlite3.Connection, segment: str, offset: int, limit: int) -> tuple[int, list[str]]:
    """A page of a segment's members (by customer id) and their total."""
    total = con.execute("SELECT count(*) FROM members WHERE segment = ?", [segment]).fetchone()[0]
    rows = con.execute(
        "SELECT customer_id FROM members WHERE segment = ? ORDER BY customer_id LIMIT ? OFFSET ?",
        [segment, limit, offset],
    ).fetchall()
    return int(total), [r[0] for r in rows]


def segments_of(con: sqlite3.Connection, customer_id: str) -> list[str]:
    """The segments a customer is a member of."""
    rows = con.execute(
        "SELECT segment FROM members WHERE customer_id = ? ORDER BY segment", [customer_id]
    ).fetchall()
    return [r[0] for r in rows]


def counts_of(con: sqlite3.Connection) -> dict[str, int]:
    return dict(con.execute("SELECT segment, count(*) FROM members GROUP BY segment").fetchall())
