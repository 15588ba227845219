"""A consent withdrawal reaches the running service on a re-run at the same "as of" (issue 12, item 2)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest
from serving_fixtures import NOW, Served, copy_workspace, serve_env

from tessera.core.settings import Settings, Workspace


def _withdraw_profiling(workspace: Workspace, customer: str) -> None:
    """A consent record withdrawing profiling a day before NOW, and the golden record saying the same."""
    events_path = workspace.profile / "consent_events.parquet"
    events = pd.read_parquet(events_path)
    withdrawal = {
        **events.iloc[0].to_dict(),
        "customer_id": customer,
        "purpose": "profiling",
        "granted": False,
    }
    withdrawal["recorded_at"] = pd.Timestamp(NOW) - pd.Timedelta(days=1)
    pd.concat([events, pd.DataFrame([withdrawal])], ignore_index=True).to_parquet(events_path)
    customers_path = workspace.profile / "customers.parquet"
    customers = pd.read_parquet(customers_path)
    customers.loc[customers["customer_id"] == customer, "consent_profiling"] = False
    customers.to_parquet(customers_path)


def test_a_withdrawal_rerun_at_the_same_as_of_stops_the_churn_score(
    served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from features.store import build_feature_store
    from features.store.settings import FeatureStoreSettings
    from serving.service import Tessera

    root = tmp_path / "served"
    copy = dataclasses.replace(served, workspace=copy_workspace(served.workspace, root))
    for key, value in serve_env(copy).items():
        monkeypatch.setenv(key, value)
    service = Tessera()
    try:
        before = service.engine.churn([copy.regular]).scores[0]
        assert before.scored and before.churn_probability is not None
        assert json.loads(service.engine.churn_json([copy.regular], compute=False))["scores"][0]["scored"]

        _withdraw_profiling(copy.workspace, copy.regular)
        # The same "as of" as the last load: without the fix this was skipped as "up to date".
        summary = build_feature_store(copy.workspace, NOW, Settings(workspace=root), FeatureStoreSettings())
        assert summary["materialized"]["customer_profile"].startswith("full")

        after = service.engine.churn([copy.regular]).scores[0]
        assert not after.scored and after.not_scored_reason == "no_profiling_consent"
        assert after.churn_probability is None
        # The answer kept at load is not reused: the store holds another consent now.
        assert service.engine.churn_json([copy.regular], compute=False) is None
        kept = json.loads(service.engine.churn_json([copy.regular]))["scores"][0]
        assert kept["not_scored_reason"] == "no_profiling_consent"
        assert not service.engine.customer(copy.regular).churn.scored
    finally:
        service.close()
