"""The champion recommender, precomputed for serving: one customer's top-k in well under a millisecond.

`NextBestProduct.recommend` recomputes a customer's ALS factors from their event history and builds dense
matrices on every call: right for batch scoring, too slow per page view. Here everything that does not
change between requests is computed once at load (customer factors, "buy again" and purchase-frequency rows,
the blend's per-item weights, popularity, unit item vectors, product names), so a request is one small
matrix-vector product, a few vector additions and a partial sort. `tests/serving/test_recommender.py` checks
that the scores equal the model's own.

Live rules on top of the model: the items of the customer's latest order (pushed seconds ago by /events)
and the current cart are never offered; a cart pulls in items similar to it (cosine of ALS item vectors).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from itertools import chain

import duckdb
import numpy as np
import pandas as pd
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from features.settings import Workspace
from serving.schemas import Item, Reason, RecommendedItem
from training.recommend import NextBestProduct, top_k

_CHUNK = 4096
_MASK_CACHE = 1024  # category filters remembered (requests name a handful of categories)


def load_products(workspace: Workspace) -> pd.DataFrame:
    """Product name and category per sku: the catalogue when there is one, else names seen on order lines."""
    folder, orders = workspace.canonical_table("products"), workspace.profile / "orders.parquet"
    parts = []
    with duckdb.connect() as con:
        if any(folder.glob("*.parquet")):
            scan = f"read_parquet('{folder / '*.parquet'}', union_by_name = true)"
            present = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()}
            name = "name" if "name" in present else "NULL::VARCHAR"
            category = "category" if "category" in present else "NULL::VARCHAR"
            parts.append(
                con.execute(
                    f"SELECT CAST(sku AS VARCHAR) AS sku, first({name}) AS name, first({category}) AS category "
                    f"FROM {scan} WHERE sku IS NOT NULL GROUP BY 1"
                ).df()
            )
        if orders.exists():
            parts.append(
                con.execute(
                    "SELECT CAST(sku AS VARCHAR) AS sku, arg_max(product_name, ordered_at) AS name, NULL AS category "
                    "FROM read_parquet(?) WHERE sku IS NOT NULL GROUP BY 1",
                    [str(orders)],
                ).df()
            )
    if not parts:
        return pd.DataFrame({"name": [], "category": []}, index=pd.Index([], name="sku"))
    # The catalogue first: its names win, order lines only fill products it does not list.
    merged = pd.concat(parts, ignore_index=True).drop_duplicates("sku").set_index("sku")
    return merged.astype(object).where(merged.notna(), None)


@dataclass(frozen=True)
class _Rows:
    """A sparse matrix's rows as slices (indices, values): one row is read without building a sparse row."""

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray

    @classmethod
    def of(cls, matrix: sp.csr_matrix, per_row_max: bool = False, log1p: bool = False) -> _Rows:
        matrix = matrix.tocsr()
        matrix.eliminate_zeros()
        data = matrix.data.astype(np.float32)
        if per_row_max:
            peaks = (
                np.maximum.reduceat(data, matrix.indptr[:-1][np.diff(matrix.indptr) > 0])
                if data.size
                else data
            )
            counts = np.diff(matrix.indptr)
            data = data / np.repeat(np.maximum(peaks, 1e-12), counts[counts > 0])
        if log1p:
            data = np.log1p(data)
        return cls(matrix.indptr, matrix.indices, data)

    def row(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        start, stop = self.indptr[i], self.indptr[i + 1]
        return self.indices[start:stop], self.data[start:stop]


class Recommender:
    """A fitted `NextBestProduct` with every customer's history folded in as of `now`, ready to serve."""

    def __init__(
        self,
        model: NextBestProduct,
        version: str,
        events: pd.DataFrame,
        now: datetime,
        products: pd.DataFrame,
        cart_weight: float = 0.5,
    ) -> None:
        self.version = version
        self.cart_weight = cart_weight
        self.skus = model.items_.to_numpy(dtype=object)
        self.position = {sku: i for i, sku in enumerate(self.skus)}
        self.products = products
        known = products.reindex(self.skus)
        self.names = known["name"].to_numpy(dtype=object)
        self.categories = np.where(known["category"].notna(), known["category"], model.categories_).astype(
            object
        )
        self.available = model.available_.copy()
        self.popularity = model.popularity_.astype(np.float32)
        self.popular_order = np.argsort(-self.popularity, kind="stable")
        weights = model.coefficients()
        self._base = (weights["intercept"] + weights["popularity"] * self.popularity).astype(np.float32)
        self._w_again = weights["again"].astype(np.float32)
        self._w_discovery = weights["discovery"].astype(np.float32)
        self._w_frequency = np.float32(weights["frequency"])
        self._item_factors = np.ascontiguousarray(model.als_.item_factors, dtype=np.float32)
        norms = np.linalg.norm(self._item_factors, axis=1, keepdims=True)
        self._unit = self._item_factors / np.maximum(norms, 1e-12)
        self._masks: dict[str, np.ndarray] = {}
        self._fold_in(model, events, now)

    def _fold_in(self, model: NextBestProduct, events: pd.DataFrame, now: datetime) -> None:
        """Per customer with events: ALS factors, scaled "buy again" row, purchase-frequency row, bought set."""
        customers = sorted(pd.unique(events["customer_id"].astype(str)))
        self.row = {customer: i for i, customer in enumerate(customers)}
        histories = model.histories(
            events.assign(customer_id=events["customer_id"].astype(str)), now, customers
        )
        self.has_history = np.diff(histories.confidence.indptr) > 0
        factors = np.zeros((len(customers), self._item_factors.shape[1]), dtype=np.float32)
        with threadpool_limits(1, "blas"):
            for start in range(0, len(customers), _CHUNK):
                chunk = histories.confidence[start : start + _CHUNK]
                if chunk.nnz:
                    factors[start : start + chunk.shape[0]] = model.als_.recalculate_user(
                        np.arange(chunk.shape[0]), chunk
                    )
        self._user_factors = factors
        self._again = _Rows.of(histories.repurchase, per_row_max=True)
        self._frequency = _Rows.of(histories.bought, log1p=True)

    def knows(self, customer_id: str) -> bool:
        """Whether the customer has a usable history."""
        row = self.row.get(customer_id)
        return row is not None and bool(self.has_history[row])

    def personal_scores(self, customer_id: str) -> np.ndarray:
        """The model's blended score of every item for a customer with history (as `NextBestProduct.blended`)."""
        row = self.row[customer_id]
        discovery = np.maximum(self._user_factors[row] @ self._item_factors.T, 0)
        discovery /= max(float(discovery.max()), 1e-12)
        scores = self._base + self._w_discovery * discovery
        cols, values = self._again.row(row)
        scores[cols] += self._w_again[cols] * values
        cols, values = self._frequency.row(row)
        scores[cols] += self._w_frequency * values
        return scores

    def bought(self, customer_id: str) -> np.ndarray:
        """Positions of the items the customer ever bought."""
        row = self.row.get(customer_id)
        return np.empty(0, dtype=np.int64) if row is None else self._frequency.row(row)[0]

    def positions(self, skus: Iterable[str]) -> np.ndarray:
        """Positions of the given skus the model knows (others are ignored)."""
        return np.fromiter((p for s in skus if (p := self.position.get(s)) is not None), dtype=np.int64)

    def _category_mask(self, category: str) -> np.ndarray:
        mask = self._masks.get(category)
        if mask is None:
            if len(self._masks) >= _MASK_CACHE:
                self._masks.clear()
            mask = np.fromiter(
                (str(c).startswith(category) for c in self.categories), dtype=bool, count=len(self.categories)
            )
            self._masks[category] = mask
        return mask

    def allowed(self, category: str | None, excluded: np.ndarray) -> np.ndarray:
        """Available items, under the category when given, minus the excluded positions."""
        allowed = self.available if category is None else self.available & self._category_mask(category)
        if excluded.size:
            allowed = allowed.copy()
            allowed[excluded] = False
        return allowed

    def cart_similarity(self, cart: np.ndarray) -> np.ndarray:
        """Cosine similarity of every item to the cart's mean item vector, negatives as 0."""
        return np.maximum(self._unit @ self._unit[cart].mean(axis=0), 0)

    def recommend(
        self,
        customer_id: str | None,
        k: int,
        allowed: np.ndarray,
        cart: np.ndarray,
    ) -> tuple[list[RecommendedItem], bool]:
        """Top-k allowed items and whether the customer's own history was used (None: never personalise)."""
        personal = customer_id is not None and self.knows(customer_id)
        similarity = self.cart_similarity(cart) if cart.size else None
        # Each item's reason is `reasons[0]` where `cart_won` holds, else `reasons[1]` (only the top k are looked at).
        cart_won: np.ndarray | None = None
        reasons: tuple[Reason, Reason] = ("similar_to_cart", "personalised")
        if personal:
            scores = self.personal_scores(str(customer_id))
            if similarity is not None:
                # The model's scores to 0..1 over the candidates, so the cart weight means the same for everyone.
                candidates = scores[allowed]
                low, high = (
                    (float(candidates.min()), float(candidates.max())) if candidates.size else (0.0, 1.0)
                )
                scaled = (scores - low) / max(high - low, 1e-12)
                cart_part = self.cart_weight * similarity
                scores, cart_won = scaled + cart_part, cart_part > scaled
        elif similarity is not None:
            # Popularity breaks ties, and ranks whatever has nothing in common with the cart.
            scores, cart_won, reasons = (
                similarity + 1e-3 * self.popularity,
                similarity > 0,
                ("similar_to_cart", "popular"),
            )
        else:
            scores, reasons = self.popularity, ("popular", "popular")
        items = [
            RecommendedItem(
                sku=self.skus[i],
                name=self.names[i],
                category=self.categories[i] or None,
                score=score,
                reason=reasons[0] if cart_won is not None and cart_won[i] else reasons[1],
            )
            for i, score in _best(np.where(allowed, scores, -np.inf), k)
        ]
        return items, personal

    def _item(self, i: int, score: float) -> Item:
        return Item(sku=self.skus[i], name=self.names[i], category=self.categories[i] or None, score=score)

    def similar(self, sku: str, k: int) -> list[Item] | None:
        """The k available items most similar to a product (cosine of ALS vectors); None if the model lacks it."""
        position = self.position.get(sku)
        if position is None:
            return None
        similarity = np.where(self.available, self._unit @ self._unit[position], -np.inf)
        similarity[position] = -np.inf
        return [self._item(i, score) for i, score in _best(similarity, k)]

    def popular(self, k: int, category: str | None = None) -> list[Item]:
        """Best sellers (under a category when given)."""
        allowed = self.allowed(category, np.empty(0, dtype=np.int64))
        return [
            self._item(i, float(self.popularity[i]))
            for i in self.popular_order[allowed[self.popular_order]][:k]
        ]

    def category_of(self, sku: str) -> str | None:
        """A product's top-level category from the catalogue (for products the model has not seen)."""
        if sku not in self.products.index:
            return None
        category = self.products.at[sku, "category"]
        return str(category).split(" > ")[0] if category else None


def _best(scores: np.ndarray, k: int) -> list[tuple[int, float]]:
    """Positions and scores of the k highest finite scores, best first."""
    top = top_k(scores[None, :], k)[0]
    top = top[np.isfinite(scores[top])]
    return list(zip(top.tolist(), scores[top].tolist(), strict=True))


def exclusions(recommender: Recommender, *groups: Iterable[str]) -> np.ndarray:
    """Positions of every sku in the given groups (request excludes, cart, the latest order, ...)."""
    return recommender.positions(chain.from_iterable(groups))
