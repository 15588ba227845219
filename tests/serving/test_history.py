"""The 360 view's history: the latest orders of a customer, newest first, each with all its lines and only
those orders' lines, read from the sorted in-memory table."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from serving.customers import History
from tessera.core.settings import Workspace


def _at(day: int) -> pd.Timestamp:
    return pd.Timestamp(datetime(2025, 1, day, 12, tzinfo=UTC))


def test_the_latest_orders_with_all_their_lines(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path)
    workspace.profile.mkdir(parents=True)
    # C1: four orders (O2 on two channels under one id), lines out of order; C2: one order; C0 sorts first.
    rows = [
        ("C1", "O1", "shop", 1, 1, "A", 10.0),
        ("C1", "O3", "shop", 2, 5, "C", 3.0),
        ("C1", "O2", "web", 1, 3, "B", 2.0),
        ("C1", "O3", "shop", 1, 5, "B", 4.0),
        ("C1", "O2", "shop", 1, 4, "D", 7.0),
        ("C1", "O2", "shop", 2, 4, "E", 1.0),
        ("C2", "O9", "shop", 1, 2, "A", 5.0),
        ("C0", "O8", "shop", 1, 6, "A", 6.0),
        (None, "O7", "shop", 1, 6, "A", 6.0),
    ]
    pd.DataFrame(
        [
            {
                "customer_id": c,
                "order_id": o,
                "source": s,
                "line_no": n,
                "ordered_at": _at(d),
                "sku": sku,
                "amount": amount,
                "line_type": "sale",
            }
            for c, o, s, n, d, sku, amount in rows
        ]
    ).to_parquet(workspace.profile / "orders.parquet")
    history = History(workspace)

    def summary(customer: str, limit: int) -> list[tuple[str, str | None, list[str | None], float]]:
        return [
            (o.order_id, o.source, [line.sku for line in o.lines], o.total)
            for o in history.orders(customer, limit)
        ]

    assert summary("C1", 2) == [("O3", "shop", ["B", "C"], 7.0), ("O2", "shop", ["D", "E"], 8.0)]
    assert summary("C1", 3) == [
        ("O3", "shop", ["B", "C"], 7.0),
        ("O2", "shop", ["D", "E"], 8.0),
        ("O2", "web", ["B"], 2.0),
    ]
    assert [o.order_id for o in history.orders("C1", 10)] == ["O3", "O2", "O2", "O1"]
    assert summary("C2", 1) == [("O9", "shop", ["A"], 5.0)]
    assert summary("C0", 5) == [("O8", "shop", ["A"], 6.0)]
    assert history.orders("NOBODY", 3) == []
    history.forget({"C1"})
    assert history.orders("C1", 3) == [] and summary("C2", 1) == [("O9", "shop", ["A"], 5.0)]
