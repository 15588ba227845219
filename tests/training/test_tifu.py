"""TIFU-KNN's vectors, worked out by hand on three customers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.tifu import neighbour_vectors, personal_vectors

NOW = pd.Timestamp("2025-06-30 23:00", tz="UTC")
ITEMS = pd.Index(["a", "b", "c"])


def purchases(rows: list[tuple[str, str, int]]) -> pd.DataFrame:
    """(customer, sku, days before NOW) → the recommender's events frame."""
    return pd.DataFrame(
        [
            {
                "customer_id": c,
                "sku": s,
                "kind": "purchase",
                "occurred_at": NOW - pd.Timedelta(days=d),
                "count": 1.0,
            }
            for c, s, d in rows
        ]
    )


def test_baskets_decay_within_and_across_groups() -> None:
    # Three baskets (days 1, 5, 9 ago), newest first; groups of two: {1, 5} and {9}.
    events = purchases([("x", "a", 1), ("x", "a", 9), ("x", "b", 5), ("x", "b", 5), ("x", "c", 40)])
    events.loc[events["sku"] == "c", "occurred_at"] = NOW + pd.Timedelta(days=1)  # after now: ignored
    vector = personal_vectors(events, NOW, ["x"], ITEMS, within=0.5, across=0.25, group_size=2).toarray()[0]
    # weight = across^group · within^place / (group size · groups) = {1, 0.5, 0.25} / 4; a basket counts an item once.
    assert vector == pytest.approx([(1 + 0.25) / 4, 0.5 / 4, 0.0])


def test_neighbours_are_the_most_similar_others_never_oneself() -> None:
    events = purchases([("x", "a", 1), ("y", "a", 1), ("y", "b", 2), ("z", "c", 1)])
    reference_ids = pd.Index(["x", "y", "z"])
    reference = personal_vectors(events, NOW, list(reference_ids), ITEMS, 0.9, 0.7, 7)
    query = personal_vectors(events, NOW, ["x"], ITEMS, 0.9, 0.7, 7)
    near = neighbour_vectors(query, ["x"], reference, reference_ids, k=1).toarray()[0]
    np.testing.assert_allclose(near, reference[1].toarray()[0])  # y shares a; z shares nothing
    # With k = 2 the mean still divides by k: z, sharing nothing, is no neighbour.
    two = neighbour_vectors(query, ["x"], reference, reference_ids, k=2).toarray()[0]
    np.testing.assert_allclose(two, reference[1].toarray()[0] / 2)


def test_among_equally_similar_customers_the_earlier_are_the_neighbours() -> None:
    # w and y are equally similar to x (each shares a with it); with k = 1 the earlier of the two is taken, whatever
    # the order of the similarity's entries; z, with a and b, is less similar (cosine 1/√2) and comes after both.
    events = purchases([("x", "a", 1), ("w", "a", 1), ("y", "a", 3), ("z", "a", 1), ("z", "b", 1)])
    for order in (["w", "y", "z", "x"], ["z", "y", "w", "x"]):
        reference_ids = pd.Index(order)
        reference = personal_vectors(events, NOW, order, ITEMS, 0.9, 0.7, 7)
        query = personal_vectors(events, NOW, ["x"], ITEMS, 0.9, 0.7, 7)
        first = order.index("w") if order.index("w") < order.index("y") else order.index("y")
        near = neighbour_vectors(query, ["x"], reference, reference_ids, k=1).toarray()[0]
        np.testing.assert_allclose(near, reference[first].toarray()[0])
        three = neighbour_vectors(query, ["x"], reference, reference_ids, k=3).toarray()[0]
        np.testing.assert_allclose(
            three, reference[:3].sum(axis=0).A1 / 3, rtol=1e-6
        )  # all three others, never x
