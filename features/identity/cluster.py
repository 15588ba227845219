"""Clusters of identity records: connected components of the links, guarded against over-merging.

Connected components (scipy's, over the link graph) alone let one wrong link (a shared household
email, a mistyped phone) chain two people together. The guard: a cluster holding two records that `conflict.conflict` says cannot be one
person (clearly different first names, or clearly different birth dates) is rebuilt from its links,
strongest first (identical records, loyalty card, email, phone, then probabilistic by match weight),
skipping every link that would put two conflicting records into one cluster. The cluster is thereby
split at its weakest links, and the skipped links are kept in the evidence with `kept = False`.

Steward splits (`decisions.py`) add cannot-link pairs: their links are cut (`steward split`) before the
components are found, and a cluster that still holds such a pair through a third record is rebuilt like a
conflicting one, never joining the pair.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from itertools import combinations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from features.identity.conflict import CONFLICT_COLUMNS, Person, conflict, known_as, people, people_conflict
from features.identity.match import LINK_KINDS
from features.identity.records import arrow_text, link_positions


def components(keys: pd.Series | pa.Array, links: pd.DataFrame) -> np.ndarray:
    """The connected component of each key (an integer label, in key order); links to unknown keys are ignored."""
    return _components(len(keys), *link_positions(keys, links))


def _components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """The connected component of each of `n` records (labels 0, 1, ...) linked pairwise by position (-1: none)."""
    inside = (left >= 0) & (right >= 0)
    graph = coo_matrix(
        (np.ones(int(inside.sum()), dtype=np.int8), (left[inside], right[inside])), shape=(n, n)
    )
    return connected_components(graph, directed=False)[1]


def _smallest_keys(keys: pa.Array, label: np.ndarray) -> np.ndarray:
    """Each record's label (0, 1, ... as `_components` gives them) named by its smallest key: that key's
    position in `keys` (the text is taken once, at the end: a million Python str cost 0.7 s to make)."""
    by_key = pc.sort_indices(keys).to_numpy()
    _, first = np.unique(label[by_key], return_index=True)  # every label occurs: its first key in key order
    return by_key[first][label]


class _Components:
    """Union-find over record positions that refuses unions joining two conflicting records, or two records a
    steward split apart (`apart`: position -> the positions it may not join)."""

    def __init__(self, persons: Mapping[int, Person], apart: Mapping[int, set[int]]) -> None:
        self.parent: dict[int, int] = {}
        self.persons = persons
        # Distinct people per component: a cluster of fifty identical guest checkouts is one comparison.
        self.people: dict[int, set[Person]] = {}
        self.apart = apart
        self.bound: dict[int, set[int]] = {}  # per component, its positions that have a cannot-link

    def find(self, i: int) -> int:
        if i not in self.parent:
            self.parent[i] = i
            self.people[i] = {self.persons[i]}
            self.bound[i] = {i} if i in self.apart else set()
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, i: int, j: int) -> str | None:
        """Join the components of i and j unless two of their records conflict; returns the conflict.

        A birth date conflict is named before a first name one, whatever order the sets are walked in (a set of
        records iterates in hash order, which differs between processes)."""
        a, b = self.find(i), self.find(j)
        if a == b:
            return None
        if any(self.apart[x] & self.bound[b] for x in self.bound[a]):
            return "steward split"
        found = None
        for reason in _conflicts(self.people[a], self.people[b]):
            if reason == "birth_date":
                return reason
            found = found or reason
        if found:
            return found
        if len(self.people[a]) < len(self.people[b]):
            a, b = b, a
        self.parent[b] = a
        self.people[a] |= self.people.pop(b)
        self.bound[a] |= self.bound.pop(b)
        return None


def _apart(keys: pa.Array, cannot: frozenset[tuple[str, str]]) -> dict[int, set[int]]:
    """The cannot-link pairs among `keys` by position, both ways."""
    if not cannot:
        return {}
    position = {key: i for i, key in enumerate(keys.to_pylist())}
    apart: dict[int, set[int]] = {}
    for a, b in cannot:
        if a in position and b in position:
            apart.setdefault(position[a], set()).add(position[b])
            apart.setdefault(position[b], set()).add(position[a])
    return apart


def _conflicts(a: set[Person], b: set[Person]) -> Iterator[str | None]:
    """Each conflict (or None) between the people among records `a` and those among records `b`."""
    if any(person.national_id is not None for side in (a, b) for person in side):
        return (people_conflict(x, y) for x in known_as(a) for y in known_as(b))
    return (conflict(x, y) for x in a for y in b)  # no national id: each record a person of its own


def _has_conflict(persons: list[Person]) -> bool:
    """Whether some records hold two people who cannot be one, or one person's variants that cannot be."""
    if all(person.national_id is None for person in persons):  # each record a person of its own
        return any(conflict(x, y) for x, y in combinations(persons, 2))
    groups = known_as(persons)
    return any(conflict(x, y) for group in groups for x, y in combinations(group, 2)) or any(
        people_conflict(x, y) for x, y in combinations(groups, 2)
    )


