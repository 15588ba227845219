"""The champion recommender, precomputed for serving: one customer's top-k in well under a millisecond.

`NextBestProduct.recommend` folds a customer's event history in on every call: right for batch scoring, too
slow per page view. Here the champion — the learned blend or whichever baseline won — folds every customer's
history in once at load (`NextBestProduct.fold_in`: ALS factors, buy-again, TIFU-KNN and item-kNN rows), so a
request is the model's own `score` of one folded row and a partial sort: one scoring path, the model's.
`tests/serving/test_recommender.py` checks that the scores equal the model's batch scores.

Live rules on top of the model: the items of the customer's latest order (pushed seconds ago by /events)
and the current cart are never offered; a cart pulls in items similar to it (`NextBestProduct.similarity_to`:
cosine of ALS item vectors, or item kNN's for a champion without ALS).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from itertools import chain

import duckdb
import numpy as np
import pandas as pd

from serving.schemas import Item, Reason, RecommendedItem
from tessera.core.settings import Workspace
from training.recommend import NextBestProduct, top_k

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
        stand_in: bool = False,  # the best sellers served while no champion is registered
    ) -> None:
        self.version = version
        self.stand_in = stand_in
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
        self._masks: dict[str, np.ndarray] = {}
        self.model = model
        customers = sorted(pd.unique(events["customer_id"].astype(str)))
        self.row = {customer: i for i, customer in enumerate(customers)}
        self.folded = model.fold_in(events, now, customers)

    def knows(self, customer_id: str) -> bool:
        """Whether the customer has a usable history."""
        row = self.row.get(customer_id)
        return row is not None and bool(self.folded.has_history[row])

    def personal_scores(self, customer_id: str) -> np.ndarray:
        """The model's blended score of every item for a customer with history (`NextBestProduct.score`)."""
        return self.model.score(self.folded, [self.row[customer_id]])[0]

    def forget(self, customer_ids: Iterable[str]) -> int:
        """Drop customers' folded histories at once (an erasure): their rows are zeroed and unreachable, so they
        get the anonymous fallback; how many were held. The next reload folds the erased files in anew."""
        folded, dropped = self.folded, 0
        for customer_id in customer_ids:
            row = self.row.pop(customer_id, None)
            if row is None:
                continue
            dropped += 1
            folded.has_history[row] = False
            if folded.factors is not None:
                folded.factors[row] = 0
            for matrix in (folded.bought, *folded.parts.values()):
                matrix.data[matrix.indptr[row] : matrix.indptr[row + 1]] = 0
        return dropped

    def bought(self, customer_id: str) -> np.ndarray:
        """Positions of the items the customer ever bought."""
        row = self.row.get(customer_id)
        if row is None:
            return np.empty(0, dtype=np.int64)
        bought = self.folded.bought
        return bought.indices[bought.indptr[row] : bought.indptr[row + 1]]

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
        """Mean similarity of every item to the cart's items (the model's `similarity_to`), negatives as 0."""
        return np.maximum(self.model.similarity_to(cart).mean(axis=0), 0)

    def recommend(
        self,
        customer_id: str | None,
        k: int,
        allowed: np.ndarray,
        cart: np.ndarray,
    ) -> tuple[list[RecommendedItem], bool]:
        """Top-k allowed items and whether the customer's own history was used (None: never personalise)."""
        row = self.row.get(customer_id) if customer_id is not None else None
        personal = row is not None and bool(self.folded.has_history[row])
        similarity = self.cart_similarity(cart) if cart.size else None
        # Each item's reason is `reasons[0]` where `cart_won` holds, else `reasons[1]` (only the top k are looked at).
        cart_won: np.ndarray | None = None
        reasons: tuple[Reason, Reason] = ("similar_to_cart", "personalised")
        if personal:
            scores = self.model.score(self.folded, [row])[0]
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
        """Up to k available items most similar to a product (the model's `similarity_to`), only those with a
        positive similarity; None if the model lacks the product or nothing is similar to it (never bought or
        viewed with another product: item kNN's similarity is then 0 to everything)."""
        position = self.position.get(sku)
        if position is None:
            return None
        similarity = np.where(self.available, self.model.similarity_to([position])[0], -np.inf)
        similarity[position] = -np.inf
        return [self._item(i, score) for i, score in _best(similarity, k) if score > 0] or None

    def lists(self, sku: str) -> bool:
        """Whether the model or the catalogue knows the product."""
        return sku in self.position or sku in self.products.index

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
