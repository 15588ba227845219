"""Erasure in activation's stores: the membership database (attributes, members, history, outbox, dead
letters) and the exported files under `data/activation/`. `serving.erasure.erase_person` calls it.

Deleted rows are also vacuumed out of the database file and its write-ahead log, so no byte of them stays.
"""

from __future__ import annotations

import csv
from pathlib import Path

from activation.settings import activation_dir, membership_db
from activation.store import connect
from tessera.core.settings import Workspace

TABLES = ("attributes", "members", "changes", "outbox", "dead_letters")


def erase_customers(workspace: Workspace, customer_ids: set[str]) -> dict[str, int]:
    """Remove the customers from activation's database and CSV exports; rows removed per file and table."""
    removed: dict[str, int] = {}
    ids = sorted(customer_ids)
    path = membership_db(workspace)
    if path.exists() and ids:
        con = connect(path)
        try:
            present = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            marks = ", ".join("?" for _ in ids)
            con.execute("BEGIN IMMEDIATE")
            for table in TABLES:
                if table in present:
                    cursor = con.execute(f"DELETE FROM {table} WHERE customer_id IN ({marks})", ids)
                    removed[f"{path.relative_to(workspace.root)}:{table}"] = cursor.rowcount
            con.execute("COMMIT")
            if any(removed.values()):
                con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                con.execute("VACUUM")
                con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            con.close()
    for export in sorted(activation_dir(workspace).rglob("*.csv")):
        dropped = _scrub_csv(export, customer_ids)
        if dropped:
            removed[str(export.relative_to(workspace.root))] = dropped
    return removed


def _scrub_csv(path: Path, customer_ids: set[str]) -> int:
    """Drop the rows of a CSV export whose customer_id is erased; how many."""
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    if not rows or "customer_id" not in rows[0]:
        return 0
    column = rows[0].index("customer_id")
    kept = [rows[0], *(r for r in rows[1:] if len(r) <= column or r[column] not in customer_ids)]
    dropped = len(rows) - len(kept)
    if dropped:
        tmp = path.with_name(path.name + ".erase-tmp")
        with tmp.open("w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows(kept)
        tmp.replace(path)
    return dropped
