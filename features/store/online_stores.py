"""Tessera's online stores: Feast's SQLite and Redis stores, keeping one packed vector per entity and view.

Feast's own layouts keep one value per (entity, feature): a SQLite row or a Redis hash field each, every one
a serialised protobuf. Reading 100 customers' `churn_v1` vectors then means ~4,600 rows or fields, each
parsed and converted to Python — about 18 ms of CPU. Here each (entity, feature view) is one JSON object
of the view's feature values, so the same read is 600 small objects decoded in C.

Both stores implement Feast's `OnlineStore` interface in full (`online_write_batch`, `online_read`,
`update`, `teardown`), so Feast's materialisation, `push` and `get_online_features` work on them unchanged;
`OnlineFeatures` (features.store.online) adds `read_columns`, which reads several views in one round trip
and returns Python values without building protobufs.

Layout (docs/feature_store.md#online-layout):
- SQLite: a table per feature view (Feast's table name), `entity_key BLOB PRIMARY KEY, vector BLOB,
  event_ts INTEGER, created_ts INTEGER` (times in microseconds since the epoch, UTC);
- Redis: Feast's key per entity (serialised entity key + project), a hash field `vector:<view>` holding
  the JSON and `event_ts:<view>` the event time in microseconds.

Values are JSON: int64, double, bool, string, string lists, and timestamps as whole seconds (Feast's
UNIX_TIMESTAMP, including its null sentinel); a null is `null`. A write keeps the stored vector when it is
newer than the one written (event time), in both stores: live pushes are not undone by a materialisation
of older data. A write carrying only some of the view's features merges them into the stored vector.

Feast 0.67's own pre-computed vectors (`FeatureService(precompute_online=True)`) do not fit: reading them is
2.7-3.9x slower in CPU time (measured side by side: `benchmarks/feature_store.py --compare-feast-precomputed`,
docs/feature_store.md), they refuse services with request-time features, find entities only in Redis, and
recompute every entity's vector after each push.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from feast import Entity, FeatureView
from feast.infra.key_encoding_utils import serialize_entity_key
from feast.infra.online_stores.helpers import _redis_key_prefix
from feast.infra.online_stores.online_store import OnlineStore
from feast.infra.online_stores.redis import RedisOnlineStore, RedisOnlineStoreConfig
from feast.infra.online_stores.sqlite import SqliteOnlineStore, SqliteOnlineStoreConfig, _quote_id, _table_id
from feast.infra.supported_async_methods import SupportedAsyncMethods
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import StringList
from feast.protos.feast.types.Value_pb2 import Value as ValueProto
from feast.repo_config import RepoConfig
from feast.type_map import NULL_TIMESTAMP_INT_VALUE
from feast.types import UnixTimestamp
from feast.utils import make_tzaware

from tessera.core.errors import InputError

OnlineRow = tuple[EntityKey, dict[str, ValueProto], datetime, datetime | None]
# What a store holds for one (entity, view): the JSON vector and its event time in microseconds.
Stored = tuple[bytes, int]
PLAIN_KINDS = {"int64_val", "double_val", "bool_val", "string_val", "unix_timestamp_val"}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MISSING = object()
MMAP_BYTES = 4 * 1024**3
CACHE_KIB = 256 * 1024


def _plain(value: ValueProto) -> Any:
    """A stored value as JSON-ready Python: timestamps stay whole seconds, so they round-trip exactly."""
    kind = value.WhichOneof("val")
    if kind is None:
        return None
    if kind in PLAIN_KINDS:
        return getattr(value, kind)
    if kind == "string_list_val":
        return list(value.string_list_val.val)
    raise TypeError(f"{kind} values cannot be kept in Tessera's online store: add them to online_stores.py")


def _proto(value: Any, is_time: bool) -> ValueProto:
    """The ValueProto Feast's own store would return for a JSON value."""
    if value is None:
        return ValueProto()
    if isinstance(value, bool):
        return ValueProto(bool_val=value)
    if isinstance(value, int):
        return ValueProto(unix_timestamp_val=value) if is_time else ValueProto(int64_val=value)
    if isinstance(value, float):
        return ValueProto(double_val=value)
    if isinstance(value, str):
        return ValueProto(string_val=value)
    return ValueProto(string_list_val=StringList(val=value))


def _moment(seconds: int | None) -> datetime | None:
    """A stored timestamp feature as Feast's online response gives it."""
    if seconds is None or seconds == NULL_TIMESTAMP_INT_VALUE:
        return None
    return datetime.fromtimestamp(seconds, tz=UTC)


