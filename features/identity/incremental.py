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
   its clusters and its links' `kept` flags as they were.

Clusters, and therefore customer ids through `ids.assign_customer_ids`, come out as a full run with the
same model gives them, up to the usual noise of records scored right at the threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from features.identity.cluster import cluster_records
from features.identity.match import IDENTICAL, MATCH_COLUMNS, IdentityMatcher


@dataclass(frozen=True)
class Resolution:
    """What a previous run left: its standardised records (with customer_id) and every link it made."""

    records: pd.DataFrame
    links: pd.DataFrame


@dataclass(frozen=True)
class IncrementalLinks:
    """This run's clusters and links, and how much of the graph had to be looked at again."""

    clusters: pd.Series  # index identity_key, value: cluster name
    links: pd.DataFrame
    dirty: int
    removed: int
    reclustered: int


def _same(current: pd.Series, previous: pd.Series) -> np.ndarray:
    """Element-wise equality where two missing values are equal."""
    a, b = current.to_numpy(dtype=object), previous.to_numpy(dtype=object)
    a_missing, b_missing = pd.isna(a), pd.isna(b)
    both = ~a_missing & ~b_missing
    same = a_missing & b_missing
    same[both] = (a[both] == b[both]).astype(bool)
    return same


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    # Empty frames would turn typed columns (kept: bool) into object columns.
    filled = [frame for frame in frames if len(frame)] or frames[:1]
    return pd.concat(filled, ignore_index=True)


def dirty_keys(records: pd.DataFrame, previous: Resolution) -> tuple[pd.Series, pd.Series]:
    """The keys to score again (new, changed, or unscored copies of a changed record) and the removed keys."""
    old = previous.records.set_index("identity_key")
    keys = records["identity_key"]
    known = keys.isin(old.index).to_numpy()
    changed = ~known
    matched = old.reindex(keys[known])
    unchanged = np.ones(int(known.sum()), dtype=bool)
    for column in MATCH_COLUMNS[1:]:
        unchanged &= _same(records.loc[known, column], matched[column])
    changed[np.flatnonzero(known)[~unchanged]] = True
    removed = pd.Series(old.index.difference(keys), dtype=object)
    gone = set(keys[changed]) | set(removed)
    copies = previous.links[previous.links["kind"] == IDENTICAL]
    left, right = copies["identity_key_l"], copies["identity_key_r"]
    orphaned = set(left[right.isin(gone)]) | set(right[left.isin(gone)])
    dirty = keys[changed | keys.isin(orphaned).to_numpy()]
    return dirty.reset_index(drop=True), removed


def components(keys: pd.Series, links: pd.DataFrame) -> np.ndarray:
    """The connected component of each key (an integer label, in key order) over all the links."""
    position = pd.Series(np.arange(len(keys)), index=keys.to_numpy())
    left = position.reindex(links["identity_key_l"]).to_numpy()
    right = position.reindex(links["identity_key_r"]).to_numpy()
    inside = ~(np.isnan(left) | np.isnan(right))
    n = len(keys)
    graph = coo_matrix(
        (np.ones(int(inside.sum()), dtype=np.int8), (left[inside].astype(int), right[inside].astype(int))),
        shape=(n, n),
    )
    return connected_components(graph, directed=False)[1]


def _touched(keys: pd.Series, links: pd.DataFrame, seeds: pd.Series) -> np.ndarray:
    """Which keys share a connected component with any of the seeds."""
    label = components(keys, links)
    return np.isin(label, label[keys.isin(seeds).to_numpy()])


def link_incrementally(
    matcher: IdentityMatcher, records: pd.DataFrame, previous: Resolution
) -> IncrementalLinks:
    """Clusters and links of all records, scoring only dirty records and re-clustering what they touch."""
    dirty, removed = dirty_keys(records, previous)
    gone = pd.concat([dirty, removed], ignore_index=True)
    old_links = previous.links
    # The previous components the dirty and removed records were part of must be clustered afresh.
    was_touched = _touched(previous.records["identity_key"], old_links, gone)
    seeds = pd.concat([dirty, previous.records["identity_key"][was_touched]], ignore_index=True)

    clean = ~(old_links["identity_key_l"].isin(gone) | old_links["identity_key_r"].isin(gone))
    kept_links = old_links[clean.to_numpy()]
    new_links = matcher.predict(records, new=dirty) if len(dirty) else kept_links.iloc[:0]
    links = _concat([kept_links, new_links])

    keys = records["identity_key"].astype(str).reset_index(drop=True)
    touched = _touched(keys, links, seeds)
    touched_links = links["identity_key_l"].isin(keys[touched]).to_numpy()
    clusters, relinked = cluster_records(records[touched], links[touched_links])

    # Untouched customers keep their records together, named (as a full run would) by their smallest key.
    untouched = previous.records[~previous.records["identity_key"].isin(keys[touched])]
    untouched = untouched[["identity_key", "customer_id"]].sort_values("identity_key")
    smallest = untouched.drop_duplicates("customer_id").set_index("customer_id")["identity_key"]
    name = untouched["customer_id"].map(smallest).to_numpy()
    clusters = pd.concat(
        [clusters, pd.Series(name, index=untouched["identity_key"].to_numpy(), name="cluster")]
    )
    links = _concat([links[~touched_links], relinked])
    return IncrementalLinks(
        clusters=clusters.reindex(keys.to_numpy()),
        links=links,
        dirty=len(dirty),
        removed=len(removed),
        reclustered=int(touched.sum()),
    )