def cluster_records(
    records: pd.DataFrame, links: pd.DataFrame, cannot: frozenset[tuple[str, str]] = frozenset()
) -> tuple[pd.Series, pd.DataFrame]:
    """The cluster of every record (named by its smallest identity key) and the links marked kept or cut.

    `cannot`: (smaller, larger) identity key pairs a steward split apart; they never share a cluster.
    """
    key_text = arrow_text(records["identity_key"])  # Arrow: a million Python str cost 0.7 s to make
    links = links.reset_index(drop=True) if not links.index.equals(pd.RangeIndex(len(links))) else links
    links = links.assign(kept=True, cut_reason=pd.array(np.full(len(links), None), dtype="string"))
    left, right = link_positions(key_text, links)  # looked up once for components and splits
    apart = _apart(key_text, cannot)
    if apart:
        pairs = [
            (a, b) if a < b else (b, a)
            for a, b in zip(
                links["identity_key_l"].astype(str), links["identity_key_r"].astype(str), strict=True
            )
        ]
        split = np.array([pair in cannot for pair in pairs], dtype=bool)
        links.loc[split, "kept"] = False
        links.loc[split, "cut_reason"] = "steward split"
    kept = links["kept"].to_numpy()
    codes = _components(len(key_text), left[kept], right[kept])
    cluster = _smallest_keys(key_text, codes)
    # Only a cluster of two or more distinct (first, last, birth date, national id) can hold a conflict. Each
    # cluster's distinct people come from one drop_duplicates, and only the records of suspicious clusters
    # become Person objects (1.2 s of CPU at 100k went to building and hashing one for each of 225k records).
    who = (
        records[[c for c in CONFLICT_COLUMNS if c in records.columns]]
        .reset_index(drop=True)
        .assign(code=codes)
    )
    variants = who.drop_duplicates()
    several = variants[np.isin(variants["code"].to_numpy(), _differing(variants))]
    distinct: dict[int, list[Person]] = {}
    for code, person in zip(several["code"].tolist(), people(several), strict=True):
        distinct.setdefault(code, []).append(person)
    suspicious = [code for code, group in distinct.items() if _has_conflict(group)]
    suspicious += sorted(
        {int(codes[a]) for a, others in apart.items() for b in others if codes[a] == codes[b]}
        - set(suspicious)
    )
    if suspicious:
        rows = np.flatnonzero(np.isin(codes, suspicious))
        persons = dict(zip(rows.tolist(), people(who.iloc[rows]), strict=True))
        cut = _split(np.array(suspicious), codes, cluster, links, key_text, (left, right), persons, apart)
        links.loc[cut.index, "kept"] = False
        links.loc[cut.index, "cut_reason"] = cut
    text = pd.arrays.ArrowStringArray
    return pd.Series(text(key_text.take(pa.array(cluster))), index=text(key_text), name="cluster"), links


def _differing(variants: pd.DataFrame) -> np.ndarray:
    """The clusters (codes) holding two different first names or two different birth dates: the only ones where
    two records can conflict (`conflict.conflict` needs one of them to differ, a missing value never does)."""
    found = [
        pairs["code"].to_numpy()[pairs["code"].duplicated().to_numpy()]
        for column in ("first_name", "birth_date")
        if column in variants.columns
        for pairs in [variants[["code", column]].dropna().drop_duplicates()]
    ]
    return np.unique(np.concatenate(found)) if found else np.array([], dtype=np.int64)


def _split(
    suspicious: np.ndarray,
    codes: np.ndarray,
    cluster: np.ndarray,
    links: pd.DataFrame,
    keys: pa.Array,
    positions: tuple[np.ndarray, np.ndarray],
    persons: Mapping[int, Person],
    apart: Mapping[int, set[int]],
) -> pd.Series:
    """Rebuild each suspicious cluster from its links, strongest first, skipping conflicting unions.

    `positions`: each link's two records' positions in `keys`. Renames the parts in `cluster` (each after its
    smallest key's position in `keys`) and returns why each cut link was cut.
    """
    left, right = positions
    rank = links["kind"].map({kind: i for i, kind in enumerate(LINK_KINDS)}).to_numpy()
    weight = links["match_weight"].astype(float).fillna(np.inf).to_numpy()
    # Equal kinds and weights (a name and address shared by several records) in key order, not in the order
    # the links arrived in: DuckDB's threads hand them over in a different order each run.
    order = np.lexsort((right, left, -weight, rank))
    order = order[np.isin(codes[left[order]], suspicious) & links["kept"].to_numpy()[order]]
    forest = _Components(persons, apart)
    cut: dict[int, str] = {}
    for link in order:
        reason = forest.union(int(left[link]), int(right[link]))
        if reason:
            cut[int(link)] = f"conflicting {reason}"
    rows = np.flatnonzero(np.isin(codes, suspicious))
    _, part = np.unique([forest.find(int(i)) for i in rows], return_inverse=True)
    cluster[rows] = rows[_smallest_keys(keys.take(pa.array(rows)), part)]
    return pd.Series(cut, dtype="string")
