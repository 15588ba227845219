"""Customers without profiling consent are left out of every training and evaluation set (issue 12, item 2)."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
from training_fixtures import small_settings

from features.store.settings import FeatureStoreSettings
from tessera.core.settings import Workspace
from training.pipelines import TrainingContext

NOW = datetime(2025, 7, 1, tzinfo=UTC)


def _workspace(root) -> Workspace:
    """Three customers with one purchase each; B withdrew profiling, C's golden record has no consent decided."""
    workspace = Workspace(root)
    workspace.profile.mkdir(parents=True)
    pd.DataFrame(
        {"customer_id": ["A", "B", "C"], "consent_profiling": pd.array([True, False, None], dtype="boolean")}
    ).to_parquet(workspace.profile / "customers.parquet")
    pd.DataFrame(
        {
            "customer_id": ["A", "B", "C"],
            "order_id": ["o1", "o2", "o3"],
            "ordered_at": pd.to_datetime(["2025-06-01", "2025-06-02", "2025-06-03"], utc=True),
            "sku": ["s1", "s1", "s2"],
            "amount": [10.0, 20.0, 30.0],
            "line_type": "sale",
        }
    ).to_parquet(workspace.profile / "orders.parquet")
    return workspace


def test_without_profiling_consent_no_order_or_signal_reaches_training(tmp_path) -> None:
    context = TrainingContext(_workspace(tmp_path), NOW, small_settings(), FeatureStoreSettings())
    assert sorted(context.order_lines["customer_id"]) == ["A", "C"]
    assert sorted(context.events["customer_id"]) == ["A", "C"]


def test_the_exclusion_can_be_switched_off(tmp_path) -> None:
    settings = small_settings(exclude_without_profiling_consent=False)
    context = TrainingContext(_workspace(tmp_path), NOW, settings, FeatureStoreSettings())
    assert sorted(context.order_lines["customer_id"]) == ["A", "B", "C"]
