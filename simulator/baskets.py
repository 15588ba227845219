"""What goes in each basket: habitual grocery items, discovery items, complements, returns."""

from __future__ import annotations

import numpy as np
import pandas as pd

from simulator.catalogue import Catalogue
from simulator.config import DAY, SimConfig

REPEAT, DISCOVERY, TRY, COMPLEMENT = 0, 1, 2, 3
MAX_EXTRA_LINES = 250


def _leaf_sampler(catalogue: Catalogue) -> np.ndarray:
    """Per product `leaf + cumulative popularity share within the leaf`: searchsorted picks by popularity."""
    p = catalogue.products
    leaf = p["leaf"].to_numpy()
    pop = p["popularity"].to_numpy()
    share = pop / np.bincount(leaf, weights=pop)[leaf]
    return leaf + pd.Series(share).groupby(leaf).cumsum().to_numpy()


def pick_in_leaf(rng: np.random.Generator, catalogue: Catalogue, leaf: np.ndarray) -> np.ndarray:
    """One product of each given leaf, by popularity."""
    sampler = _leaf_sampler(catalogue)
    idx = np.searchsorted(sampler, leaf + rng.random(len(leaf)) * (1 - 1e-9))
    return np.minimum(idx, len(sampler) - 1)


def pick_leaf(
    rng: np.random.Generator, affinity: np.ndarray, person: np.ndarray, catalogue: Catalogue
) -> np.ndarray:
    """A discovery leaf per row, drawn from the person's (cumulative) affinity."""
    column = (rng.random(len(person))[:, None] > affinity[person]).sum(axis=1)
    return catalogue.discovery_leaves[np.minimum(column, affinity.shape[1] - 1)]


def build_lines(
    rng: np.random.Generator,
    orders: pd.DataFrame,
    latent: pd.DataFrame,
    repeat: np.ndarray,
    affinity: np.ndarray,
    catalogue: Catalogue,
    config: SimConfig,
) -> pd.DataFrame:
    """Order lines of every order: order (index), line_no, product, quantity, price_pence, kind."""
    person = orders["person"].to_numpy()
    online = orders["online"].to_numpy()
    n_orders = len(orders)
    q = latent["repeat_q"].to_numpy()[person]
    q = q + config.repeat_strength * (1 - q)
    slots = repeat[person]
    take = (rng.random(slots.shape, dtype=np.float32) < q[:, None]) & (slots >= 0)
    empty = ~take.any(axis=1)
    take[empty, 0] = True  # every basket has at least one line
    r_order, r_slot = np.nonzero(take)
    parts = [(r_order, slots[r_order, r_slot], REPEAT)]

    disc_p = np.clip(latent["discovery_p"].to_numpy()[person] * np.where(online, 1.6, 0.5), 0, 0.9)
    n_disc = rng.binomial(2, disc_p)
    d_order = np.repeat(np.arange(n_orders), n_disc)
    d_product = pick_in_leaf(rng, catalogue, pick_leaf(rng, affinity, person[d_order], catalogue))
    if config.repeat_strength > 0:
        d_product = rebuy_own(rng, person[d_order], d_order, d_product, config.repeat_strength)
    parts.append((d_order, d_product, DISCOVERY))

    t_order = np.flatnonzero(rng.random(n_orders) < 0.1)
    grocery_leaf = catalogue.grocery_leaves[rng.integers(0, len(catalogue.grocery_leaves), len(t_order))]
    parts.append((t_order, pick_in_leaf(rng, catalogue, grocery_leaf), TRY))

    # A discovery purchase brings its complement into the person's next basket, some of the time.
    nxt = d_order + 1
    has_next = (nxt < n_orders) & (person[np.minimum(nxt, n_orders - 1)] == person[d_order])
    go = has_next & (rng.random(len(d_order)) < 0.3)
    parts.append((nxt[go], catalogue.products["complement"].to_numpy()[d_product[go]], COMPLEMENT))

    wholesale = latent["wholesale"].to_numpy()[person]
    if config.extra_lines_shape is not None or wholesale.any():
        parts += extra_lines(rng, person, wholesale, slots, affinity, catalogue, config)

    order = np.concatenate([p[0] for p in parts])
    product = np.concatenate([p[1] for p in parts]).astype(np.int64)
    kind = np.concatenate([np.full(len(p[0]), p[2]) for p in parts])
    products = catalogue.products
    t = orders["t"].to_numpy()[order]
    gone = t >= products["discontinued_at"].to_numpy()[product]
    product = np.where(gone, products["substitute"].to_numpy()[product], product)

    grocery = products["grocery"].to_numpy()[product]
    spend = latent["spend"].to_numpy()[person[order]]
    qty = np.where(grocery, 1 + np.minimum(rng.poisson(0.35 * spend), 5), 1 + (rng.random(len(order)) < 0.05))
    qty = qty * np.where(wholesale[order], config.wholesale_quantity, 1)
    lines = pd.DataFrame({"order": order, "product": product, "quantity": qty, "kind": kind})
    lines = lines.groupby(["order", "product"], sort=True, as_index=False).agg(
        quantity=("quantity", "sum"), kind=("kind", "min")
    )
    price = products["price_pence"].to_numpy()[lines["product"].to_numpy()]
    promo = rng.random(len(lines)) < config.promo_rate
    lines["price_pence"] = np.where(promo, np.round(price * 0.8).astype(np.int64), price)
    lines["line_no"] = lines.groupby("order").cumcount() + 1
    return lines


