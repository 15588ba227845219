"""Steward decisions: a person splits a record off a customer (a wrong merge) or merges two customers.

A decision is data, kept in `workspace.identity / decisions.parquet` with one row per (decision, identity
key): decision_id, kind (`split` or `merge`), decided_at, decided_by (the API key id), reason, customer_id
(the customer the key belonged to when decided), identity_key and side:

- split: side `off` for the record split off, `kept` for every record left on the customer;
- merge: side `a` for every record of the first customer, `b` for every record of the second.

Every resolution honours them as constraints (`Constraints`), in the order they were recorded (rows are only
ever appended), a later one overriding an earlier one on the same pair of records: a split makes every (off, kept) pair *cannot-link* (the clustering
cuts their links and never joins them through a third record), a merge makes every (a, b) pair *must-link*
(a `steward` link, the strongest kind). Ids stay stable: the split-off record does not vote for the id it
left (`Constraints.left`), so it gets a new id and the old one stays with the customer; a merge is an
ordinary merge to `ids.assign_customer_ids` (the oldest id survives, the other becomes its alias).
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd

from features.identity.match import LINK_KINDS
from tessera.core.errors import InputError

FILE = "decisions.parquet"
STEWARD = LINK_KINDS[0]  # the kind of a must-link, the strongest
COLUMNS = [
    "decision_id",
    "kind",
    "decided_at",
    "decided_by",
    "reason",
    "customer_id",
    "identity_key",
    "side",
]


class UnknownCustomer(InputError):
    """A decision named a customer id no resolution issued."""


@dataclass(frozen=True)
class Constraints:
    """What the decisions in force ask of the clustering and the ids."""

    must: pd.DataFrame  # identity_key_l, identity_key_r: the steward links
    cannot: frozenset[tuple[str, str]]  # (smaller key, larger key) pairs never in one cluster
    left: pd.DataFrame  # identity_key, customer_id: a split-off record and the id it must not keep

    def keys(self) -> set[str]:
        """Every record a decision in force names (the incremental run re-clusters their components)."""
        pairs = set(self.must["identity_key_l"]) | set(self.must["identity_key_r"])
        return pairs | {key for pair in self.cannot for key in pair}


def _pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a < b else (b, a)


def read_decisions(folder: Path) -> pd.DataFrame:
    """Every decision row in `folder` (empty when there are none)."""
    path = folder / FILE
    if not path.exists():
        return pd.DataFrame({column: pd.Series(dtype=object) for column in COLUMNS})
    return pd.read_parquet(path)


def constraints(decisions: pd.DataFrame) -> Constraints:
    """The must-link and cannot-link pairs of `decisions`, a later decision overriding an earlier one."""
    state: dict[tuple[str, str], str] = {}
    left: dict[str, str] = {}
    for _, rows in decisions.groupby("decision_id", sort=False):  # in the order they were recorded
        kind = rows["kind"].iloc[0]
        first, second = ("off", "kept") if kind == "split" else ("a", "b")
        ones = rows.loc[rows["side"] == first, "identity_key"].astype(str).tolist()
        others = rows.loc[rows["side"] == second, "identity_key"].astype(str).tolist()
        for one in ones:
            for other in others:
                state[_pair(one, other)] = "cannot" if kind == "split" else "must"
        for key in (*ones, *others):
            left.pop(key, None)  # a later decision on the record supersedes its split
        if kind == "split":
            left.update(dict.fromkeys(ones, str(rows["customer_id"].iloc[0])))
    must = [pair for pair, what in state.items() if what == "must"]
    return Constraints(
        must=pd.DataFrame(must, columns=["identity_key_l", "identity_key_r"], dtype=object),
        cannot=frozenset(pair for pair, what in state.items() if what == "cannot"),
        left=pd.DataFrame(list(left.items()), columns=["identity_key", "customer_id"], dtype=object),
    )


def with_steward_links(links: pd.DataFrame, must: pd.DataFrame, keys: pd.Series) -> pd.DataFrame:
    """`links` and the must-link pairs between records that exist (`keys`) as links of kind `steward`."""
    if must.empty:  # no steward link: no set of every key (a quarter of a second at 100k customers)
        return links
    present = set(keys.astype(str))
    inside = must["identity_key_l"].isin(present) & must["identity_key_r"].isin(present)
    if not inside.any():
        return links
    # Shaped like `links` first (its columns and types), so the concatenation keeps every column's type.
    steward = pd.concat([links.iloc[:0], must[inside].assign(kind=STEWARD)], ignore_index=True)
    return pd.concat([links, steward], ignore_index=True)


def _customer_keys(records: pd.DataFrame, customer_id: str, field: str) -> list[str]:
    keys = records.loc[records["customer_id"] == customer_id, "identity_key"].astype(str)
    if keys.empty:
        raise UnknownCustomer(f"{field}: unknown customer {customer_id!r}")
    return sorted(keys)


def split_decision(
    records: pd.DataFrame, customer_id: str, identity_key: str, reason: str, by: str, at: datetime
) -> pd.DataFrame:
    """The rows of a decision splitting the record `identity_key` off `customer_id` (a live id).

    `records` is the last resolution's (identity_key, customer_id). Raises `InputError` naming the field.
    """
    keys = _customer_keys(records, customer_id, "customer_id")
    if identity_key not in keys:
        raise InputError(f"identity_key: record {identity_key!r} is not one of customer {customer_id!r}'s")
    if len(keys) == 1:
        raise InputError(f"identity_key: {identity_key!r} is customer {customer_id!r}'s only record")
    sides = {key: "off" if key == identity_key else "kept" for key in keys}
    return _rows("split", sides, {key: customer_id for key in keys}, reason, by, at)


def merge_decision(
    records: pd.DataFrame, customer_ids: tuple[str, str], reason: str, by: str, at: datetime
) -> pd.DataFrame:
    """The rows of a decision merging two customers (live ids). Raises `InputError` naming the field."""
    a, b = customer_ids
    if a == b:
        raise InputError(f"customer_ids: cannot merge customer {a!r} with itself")
    sides, owners = {}, {}
    for side, customer in (("a", a), ("b", b)):
        for key in _customer_keys(records, customer, "customer_ids"):
            sides[key], owners[key] = side, customer
    return _rows("merge", sides, owners, reason, by, at)


def _rows(
    kind: str, sides: dict[str, str], owners: dict[str, str], reason: str, by: str, at: datetime
) -> pd.DataFrame:
    if not reason.strip():
        raise InputError("reason: a steward decision needs a reason")
    return pd.DataFrame(
        {
            "decision_id": uuid.uuid4().hex,
            "kind": kind,
            "decided_at": pd.Timestamp(at),
            "decided_by": by,
            "reason": reason.strip(),
            "customer_id": [owners[key] for key in sides],
            "identity_key": list(sides),
            "side": list(sides.values()),
        }
    )


def record_decision(folder: Path, rows: pd.DataFrame) -> None:
    """Append a decision's rows to `decisions.parquet` (written then renamed: never half-written)."""
    decisions = (
        pd.concat([read_decisions(folder), rows], ignore_index=True) if (folder / FILE).exists() else rows
    )
    tmp = folder / (FILE + ".tmp")
    decisions.astype({"decided_at": "datetime64[us, UTC]"}).to_parquet(tmp, index=False)
    os.replace(tmp, folder / FILE)


def forget_decisions(folder: Path, keys: frozenset[str]) -> int:
    """Remove every decision that names one of `keys` (customer ids or identity keys), each whole; rows removed.

    Erasure calls it before scrubbing row by row, so no decision survives with half its records.
    """
    decisions = read_decisions(folder)
    touched = decisions["customer_id"].isin(keys) | decisions["identity_key"].isin(keys)
    gone = decisions["decision_id"].isin(decisions.loc[touched, "decision_id"])
    if gone.any():
        tmp = folder / (FILE + ".tmp")
        decisions[~gone].to_parquet(tmp, index=False)
        os.replace(tmp, folder / FILE)
    return int(gone.sum())