def _micros(moment: datetime) -> int:
    return (make_tzaware(moment) - EPOCH) // timedelta(microseconds=1)


def string_keys(join_key: str, values: Iterable[object]) -> list[EntityKey]:
    """Feast's entity keys for values of one string join key (`customer_id`, `sku`)."""
    return [EntityKey(join_keys=[join_key], entity_values=[ValueProto(string_val=str(v))]) for v in values]


def replaces_online(view: FeatureView) -> bool:
    """Whether each materialisation of the view reloads it whole and overwrites the online values (consent)."""
    return view.tags.get("online_write") == "replace"


def _time_features(view: FeatureView) -> set[str]:
    return {f.name for f in view.features if f.dtype == UnixTimestamp}


def _decode(stored: Sequence[Stored | None], missing: bytes) -> list[Any]:
    """The stored vectors as dicts, `missing` (JSON) where nothing is stored: one JSON array, one decode."""
    return json.loads(b"[%s]" % b",".join(missing if s is None else s[0] for s in stored))


class PackedVectors:
    """The JSON-vector layout over a backend that fetches and stores (entity key, view) → (JSON, event time)."""

    def _fetch(
        self, config: RepoConfig, requests: Sequence[tuple[FeatureView, Sequence[bytes]]]
    ) -> list[list[Stored | None]]:
        """For each (view, serialised entity keys): what is stored per key, in order (None when nothing)."""
        raise NotImplementedError

    def _store(
        self, config: RepoConfig, view: FeatureView, rows: list[tuple[bytes, bytes, int, int | None]]
    ) -> None:
        """Write (key, JSON, event µs, created µs) rows; a stored vector with a later event time stays, unless
        the view `replaces_online`."""
        raise NotImplementedError

    def read_stored(
        self, config: RepoConfig, requests: Sequence[tuple[FeatureView, Sequence[bytes]]]
    ) -> list[list[Stored | None]]:
        """What is stored per (view, serialised keys), undecoded: equal stored values decode to equal values, so
        comparing them tells whether anything a key's features came from changed, without decoding."""
        return self._fetch(config, requests)

    @staticmethod
    def serialize_keys(config: RepoConfig, entity_keys: Sequence[EntityKey]) -> list[bytes]:
        version = config.entity_key_serialization_version
        return [serialize_entity_key(k, entity_key_serialization_version=version) for k in entity_keys]

    def online_read(
        self,
        config: RepoConfig,
        table: FeatureView,
        entity_keys: list[EntityKey],
        requested_features: list[str] | None = None,
    ) -> list[tuple[datetime | None, dict[str, ValueProto] | None]]:
        """Feast's read: per entity, the event time and the requested features' values (None when absent)."""
        (found,) = self._fetch(config, [(table, self.serialize_keys(config, entity_keys))])
        wanted = requested_features or [f.name for f in table.features]
        times = _time_features(table)
        out: list[tuple[datetime | None, dict[str, ValueProto] | None]] = []
        for stored, values in zip(found, _decode(found, b"null"), strict=True):
            if stored is None:
                out.append((None, None))
                continue
            moment = EPOCH + timedelta(microseconds=stored[1])
            out.append((moment, {n: _proto(values[n], n in times) for n in wanted if n in values}))
        return out

    def read_columns(
        self, config: RepoConfig, reads: Sequence[tuple[FeatureView, Sequence[str], Sequence[bytes]]]
    ) -> dict[str, list[Any]]:
        """Python values column-wise for several (view, feature names, serialised keys), None where absent."""
        found = self._fetch(config, [(view, keys) for view, _, keys in reads])
        columns: dict[str, list[Any]] = {}
        for (view, names, _), stored in zip(reads, found, strict=True):
            vectors = _decode(stored, b"{}")
            times = _time_features(view)
            for name in names:
                column = [v.get(name) for v in vectors]
                columns[name] = [_moment(s) for s in column] if name in times else column
        return columns

    def online_write_batch(
        self,
        config: RepoConfig,
        table: FeatureView,
        data: list[OnlineRow],
        progress: Callable[[int], Any] | None,
    ) -> None:
        """Feast's write: one JSON vector per entity; the latest row per entity within the batch counts."""
        keys = self.serialize_keys(config, [row[0] for row in data])
        plain: dict[int, Any] = {}  # by proto identity: the materialiser shares equal values' protos
        latest: dict[bytes, tuple[dict[str, Any], int, int | None]] = {}
        for key, (_, values, timestamp, created) in zip(keys, data, strict=True):
            event_us = _micros(timestamp)
            if key in latest and latest[key][1] > event_us:
                continue
            vector = {}
            for name, value in values.items():
                found = plain.get(id(value), MISSING)
                if found is MISSING:
                    found = plain[id(value)] = _plain(value)
                vector[name] = found
            latest[key] = (vector, event_us, _micros(created) if created else None)
        self._merge_partial(config, table, latest)
        self._store(
            config,
            table,
            [
                (key, json.dumps(vector, separators=(",", ":")).encode(), event_us, created_us)
                for key, (vector, event_us, created_us) in latest.items()
            ],
        )
        if progress:
            progress(len(data))

    def _merge_partial(
        self,
        config: RepoConfig,
        table: FeatureView,
        rows: dict[bytes, tuple[dict[str, Any], int, int | None]],
    ) -> None:
        """Rows carrying only some of the view's features keep the stored values of the others."""
        every = {f.name for f in table.features}
        partial = [key for key, (vector, _, _) in rows.items() if not every <= vector.keys()]
        if not partial:
            return
        (stored,) = self._fetch(config, [(table, partial)])
        for key, found in zip(partial, _decode(stored, b"{}"), strict=True):
            vector, event_us, created_us = rows[key]
            rows[key] = ({**found, **vector}, event_us, created_us)

    @property
    def async_supported(self) -> SupportedAsyncMethods:
        # Feast's async API runs the sync methods in a thread for stores without async ones.
        return SupportedAsyncMethods()


