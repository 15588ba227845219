"""Next-best-product: ALS (`implicit`) for discovery blended with "buy again", per assortment.

Signals are purchases, add-to-carts and product views, each weighted and decayed by age. ALS item factors
are learnt at fit; a customer's factors are recomputed from their history as of the moment asked, so the
same fitted model recommends from today's history. The final score of an item i of assortment g (its top-level category) for a customer is a linear blend

    c_g + a_g * buy_again(i) + b_g * discovery(i) + f * log(1 + purchases of i) + p * popularity(i)

with buy-again and discovery scaled to [0, 1] per customer and the weights learnt on a validation window
(`training.tuning`): in grocery "buy again" wins, in fashion or electronics discovery does. Rules apply at
inference: exclude what the customer bought (when asked), unavailable products, category filters; a customer
without history gets recent best sellers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

from features.timeutil import as_utc

ALL = "all"  # the assortment of products without a known category, and the default of every assortment
SHARED = "*"  # blend weights shared by all assortments
GROUP_TERMS = ("intercept", "again", "discovery")
SHARED_TERMS = ("frequency", "popularity")
# Before a blend is learnt: buy-again and discovery count equally, popularity only breaks ties.
DEFAULT_BLEND = {
    ALL: {"intercept": 0.0, "again": 1.0, "discovery": 1.0},
    SHARED: {"frequency": 0.0, "popularity": 1e-3},
}
_CHUNK = 4096


@dataclass(frozen=True)
class Histories:
    """Customers' signals over the model's items (one row per customer): what scoring starts from."""

    confidence: sp.csr_matrix  # every signal, weighted and decayed: the ALS input
    repurchase: sp.csr_matrix  # purchases, decayed
    bought: sp.csr_matrix  # purchase counts


def decayed(
    events: pd.DataFrame, now: datetime, weights: dict[str, float], half_life_days: float
) -> pd.DataFrame:
    """Events (customer_id, sku, kind, occurred_at, count) up to `now` → per (customer, sku): weight and purchases.

    `weight` sums every signal by its kind's weight, halved every `half_life_days`; `repurchase` is the same
    for purchases only; `bought` counts purchases (undecayed).
    """
    moment = pd.Timestamp(now)
    known = events[(events["occurred_at"] <= moment) & events["kind"].isin(list(weights))]
    age = (moment - known["occurred_at"]).dt.total_seconds().to_numpy() / 86400.0
    decay = 0.5 ** (np.clip(age, 0, None) / half_life_days) * known["count"].to_numpy(dtype=float)
    is_purchase = (known["kind"] == "purchase").to_numpy()
    frame = pd.DataFrame(
        {
            "customer_id": known["customer_id"].to_numpy(),
            "sku": known["sku"].to_numpy(),
            "weight": decay * known["kind"].map(weights).to_numpy(dtype=float),
            "repurchase": np.where(is_purchase, decay, 0.0),
            "bought": np.where(is_purchase, known["count"].to_numpy(dtype=float), 0.0),
        }
    )
    return frame.groupby(["customer_id", "sku"], observed=True, sort=False).sum().reset_index()


def popularity(events: pd.DataFrame, now: datetime, days: float | None = None) -> pd.Series:
    """Distinct buyers per sku among purchases up to `now` (in the last `days` when given), most popular first."""
    moment = pd.Timestamp(now)
    window = (events["kind"] == "purchase") & (events["occurred_at"] <= moment)
    if days is not None:
        window &= events["occurred_at"] > moment - pd.Timedelta(days=days)
    buyers = events.loc[window].groupby("sku", observed=True)["customer_id"].nunique()
    return buyers.sort_values(ascending=False, kind="stable")


class NextBestProduct:
    """The recommender: fit on events up to a moment; `recommend` for any customers from their history."""

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.05,
        alpha: float = 10.0,
        iterations: int = 15,
        event_weights: dict[str, float] | None = None,
        half_life_days: float = 120.0,
        recent_days: int = 28,
        blend: dict[str, float] | None = None,
        seed: int = 42,
        num_threads: int = 2,
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.event_weights = event_weights
        self.half_life_days = half_life_days
        self.recent_days = recent_days
        self.blend = blend
        self.seed = seed
        self.num_threads = num_threads

    @property
    def weights(self) -> dict[str, float]:
        """The signal weights by event kind."""
        return self.event_weights or {"purchase": 1.0, "add_to_cart": 0.4, "product_view": 0.1}

    def fit(
        self, events: pd.DataFrame, now: datetime, catalogue: pd.DataFrame | None = None
    ) -> NextBestProduct:
        """Learn item factors from every signal up to `now`; `catalogue` (sku, category, available) is optional."""
        signals = decayed(events, now, self.weights, self.half_life_days)
        if signals.empty:
            raise ValueError("no purchase, cart or view events with a customer and a sku before the cutoff")
        self.items_ = pd.Index(sorted(signals["sku"].astype(str).unique()), name="sku")
        users = pd.Index(signals["customer_id"].unique())
        matrix = sp.csr_matrix(
            (
                signals["weight"].to_numpy(np.float32),
                (
                    users.get_indexer(signals["customer_id"]),
                    self.items_.get_indexer(signals["sku"].astype(str)),
                ),
            ),
            shape=(len(users), len(self.items_)),
        )
        with threadpool_limits(1, "blas"):  # implicit's own threads; a threaded BLAS underneath only slows it
            self.als_ = AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=self.alpha,
                iterations=self.iterations,
                random_state=self.seed,
                num_threads=self.num_threads,
            )
            self.als_.fit(matrix, show_progress=False)
        self.als_.user_factors = None  # recomputed per request from the history; not worth storing
        self.fitted_at_ = pd.Timestamp(now)
        self._fit_catalogue(catalogue)
        recent = popularity(events, now, self.recent_days)
        overall = popularity(events, now)
        # Recent best sellers first, then the all-time ones: the fallback list and the tie-breaker.
        score = (
            recent.reindex(self.items_).fillna(0).to_numpy()
            + 1e-3 * overall.reindex(self.items_).fillna(0).to_numpy()
        )
        self.popularity_ = (
            (score / score.max()).astype(np.float32)
            if score.max() > 0
            else np.zeros(len(self.items_), np.float32)
        )
        self.blend_ = {group: dict(weights) for group, weights in (self.blend or {}).items()}
        return self

    def _fit_catalogue(self, catalogue: pd.DataFrame | None) -> None:
        known = pd.DataFrame(index=self.items_)
        if catalogue is not None and not catalogue.empty:
            known = known.join(
                catalogue.drop_duplicates("sku").assign(sku=lambda f: f["sku"].astype(str)).set_index("sku")
            )
        category = (
            known["category"] if "category" in known else pd.Series(None, index=self.items_, dtype=object)
        )
        self.categories_ = category.fillna("").astype(str).to_numpy(dtype=object)
        groups = pd.Series(self.categories_).str.split(" > ").str[0].replace("", ALL)
        self.groups_ = groups.to_numpy(dtype=object)
        available = known["available"] if "available" in known else pd.Series(True, index=self.items_)
        self.available_ = available.astype("boolean").fillna(True).to_numpy(dtype=bool)

    @property
    def assortments_(self) -> list[str]:
        """The assortments (top-level categories) the blend is learnt for."""
        return sorted(set(self.groups_))

    def histories(self, events: pd.DataFrame, now: datetime, customers: Sequence[str]) -> Histories:
        """Per customer (in the given order): their signals up to `now` over the model's items."""
        signals = decayed(
            events[events["customer_id"].isin(customers)], now, self.weights, self.half_life_days
        )
        signals = signals[signals["sku"].astype(str).isin(self.items_)]
        rows = pd.Index(customers).get_indexer(signals["customer_id"])
        cols = self.items_.get_indexer(signals["sku"].astype(str))
        shape = (len(customers), len(self.items_))

        def matrix(column: str) -> sp.csr_matrix:
            return sp.csr_matrix((signals[column].to_numpy(np.float32), (rows, cols)), shape=shape)

        return Histories(matrix("weight"), matrix("repurchase"), matrix("bought"))

    def components(self, histories: Histories) -> dict[str, np.ndarray]:
        """Per customer and item: discovery (ALS) and "buy again" (decayed purchases), each scaled to [0, 1] per
        customer, and purchase frequency (log of the purchase count)."""
        with threadpool_limits(1, "blas"):
            factors = self.als_.recalculate_user(
                np.arange(histories.confidence.shape[0]), histories.confidence
            )
        discovery = np.clip(factors @ self.als_.item_factors.T, 0, None)
        discovery /= np.maximum(discovery.max(axis=1, keepdims=True), 1e-12)
        again = histories.repurchase.toarray()
        again /= np.maximum(again.max(axis=1, keepdims=True), 1e-12)
        return {"discovery": discovery, "again": again, "frequency": np.log1p(histories.bought.toarray())}

    def coefficients(self, blend: dict[str, dict[str, float]] | None = None) -> dict[str, np.ndarray]:
        """Per item, the blend's weight of each component (its assortment's), and the global weights."""
        blend = self.blend_ if blend is None else blend
        shared = {**DEFAULT_BLEND[SHARED], **blend.get(SHARED, {})}
        per_group = {g: {**DEFAULT_BLEND[ALL], **blend.get(g, blend.get(ALL, {}))} for g in self.assortments_}
        out = {name: np.array([per_group[g][name] for g in self.groups_], np.float32) for name in GROUP_TERMS}
        return {**out, **{name: np.float32(shared[name]) for name in SHARED_TERMS}}

    def blended(
        self, components: dict[str, np.ndarray], blend: dict[str, dict[str, float]] | None = None
    ) -> np.ndarray:
        """The blended score of every item for each customer's components."""
        w = self.coefficients(blend)
        return (
            w["intercept"]
            + w["again"] * components["again"]
            + w["discovery"] * components["discovery"]
            + w["frequency"] * components["frequency"]
            + w["popularity"] * self.popularity_
        )

    def recommend(
        self,
        events: pd.DataFrame,
        now: datetime,
        customers: Sequence[str] | None = None,
        k: int = 10,
        exclude_purchased: bool = False,
        categories: Sequence[str] | None = None,
        exclude_skus: Sequence[str] | None = None,
        personalised: bool = True,
    ) -> pd.DataFrame:
        """Top-k per customer: customer_id, rank, sku, score, personalised (false for the best-seller fallback)."""
        customers = list(pd.unique(events["customer_id"])) if customers is None else list(customers)
        allowed = self._allowed(categories, exclude_skus)
        frames = [
            self._recommend_chunk(events, now, chunk, k, exclude_purchased, allowed, personalised)
            for chunk in _chunks(customers)
        ]
        if not frames:
            return pd.DataFrame(columns=["customer_id", "rank", "sku", "score", "personalised"])
        return pd.concat(frames, ignore_index=True)

    def predict(
        self,
        frame: pd.DataFrame,
        now: datetime | str | None = None,
        k: int = 10,
        exclude_purchased: bool = False,
        categories: Sequence[str] | None = None,
        exclude_skus: Sequence[str] | None = None,
        personalised: bool = True,
    ) -> pd.DataFrame:
        """Serving form of `recommend`: `frame` holds customer_id and their events (sku, event_type, occurred_at).

        A customer with no events appears once with a null sku and gets the best sellers. `event_type` may say
        purchase (or sale), add_to_cart or product_view; `count` defaults to 1; `now` defaults to the current time.
        """
        moment = pd.Timestamp.now(tz="UTC") if now in (None, "") else as_utc(pd.Timestamp(now))
        customers = list(pd.unique(frame["customer_id"].astype(str)))
        events = as_events(frame)
        return self.recommend(
            events,
            moment,
            customers,
            k=int(k),
            exclude_purchased=bool(exclude_purchased),
            categories=[c for c in (categories or []) if c],
            exclude_skus=[s for s in (exclude_skus or []) if s],
            personalised=bool(personalised),
        )

    def _allowed(self, categories: Sequence[str] | None, exclude_skus: Sequence[str] | None) -> np.ndarray:
        allowed = self.available_.copy()
        if categories:
            prefixes = tuple(categories)
            allowed &= np.array([c.startswith(prefixes) for c in self.categories_], dtype=bool)
        if exclude_skus:
            allowed &= ~self.items_.isin([str(s) for s in exclude_skus])
        return allowed

    def _recommend_chunk(
        self,
        events: pd.DataFrame,
        now: datetime,
        customers: list[str],
        k: int,
        exclude_purchased: bool,
        allowed: np.ndarray,
        personalised: bool,
    ) -> pd.DataFrame:
        histories = self.histories(events, now, customers)
        has_history = np.diff(histories.confidence.indptr) > 0
        if personalised and has_history.any():
            scores = self.blended(self.components(histories))
        else:
            scores = np.zeros(histories.confidence.shape, dtype=np.float32)
        # No history (or no consent to personalise): recent best sellers.
        fallback = ~has_history | (not personalised)
        scores[fallback] = self.popularity_
        scores[:, ~allowed] = -np.inf
        if exclude_purchased:
            scores[histories.bought.nonzero()] = -np.inf
        top = top_k(scores, k)
        taken = np.take_along_axis(scores, top, axis=1)
        valid = np.isfinite(taken)
        rows = np.repeat(np.arange(len(customers)), top.shape[1]).reshape(top.shape)
        return pd.DataFrame(
            {
                "customer_id": np.asarray(customers, dtype=object)[rows[valid]],
                "rank": (np.cumsum(valid, axis=1))[valid],
                "sku": self.items_.to_numpy()[top[valid]],
                "score": taken[valid].astype(float),
                "personalised": ~fallback[rows[valid]],
            }
        )

    def similar_items(self, skus: Sequence[str], n: int = 10) -> pd.DataFrame:
        """Products most similar to each given one (cosine of ALS item factors): sku, rank, similar_sku, score."""
        factors = self.als_.item_factors
        norms = np.linalg.norm(factors, axis=1)
        unit = factors / np.maximum(norms[:, None], 1e-12)
        known = [str(s) for s in skus if str(s) in self.items_]
        positions = self.items_.get_indexer(known)
        similarity = unit[positions] @ unit.T
        similarity[np.arange(len(known)), positions] = -np.inf
        similarity[:, ~self.available_] = -np.inf
        top = top_k(similarity, n)
        return pd.DataFrame(
            {
                "sku": np.repeat(known, top.shape[1]),
                "rank": np.tile(np.arange(1, top.shape[1] + 1), len(known)),
                "similar_sku": self.items_.to_numpy()[top].ravel(),
                "score": np.take_along_axis(similarity, top, axis=1).ravel().astype(float),
            }
        )


def as_events(frame: pd.DataFrame) -> pd.DataFrame:
    """A serving request's rows as the events frame the recommender reads (rows without a sku dropped)."""
    kind = (
        frame["kind"]
        if "kind" in frame
        else frame.get("event_type", pd.Series("purchase", index=frame.index))
    )
    events = pd.DataFrame(
        {
            "customer_id": frame["customer_id"].astype(str),
            "sku": frame.get("sku"),
            "kind": kind.replace({"sale": "purchase"}),
            "occurred_at": pd.to_datetime(frame["occurred_at"], utc=True)
            if "occurred_at" in frame
            else pd.NaT,
            "count": frame["count"].astype(float) if "count" in frame else 1.0,
        }
    )
    return events[events["sku"].notna() & events["occurred_at"].notna()].assign(
        sku=lambda f: f["sku"].astype(str)
    )


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the k highest scores per row, best first."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def _chunks(items: list[str], size: int = _CHUNK) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
