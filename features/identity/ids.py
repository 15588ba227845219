"""Stable customer ids: clusters of this run get the ids their identity keys had in the last run.

- Every previous id follows the largest part of its old records (ties: the part with the smallest key).
- A cluster followed by one previous id keeps it; followed by several (a merge), the oldest survives and
  the others become aliases of it; followed by none (new, or a smaller part of a split), gets a new id.
- Ids are `C` plus a zero-padded sequence that never reuses a number, aliases included.
- Keys an incremental run did not touch are `carried`: their customers keep their ids without being
  looked at, so a daily load assigns ids over the clusters it touched only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.identity.records import arrow_text, is_in
from features.identity.standardise import TEXT

PREFIX = "C"
DIGITS = 9
ALIAS_COLUMNS = ["alias_id", "customer_id", "merged_at"]


@dataclass(frozen=True)
class IdAssignment:
    """The outcome of one run: each key's customer id, the customers and the full alias table."""

    keys: pd.DataFrame  # identity_key, customer_id
    customers: pd.DataFrame  # customer_id, created_at
    aliases: pd.DataFrame  # alias_id, customer_id, merged_at
    minted: int
    merged: int
    kept: int
    retired: int


def empty_aliases() -> pd.DataFrame:
    """An alias table with no rows."""
    return pd.DataFrame(
        {
            "alias_id": pd.Series(dtype="string"),
            "customer_id": pd.Series(dtype="string"),
            "merged_at": pd.Series(dtype="datetime64[us, UTC]"),
        }
    )


def _numbers(customer_ids: pd.Series) -> pd.Series:
    """The sequence number of each id (0 for an id not made here), vectorised: there may be millions."""
    ids = customer_ids.astype("string[pyarrow]")  # Arrow's string kernels: far quicker than Python's
    digits = ids.str.slice(len(PREFIX))
    ours = (ids.str.startswith(PREFIX) & digits.str.isdigit()).fillna(False).astype(bool)
    return pd.to_numeric(digits.where(ours), errors="coerce").fillna(0).astype("int64")


def assign_customer_ids(
    clusters: pd.Series,
    previous_keys: pd.DataFrame | None,
    previous_customers: pd.DataFrame | None,
    previous_aliases: pd.DataFrame | None,
    now: datetime,
    carried: pd.DataFrame | None = None,
) -> IdAssignment:
    """Customer ids for this run's clusters (index: identity_key, value: cluster), stable across runs.

    `carried` (identity_key, customer_id): keys whose previous customers nothing touched, each customer
    with all its keys; they keep those ids.
    """
    carried = carried if carried is not None else pd.DataFrame(columns=["identity_key", "customer_id"])
    carried_ids = pd.Index(carried["customer_id"].unique())
    keys = pd.DataFrame({"identity_key": _text(clusters.index.to_series()), "cluster": _text(clusters)})
    if len(carried):
        keys = keys[~is_in(keys["identity_key"], carried["identity_key"])]
    aliases = previous_aliases if previous_aliases is not None else empty_aliases()
    created = (
        previous_customers.set_index("customer_id")["created_at"]
        if previous_customers is not None
        else pd.Series(dtype=object)
    )
    if previous_keys is None or previous_keys.empty:
        old = pd.DataFrame(columns=["identity_key", "old_id"])
    else:
        old = previous_keys[["identity_key", "customer_id"]].rename(columns={"customer_id": "old_id"})
    # Id columns stay Arrow text (90k customers: a Python set of them cost a second in a daily run).
    old_ids = _text(pd.Series(old["old_id"].unique()))
    previous_ids = _text(pd.concat([_text(created.index.to_series()), old_ids])).drop_duplicates()
    issued = pd.concat([old_ids, _text(aliases["alias_id"]), previous_ids], ignore_index=True)
    old = old[~is_in(old["old_id"], carried_ids)]
    joined = keys.merge(old, on="identity_key", how="inner")
    parts = joined.groupby(["old_id", "cluster"]).size().rename("n").reset_index()
    # Each previous id follows its largest part.
    parts = parts.sort_values(["old_id", "n", "cluster"], ascending=[True, False, True])
    follow = parts.drop_duplicates("old_id")
    follow = follow.assign(created_at=follow["old_id"].map(created), number=_numbers(follow["old_id"]))
    follow = follow.sort_values(["cluster", "created_at", "number"], na_position="last")
    survivors = follow.drop_duplicates("cluster")
    merged_away = follow[~follow.index.isin(survivors.index)]
    owner = dict(zip(survivors["cluster"], survivors["old_id"], strict=True))

    next_number = int(_numbers(issued).max()) + 1 if len(issued) else 1
    # In Arrow: a set and a sort of a million clusters in Python cost 0.3 s (UTF-8 sorts as Python's str does).
    unowned = pc.unique(arrow_text(keys["cluster"]))
    unowned = unowned.filter(pc.invert(pc.is_in(unowned, value_set=pa.array(list(owner), type=pa.string()))))
    new_clusters = unowned.take(pc.sort_indices(unowned)).to_pylist()
    for offset, name in enumerate(new_clusters):
        owner[name] = f"{PREFIX}{next_number + offset:0{DIGITS}d}"

    new_aliases = pd.DataFrame(
        {
            "alias_id": merged_away["old_id"].astype("string"),
            "customer_id": merged_away["cluster"].map(owner).astype("string"),
            "merged_at": pd.Series(
                [pd.Timestamp(now)] * len(merged_away), index=merged_away.index, dtype="datetime64[us, UTC]"
            ),
        }
    )
    all_aliases = _compress(pd.concat([aliases[ALIAS_COLUMNS], new_aliases], ignore_index=True))
    # Each cluster's owner looked up once, then taken back by code (a dict map over every key cost 0.5 s at 1M).
    codes, clusters_seen = pd.factorize(keys["cluster"])
    names = pa.array([owner[name] for name in clusters_seen.tolist()], type=pa.string())
    keys = pd.DataFrame(
        {
            "identity_key": keys["identity_key"].array,
            "customer_id": pd.arrays.ArrowStringArray(names.take(pa.array(codes))),
        }
    )
    if len(carried):  # (an empty frame in a concat is deprecated)
        carried = carried.astype({"customer_id": TEXT})
        keys = pd.concat([keys, carried], ignore_index=True) if len(keys) else carried.reset_index(drop=True)
    owners = _text(pd.Series(list(owner.values()), dtype=object))
    live = pd.concat([owners, _text(carried_ids.to_series())]).drop_duplicates().sort_values()
    customers = pd.DataFrame({"customer_id": live.astype("string").to_numpy()})
    stamp = pd.Timestamp(now)
    customers["created_at"] = pd.to_datetime(customers["customer_id"].map(created), utc=True).fillna(stamp)
    gone = pd.concat([owners, _text(merged_away["old_id"]), _text(carried_ids.to_series())])
    retired = previous_ids[~is_in(previous_ids, gone)]
    return IdAssignment(
        keys=keys,
        customers=customers,
        aliases=all_aliases,
        minted=len(new_clusters),
        merged=len(merged_away),
        kept=len(survivors) + len(carried_ids),
        retired=len(retired),
    )


