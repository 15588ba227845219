"""The service desk's search: a SQLite FTS5 index (trigram tokenizer) over golden records and linked identities.

What a caller says is matched against names, email addresses, phone numbers (as E.164 digits, so any way of
writing a number finds it), loyalty numbers, order numbers and source record ids. The trigram tokenizer makes
every query a substring match on the index (no scan); names are also typo-tolerant, on an index of names alone:
the query's trigrams are OR-ed, which finds "john smith" from "jon smiht" through their shared "smi", and the
candidates are ranked by rapidfuzz's token-sort ratio against the whole name.

The index is derived data under `data/desk/` (`search-<version>.sqlite`, the version a hash of the source files'
sizes and modification times): built ahead by the desk (at service start and after each reload), or by the first
search after the profile or identity changed, written to a temporary file and renamed into place, so two workers
never read a half-written index. Erasure deletes the folder
(`serving.erasure`); the next search rebuilds it from what is left.
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import tempfile
import threading
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import phonenumbers
from rapidfuzz import fuzz, process

from tessera.core.settings import Workspace

SCHEMA = 4  # bumped whenever what is indexed changes, so an old index is rebuilt
MIN_QUERY = 2
FUZZY_CANDIDATES = 5000  # name rows reranked by rapidfuzz after the trigram OR (a few ms of rapidfuzz)
# The rarest trigrams of a fuzzy query are OR-ed until their rows add up to this: a common trigram ("son", "ann")
# would otherwise pull in a large share of the index for a few points of recall.
FUZZY_ROW_BUDGET = FUZZY_CANDIDATES
FUZZY_FLOOR = 60.0  # token-sort ratio below which a name is not offered
_PHONE_LIKE = re.compile(r"^\+?[\d\s().\-/]{6,}$")
_NAME_LIKE = re.compile(r"^[a-z' .-]+$")  # a query fuzzy-matched against names (no digits, no @)


@dataclass(frozen=True)
class Hit:
    """One customer found: who, what matched and how well (100: the identifier itself)."""

    customer_id: str
    name: str
    city: str
    email: str
    matched: str  # the kind of identifier: name, email, phone, loyalty, order, source id
    score: float


def normalise(text: str) -> str:
    """Lower-case, accents dropped, runs of spaces as one: how text is indexed and queried."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return " ".join(plain.lower().split())


def phone_digits(text: str, region: str | None) -> str | None:
    """A phone number written any way as its E.164 digits (no `+`), or None when it does not parse."""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164).lstrip("+")


def _sources(workspace: Workspace) -> list[Path]:
    return [
        workspace.profile / "customers.parquet",
        workspace.identity / "records.parquet",
        workspace.identity / "crosswalk.parquet",
        workspace.profile / "orders.parquet",
    ]


