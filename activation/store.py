"""The SQLite database of activation (`data/activation/membership.sqlite`): attributes, members, their history,
and the outbox, so a membership change and the activations it decides commit in one transaction.

Tables:
- attributes: one row per customer (activation.attributes), with `bits_<segment>`, the conditions that held;
- members(segment, customer_id, since); changes(segment, customer_id, kind entry|exit, at, reason, origin);
- outbox: one row per decided activation (idempotency key unique), status pending → sent | suppressed_consent
  | suppressed_cap | dead, attempts and the next try; dead_letters: the last error of each dead one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from activation.triggers import TriggerSpec, idempotency_key

SCHEMA = """
CREATE TABLE IF NOT EXISTS members (
    segment TEXT NOT NULL, customer_id TEXT NOT NULL, since TEXT NOT NULL,
    PRIMARY KEY (segment, customer_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS members_by_customer ON members (customer_id);
CREATE TABLE IF NOT EXISTS changes (
    id INTEGER PRIMARY KEY, segment TEXT NOT NULL, customer_id TEXT NOT NULL, kind TEXT NOT NULL,
    at TEXT NOT NULL, reason TEXT NOT NULL, origin TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS changes_by_customer ON changes (customer_id);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, trigger TEXT NOT NULL, destination TEXT NOT NULL,
    purpose TEXT NOT NULL, customer_id TEXT NOT NULL, segment TEXT NOT NULL, kind TEXT NOT NULL,
    reason TEXT NOT NULL, created_at TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0, next_at REAL NOT NULL DEFAULT 0, sent_at REAL, detail TEXT);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (status, next_at);
CREATE INDEX IF NOT EXISTS outbox_sent ON outbox (customer_id, purpose, sent_at);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY, outbox_id INTEGER NOT NULL, key TEXT NOT NULL, trigger TEXT NOT NULL,
    customer_id TEXT NOT NULL, at TEXT NOT NULL, error TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
"""
Change = tuple[str, str, str, str, str]  # segment, customer_id, kind, at, reason


def connect(path: Path) -> sqlite3.Connection:
    """The database, created on first use; WAL so the service, the worker and a refresh share it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.executescript(SCHEMA)
    return con


def record_changes(
    con: sqlite3.Connection,
    changes: Iterable[Change],
    triggers: tuple[TriggerSpec, ...],
    origin: str,
) -> tuple[int, int, int]:
    """Members, history and the outbox for a list of changes (the caller holds the transaction).

    Returns (entries, exits, activations decided)."""
    changes = list(changes)
    entries = [(s, c, at) for s, c, kind, at, _ in changes if kind == "entry"]
    exits = [(s, c) for s, c, kind, _, _ in changes if kind == "exit"]
    con.executemany("DELETE FROM members WHERE segment = ? AND customer_id = ?", exits)
    con.executemany("INSERT OR REPLACE INTO members VALUES (?, ?, ?)", entries)
    con.executemany(
        "INSERT INTO changes (segment, customer_id, kind, at, reason, origin) VALUES (?, ?, ?, ?, ?, ?)",
        [(*change, origin) for change in changes],
    )
    by_event: dict[tuple[str, str], list[TriggerSpec]] = {}
    for trigger in triggers:
        by_event.setdefault((trigger.segment, trigger.kind), []).append(trigger)
    outbox = [
        (
            idempotency_key(t.name, customer, kind, segment, at),
            t.name,
            t.destination,
            t.purpose,
            customer,
            segment,
            kind,
            reason,
            at,
        )
        for segment, customer, kind, at, reason in changes
        for t in by_event.get((segment, kind), ())
    ]
    con.executemany(
        "INSERT OR IGNORE INTO outbox (key, trigger, destination, purpose, customer_id, segment, kind, reason, "
        "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        outbox,
    )
    add_counters(con, {"entries": len(entries), "exits": len(exits), "decided": len(outbox)})
    return len(entries), len(exits), len(outbox)


def add_counters(con: sqlite3.Connection, counts: dict[str, int]) -> None:
    """Add to the persistent counters (the Prometheus gauges of /metrics read them)."""
    con.executemany(
        "INSERT INTO counters VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
        [(name, value) for name, value in counts.items() if value],
    )


def counters(con: sqlite3.Connection) -> dict[str, int]:
    return dict(con.execute("SELECT name, value FROM counters").fetchall())


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")