def _text(values: pd.Series) -> pd.Series:
    return values.astype("string[pyarrow]").reset_index(drop=True)


def _compress(aliases: pd.DataFrame) -> pd.DataFrame:
    """Point every alias straight at its final customer (A -> B -> C becomes A -> C, B -> C)."""
    target = alias_targets(aliases)
    final = []
    for customer in aliases["customer_id"]:
        seen = set()
        while customer in target and customer not in seen:
            seen.add(customer)
            customer = target[customer]
        final.append(customer)
    out = aliases.assign(customer_id=pd.Series(final, index=aliases.index, dtype="string"))
    return out.drop_duplicates("alias_id", keep="last").reset_index(drop=True)


def alias_targets(aliases: pd.DataFrame) -> dict[str, str]:
    """An alias table as a mapping: alias_id -> the customer_id it was merged into."""
    return dict(zip(aliases["alias_id"], aliases["customer_id"], strict=True))


def follow_alias(customer_ids: set[str], targets: Mapping[str, str], any_id: str) -> str | None:
    """The live customer an id stands for: itself, the customer it was merged into, or None.

    `targets` is the alias table as `alias_targets` gives it, built once for any number of look-ups.
    """
    seen: set[str] = set()
    current = any_id
    while current not in customer_ids:
        if current not in targets or current in seen:
            return None
        seen.add(current)
        current = targets[current]
    return current


def id_stability(
    before: pd.DataFrame, after: pd.DataFrame, customers: pd.DataFrame, aliases: pd.DataFrame
) -> dict:
    """How stable ids were between two runs, given each run's identity_key -> customer_id table.

    A customer is unaffected when its records all still share one cluster and that cluster holds no
    record of another previous customer (new records may have joined). Reports the share of unaffected
    customers that kept their id, and whether every id that disappeared still resolves to a customer.
    """
    joined = before.merge(after, on="identity_key", suffixes=("_before", "_after"))
    after_ids_per_old = joined.groupby("customer_id_before")["customer_id_after"].nunique()
    old_per_new = joined.groupby("customer_id_after")["customer_id_before"].nunique()
    single_new = joined.groupby("customer_id_before")["customer_id_after"].first()
    unaffected = after_ids_per_old.index[
        (after_ids_per_old == 1) & (single_new.map(old_per_new) == 1).to_numpy()
    ]
    kept = int((single_new.loc[unaffected] == unaffected).sum())
    live = set(customers["customer_id"])
    gone = sorted(set(before["customer_id"]) - live)
    targets = alias_targets(aliases)
    unresolved = [cid for cid in gone if follow_alias(live, targets, cid) is None]
    return {
        "customers_before": int(before["customer_id"].nunique()),
        "customers_after": int(after["customer_id"].nunique()),
        "unaffected": len(unaffected),
        "unaffected_kept_id": kept,
        "unaffected_kept_share": kept / len(unaffected) if len(unaffected) else 1.0,
        "ids_gone": len(gone),
        "ids_gone_unresolved": len(unresolved),
        "all_gone_ids_resolve": not unresolved,
    }