class TesseraSqliteOnlineStoreConfig(SqliteOnlineStoreConfig):
    """Feast's SQLite online store configuration (`path`), selecting the packed layout."""

    type: Literal["features.store.online_stores.TesseraSqliteOnlineStore"] = (  # type: ignore[assignment]
        "features.store.online_stores.TesseraSqliteOnlineStore"
    )


class TesseraSqliteOnlineStore(PackedVectors, SqliteOnlineStore):
    """Feast's SQLite online store (same file, connection and table names) with one row per entity and view."""

    COLUMNS = ("entity_key", "vector", "event_ts", "created_ts")

    def _get_conn(self, config: RepoConfig) -> sqlite3.Connection:
        new = self._conn is None
        conn = super()._get_conn(config)
        if new:
            # Memory-mapped reads and a larger page cache: a random customer costs page look-ups, not read()s.
            conn.execute(f"PRAGMA mmap_size = {MMAP_BYTES}").fetchall()
            conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}").fetchall()
        return conn

    @staticmethod
    def _table(config: RepoConfig, view: FeatureView) -> str:
        versioning = config.registry.enable_online_feature_view_versioning
        return _quote_id(_table_id(config.project, view, versioning))

    def _fetch(
        self, config: RepoConfig, requests: Sequence[tuple[FeatureView, Sequence[bytes]]]
    ) -> list[list[Stored | None]]:
        conn = self._get_conn(config)
        out = []
        for view, keys in requests:
            unique = list(dict.fromkeys(keys))
            found: dict[bytes, Stored] = {}
            # SQLite allows 32,766 parameters a statement.
            for start in range(0, len(unique), 30_000):
                chunk = unique[start : start + 30_000]
                sql = (
                    f"SELECT entity_key, vector, event_ts FROM {self._table(config, view)} "
                    f"WHERE entity_key IN ({', '.join('?' * len(chunk))})"
                )
                found.update((key, (vector, event_us)) for key, vector, event_us in conn.execute(sql, chunk))
            out.append([found.get(key) for key in keys])
        return out

    def _store(
        self, config: RepoConfig, view: FeatureView, rows: list[tuple[bytes, bytes, int, int | None]]
    ) -> None:
        name = self._table(config, view)
        newer = "" if replaces_online(view) else f" WHERE excluded.event_ts >= {name}.event_ts"
        conn = self._get_conn(config)
        with conn:
            conn.executemany(
                f"INSERT INTO {name} (entity_key, vector, event_ts, created_ts) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(entity_key) DO UPDATE SET vector = excluded.vector, event_ts = excluded.event_ts, "
                f"created_ts = excluded.created_ts{newer}",
                rows,
            )

    def update(
        self,
        config: RepoConfig,
        tables_to_delete: Sequence[FeatureView],
        tables_to_keep: Sequence[FeatureView],
        entities_to_delete: Sequence[Entity],
        entities_to_keep: Sequence[Entity],
        partial: bool,
    ) -> None:
        """Create the kept views' tables, drop the deleted ones; a table of another layout is an error."""
        conn = self._get_conn(config)
        for view in tables_to_keep:
            name = self._table(config, view)
            columns = tuple(row[1] for row in conn.execute(f"PRAGMA table_info({name})"))
            if columns and columns != self.COLUMNS:
                raise InputError(
                    f"{self._get_db_path(config)}: table {name} holds Feast's one-row-per-feature layout from "
                    "an earlier Tessera, not one vector per entity: delete the file and the registry beside it "
                    "(data/feast/online_store.db, data/feast/registry.db) and run `tessera features apply` and "
                    "`tessera features materialize` again"
                )
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {name} (entity_key BLOB PRIMARY KEY, vector BLOB NOT NULL, "
                "event_ts INTEGER NOT NULL, created_ts INTEGER) WITHOUT ROWID"
            )
        for view in tables_to_delete:
            conn.execute(f"DROP TABLE IF EXISTS {self._table(config, view)}")
        conn.commit()


