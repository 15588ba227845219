"""TIFU-KNN's two vectors (Hu et al., SIGIR 2020), with sparse matrices.

A customer's baskets (their purchase days), newest first, fall into groups of `group_size`; a basket weighs
`within ** (its place in its group)` times `across ** (its group's place)`, both counted from the newest, over
`group_size × groups` (the paper's two averages). The personal vector sums the weights of the baskets holding
each item; the neighbour vector is the mean personal vector of the customer's k most similar customers (cosine
of personal vectors), never the customer themself. TIFU-KNN scores `a · personal + (1 − a) · neighbours`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.preprocessing import normalize

_CHUNK = 512  # query customers per block of the (dense) similarity to every reference customer


def personal_vectors(
    events: pd.DataFrame,
    now: datetime,
    customers: Sequence[str],
    items: pd.Index,
    within: float,
    across: float,
    group_size: int,
) -> sp.csr_matrix:
    """Customers (rows, in the given order) × items: the time-decayed personal vector of purchases up to `now`."""
    moment = pd.Timestamp(now)
    index = pd.Index(customers)
    bought = events[
        (events["kind"] == "purchase") & (events["occurred_at"] <= moment) & events["customer_id"].isin(index)
    ]
    lines = pd.DataFrame(
        {
            "customer_id": bought["customer_id"].to_numpy(),
            "day": bought["occurred_at"].dt.floor("D").to_numpy(),
            "sku": bought["sku"].astype(str).to_numpy(),
        }
    )
    lines = lines[lines["sku"].isin(items)].drop_duplicates()
    baskets = (
        lines[["customer_id", "day"]]
        .drop_duplicates()
        .sort_values(["customer_id", "day"], ascending=[True, False], kind="stable")
    )
    place = baskets.groupby("customer_id", sort=False).cumcount().to_numpy()
    groups = np.ceil(
        baskets.groupby("customer_id", sort=False)["day"].transform("size").to_numpy() / group_size
    )
    baskets["weight"] = (
        across ** (place // group_size) * within ** (place % group_size) / (group_size * groups)
    ).astype(np.float32)
    weighted = lines.merge(baskets, on=["customer_id", "day"])
    return sp.csr_matrix(
        (
            weighted["weight"].to_numpy(np.float32),
            (index.get_indexer(weighted["customer_id"]), items.get_indexer(weighted["sku"])),
        ),
        shape=(len(index), len(items)),
    )


def neighbour_vectors(
    query: sp.csr_matrix,
    query_ids: Sequence[str],
    reference: sp.csr_matrix,
    reference_ids: pd.Index,
    k: int,
) -> sp.csr_matrix:
    """Per query row: the mean reference vector of its k nearest reference customers by cosine, never itself.

    A customer sharing nothing with the query is no neighbour (the mean still divides by k); among equally similar
    ones the earlier in `reference` come first. The similarity stays sparse: only the customers sharing an item
    with the query are ranked (some 7% of them on the simulated retailer), never every reference customer.
    """
    n, size = query.shape[0], reference.shape[0]
    if n == 0 or size == 0 or k < 1:
        return sp.csr_matrix((n, reference.shape[1]), dtype=np.float32)
    k = min(k, size)
    unit_reference = normalize(reference).T.tocsr()
    unit_query = normalize(query)
    itself = reference_ids.get_indexer(list(query_ids))
    parts = []
    for start in range(0, n, _CHUNK):
        similarity = (unit_query[start : start + _CHUNK] @ unit_reference).tocsr()
        rows, neighbours = _nearest(similarity, itself[start : start + _CHUNK], k)
        weights = sp.csr_matrix(
            (np.full(len(rows), 1.0 / k, np.float32), (rows, neighbours)), shape=(similarity.shape[0], size)
        )
        parts.append(weights @ reference)
    return sp.vstack(parts).tocsr().astype(np.float32)


def _nearest(similarity: sp.csr_matrix, itself: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(row, reference position) of each row's k most similar reference customers with a positive similarity, not
    the row's own (`itself`: its reference position, or -1)."""
    owner = np.repeat(np.arange(similarity.shape[0]), np.diff(similarity.indptr))
    keep = (similarity.data > 0) & (similarity.indices != itself[owner])
    owner, columns, values = owner[keep], similarity.indices[keep], similarity.data[keep]
    counts = np.bincount(owner, minlength=similarity.shape[0])
    ends = np.cumsum(counts)
    chosen = np.ones(len(columns), dtype=bool)
    for row in np.flatnonzero(counts > k):  # rows are contiguous: each ranks its own candidates
        first, last = ends[row] - counts[row], ends[row]
        chosen[first:last] = _largest(values[first:last], columns[first:last], k)
    return owner[chosen], columns[chosen]


def _largest(values: np.ndarray, columns: np.ndarray, k: int) -> np.ndarray:
    """A mask of the k largest values, ties at the k-th broken towards the lower column."""
    kth = np.partition(values, len(values) - k)[len(values) - k]
    mask = values > kth
    tied = np.flatnonzero(values == kth)
    mask[tied[np.argsort(columns[tied], kind="stable")[: k - int(mask.sum())]]] = True
    return mask
