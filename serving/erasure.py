"""Erasure: remove one person from every store Tessera holds, suppress them, and return a receipt.

The person is found by customer id (an alias resolves to its survivor), email, phone or `SOURCE:ID`; then
every row keyed by one of their customer ids or identity keys is removed from every Parquet table under the
workspace (canonical, identity records, links, crosswalk, aliases, profile, offline feature tables, batch
outputs) and under `mlruns/` (logged tables); their rows of the models' logged input examples; quarantine rows whose `raw` text holds one of their ids,
emails or phones; their entity keys from the online store (SQLite, then VACUUM so no freed page keeps
them; or Redis). Their identity keys and contacts go on the suppression list as salted hashes
(features.ingest.suppression), so ingest drops them and, with them gone from the profile, the next
retrain and every evaluation exclude them. The running service re-reads the profile files on its poll
(serving.champions.directory_files / history_files change), so it drops them without a restart.

The receipt says what was removed where, counts and time, never an identifier; it is printed and appended
to `data/suppression/audit.jsonl`.

It sits in `serving` as the lowest part of the tree that may import both the feature steps and
`training.tracking` and that the service (`DELETE /customers/{id}`) may import; `tessera erase` calls it too.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from activation.erasure import erase_customers
from features.identity.decisions import FILE as DECISIONS
from features.identity.decisions import forget_decisions
from features.ingest.suppression import (
    add_suppressed,
    identifier_hash,
    suppression_folder,
    suppression_salt,
)
from features.store.settings import FeatureStoreSettings
from tessera.core.errors import InputError
from tessera.core.settings import Settings, Workspace
from training.tracking import forget_customers, forget_in_examples

# Columns that key a row to a person; a row whose value in one of them is the person's is theirs.
KEY_COLUMNS = ("customer_id", "alias_id", "identity_key", "survivor_id", "left_key", "right_key")
# Every store the receipt lists, removed-from or not (the online store named after the configured backend).
STORES = (
    "canonical tables",
    "quarantine",
    "identity (records, links, crosswalk, aliases, steward decisions, caches)",
    "profile tables",
    "offline feature tables",
    "batch outputs and other workspace tables",
    "mlflow artefacts (logged tables, input examples)",
    "model per-customer state (recommender reference customers)",
    "access log",
    "activation (segment members, history, outbox, exports)",
    "desk search index",
)
PII_COLUMNS = ("email", "phone", "loyalty_number")


@dataclass(frozen=True)
class Person:
    """Everything that identifies one person in the workspace (held in memory only, never written)."""

    customer_ids: frozenset[str]
    identity_keys: frozenset[str]
    record_ids: frozenset[str]
    contacts: frozenset[str]  # emails and phones, as standardised and as written

    def keys(self) -> frozenset[str]:
        return self.customer_ids | self.identity_keys


def _read(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    if not path.exists():
        return pd.DataFrame(columns=columns or [])
    present = set(pq.read_schema(path).names)
    return pd.read_parquet(path, columns=[c for c in columns or present if c in present])


def find_person(
    workspace: Workspace,
    customer: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    source_id: str | None = None,
    customers: Collection[str] = (),
) -> Person:
    """The customer ids, identity keys, record ids and contacts of the person one identifier names (or of
    several `customers` at once, for a batch erased in one pass)."""
    identity = workspace.identity
    records = _read(identity / "records.parquet")
    crosswalk = _read(identity / "crosswalk.parquet", ["source", "record_id", "identity_key", "customer_id"])
    aliases = _read(identity / "aliases.parquet", ["alias_id", "customer_id"])
    found: set[str] = set()
    asked = {customer, *customers} - {None}
    if asked:
        found |= asked | set(aliases.loc[aliases["alias_id"].isin(asked), "customer_id"].astype(str))
    if email is not None and "email" in records:
        found |= set(
            records.loc[records["email"].astype(str).str.lower() == email.strip().lower(), "customer_id"]
        )
    if phone is not None and "phone" in records:
        digits = "".join(ch for ch in phone if ch.isdigit())
        numbers = records["phone"].astype(str).str.replace(r"\D", "", regex=True)
        found |= set(records.loc[(numbers != "") & numbers.str.endswith(digits[-9:]), "customer_id"])
    if source_id is not None:
        source, _, record_id = source_id.partition(":")
        hit = (crosswalk["source"] == source) & (crosswalk["record_id"].astype(str) == record_id)
        found |= set(crosswalk.loc[hit, "customer_id"])
    golden = _read(workspace.profile / "customers.parquet", ["customer_id"])
    known = {
        str(c)
        for frame in (records, aliases, crosswalk, golden)
        if "customer_id" in frame
        for c in frame["customer_id"]
    }
    found = {c for c in found if c in known}
    if not found:
        asked = (
            "customer id"
            if customer or customers
            else "email"
            if email
            else "phone"
            if phone
            else "source id"
        )
        raise InputError(f"{identity / 'records.parquet'}: no customer with that {asked}; nothing was erased")
    ids = found | set(aliases.loc[aliases["customer_id"].isin(found), "alias_id"].astype(str))
    mine = records[records["customer_id"].isin(ids)] if "customer_id" in records else records
    keys = set(mine["identity_key"].astype(str) if "identity_key" in mine else ()) | set(
        crosswalk.loc[crosswalk["customer_id"].isin(ids), "identity_key"].astype(str)
    )
    record_ids = set(crosswalk.loc[crosswalk["identity_key"].isin(keys), "record_id"].astype(str))
    contacts = {str(v) for c in PII_COLUMNS if c in mine for v in mine[c].dropna()}
    contacts |= _written_contacts(workspace, keys)
    contacts |= {v for v in (email, phone) if v}
    return Person(frozenset(ids), frozenset(keys), frozenset(record_ids), frozenset(contacts))


def _written_contacts(workspace: Workspace, keys: set[str]) -> set[str]:
    """Emails and phones as the exports wrote them, from the person's canonical rows."""
    out: set[str] = set()
    for path in workspace.canonical.glob("*/*.parquet"):
        names = pq.read_schema(path).names
        wanted = [c for c in PII_COLUMNS if c in names]
        if "identity_key" not in names or not wanted:
            continue
        rows = pd.read_parquet(path, columns=["identity_key", *wanted])
        rows = rows[rows["identity_key"].isin(keys)]
        out |= {str(v) for c in wanted for v in rows[c].dropna()}
    return out


