"""Next-best-product: one recommender, many blends — repeat buying, TIFU-KNN neighbours, ALS, item kNN, popularity.

Signals are purchases, add-to-carts and product views, each weighted and decayed by age. At fit the model
learns what does not depend on one customer: ALS item factors (`implicit`), item-to-item cosine neighbours
(`implicit`'s item kNN), TIFU-KNN personal vectors of the reference customers (`training.tifu`), popularity.
`fold_in` turns customers' histories as of any moment into per-customer components, so the same fitted model
recommends from today's history; `score` blends them — the one scoring path, used by batch scoring, tuning
and serving. The score of an item i of assortment g (its top-level category) for a customer is

    c_g + Σ_t w_{g,t} · t(i)  +  f · log(1 + purchases of i) + p · popularity(i)

over the components t: `again` (decayed purchases), `personal` and `neighbours` (TIFU-KNN's vectors),
`discovery` (ALS) and `item_knn` (the customer's signals through item-to-item cosine); again, discovery and
item_knn are scaled to [0, 1] per customer. A fixed blend makes a textbook baseline (own most bought: f alone;
TIFU-KNN: a·personal + (1−a)·neighbours; ALS; item kNN; popularity); the learned blend is a logistic
regression on a tuning window (`training.tuning`). Only the components the blend weighs are fitted and
folded in. Rules apply at inference: exclude what the customer bought (when asked), unavailable products,
category filters; a customer without history gets recent best sellers.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from implicit.nearest_neighbours import ItemItemRecommender
from sklearn.preprocessing import normalize
from threadpoolctl import threadpool_limits

from tessera.core.timeutil import as_utc
from training.tifu import neighbour_vectors, personal_vectors

ALL = "all"  # the assortment of products without a known category, and the default of every assortment
SHARED = "*"  # blend weights shared by all assortments
GROUP_TERMS = ("intercept", "again", "personal", "neighbours", "discovery", "item_knn")
SHARED_TERMS = ("frequency", "popularity")
COMPONENTS = ("again", "personal", "neighbours", "discovery", "item_knn", "frequency")
# Without a blend: buy-again and discovery count equally, popularity only breaks ties (a missing weight is 0).
DEFAULT_BLEND = {ALL: {"again": 1.0, "discovery": 1.0}, SHARED: {"popularity": 1e-3}}
_CHUNK = 2048
BLENDED = "blended"  # the sparse components, weighted and summed by the model's blend


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


@dataclass(frozen=True)
class Folded:
    """Customers' histories as of one moment, as the blend reads them (one row per customer, in order)."""

    customers: list[str]
    has_history: np.ndarray  # any signal over the model's items
    bought: sp.csr_matrix  # purchase counts: what `exclude_purchased` leaves out
    factors: np.ndarray | None  # ALS customer factors, when the blend has discovery
    parts: dict[str, sp.csr_matrix]  # every other component the blend weighs


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
        blend: dict[str, dict[str, float]] | None = None,
        within_decay: float = 0.9,
        across_decay: float = 0.7,
        group_size: int = 7,
        neighbours: int = 300,
        item_neighbours: int = 20,
        max_reference: int = 20_000,
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
        self.within_decay = within_decay
        self.across_decay = across_decay
        self.group_size = group_size
        self.neighbours = neighbours
        self.item_neighbours = item_neighbours
        self.max_reference = max_reference
        self.seed = seed
        self.num_threads = num_threads

    def get_params(self) -> dict[str, object]:
        """The constructor's parameters (refitting the same configuration on other data starts from these)."""
        return {name: getattr(self, name) for name in inspect.signature(type(self)).parameters}

    def __setstate__(self, state: dict[str, object]) -> None:
        """Unpickle; a champion pickled before the TIFU and item-kNN components loads as the ALS + buy-again
        blend it was (so the gate can still score it and serving still serve it)."""
        defaults = {name: p.default for name, p in inspect.signature(type(self)).parameters.items()}
        self.__dict__.update({**defaults, **state})
        if "terms_" not in state:
            self.blend_ = self.blend_ or DEFAULT_BLEND
            self.unit_factors_ = _unit_rows(self.als_.item_factors)
            self.similarity_ = sp.csr_matrix((len(self.items_), len(self.items_)), dtype=np.float32)
        self.term_weights_ = self.coefficients(self.blend_)
        self.terms_ = tuple(t for t in COMPONENTS if self.term_weights_[t].any())

    @property
    def weights(self) -> dict[str, float]:
        """The signal weights by event kind."""
        return self.event_weights or {"purchase": 1.0, "add_to_cart": 0.4, "product_view": 0.1}

    def fit(
        self,
        events: pd.DataFrame,
        now: datetime,
        catalogue: pd.DataFrame | None = None,
        anonymous: pd.DataFrame | None = None,
    ) -> NextBestProduct:
        """Learn what the blend needs from every signal up to `now`.

        `catalogue` (sku, category, available) is optional; `anonymous` purchases (guest receipts, in the
        shape of `features.profile.read.load_anonymous_purchases`) count for popularity only: they are nobody's
        history.
        """
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
        self.fitted_at_ = pd.Timestamp(now)
        self._fit_catalogue(catalogue)
        self.blend_ = {group: dict(weights) for group, weights in (self.blend or DEFAULT_BLEND).items()}
        self.term_weights_ = self.coefficients(self.blend_)
        self.terms_ = tuple(t for t in COMPONENTS if self.term_weights_[t].any())
        sales = events if anonymous is None or anonymous.empty else pd.concat([events, anonymous])
        self._fit_popularity(sales, now)
        with threadpool_limits(1, "blas"):  # implicit's own threads; a threaded BLAS underneath only slows it
            self.als_ = self._fit_als(matrix) if "discovery" in self.terms_ else None
            if self.als_ is not None:
                self.unit_factors_ = _unit_rows(self.als_.item_factors)
            # Item-to-item cosine: the item_knn component, and similar products when there is no ALS.
            # K + 1: every item is its own nearest neighbour, dropped below.
            knn = ItemItemRecommender(K=self.item_neighbours + 1, num_threads=self.num_threads)
            knn.fit(normalize(matrix.astype(np.float64), axis=0).tocsr(), show_progress=False)
        similarity = knn.similarity.tocsr().astype(np.float32)
        similarity.setdiag(0)
        similarity.eliminate_zeros()
        self.similarity_ = similarity
        if {"personal", "neighbours"} & set(self.terms_):
            bought = signals[signals["bought"] > 0]
            latest = (
                events[events["kind"] == "purchase"]
                .groupby("customer_id", observed=True)["occurred_at"]
                .max()
            )
            reference = latest[latest.index.isin(bought["customer_id"])].sort_values(ascending=False)
            self.reference_ids_ = pd.Index(sorted(reference.index[: self.max_reference].astype(str)))
            self.reference_ = self._personal(events, now, list(self.reference_ids_))
        return self

    def forget(self, customer_ids: set[str]) -> int:
        """Drop erased customers' per-customer state (their TIFU reference vectors); how many were dropped.

        Everything else the model keeps is per item (ALS item factors, item-to-item similarity, popularity);
        ALS user factors are never stored (`_fit_als`), and a served customer's components are folded in
        from their history at request time, which erasure removes from the profile.
        """
        ids = getattr(self, "reference_ids_", None)
        if ids is None:
            return 0
        keep = ~ids.isin(list(customer_ids))
        if keep.all():
            return 0
        self.reference_ids_ = ids[keep]
        self.reference_ = self.reference_[np.flatnonzero(keep)]
        return int((~keep).sum())

    def _fit_als(self, matrix: sp.csr_matrix) -> AlternatingLeastSquares:
        als = AlternatingLeastSquares(
            factors=self.factors,
            regularization=self.regularization,
            alpha=self.alpha,
            iterations=self.iterations,
            random_state=self.seed,
            num_threads=self.num_threads,
        )
        als.fit(matrix, show_progress=False)
        als.user_factors = None  # recomputed per request from the history; not worth storing
        return als

    def _fit_popularity(self, events: pd.DataFrame, now: datetime) -> None:
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

    def _personal(self, events: pd.DataFrame, now: datetime, customers: list[str]) -> sp.csr_matrix:
        return personal_vectors(
            events.assign(customer_id=events["customer_id"].astype(str)),
            now,
            customers,
            self.items_,
            self.within_decay,
            self.across_decay,
            self.group_size,
        )

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

    def fold_in(
        self, events: pd.DataFrame, now: datetime, customers: Sequence[str], separate: bool = False
    ) -> Folded:
        """Per customer (in the given order): the components the blend weighs, from their history up to `now`.

        The sparse components come already weighted and summed by the model's blend (one row to add when
        serving), or `separate`, to be scored under other blends or read one by one (tuning).
        """
        customers = [str(c) for c in customers]
        mine = events[events["customer_id"].astype(str).isin(customers)]
        signals = decayed(mine, now, self.weights, self.half_life_days)
        signals = signals[signals["sku"].astype(str).isin(self.items_)]
        rows = pd.Index(customers).get_indexer(signals["customer_id"].astype(str))
        cols = self.items_.get_indexer(signals["sku"].astype(str))
        shape = (len(customers), len(self.items_))

        def matrix(column: str) -> sp.csr_matrix:
            found = sp.csr_matrix((signals[column].to_numpy(np.float32), (rows, cols)), shape=shape)
            found.eliminate_zeros()
            return found

        confidence, bought = matrix("weight"), matrix("bought")
        parts: dict[str, sp.csr_matrix] = {}
        if "again" in self.terms_:
            parts["again"] = _per_row_max(matrix("repurchase"))
        if "frequency" in self.terms_:
            parts["frequency"] = bought.copy()
            parts["frequency"].data = np.log1p(parts["frequency"].data)
        if {"personal", "neighbours"} & set(self.terms_):
            own = self._personal(mine, now, customers)
            if "personal" in self.terms_:
                parts["personal"] = own
            if "neighbours" in self.terms_:
                parts["neighbours"] = neighbour_vectors(
                    own, customers, self.reference_, self.reference_ids_, self.neighbours
                )
        if "item_knn" in self.terms_:
            parts["item_knn"] = _per_row_max((confidence @ self.similarity_).tocsr())
        factors = None
        if self.als_ is not None:
            factors = np.zeros((len(customers), self.als_.item_factors.shape[1]), dtype=np.float32)
            with threadpool_limits(1, "blas"):
                for start in range(0, len(customers), _CHUNK):
                    chunk = confidence[start : start + _CHUNK]
                    if chunk.nnz:
                        factors[start : start + chunk.shape[0]] = self.als_.recalculate_user(
                            np.arange(chunk.shape[0]), chunk
                        )
        if not separate and parts:
            weighted = [part @ sp.diags(self.term_weights_[term]) for term, part in parts.items()]
            parts = {BLENDED: sum(weighted[1:], weighted[0]).tocsr()}
        return Folded(customers, np.diff(confidence.indptr) > 0, bought, factors, parts)

    def component(self, folded: Folded, name: str, rows: Sequence[int]) -> np.ndarray:
        """One component's value of every item for the given rows of `folded` (dense, rows × items)."""
        out = np.zeros((len(rows), len(self.items_)), dtype=np.float32)
        self._add(out, folded, name, rows, None)
        return out

    def _add(
        self, scores: np.ndarray, folded: Folded, name: str, rows: Sequence[int], weight: np.ndarray | None
    ) -> None:
        """Add `weight` (per item; None: 1) times one component to `scores` (rows × items), in place."""
        if name == "discovery":
            discovery = np.clip(folded.factors[rows] @ self.als_.item_factors.T, 0, None)
            discovery /= np.maximum(discovery.max(axis=1, keepdims=True), 1e-12)
            scores += discovery if weight is None else weight * discovery
            return
        matrix = folded.parts[name]
        for i, row in enumerate(rows):  # row slices: as fast for one served customer as for a batch
            start, stop = matrix.indptr[row], matrix.indptr[row + 1]
            cols = matrix.indices[start:stop]
            values = matrix.data[start:stop]
            scores[i, cols] += values if weight is None else weight[cols] * values

    def coefficients(self, blend: dict[str, dict[str, float]] | None = None) -> dict[str, np.ndarray]:
        """Per item, the blend's weight of each term: its assortment's, or the weight shared by all."""
        blend = self.blend_ if blend is None else blend
        shared = blend.get(SHARED, {})
        per_group = {g: blend.get(g, blend.get(ALL, {})) for g in self.assortments_}
        out = {
            term: np.array([per_group[g].get(term, 0.0) for g in self.groups_], np.float32)
            for term in GROUP_TERMS
        }
        return {
            **out,
            **{term: np.full(len(self.items_), shared.get(term, 0.0), np.float32) for term in SHARED_TERMS},
        }

    def score(
        self, folded: Folded, rows: Sequence[int], blend: dict[str, dict[str, float]] | None = None
    ) -> np.ndarray:
        """The blended score of every item for the given rows of `folded`: the one scoring path."""
        w = self.term_weights_ if blend is None else self.coefficients(blend)
        scores = np.tile(w["intercept"] + w["popularity"] * self.popularity_, (len(rows), 1))
        if BLENDED in folded.parts:
            if blend is not None:
                raise ValueError("these histories were folded in under the model's blend: fold in `separate`")
            self._add(scores, folded, BLENDED, rows, None)
            if self.als_ is not None:
                self._add(scores, folded, "discovery", rows, w["discovery"])
            return scores
        # A term weighed 0 by a blend other than the model's own is skipped (the model's own omits them).
        for term in self.terms_ if blend is None else [t for t in self.terms_ if w[t].any()]:
            self._add(scores, folded, term, rows, w[term])
        return scores

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
        chunks = list(_chunks(customers))
        frames = [
            self._recommend_chunk(history, now, chunk, k, exclude_purchased, allowed, personalised)
            for chunk, history in zip(chunks, _histories(events, chunks), strict=True)
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
        folded = self.fold_in(events, now, customers)
        if personalised and folded.has_history.any():
            scores = self.score(folded, np.arange(len(customers)))
        else:
            scores = np.zeros((len(customers), len(self.items_)), dtype=np.float32)
        # No history (or no consent to personalise): recent best sellers.
        fallback = ~folded.has_history | (not personalised)
        scores[fallback] = self.popularity_
        scores[:, ~allowed] = -np.inf
        if exclude_purchased:
            scores[folded.bought.nonzero()] = -np.inf
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

    def similarity_to(self, positions: Sequence[int]) -> np.ndarray:
        """Similarity of every item to each given item (rows): cosine of ALS item factors, else item kNN's."""
        positions = np.asarray(positions, dtype=np.int64)
        if self.als_ is None:
            return self.similarity_[positions].toarray()
        return self.unit_factors_[positions] @ self.unit_factors_.T

    def similar_items(self, skus: Sequence[str], n: int = 10) -> pd.DataFrame:
        """Products most similar to each given one (`similarity_to`): sku, rank, similar_sku, score.

        Only a positive similarity is similar: an item never bought with another has fewer rows, or none (the
        service's `/similar-items` then answers category best sellers, flagged)."""
        known = [str(s) for s in skus if str(s) in self.items_]
        positions = self.items_.get_indexer(known)
        similarity = self.similarity_to(positions)
        similarity[np.arange(len(known)), positions] = -np.inf
        similarity[:, ~self.available_] = -np.inf
        top = top_k(similarity, n)
        ranked = pd.DataFrame(
            {
                "sku": np.repeat(known, top.shape[1]),
                "rank": np.tile(np.arange(1, top.shape[1] + 1), len(known)),
                "similar_sku": self.items_.to_numpy()[top].ravel(),
                "score": np.take_along_axis(similarity, top, axis=1).ravel().astype(float),
            }
        )
        return ranked[ranked["score"] > 0].reset_index(drop=True)


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


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Each row scaled to length 1 (rows of zeros stay zero)."""
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)


def _per_row_max(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """Each row divided by its largest value (rows of zeros stay zero)."""
    matrix = matrix.tocsr().astype(np.float32)
    matrix.eliminate_zeros()
    peaks = np.asarray(matrix.max(axis=1).todense()).ravel()
    return (sp.diags(1.0 / np.maximum(peaks, 1e-12)) @ matrix).tocsr().astype(np.float32)


def _chunks(items: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _histories(events: pd.DataFrame, chunks: list[list[str]]) -> Iterator[pd.DataFrame]:
    """Each chunk's customers' events (in the order of `events`), from one grouping of the events by customer.

    Picking them out by a scan of every event per chunk cost 0.65 s a chunk at 2M events: half a minute for
    100,000 customers, hours for a million.
    """
    if len(chunks) <= 1:
        yield from (events for _ in chunks)
        return
    codes, customers = pd.factorize(events["customer_id"].astype(str))
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(customers) + 1))
    known = pd.Index(customers)
    for chunk in chunks:
        found = known.get_indexer([str(c) for c in chunk])
        parts = [order[bounds[f] : bounds[f + 1]] for f in found[found >= 0]]
        yield events.iloc[np.sort(np.concatenate(parts)) if parts else []]
