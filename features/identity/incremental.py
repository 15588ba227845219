"""Incremental linkage: score only the new or changed records, re-cluster only the components they touch.

A workspace that already holds a resolution (records.parquet, links.parquet, the customer ids) and a
model that is reused does not need every pair scored again: links between two unchanged records are the
same as last time. So a run

1. compares this run's standardised records with the last run's: a record is *dirty* when its key is
   new or any matched attribute changed (keys that disappeared are *removed*); an unchanged copy whose
   `identical` link pointed at a dirty or removed record is dirty too, since it was never scored itself;
2. keeps every previous link between two clean records and scores the dirty records against all the
   others and among themselves (`IdentityMatcher.predict(records, new=...)`);
3. re-clusters, with the same guards as a full run, every connected component that holds a dirty record
   or a record of a previous component that held a dirty or removed one; every other component keeps
   its clusters and its links' `kept` flags as they were, and its customers their ids (`carried`: ids
   are assigned over the touched clusters only).

Clusters, and therefore customer ids through `ids.assign_customer_ids`, come out as a full run with the
same model gives them, up to the usual noise of records scored right at the threshold.

Standardisation is incremental too (`standardise_changed`): a record whose raw attributes hash as they
did last time takes last time's standardised values, so phones are parsed only for new values.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from importlib.metadata import version
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.identity.cluster import cluster_records, components
from features.identity.decisions import STEWARD, Constraints, with_steward_links
from features.identity.match import IDENTICAL, MATCH_COLUMNS, IdentityMatcher
from features.identity.records import ATTRIBUTES, is_in, key_positions, raw_hashes, write_table
from features.identity.standardise import standardise_records


@dataclass(frozen=True)
class Resolution:
    """What a previous run left: its standardised records (with customer_id) and every link it made."""

    records: pd.DataFrame
    links: pd.DataFrame


@dataclass(frozen=True)
class IncrementalLinks:
    """This run's clusters and links, and how much of the graph had to be looked at again."""

    clusters: pd.Series  # index identity_key, value: cluster name; the re-clustered keys only
    links: pd.DataFrame
    carried: pd.DataFrame  # identity_key, customer_id: the keys of customers nothing touched (the others)
    dirty: int
    removed: int
    reclustered: int


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    # Empty frames would turn typed columns (kept: bool) into object columns.
    filled = [frame for frame in frames if len(frame)] or frames[:1]
    return pd.concat(filled, ignore_index=True)


@dataclass(frozen=True)
class Changes:
    """What changed since the last run: the keys to score again and the keys that disappeared."""

    dirty: pd.Series
    removed: pd.Series


def dirty_keys(records: pd.DataFrame, previous: Resolution) -> Changes:
    """The keys to score again (new, changed, or unscored copies of a changed record) and the removed keys."""
    # One DuckDB join over Arrow columns: comparing 270k records column by column in pandas cost seconds.
    con = duckdb.connect()
    con.register("now", _match_table(records))
    con.register("old", _match_table(previous.records))
    differs = " OR ".join(f"n.{c} IS DISTINCT FROM o.{c}" for c in MATCH_COLUMNS[1:])
    changed = con.sql(
        f"""SELECT n.identity_key FROM now n LEFT JOIN old o ON n.identity_key = o.identity_key
            WHERE o.identity_key IS NULL OR {differs}"""
    ).to_arrow_table()["identity_key"]
    removed = con.sql(
        "SELECT identity_key FROM old ANTI JOIN now USING (identity_key) ORDER BY identity_key"
    ).to_arrow_table()["identity_key"]
    con.close()
    gone = pa.chunked_array([*changed.chunks, *removed.chunks], type=changed.type)
    copies = previous.links[previous.links["kind"] == IDENTICAL]
    left, right = copies["identity_key_l"], copies["identity_key_r"]
    orphaned = pd.concat([left[is_in(right, gone)], right[is_in(left, gone)]])
    keys = records["identity_key"]
    dirty = keys[is_in(keys, changed) | is_in(keys, orphaned)]
    return Changes(dirty.reset_index(drop=True), pd.Series(removed.to_pylist(), dtype=object))