def _is_key_column(name: str) -> bool:
    return name in KEY_COLUMNS or name.startswith("identity_key") or name.endswith("customer_id")


def _person_rows(table: pa.Table, person: Person) -> pa.Array:
    """A boolean mask of the table's rows that belong to the person.

    A row is theirs when a key column (customer id, alias, identity key, a link's either side) holds one of
    their ids, when any text column holds exactly one of their emails, phones or loyalty numbers (consent
    records name the person by identifier), or when the quarantine's `raw` text contains one of those.
    """
    keys = pa.array(sorted(person.keys()), pa.string())
    contacts = pa.array(sorted({c.lower() for c in person.contacts}), pa.string())
    mask = pa.array([False] * table.num_rows, pa.bool_())
    for name in table.column_names:
        column = table.column(name)
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
            continue
        if _is_key_column(name):
            mask = pc.or_(mask, pc.fill_null(pc.is_in(column, keys), False))
        mask = pc.or_(mask, pc.fill_null(pc.is_in(pc.utf8_lower(column), contacts), False))
        if name == "raw":  # the quarantine keeps the export's row as text
            for needle in sorted(person.contacts | person.record_ids | person.keys()):
                mask = pc.or_(mask, pc.fill_null(pc.match_substring(column, needle, ignore_case=True), False))
    return mask


def _scrub_parquet(path: Path, person: Person) -> int:
    """Rewrite one Parquet file without the person's rows; how many were removed."""
    table = pq.read_table(path)
    mask = _person_rows(table, person)
    removed = pc.sum(mask).as_py() or 0
    if removed:
        tmp = path.with_name(path.name + ".erase-tmp")
        pq.write_table(table.filter(pc.invert(mask)), tmp)
        tmp.replace(path)
    return removed


