"""Tuning the recommenders on a window carved from the history, never on the validation window.

The tuning window is the last `horizon_days` before the end of the history the candidates are fitted on (the
validation cutoff): models are fitted on what came before it and judged by NDCG@k on the products each
customer bought in it. TIFU-KNN's decays and neighbours and its own/neighbour weight are chosen on a small
grid. The learned blend is a logistic regression on candidate products (everything the customer bought, the
top products of each discovering component, best sellers) with one intercept and one weight per component and
assortment: it learns, per assortment, how much buying again matters against neighbours and discovery. ALS
settings are compared with the blend learnt on one half of the customers and NDCG measured on the other half.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression

from training.baselines import tifu_blend
from training.recommend import ALL, GROUP_TERMS, SHARED, SHARED_TERMS, NextBestProduct, top_k

logger = logging.getLogger(__name__)

CANDIDATES_PER_COMPONENT = 30
CANDIDATES_POPULAR = 10
MIN_TUNING_CUSTOMERS = 10
# Customers in the tuning window: a seeded sample when more bought in it.
TUNING_CUSTOMERS = 4000
# Tuning holds each component's value of every product for every window customer (dense customers × products,
# float32): the window's customers are capped so that customers × products stays under this. 4,000 customers
# up to 25,000 products; a catalogue of 47,500 took 10.4 GiB with 4,000 (docs/benchmarks.md).
TUNING_CELLS = 100_000_000
# Every component weighed: what a model is fitted with before its blend is learnt.
EVERYTHING = {
    ALL: {term: 1.0 for term in GROUP_TERMS[1:]},
    SHARED: {term: 1.0 for term in SHARED_TERMS},
}


@dataclass(frozen=True)
class SearchSpace:
    """The grids searched: ALS for the learned blend, and TIFU-KNN's."""

    factors: tuple[int, ...]
    regularization: tuple[float, ...]
    alpha: tuple[float, ...]
    within_decay: tuple[float, ...] = (0.9,)
    across_decay: tuple[float, ...] = (0.7,)
    neighbours: tuple[int, ...] = (300,)
    own_weight: tuple[float, ...] = (0.9,)
    group_size: int = 7


@dataclass
class Tuned:
    """Chosen parameters of TIFU-KNN and of the learned blend (None when none could be learnt), every trial."""

    tifu: dict[str, Any]
    learned: dict[str, Any] | None
    trials: pd.DataFrame = field(default_factory=pd.DataFrame)


@dataclass(frozen=True)
class Window:
    """A tuning window: history before `start`, the catalogue, and what its customers bought in (start, end]."""

    history: pd.DataFrame
    start: pd.Timestamp
    customers: list[str]
    truth: pd.DataFrame
    catalogue: pd.DataFrame | None


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


def components(
    model: NextBestProduct, events: pd.DataFrame, now: datetime, customers: list[str]
) -> dict[str, np.ndarray]:
    """Every component the model weighs, dense (customers × items), with popularity: the blend's inputs."""
    folded = model.fold_in(events, now, customers, separate=True)
    rows = np.arange(len(customers))
    found = {term: model.component(folded, term, rows) for term in model.terms_}
    return {**found, "popularity": np.broadcast_to(model.popularity_, (len(customers), len(model.items_)))}


def _candidates(model: NextBestProduct, values: dict[str, np.ndarray]) -> np.ndarray:
    """Mask of the (customer, item) pairs the blend learns from: bought before, each component's top, best sellers."""
    mask = np.zeros(values["popularity"].shape, dtype=bool)
    for term in ("again", "personal", "frequency"):
        if term in values:
            mask |= values[term] > 0
    rows = np.arange(mask.shape[0])[:, None]
    for term in ("neighbours", "discovery", "item_knn"):
        if term in values:
            mask[rows, top_k(values[term], CANDIDATES_PER_COMPONENT)] = True
    mask[:, np.argsort(-model.popularity_)[:CANDIDATES_POPULAR]] = True
    return mask