def index_version(workspace: Workspace) -> str:
    """A hash of the source files' sizes and modification times: a new profile or identity run, a new index."""
    stamp = [f"schema:{SCHEMA}"]
    for path in _sources(workspace):
        if path.exists():
            stat = path.stat()
            stamp.append(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha256("|".join(stamp).encode()).hexdigest()[:16]


def _columns(con: duckdb.DuckDBPyConnection, path: Path) -> set[str]:
    return {r[0] for r in con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()}


def _col(present: set[str], name: str) -> str:
    return f"CAST({name} AS VARCHAR)" if name in present else "NULL"


def _entries(workspace: Workspace, con: duckdb.DuckDBPyConnection) -> Iterator[tuple[str, str, str]]:
    """(customer id, kind, text) for every identifier of every customer, golden and linked."""
    customers, records, crosswalk, orders = _sources(workspace)
    people = []
    for path in (customers, records):
        if path.exists():
            present = _columns(con, path)
            people.append(
                "SELECT CAST(customer_id AS VARCHAR) AS customer_id, "
                + ", ".join(
                    f"{_col(present, c)} AS {c}"
                    for c in ("first_name", "last_name", "email", "phone", "loyalty_number")
                )
                + f" FROM read_parquet('{path}') WHERE customer_id IS NOT NULL"
            )
    if people:
        rows = con.execute(
            f"SELECT DISTINCT * FROM ({' UNION ALL '.join(people)}) ORDER BY customer_id"
        ).fetchall()
        current, seen = None, set()
        for customer_id, first, last, email, phone, loyalty in rows:
            if customer_id != current:
                current, seen = customer_id, set()
                yield customer_id, "customer id", normalise(customer_id)
            name = " ".join(p for p in (first, last) if p)
            for kind, text in (
                ("name", normalise(name)),
                ("email", (email or "").lower()),
                ("phone", (phone or "").lstrip("+")),
                ("loyalty", normalise(loyalty or "")),
            ):
                # A customer's linked records repeat their golden name and contacts: each is indexed once.
                if text and (kind, text) not in seen:
                    seen.add((kind, text))
                    yield customer_id, kind, text
    if crosswalk.exists():
        for customer_id, record_id in con.execute(
            "SELECT DISTINCT CAST(customer_id AS VARCHAR), CAST(record_id AS VARCHAR) "
            "FROM read_parquet(?) WHERE customer_id IS NOT NULL AND record_id IS NOT NULL",
            [str(crosswalk)],
        ).fetchall():
            yield customer_id, "source id", normalise(record_id)
    if orders.exists():
        for customer_id, order_id in con.execute(
            "SELECT DISTINCT CAST(customer_id AS VARCHAR), CAST(order_id AS VARCHAR) "
            "FROM read_parquet(?) WHERE customer_id IS NOT NULL AND order_id IS NOT NULL",
            [str(orders)],
        ).fetchall():
            yield customer_id, "order", normalise(order_id)


def build_index(workspace: Workspace, path: Path) -> Path:
    """Write the search index of the workspace to `path` (through a temporary file renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(handle)
    try:
        db = sqlite3.connect(temporary)
        db.executescript(
            """
            CREATE VIRTUAL TABLE entries USING fts5(customer_id UNINDEXED, kind UNINDEXED, text,
                                                   tokenize = 'trigram');
            CREATE TABLE customers (customer_id TEXT PRIMARY KEY, name TEXT, city TEXT, email TEXT,
                                    country TEXT);
            CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
            -- The fuzzy name search's own index: one row per customer and name, the trigrams without a copy of
            -- the text or their positions (the searcher holds the names in memory, by row id).
            CREATE TABLE names (id INTEGER PRIMARY KEY, customer_id TEXT, text TEXT);
            CREATE VIRTUAL TABLE name_grams USING fts5(text, content = '', detail = 'none',
                                                       tokenize = 'trigram');
            CREATE VIRTUAL TABLE vocabulary USING fts5vocab(name_grams, 'row');
            """
        )
        with duckdb.connect() as con:
            batch: list[tuple[str, str, str]] = []
            for entry in _entries(workspace, con):
                batch.append(entry)
                if len(batch) >= 50_000:
                    _insert(db, batch)
                    batch.clear()
            _insert(db, batch)
            golden = workspace.profile / "customers.parquet"
            region = None
            if golden.exists():
                present = _columns(con, golden)
                rows = con.execute(
                    "SELECT CAST(customer_id AS VARCHAR), "
                    f"concat_ws(' ', {_col(present, 'first_name')}, {_col(present, 'last_name')}), "
                    f"{_col(present, 'city')}, {_col(present, 'email')}, {_col(present, 'country')} "
                    "FROM read_parquet(?)",
                    [str(golden)],
                ).fetchall()
                db.executemany("INSERT OR REPLACE INTO customers VALUES (?, ?, ?, ?, ?)", rows)
                if "country" in present:
                    found = con.execute(
                        "SELECT country FROM read_parquet(?) WHERE country IS NOT NULL "
                        "GROUP BY 1 ORDER BY count(*) DESC LIMIT 1",
                        [str(golden)],
                    ).fetchone()
                    region = found[0] if found else None
        # Phones written without a country code are read as numbers of the customers' most common country.
        db.execute("INSERT INTO meta VALUES ('region', ?)", [region])
        db.execute("INSERT INTO name_grams(rowid, text) SELECT id, text FROM names")
        db.execute("INSERT INTO entries(entries) VALUES ('optimize')")
        db.execute("INSERT INTO name_grams(name_grams) VALUES ('optimize')")
        db.commit()
        db.close()
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _insert(db: sqlite3.Connection, entries: list[tuple[str, str, str]]) -> None:
    db.executemany("INSERT INTO entries VALUES (?, ?, ?)", entries)
    db.executemany(
        "INSERT INTO names (customer_id, text) VALUES (?, ?)",
        [(customer_id, text) for customer_id, kind, text in entries if kind == "name"],
    )


def _quoted(text: str) -> str:
    """An FTS5 string literal: the text matched as one substring."""
    return '"' + text.replace('"', '""') + '"'


def _rarest(db: sqlite3.Connection, grams: set[str]) -> tuple[list[str], int]:
    """The query's trigrams, rarest first, while the names holding them stay within the budget (at least three);
    and how many names hold them (at most: a name may hold several)."""
    if not grams:
        return [], 0
    marks = ", ".join("?" * len(grams))
    counts = dict(db.execute(f"SELECT term, doc FROM vocabulary WHERE term IN ({marks})", sorted(grams)))
    ranked = sorted((counts[g], g) for g in grams if g in counts)
    chosen, rows = [], 0
    for count, gram in ranked:
        if len(chosen) >= 3 and rows + count > FUZZY_ROW_BUDGET:
            break
        chosen.append(gram)
        rows += count
    return chosen, rows


class SearchIndex:
    """The workspace's search index, opened read-only per thread; rebuilt when the profile or identity changes."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self._lock = threading.Lock()
        self._local = threading.local()
        self._names: tuple[Path, dict[int, tuple[str, str]]] | None = None  # one copy for every thread

    def _names_of(self, path: Path, db: sqlite3.Connection) -> dict[int, tuple[str, str]]:
        """The index's names by row id (customer id, name): what the fuzzy search scores."""
        with self._lock:
            if self._names is None or self._names[0] != path:
                rows = db.execute("SELECT id, customer_id, text FROM names").fetchall()
                self._names = (path, {i: (customer_id, text) for i, customer_id, text in rows})
            return self._names[1]

    def path(self) -> Path:
        return self.workspace.desk / f"search-{index_version(self.workspace)}.sqlite"

    def _connection(self) -> tuple[sqlite3.Connection, str | None, dict[int, tuple[str, str]]]:
        path = self.path()
        local = self._local
        if getattr(local, "path", None) != path or not path.exists():
            with self._lock:
                if not path.exists():
                    for old in self.workspace.desk.glob("search-*.sqlite"):
                        old.unlink(missing_ok=True)
                    build_index(self.workspace, path)
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
            found = db.execute("SELECT value FROM meta WHERE key = 'region'").fetchone()
            local.db, local.region, local.path = db, (found[0] if found else None), path
            local.names = self._names_of(path, db)
        return local.db, local.region, local.names

    def ensure(self) -> None:
        """Build the index now if it is missing or stale (the service does it at start, off the request path)."""
        self._connection()

    def search(self, query: str, limit: int = 20) -> list[Hit]:
        """The customers the query identifies, best first: identifiers found whole, then names like it."""
        text = normalise(query)
        if len(text) < MIN_QUERY:
            return []
        db, region, names = self._connection()
        scores: dict[str, tuple[float, str]] = {}

        def offer(customer_id: str, kind: str, score: float) -> None:
            if score > scores.get(customer_id, (-1.0, ""))[0]:
                scores[customer_id] = (score, kind)

        needles = [text]
        if _PHONE_LIKE.match(query.strip()):
            digits = phone_digits(query, region)
            if digits:
                needles.insert(0, digits)
            needles.append(re.sub(r"\D", "", query))
        for needle in dict.fromkeys(n for n in needles if len(n) >= 3):
            for customer_id, kind, found in db.execute(
                "SELECT customer_id, kind, text FROM entries WHERE entries MATCH ? LIMIT 200",
                [f"text : {_quoted(needle)}"],
            ):
                offer(customer_id, kind, 100.0 if found == needle else 90.0)
        if _NAME_LIKE.match(text) and not any(score >= 100 for score, _ in scores.values()):
            grams = {w[i : i + 3] for w in text.split() if len(w) >= 3 for i in range(len(w) - 2)}
            chosen, rows = _rarest(db, grams)
            if chosen:
                # Every name holding a chosen trigram when they fit the budget, else the best by FTS rank.
                order = "ORDER BY rank " if rows > FUZZY_CANDIDATES else ""
                found = [
                    names[i]
                    for (i,) in db.execute(
                        f"SELECT rowid FROM name_grams WHERE name_grams MATCH ? {order}LIMIT ?",
                        [" OR ".join(_quoted(g) for g in chosen), FUZZY_CANDIDATES],
                    )
                ]
                ratios = process.cdist(
                    [text], [name for _, name in found], scorer=fuzz.token_sort_ratio, dtype=np.float64
                )
                for (customer_id, _), ratio in zip(found, ratios[0], strict=True):
                    if ratio >= FUZZY_FLOOR:
                        offer(customer_id, "name", float(ratio) * 0.89)  # under any identifier found whole
        best = sorted(scores.items(), key=lambda item: (-item[1][0], item[0]))[:limit]
        hits = []
        for customer_id, (score, kind) in best:
            row = db.execute(
                "SELECT name, city, email FROM customers WHERE customer_id = ?", [customer_id]
            ).fetchone()
            name, city, email = row if row else ("", "", "")
            hits.append(Hit(customer_id, name or "", city or "", email or "", kind, round(score, 1)))
        return hits
