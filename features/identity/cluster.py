"""Clusters of identity records: connected components of the links, guarded against over-merging.

Connected components (scipy's, over the link graph) alone let one wrong link (a shared household
email, a mistyped phone) chain two people together. The guard: a cluster holding two records that `conflict.conflict` says cannot be one
person (clearly different first names, or clearly different birth dates) is rebuilt from its links,
strongest first (identical records, loyalty card, email, phone, then probabilistic by match weight),
skipping every link that would put two conflicting records into one cluster. The cluster is thereby
split at its weakest links, and the skipped links are kept in the evidence with `kept = False`.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import combinations

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from features.identity.conflict import Person, conflict, people
from features.identity.match import LINK_KINDS
from features.identity.records import key_positions


def components(keys: pd.Series, links: pd.DataFrame) -> np.ndarray:
    """The connected component of each key (an integer label, in key order); links to unknown keys are ignored."""
    left, right = key_positions(keys, links["identity_key_l"]), key_positions(keys, links["identity_key_r"])
    inside = (left >= 0) & (right >= 0)
    n = len(keys)
    edges = (left[inside], right[inside])
    graph = coo_matrix((np.ones(int(inside.sum()), dtype=np.int8), edges), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def named_components(keys: pd.Series, links: pd.DataFrame) -> np.ndarray:
    """Each key's cluster, named by its smallest identity key (reproducible), in key order."""
    label = components(keys, links)
    frame = pd.DataFrame({"label": label, "key": keys.to_numpy()}).sort_values("key")
    smallest = frame.drop_duplicates("label").set_index("label")["key"]
    return smallest.reindex(label).to_numpy(dtype=object)


class _Components:
    """Union-find over record positions that refuses unions joining two conflicting records."""

    def __init__(self, persons: Mapping[int, Person]) -> None:
        self.parent: dict[int, int] = {}
        self.persons = persons
        # Distinct people per component: a cluster of fifty identical guest checkouts is one comparison.
        self.people: dict[int, set[Person]] = {}

    def find(self, i: int) -> int:
        if i not in self.parent:
            self.parent[i] = i
            self.people[i] = {self.persons[i]}
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
        found = None
        for x in self.people[a]:
            for y in self.people[b]:
                reason = conflict(x, y)
                if reason == "birth_date":
                    return reason
                found = found or reason
        if found:
            return found
        if len(self.people[a]) < len(self.people[b]):
            a, b = b, a
        self.parent[b] = a
        self.people[a] |= self.people.pop(b)
        return None


def _has_conflict(persons: list[Person]) -> bool:
    return any(conflict(x, y) for x, y in combinations(persons, 2))


def cluster_records(records: pd.DataFrame, links: pd.DataFrame) -> tuple[pd.Series, pd.DataFrame]:
    """The cluster of every record (named by its smallest identity key) and the links marked kept or cut."""
    keys = records["identity_key"].astype(str).reset_index(drop=True)
    links = links.reset_index(drop=True)
    links = links.assign(kept=True, cut_reason=pd.Series(pd.NA, index=links.index, dtype="string"))
    cluster = named_components(keys, links)
    codes, _ = pd.factorize(cluster)
    # Only a cluster of two or more distinct (first, last, birth date) can hold a conflict. Each cluster's
    # distinct people come from one drop_duplicates, and only the records of suspicious clusters become
    # Person objects (1.2 s of CPU at 100k went to building and hashing one for each of 225k records).
    who = records[["first_name", "last_name", "birth_date"]].reset_index(drop=True).assign(code=codes)
    variants = who.drop_duplicates()
    per_cluster = variants["code"].value_counts()
    several = variants[variants["code"].isin(per_cluster.index[per_cluster > 1])]
    distinct: dict[int, list[Person]] = {}
    for code, person in zip(several["code"].tolist(), people(several), strict=True):
        distinct.setdefault(code, []).append(person)
    suspicious = [code for code, group in distinct.items() if _has_conflict(group)]
    if suspicious:
        rows = np.flatnonzero(np.isin(codes, suspicious))
        persons = dict(zip(rows.tolist(), people(who.iloc[rows]), strict=True))
        cut = _split(np.array(suspicious), codes, cluster, links, keys, persons)
        links.loc[cut.index, "kept"] = False
        links.loc[cut.index, "cut_reason"] = cut
    return pd.Series(cluster, index=keys.to_numpy(), name="cluster"), links


def _split(
    suspicious: np.ndarray,
    codes: np.ndarray,
    cluster: np.ndarray,
    links: pd.DataFrame,
    keys: pd.Series,
    persons: Mapping[int, Person],
) -> pd.Series:
    """Rebuild each suspicious cluster from its links, strongest first, skipping conflicting unions.

    Renames the parts in `cluster` (each after its smallest key) and returns why each cut link was cut.
    """
    left, right = key_positions(keys, links["identity_key_l"]), key_positions(keys, links["identity_key_r"])
    rank = links["kind"].map({kind: i for i, kind in enumerate(LINK_KINDS)}).to_numpy()
    weight = links["match_weight"].astype(float).fillna(np.inf).to_numpy()
    order = np.lexsort((-weight, rank))
    order = order[np.isin(codes[left[order]], suspicious)]
    forest = _Components(persons)
    cut: dict[int, str] = {}
    for link in order:
        reason = forest.union(int(left[link]), int(right[link]))
        if reason:
            cut[int(link)] = f"conflicting {reason}"
    rows = np.flatnonzero(np.isin(codes, suspicious))
    parts = pd.DataFrame({"root": [forest.find(int(i)) for i in rows], "key": keys.to_numpy()[rows]})
    smallest = parts.sort_values("key").groupby("root")["key"].transform("first")
    cluster[rows] = smallest.reindex(parts.index).to_numpy()
    return pd.Series(cut, dtype="string")