def learn_blend(
    model: NextBestProduct, values: dict[str, np.ndarray], truth: sp.csr_matrix, seed: int = 42
) -> dict[str, dict[str, float]] | None:
    """Blend weights per assortment from a logistic regression of "bought in the window" on the candidates.

    None when the candidates are all bought or none is (a catalogue of two products, say): nothing to learn.
    """
    mask = _candidates(model, values)
    rows, items = np.nonzero(mask)
    groups = pd.Index(model.assortments_)
    group_of = groups.get_indexer(model.groups_[items])
    group_terms = [t for t in GROUP_TERMS if t == "intercept" or t in values]
    shared_terms = [t for t in SHARED_TERMS if t in values]
    columns = []
    for term in group_terms:  # one column per assortment and term, zero outside the assortment
        value = np.ones(len(rows)) if term == "intercept" else values[term][rows, items]
        columns.append(
            sp.csr_matrix((value, (np.arange(len(rows)), group_of)), shape=(len(rows), len(groups)))
        )
    shared = np.column_stack([values[t][rows, items] for t in shared_terms])
    X = sp.hstack([*columns, sp.csr_matrix(shared)]).tocsr()
    y = np.asarray(truth[rows, items]).ravel() > 0
    if y.all() or not y.any():
        return None
    # Every column to at most 1 in size, so the penalty treats components of different scales alike.
    scale = np.maximum(np.asarray(abs(X).max(axis=0).todense()).ravel(), 1e-12)
    regression = LogisticRegression(C=1.0, max_iter=2000, fit_intercept=True, random_state=seed)
    # Each customer weighs the same however many candidates they have, as in the mean NDCG the blend serves.
    per_customer = 1.0 / np.bincount(rows)[rows]
    fitted = regression.fit(
        X @ sp.diags(1.0 / scale),
        y,
        sample_weight=per_customer * len(rows) / np.count_nonzero(np.bincount(rows)),
    )
    weights = fitted.coef_[0] / scale
    blend = {
        group: {term: float(weights[t * len(groups) + g]) for t, term in enumerate(group_terms)}
        for g, group in enumerate(groups)
    }
    blend[SHARED] = {
        term: float(weights[len(group_terms) * len(groups) + i]) for i, term in enumerate(shared_terms)
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


def tuning_window(
    events: pd.DataFrame, end: datetime, horizon_days: int, catalogue: pd.DataFrame | None, seed: int
) -> Window | None:
    """The last `horizon_days` before `end` as a tuning window, or None when too few customers bought in it.

    At most `TUNING_CUSTOMERS` customers, fewer where the catalogue is so large that their dense values would
    pass `TUNING_CELLS` (logged).
    """
    start = pd.Timestamp(end) - pd.Timedelta(days=horizon_days)
    history = events[events["occurred_at"] <= start]
    products = max(int(history["sku"].nunique()), 1)
    most = min(TUNING_CUSTOMERS, max(TUNING_CELLS // products, MIN_TUNING_CUSTOMERS))
    if most < TUNING_CUSTOMERS:
        logger.info(
            "recommender tuning: at most %s customers in the window (%s products; %s customers × products at most)",
            f"{most:,}",
            f"{products:,}",
            f"{TUNING_CELLS:,}",
        )
    customers, truth = validation_sample(events, start, end, most, seed)
    if len(customers) < MIN_TUNING_CUSTOMERS:
        return None
    return Window(history, start, customers, truth, catalogue)


def _subset(values: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    return {name: value[rows] for name, value in values.items()}


def tune_tifu(
    window: Window, space: SearchSpace, base: dict[str, Any], k: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """TIFU-KNN's best decays, neighbours and own weight by NDCG@k on the window, and every trial."""
    trials, best = [], (-1.0, {})
    rows = np.arange(len(window.customers))
    for within, across, neighbours in itertools.product(
        space.within_decay, space.across_decay, space.neighbours
    ):
        params = {
            "within_decay": within,
            "across_decay": across,
            "group_size": space.group_size,
            "neighbours": neighbours,
        }
        model = NextBestProduct(**base, **params, blend=tifu_blend(0.5)).fit(
            window.history, window.start, window.catalogue
        )
        folded = model.fold_in(window.history, window.start, window.customers, separate=True)
        truth = truth_matrix(model, window.customers, window.truth)
        for own_weight in space.own_weight:
            score = ndcg_at_k(model.score(folded, rows, tifu_blend(own_weight)), truth, k)
            trials.append(
                {"candidate": "tifu_knn", **params, "own_weight": own_weight, f"ndcg_at_{k}": score}
            )
            if score > best[0]:
                best = (score, {**params, "own_weight": own_weight})
    return best[1], trials


def search_blend(
    window: Window, space: SearchSpace, base: dict[str, Any], k: int, seed: int
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The learned recommender's best ALS setting and blend (learnt on the whole window), and every trial.

    The setting is None when no blend can be learnt on the window.
    """
    halves = np.arange(len(window.customers)) % 2 == 0
    trials = []
    best: tuple[float, dict[str, Any], NextBestProduct, sp.csr_matrix] | None = None
    for factors, regularization, alpha in itertools.product(space.factors, space.regularization, space.alpha):
        params = {**base, "factors": factors, "regularization": regularization, "alpha": alpha}
        model = NextBestProduct(**params, blend=EVERYTHING).fit(
            window.history, window.start, window.catalogue
        )
        values = components(model, window.history, window.start, window.customers)
        truth = truth_matrix(model, window.customers, window.truth)
        blend = learn_blend(model, _subset(values, halves), truth[halves], seed)
        if blend is None:
            return None, trials
        held_out = np.flatnonzero(~halves)
        folded = model.fold_in(
            window.history, window.start, [window.customers[i] for i in held_out], separate=True
        )
        score = ndcg_at_k(model.score(folded, np.arange(len(held_out)), blend), truth[~halves], k)
        trials.append(
            {
                "candidate": "learned",
                "factors": factors,
                "regularization": regularization,
                "alpha": alpha,
                f"ndcg_at_{k}": score,
            }
        )
        if best is None or score > best[0]:
            best = (score, params, model, truth)
        del values  # one setting's dense values at a time: the best one's are computed again below
    if best is None:
        raise ValueError("the ALS search space is empty")
    _, params, model, truth = best
    values = components(model, window.history, window.start, window.customers)
    blend = learn_blend(model, values, truth, seed)
    return (None if blend is None else {**params, "blend": blend}), trials


def tune(window: Window, space: SearchSpace, base: dict[str, Any], k: int, seed: int) -> Tuned:
    """TIFU-KNN's parameters, then the learned blend over components with those TIFU parameters."""
    tifu, tifu_trials = tune_tifu(window, space, base, k)
    shared = {key: value for key, value in tifu.items() if key != "own_weight"}
    learned, blend_trials = search_blend(window, space, {**base, **shared}, k, seed)
    return Tuned(tifu, learned, pd.DataFrame([*tifu_trials, *blend_trials]))