def rebuy_own(
    rng: np.random.Generator, person: np.ndarray, order: np.ndarray, product: np.ndarray, strength: float
) -> np.ndarray:
    """Replace a `strength` share of lines by a product of one of the same person's earlier orders' lines.

    Rows are in order of `order` (and orders are grouped by person, in time order), as `build_lines` makes them.
    """
    row = np.arange(len(person))
    first_of_person = pd.Series(row).groupby(person).transform("min").to_numpy()
    first_of_order = pd.Series(row).groupby(order).transform("min").to_numpy()
    earlier = first_of_order - first_of_person  # lines of this person in orders before this one
    pick = first_of_person + (rng.random(len(row)) * earlier).astype(np.int64)
    again = (earlier > 0) & (rng.random(len(row)) < strength)
    return np.where(again, product[np.minimum(pick, len(row) - 1)], product)


def extra_lines(
    rng: np.random.Generator,
    person: np.ndarray,
    wholesale: np.ndarray,
    slots: np.ndarray,
    affinity: np.ndarray,
    catalogue: Catalogue,
    config: SimConfig,
) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """Lines beyond the usual basket: a heavy-tailed number per order, many more for wholesale buyers.

    Each extra line is one of the person's habits (60%, when they have some) or a discovery item.
    """
    count = np.zeros(len(person), dtype=np.int64)
    if config.extra_lines_shape is not None:
        tail = config.extra_lines_scale * rng.pareto(config.extra_lines_shape, len(person))
        count += np.minimum(tail, MAX_EXTRA_LINES).astype(np.int64)
    count += np.where(wholesale, rng.poisson(config.wholesale_extra_lines, len(person)), 0)
    order = np.repeat(np.arange(len(person)), count)
    habits = slots[order]
    valid = (habits >= 0).sum(axis=1)  # a person's habits come first in their slots
    slot = (rng.random(len(order)) * np.maximum(valid, 1)).astype(np.int64)
    habit = (rng.random(len(order)) < 0.6) & (valid > 0)
    found = pick_in_leaf(rng, catalogue, pick_leaf(rng, affinity, person[order], catalogue))
    product = np.where(habit, habits[np.arange(len(order)), slot], found)
    return [(order[habit], product[habit], REPEAT), (order[~habit], product[~habit], DISCOVERY)]


def draw_returns(
    rng: np.random.Generator,
    orders: pd.DataFrame,
    lines: pd.DataFrame,
    catalogue: Catalogue,
    config: SimConfig,
) -> pd.DataFrame:
    """Returned lines (index into `lines`) and when: web returns by category rate, a few store returns."""
    order = lines["order"].to_numpy()
    online = orders["online"].to_numpy()[order]
    cancelled = orders["cancelled"].to_numpy()[order]
    group = catalogue.products["group"].to_numpy()[lines["product"].to_numpy()]
    grocery = catalogue.products["grocery"].to_numpy()[lines["product"].to_numpy()]
    rate = np.full(len(lines), config.grocery_return_rate)
    for name, r in config.return_rate_by_group:
        rate = np.where(group == name, r, rate)
    rate = np.where(grocery, config.grocery_return_rate, rate)
    rate = np.where(online, rate, config.store_return_rate * np.where(grocery, 0.5, 3.0))
    hit = (rng.random(len(lines)) < rate) & ~cancelled
    idx = np.flatnonzero(hit)
    # Store returns come back on a later day at about the time of day the store was visited (opening hours).
    delay = np.where(
        online[idx], rng.integers(3 * DAY, 30 * DAY, len(idx)), rng.integers(1, 20, len(idx)) * DAY
    )
    return pd.DataFrame({"line": idx, "t": orders["t"].to_numpy()[order[idx]] + delay})


def home_stores(rng: np.random.Generator, town: np.ndarray, catalogue: Catalogue) -> np.ndarray:
    """Each person's usual store: one in their town when there is one, else any."""
    stores_by_town = pd.Series(np.arange(len(catalogue.store_towns))).groupby(catalogue.store_towns).first()
    home = stores_by_town.reindex(town).to_numpy()
    random_store = rng.integers(0, len(catalogue.store_towns), len(town))
    return np.where(np.isnan(home), random_store, np.nan_to_num(home)).astype(np.int64)