class TesseraRedisOnlineStoreConfig(RedisOnlineStoreConfig):
    """Feast's Redis online store configuration (`connection_string`, `key_ttl_seconds`), packed layout."""

    type: Literal["features.store.online_stores.TesseraRedisOnlineStore"] = (  # type: ignore[assignment]
        "features.store.online_stores.TesseraRedisOnlineStore"
    )


def _vector_field(view: FeatureView) -> bytes:
    return f"vector:{view.name}".encode()


def _time_field(view: FeatureView) -> bytes:
    return f"event_ts:{view.name}".encode()


class TesseraRedisOnlineStore(PackedVectors, RedisOnlineStore):
    """Feast's Redis online store (same connection and keys) with one hash field per entity and view.

    A read of several views sends one HMGET per entity for all of them, in one pipeline.
    """

    # Feast's Redis store reads its own hash fields in these; the base class's versions call online_read.
    _read_features_per_fv = OnlineStore._read_features_per_fv
    _read_features_per_fv_async = OnlineStore._read_features_per_fv_async

    def _fetch(
        self, config: RepoConfig, requests: Sequence[tuple[FeatureView, Sequence[bytes]]]
    ) -> list[list[Stored | None]]:
        project = config.project.encode()
        named = [(_vector_field(view), _time_field(view), keys) for view, keys in requests]
        fields: dict[bytes, list[bytes]] = {}  # Redis key → the fields asked of it
        for vector_field, time_field, keys in named:
            for key in keys:
                asked = fields.setdefault(key + project, [])
                if vector_field not in asked:
                    asked += (vector_field, time_field)
        client = self._get_client(config.online_store)
        with client.pipeline(transaction=False) as pipe:
            for key, asked in fields.items():
                pipe.hmget(key, asked)
            replies = pipe.execute()
        answers: dict[tuple[bytes, bytes], Stored] = {}
        for (key, asked), reply in zip(fields.items(), replies, strict=True):
            for i in range(0, len(asked), 2):
                if reply[i] is not None:
                    answers[key, asked[i]] = (reply[i], int(reply[i + 1]))
        return [
            [answers.get((key + project, vector_field)) for key in keys] for vector_field, _, keys in named
        ]

    def _store(
        self, config: RepoConfig, view: FeatureView, rows: list[tuple[bytes, bytes, int, int | None]]
    ) -> None:
        project = config.project.encode()
        vector_field, time_field = _vector_field(view), _time_field(view)
        client = self._get_client(config.online_store)
        ttl = config.online_store.key_ttl_seconds
        with client.pipeline(transaction=False) as pipe:
            for key, *_ in rows:
                pipe.hget(key + project, time_field)
            stored = pipe.execute()
            for (key, vector, event_us, _), previous in zip(rows, stored, strict=True):
                if previous is not None and int(previous) > event_us and not replaces_online(view):
                    continue
                pipe.hset(key + project, mapping={vector_field: vector, time_field: str(event_us)})
                if ttl:
                    pipe.expire(key + project, ttl)
            pipe.execute()

    def delete_table(self, config: RepoConfig, table: FeatureView) -> None:
        """Remove one view's fields from every entity of its join keys (an emptied hash disappears)."""
        client = self._get_client(config.online_store)
        pattern = b"".join([_redis_key_prefix(table.join_keys), b"*", config.project.encode()])
        with client.pipeline(transaction=False) as pipe:
            for key in client.scan_iter(pattern):
                pipe.hdel(key, _vector_field(table), _time_field(table))
            pipe.execute()
