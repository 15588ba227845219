"""Baseline recommenders the next-best-product model must beat, each a dict customer → ranked skus.

Global and recent popularity, item-to-item co-purchase (cosine of baskets), and the customer's own most
bought products. All read the same events frame as the model (customer_id, sku, kind, occurred_at, count).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
import pandas as pd
import scipy.sparse as sp

from training.recommend import NextBestProduct, popularity, top_k


def _purchases(events: pd.DataFrame, now: datetime) -> pd.DataFrame:
    moment = pd.Timestamp(now)
    return events[(events["kind"] == "purchase") & (events["occurred_at"] <= moment)]


def _topped_up(picks: list[str], best: list[str], k: int) -> list[str]:
    """`picks`, then best sellers not among them, up to k."""
    taken = set(picks)
    return picks + [s for s in best if s not in taken][: k - len(picks)]


def popularity_recs(
    events: pd.DataFrame, now: datetime, customers: Sequence[str], k: int, days: float | None = None
) -> dict[str, list[str]]:
    """The same best sellers for everyone: all-time, or over the last `days`."""
    best = popularity(events, now, days).index[:k].astype(str).tolist()
    return dict.fromkeys(customers, best)


def own_most_bought(
    events: pd.DataFrame, now: datetime, customers: Sequence[str], k: int
) -> dict[str, list[str]]:
    """Each customer's own most bought products (ties: most recent first), topped up with best sellers."""
    purchases = _purchases(events, now)
    purchases = purchases[purchases["customer_id"].isin(customers)]
    counts = (
        purchases.groupby(["customer_id", "sku"], observed=True)
        .agg(n=("count", "sum"), last=("occurred_at", "max"))
        .reset_index()
        .sort_values(["customer_id", "n", "last"], ascending=[True, False, False])
    )
    counts["sku"] = counts["sku"].astype(str)
    own = counts.groupby("customer_id", observed=True)["sku"].agg(list)
    best = popularity(events, now).index[: 2 * k].astype(str).tolist()
    return {customer: _topped_up(own.get(customer, [])[:k], best, k) for customer in customers}


def co_purchase(
    events: pd.DataFrame, now: datetime, customers: Sequence[str], k: int
) -> dict[str, list[str]]:
    """Item-to-item: products most often bought in the same basket (customer and day) as the customer's own."""
    purchases = _purchases(events, now).assign(sku=lambda f: f["sku"].astype(str))
    items = pd.Index(sorted(purchases["sku"].unique()))
    baskets = purchases.assign(day=purchases["occurred_at"].dt.floor("D"))[
        ["customer_id", "day", "sku"]
    ].drop_duplicates()
    basket_ids = baskets.groupby(["customer_id", "day"], observed=True).ngroup().to_numpy()
    B = sp.csr_matrix(
        (np.ones(len(baskets), np.float32), (basket_ids, items.get_indexer(baskets["sku"]))),
        shape=(int(basket_ids.max()) + 1 if len(basket_ids) else 0, len(items)),
    )
    together = (B.T @ B).tocsr()
    counts = together.diagonal()
    norm = 1.0 / np.sqrt(np.maximum(counts, 1.0))
    cosine = sp.diags(norm) @ together @ sp.diags(norm)
    cosine.setdiag(0)
    cosine.eliminate_zeros()
    mine = purchases[purchases["customer_id"].isin(customers)][["customer_id", "sku"]].drop_duplicates()
    index = pd.Index(list(customers))
    U = sp.csr_matrix(
        (
            np.ones(len(mine), np.float32),
            (index.get_indexer(mine["customer_id"]), items.get_indexer(mine["sku"])),
        ),
        shape=(len(index), len(items)),
    )
    best = popularity(events, now).index[: 2 * k].astype(str).tolist()
    sku_array = items.to_numpy()
    out: dict[str, list[str]] = {}
    for start in range(0, len(index), 4096):
        block = (U[start : start + 4096] @ cosine).toarray()
        top = top_k(block, k)
        for row, customer in enumerate(index[start : start + 4096]):
            out[customer] = _topped_up([sku_array[j] for j in top[row] if block[row, j] > 0], best, k)
    return out


def top_lists(recommendations: pd.DataFrame) -> dict[str, list[str]]:
    """Recommendations (customer_id, rank, sku rows) as customer → skus, best first."""
    ordered = recommendations.sort_values(["customer_id", "rank"])
    return ordered.groupby("customer_id", sort=False)["sku"].agg(list).to_dict()


def model_and_baselines(
    model: NextBestProduct,
    events: pd.DataFrame,
    now: datetime,
    customers: Sequence[str],
    k: int,
    recent_days: float,
) -> dict[str, dict[str, list[str]]]:
    """Top-k lists of the model and of every baseline, by method: what evaluation compares."""
    return {
        "model": top_lists(model.recommend(events, now, customers, k)),
        "global_popularity": popularity_recs(events, now, customers, k),
        "recent_popularity": popularity_recs(events, now, customers, k, recent_days),
        "item_to_item": co_purchase(events, now, customers, k),
        "own_most_bought": own_most_bought(events, now, customers, k),
    }
