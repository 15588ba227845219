"""Choosing the recommender's hyper-parameters and blend on a validation window carved from training data.

The window is the last `horizon_days` before the training end: the model is fitted on what came before it
and judged by NDCG@k on the products each customer bought in it. The blend is a logistic regression on
candidate products (everything the customer bought, the top discovery and best-selling products) with one
intercept, buy-again and discovery weight per assortment: it learns, per assortment, how much "buy again"
matters against discovery. ALS settings are compared with the blend learnt on one half of the customers
and NDCG measured on the other half.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression

from training.recommend import GROUP_TERMS, SHARED, SHARED_TERMS, NextBestProduct, top_k

CANDIDATES_DISCOVERY = 30
CANDIDATES_POPULAR = 10


@dataclass(frozen=True)
class SearchSpace:
    """The ALS grid searched."""

    factors: tuple[int, ...]
    regularization: tuple[float, ...]
    alpha: tuple[float, ...]


def ndcg_at_k(scores: np.ndarray, truth: sp.csr_matrix, k: int) -> float:
    """Mean NDCG@k of score rows against binary truth rows (same items), over rows with any truth."""
    top = top_k(scores, k)
    dense = truth.toarray().astype(bool)
    gains = np.take_along_axis(dense, top, axis=1).astype(float)
    discounts = 1.0 / np.log2(np.arange(2, top.shape[1] + 2))
    relevant = np.minimum(dense.sum(axis=1), top.shape[1])
    ideal = np.cumsum(discounts)[np.maximum(relevant - 1, 0)]
    keep = relevant > 0
    return float(np.mean((gains @ discounts)[keep] / ideal[keep])) if keep.any() else 0.0


def _candidates(model: NextBestProduct, components: dict[str, np.ndarray]) -> np.ndarray:
    """Mask of the (customer, item) pairs the blend learns from: bought before, top discovery, best sellers."""
    mask = components["again"] > 0
    rows = np.arange(mask.shape[0])[:, None]
    mask[rows, top_k(components["discovery"], CANDIDATES_DISCOVERY)] = True
    mask[:, np.argsort(-model.popularity_)[:CANDIDATES_POPULAR]] = True
    return mask


def learn_blend(
    model: NextBestProduct, components: dict[str, np.ndarray], truth: sp.csr_matrix, seed: int = 42
) -> dict[str, dict[str, float]]:
    """Blend weights per assortment from a logistic regression of "bought in the window" on the candidates."""
    mask = _candidates(model, components)
    rows, items = np.nonzero(mask)
    groups = pd.Index(model.assortments_)
    group_of = groups.get_indexer(model.groups_[items])
    columns = []
    for term in GROUP_TERMS:  # one column per assortment and term, zero outside the assortment
        value = np.ones(len(rows)) if term == "intercept" else components[term][rows, items]
        columns.append(
            sp.csr_matrix((value, (np.arange(len(rows)), group_of)), shape=(len(rows), len(groups)))
        )
    shared = np.column_stack([components["frequency"][rows, items], model.popularity_[items]])
    X = sp.hstack([*columns, sp.csr_matrix(shared)]).tocsr()
    y = np.asarray(truth[rows, items]).ravel() > 0
    if y.all() or not y.any():
        raise ValueError(
            "the tuning window gives only one class of candidates: too little data to learn a blend"
        )
    regression = LogisticRegression(C=1.0, max_iter=2000, fit_intercept=True, random_state=seed).fit(X, y)
    weights = regression.coef_[0]
    blend = {
        group: {term: float(weights[t * len(groups) + g]) for t, term in enumerate(GROUP_TERMS)}
        for g, group in enumerate(groups)
    }
    blend[SHARED] = {
        term: float(weights[len(GROUP_TERMS) * len(groups) + i]) for i, term in enumerate(SHARED_TERMS)
    }
    return blend


def validation_sample(
    events: pd.DataFrame, start: datetime, end: datetime, max_customers: int, seed: int
) -> tuple[list[str], pd.DataFrame]:
    """Customers with history up to `start` who bought in (start, end], at most `max_customers`, and their purchases."""
    before = events[events["occurred_at"] <= pd.Timestamp(start)]
    window = events[
        (events["kind"] == "purchase")
        & (events["occurred_at"] > pd.Timestamp(start))
        & (events["occurred_at"] <= pd.Timestamp(end))
    ]
    customers = np.intersect1d(
        before["customer_id"].unique().astype(str), window["customer_id"].unique().astype(str)
    )
    if len(customers) > max_customers:
        customers = np.sort(np.random.default_rng(seed).choice(customers, max_customers, replace=False))
    truth = window[window["customer_id"].isin(customers)][["customer_id", "sku"]].drop_duplicates()
    return customers.tolist(), truth


def truth_matrix(model: NextBestProduct, customers: list[str], truth: pd.DataFrame) -> sp.csr_matrix:
    """Binary matrix (customers × model items) of what each customer bought in the window."""
    known = truth[truth["sku"].astype(str).isin(model.items_)]
    rows = pd.Index(customers).get_indexer(known["customer_id"])
    cols = model.items_.get_indexer(known["sku"].astype(str))
    return sp.csr_matrix(
        (np.ones(len(rows), np.float32), (rows, cols)), shape=(len(customers), len(model.items_))
    )


def _subset(components: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    return {name: values[rows] for name, values in components.items()}


def search(
    events: pd.DataFrame,
    end: datetime,
    horizon_days: int,
    space: SearchSpace,
    base: dict[str, object],
    catalogue: pd.DataFrame | None,
    k: int,
    max_customers: int = 4000,
    seed: int = 42,
) -> tuple[dict[str, object], pd.DataFrame]:
    """Best parameters (blend included) for training data ending at `end`, and the table of every trial."""
    start = pd.Timestamp(end) - pd.Timedelta(days=horizon_days)
    customers, truth = validation_sample(events, start, end, max_customers, seed)
    if len(customers) < 10:
        raise ValueError(
            f"only {len(customers)} customers with history bought in the tuning window {start} to {end}"
        )
    history = events[events["occurred_at"] <= start]
    halves = np.arange(len(customers)) % 2 == 0
    trials = []
    best: tuple[float, dict[str, object], NextBestProduct, dict[str, np.ndarray], sp.csr_matrix] | None = None
    for factors, regularization, alpha in itertools.product(space.factors, space.regularization, space.alpha):
        params = {**base, "factors": factors, "regularization": regularization, "alpha": alpha}
        model = NextBestProduct(**params).fit(history, start, catalogue)
        components = model.components(model.histories(history, start, customers))
        truth_rows = truth_matrix(model, customers, truth)
        blend = learn_blend(model, _subset(components, halves), truth_rows[halves], seed)
        score = ndcg_at_k(model.blended(_subset(components, ~halves), blend), truth_rows[~halves], k)
        discovery = ndcg_at_k(
            components["discovery"][~halves] + 1e-3 * model.popularity_, truth_rows[~halves], k
        )
        trials.append(
            {
                "factors": factors,
                "regularization": regularization,
                "alpha": alpha,
                f"ndcg_at_{k}": score,
                f"discovery_only_ndcg_at_{k}": discovery,
            }
        )
        if best is None or score > best[0]:
            best = (score, params, model, components, truth_rows)
    if best is None:
        raise ValueError("the ALS search space is empty")
    _, params, model, components, truth_rows = best
    return {**params, "blend": learn_blend(model, components, truth_rows, seed)}, pd.DataFrame(trials)