def _scrub_sqlite_online(path: Path, keys: list[bytes]) -> int:
    """Delete the person's entity keys from every table of the SQLite online store, then VACUUM."""
    removed = 0
    with sqlite3.connect(path) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            columns = [r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')]
            if "entity_key" not in columns:
                continue
            marks = ", ".join("?" * len(keys))
            removed += conn.execute(f'DELETE FROM "{table}" WHERE entity_key IN ({marks})', keys).rowcount
    conn = sqlite3.connect(path)
    try:
        conn.execute("VACUUM")  # freed pages would still hold the deleted keys and vectors
    finally:
        conn.close()
    return removed


def _online_keys(person: Person) -> list[bytes]:
    from feast.infra.key_encoding_utils import serialize_entity_key

    from features.store.online_stores import string_keys

    # Version 3, as features.store.config writes it into feature_store.yaml.
    entities = string_keys("customer_id", sorted(person.customer_ids))
    return [serialize_entity_key(k, entity_key_serialization_version=3) for k in entities]


def erase_person(
    workspace: Workspace,
    settings: Settings,
    store_settings: FeatureStoreSettings,
    person: Person,
) -> dict:
    """Remove the person from every store, put their hashes on the suppression list; the receipt."""
    started, at = time.perf_counter(), datetime.now(UTC)
    erasure_id = uuid.uuid4().hex
    stores: dict[str, dict[str, int]] = {name: {} for name in STORES}
    stores["online store (redis)" if store_settings.online_store == "redis" else "online store (sqlite)"] = {}

    def count(store: str, where: str, rows: int) -> None:
        stores.setdefault(store, {})[where] = stores.get(store, {}).get(where, 0) + rows

    # A steward decision naming the person goes whole (its reason may describe them), before the row-by-row scrub.
    decisions = workspace.identity / DECISIONS
    count(
        STORES[2],
        str(decisions.relative_to(workspace.root)),
        forget_decisions(workspace.identity, person.keys()),
    )
    for root, store in ((workspace.data, STORES[5]), (workspace.mlruns, STORES[6])):
        for path in sorted(root.rglob("*.parquet")):
            if suppression_folder(workspace) in path.parents:
                continue
            count(
                _store_name(workspace, path, store),
                str(path.relative_to(workspace.root)),
                _scrub_parquet(path, person),
            )
    for where, dropped in forget_in_examples(workspace, set(person.customer_ids)).items():
        count(STORES[6], where, dropped)
    for where, dropped in forget_customers(workspace, set(person.customer_ids)).items():
        count(STORES[7], where, dropped)
    for where, dropped in erase_customers(workspace, set(person.customer_ids)).items():
        count(STORES[9], where, dropped)
    keys = _online_keys(person)
    online = workspace.feature_repo_data / "online_store.db"
    if online.exists():
        count(
            "online store (sqlite)",
            str(online.relative_to(workspace.root)),
            _scrub_sqlite_online(online, keys),
        )
    if store_settings.online_store == "redis":
        count("online store (redis)", store_settings.project, _delete_redis(store_settings, keys))
    # The service desk's search index is derived from the tables just scrubbed: deleted whole, rebuilt on the next
    # search from what is left (serving/desk/search.py).
    for path in sorted(workspace.desk.glob("search-*")):
        path.unlink(missing_ok=True)
        count(STORES[10], str(path.relative_to(workspace.root)), 1)
    for path in sorted((workspace.data / "audit").glob("*.jsonl")):
        count(
            "access log", str(path.relative_to(workspace.root)), _scrub_access_log(path, person, erasure_id)
        )
    salt = suppression_salt(workspace, settings)
    hashes = {identifier_hash(v, salt) for v in person.identity_keys | person.contacts}
    added = add_suppressed(workspace, hashes, erasure_id)
    receipt = {
        "erasure_id": erasure_id,
        "at": at.isoformat(),
        "customers": len(person.customer_ids),
        "identity_keys": len(person.identity_keys),
        "rows_removed": {name: sum(v.values()) for name, v in sorted(stores.items())},
        # Per store, the files (or the online store's project) rows were removed from.
        "stores": {
            name: {k: v for k, v in sorted(where.items()) if v} for name, where in sorted(stores.items())
        },
        "suppressed_hashes_added": added,
        "seconds": round(time.perf_counter() - started, 3),
    }
    audit = suppression_folder(workspace) / "audit.jsonl"
    with audit.open("a", encoding="utf-8") as out:
        out.write(json.dumps(receipt, sort_keys=True) + "\n")
    return receipt


def _scrub_access_log(path: Path, person: Person, erasure_id: str) -> int:
    """Replace the person's customer ids in an access log (serving/audit.py) by `erased:<erasure id>`.

    The log stays an accountability record (which key read an erased person, and when, tied to the erasure's
    receipt) without naming them; returns how many lines were rewritten."""
    lines, changed = [], 0
    for line in path.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line) if line else None
        if entry is not None and entry.get("customer_id") in person.customer_ids:
            entry["customer_id"], changed = f"erased:{erasure_id}", changed + 1
            line = json.dumps(entry)
        lines.append(line)
    if changed:
        tmp = path.with_name(path.name + ".erase-tmp")
        tmp.write_text("".join(f"{line}\n" for line in lines if line), encoding="utf-8")
        tmp.replace(path)
    return changed


def _store_name(workspace: Workspace, path: Path, default: str) -> str:
    """Which of Tessera's stores a file belongs to, for the receipt."""
    places = {
        workspace.canonical: STORES[0],
        workspace.quarantine: STORES[1],
        workspace.identity: STORES[2],
        workspace.profile: STORES[3],
        workspace.feature_repo_data: STORES[4],
        workspace.mlruns: STORES[6],
    }
    for folder, name in places.items():
        if folder in path.parents:
            return name
    return default


def _delete_redis(store_settings: FeatureStoreSettings, keys: list[bytes]) -> int:
    import redis

    address, _, options = store_settings.redis_url.get_secret_value().partition(",")
    host, _, port = address.partition(":")
    extra = dict(o.split("=", 1) for o in options.split(",") if "=" in o)
    client = redis.Redis(host=host, port=int(port or 6379), password=extra.get("password"))
    try:
        return int(client.delete(*[k + store_settings.project.encode() for k in keys])) if keys else 0
    finally:
        client.close()