def _match_table(records: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(records[MATCH_COLUMNS], preserve_index=False)


def link_incrementally(
    matcher: IdentityMatcher,
    records: pd.DataFrame,
    previous: Resolution,
    changes: Changes,
    constraints: Constraints,
) -> IncrementalLinks:
    """Clusters and links of all records, scoring only dirty records and re-clustering what they touch.

    `changes`: `dirty_keys(records, previous)`. The records of every steward decision in force (`constraints`)
    are re-clustered too, whatever changed: a decision made since the last run then takes effect, and its
    steward links are made afresh each run.
    """
    dirty, removed = changes.dirty, changes.removed
    gone = pd.concat([dirty.astype(object), removed.astype(object)], ignore_index=True)
    decided = pd.Series(sorted(constraints.keys()), dtype=object)
    old_links = previous.links
    clean = ~(is_in(old_links["identity_key_l"], gone) | is_in(old_links["identity_key_r"], gone))
    kept_links = old_links[clean & (old_links["kind"] != STEWARD).to_numpy()]
    new_links = matcher.predict(records, new=dirty) if len(dirty) else kept_links.iloc[:0]
    links = with_steward_links(_concat([kept_links, new_links]), constraints.must, records["identity_key"])

    # What a full run would cluster differently: the components of today's graph holding a dirty record
    # or a record of a previous component that held a dirty or removed one. Those are the dirty records
    # and the previous components of the gone and decided records and of every new link's ends: the previous links
    # left are all between clean records, so only a new link (which has a dirty end) joins two previous
    # components. One components pass, over the previous graph.
    old_keys = previous.records["identity_key"]
    label = components(old_keys, old_links)
    ends = pd.concat(
        [gone, decided, new_links["identity_key_l"], new_links["identity_key_r"]], ignore_index=True
    )
    reached = old_keys[np.isin(label, label[is_in(old_keys, ends)])]
    keys = records["identity_key"]
    touched = is_in(keys, dirty) | is_in(keys, reached)
    touched_links = is_in(links["identity_key_l"], keys[touched])
    clusters, relinked = cluster_records(records[touched], links[touched_links], constraints.cannot)

    # Untouched customers keep their ids without being looked at (`ids.assign_customer_ids`).
    untouched = previous.records[~is_in(old_keys, reached)]
    # The new links had no `kept` flag until re-clustered: without the cast the column holds Python objects.
    links = _concat([links[~touched_links], relinked]).astype({"kept": bool})
    return IncrementalLinks(
        clusters=clusters,
        links=links,
        carried=untouched[["identity_key", "customer_id"]],
        dirty=len(dirty),
        removed=len(removed),
        reclustered=int(touched.sum()),
    )


def _standardiser_version(default_region: str) -> str:
    """Changes whenever the standardisation code, its tables, its libraries or the default region change."""
    package = resources.files("features.identity")
    parts = [
        package.joinpath(name).read_bytes() for name in ("standardise.py", "nicknames.csv", "given_names.txt")
    ]
    libraries = " ".join(
        version(name) for name in ("phonenumbers", "unidecode", "duckdb")
    )  # duckdb: raw_hash
    parts.append(f"{default_region} {libraries}".encode())
    return hashlib.blake2b(b"\0".join(parts), digest_size=8).hexdigest()


def _with_cached(
    raw: pd.DataFrame,
    standardised: pd.DataFrame,
    attributes: list[str],
    cached: pa.Table,
    position: np.ndarray,
    fresh: np.ndarray,
) -> pd.DataFrame:
    """Every record of `raw` standardised: the `fresh` ones from `standardised`, the others from `cached`.

    One Arrow take per attribute from the cache's rows followed by the fresh rows, in `raw`'s order
    (selecting, concatenating and sorting 270k records in pandas cost a second, the takes 0.1 s).
    """
    rows = position.copy()  # each record's row among [the cache's rows..., the fresh rows...]
    rows[fresh] = len(cached) + np.arange(int(fresh.sum()))
    rows = pa.array(rows)
    columns = {}
    for column in standardised.columns:
        if column not in attributes:
            columns[column] = raw[column]
            continue
        dtype = standardised[column].dtype
        now = pa.array(standardised[column], from_pandas=True).cast(cached[column].type)
        # The cache's chunks and the fresh values as one chunked array (not a ChunkedArray inside a list,
        # which Arrow would read value by value).
        values = pa.chunked_array([*cached[column].chunks, now], type=now.type).take(rows)
        mapper = (
            (lambda _, dtype=dtype: dtype) if isinstance(dtype, pd.api.extensions.ExtensionDtype) else None
        )
        columns[column] = values.to_pandas(types_mapper=mapper).astype(dtype)
    return pd.DataFrame(columns)


def standardise_changed(
    raw: pd.DataFrame,
    default_region: str,
    folder: Path,
    write: Callable[[pd.DataFrame, Path], object] = write_table,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """`standardise_records` for the records whose raw attributes changed; the others from the last run.

    The standardised values (before placeholders are nulled, which depends on every record) are kept in
    `folder/standardised-<version>.parquet`, keyed by identity key and a hash of the raw attributes, by
    `write` (the caller may write it in the background). Returns the standardised records in `raw`'s order
    and the invalid-value counts of all of them.
    """
    raw = raw.reset_index(drop=True)
    if "raw_hash" in raw.columns:  # computed by DuckDB with the records (`records.identity_records`)
        raw_hash = raw["raw_hash"].to_numpy(dtype=np.uint64)
        raw = raw.drop(columns=["raw_hash"])
    else:
        raw_hash = raw_hashes(raw)
    path = folder / f"standardised-{_standardiser_version(default_region)}.parquet"
    cached = pq.read_table(path) if path.exists() else None  # kept in Arrow: rows are only taken from it
    fresh = np.ones(len(raw), dtype=bool)  # a new key is fresh too
    if cached is not None:
        # Each record's row in the cache, looked up once (-1: not there).
        position = key_positions(cached["identity_key"], raw["identity_key"])
        known = position >= 0
        fresh[known] = cached["raw_hash"].to_numpy().astype(np.uint64)[position[known]] != raw_hash[known]
    standardised, _ = standardise_records(raw[fresh], default_region)
    attributes = [c for c in standardised.columns if c not in raw.columns or c in ATTRIBUTES]
    if cached is not None and not fresh.all():
        standardised = _with_cached(raw, standardised, attributes, cached, position, fresh)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("standardised-*.parquet"):
        stale.unlink()
    keep = standardised[["identity_key", *attributes]].assign(raw_hash=raw_hash)
    write(keep, path)
    # Counted on every record, so a run that reuses values reports what a full one does.
    invalid = {
        f"invalid_{column}s": int((raw[column].notna() & standardised[column].isna()).sum())
        for column in ("email", "phone")
    }
    return standardised.reset_index(drop=True), invalid
