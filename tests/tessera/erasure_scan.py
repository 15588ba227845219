"""A scan of everything Tessera keeps for traces of one person: every file under the workspace (Parquet
read as tables, everything else as bytes: SQLite, JSON, CSV, logs, pickles, the MLflow database), the
Redis keyspace of a Feast project and every row of a PostgreSQL database (MLflow's tracking store and
registry there). Shared by the erasure tests and the erasure benchmark."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


@dataclass(frozen=True)
class Traces:
    """What identifies the person, as text; names are looked for as the pair (first and last name together).

    A number is found whole: an identifier that starts (ends) with a digit must not have a digit just before
    (after) it, so record id 1381816 is not "found" inside a file's modification time 1796431917513818165. A
    phone's last ten digits (`tails`) may follow other digits (a national prefix), not precede them.
    """

    identifiers: frozenset[str]  # customer ids, source record ids, emails, phones (as written and E.164)
    names: tuple[str, str] | None  # (first, last), lower-case
    tails: frozenset[str] = field(default_factory=frozenset)  # phones' last ten digits

    @classmethod
    def of(
        cls,
        ids: set[str],
        record_ids: set[str],
        emails: set[str],
        phones: set[str],
        names: tuple[str, str] | None,
    ) -> Traces:
        forms = set(ids) | set(record_ids) | {e.lower() for e in emails} | set(emails)
        tails = set()
        for phone in phones:
            digits = "".join(c for c in phone if c.isdigit())
            forms |= {phone, digits}
            tails.add(digits[-10:])
        return cls(
            frozenset(f for f in forms if len(f) >= 5), names, frozenset(t for t in tails if len(t) >= 5)
        )

    def found_in(self, text: str | bytes) -> list[str]:
        """The identifiers and tails that `text` (lower-cased by the caller) holds."""
        as_bytes = isinstance(text, bytes)
        return [
            token
            for tokens, tail in ((self.identifiers, False), (self.tails, True))
            for token in tokens
            # The plain look-up first: the pattern only where the text holds the token at all.
            if (token.lower().encode() if as_bytes else token.lower()) in text
            and _whole(token.lower(), tail, as_bytes).search(text)
        ]


def _whole(token: str, tail: bool, as_bytes: bool) -> re.Pattern:
    pattern = re.escape(token)
    if token[:1].isdigit() and not tail:
        pattern = r"(?<![0-9])" + pattern
    if token[-1:].isdigit():
        pattern += r"(?![0-9])"
    return re.compile(pattern.encode() if as_bytes else pattern)


def _as_text(column: pa.ChunkedArray) -> list[str]:
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return [v or "" for v in column.to_pylist()]
    if pa.types.is_list(column.type) or pa.types.is_struct(column.type):
        return [str(v) for v in column.to_pylist()]
    return []


def scan_parquet(path: Path, traces: Traces) -> list[str]:
    table = pq.read_table(path)
    found: list[str] = []
    rows = [_as_text(table.column(name)) for name in table.column_names]
    rows = [r for r in rows if r]
    for cells in zip(*rows, strict=True):
        text = "\x1f".join(cells).lower()
        found += [f"{path}: {token!r} in a row" for token in traces.found_in(text)]
        if traces.names and all(name in text for name in traces.names):
            found.append(f"{path}: the name pair in a row")
    return found


def scan_bytes(path: Path, traces: Traces) -> list[str]:
    data = path.read_bytes().lower()
    found = [f"{path}: {t!r}" for t in traces.found_in(data)]
    if traces.names and " ".join(traces.names).encode() in data:
        found.append(f"{path}: the full name")
    return found


def scan_workspace(root: Path, traces: Traces) -> list[str]:
    """Every trace of the person in every file under `root` (empty: none)."""
    found: list[str] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.suffix == ".parquet":
            found += scan_parquet(path, traces)
        else:
            found += scan_bytes(path, traces)
    return found


def scan_redis(client: object, project: str, traces: Traces) -> list[str]:
    """Every key of the Feast project whose name or values hold a trace of the person."""
    found: list[str] = []
    for key in client.scan_iter(match=b"*" + project.encode()):  # type: ignore[attr-defined]
        blob = key + b"".join(v for pair in client.hgetall(key).items() for v in pair)  # type: ignore[attr-defined]
        found += [f"redis {key!r}: {t!r}" for t in traces.found_in(blob.lower())]
    return found


def scan_postgres(url: str, traces: Traces) -> list[str]:
    """Every row of every table in a PostgreSQL database (e.g. MLflow's: runs, params, metrics, tags, inputs,
    registered models and versions, their descriptions and tags) whose text holds a trace of the person."""
    import psycopg

    found: list[str] = []
    with psycopg.connect(url.replace("+psycopg", "")) as connection:
        tables = [
            row[0]
            for row in connection.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename"
            )
        ]
        for table in tables:
            for (text,) in connection.execute(f'SELECT t::text FROM "{table}" t'):
                lowered = text.lower()
                found += [f"postgres {table}: {t!r}" for t in traces.found_in(lowered)]
                if traces.names and all(name in lowered for name in traces.names):
                    found.append(f"postgres {table}: the name pair in a row")
    return found
