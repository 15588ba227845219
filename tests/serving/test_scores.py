"""Served churn and CLTV scores: the champions' own batch scores (`tessera score`), kept only while their input holds."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pandas as pd
import pytest
from serving_fixtures import NOW, Served

from features.store.settings import FeatureStoreSettings
from tessera.core.settings import Settings
from training.scoring import score_customers


def _batch(served: Served, model: str) -> pd.DataFrame:
    """`tessera score MODEL` on the served workspace, as of the service's now."""
    settings = Settings(workspace=served.workspace.root)
    return score_customers(served.workspace, model, NOW, settings, FeatureStoreSettings()).set_index(
        "customer_id"
    )


def _untouched(service: Any, served: Served, batch: pd.DataFrame) -> list[str]:
    """Customers scored in batch whose online state no test changes (the live-event tests use the buyer)."""
    ids = sorted(set(service.engine.snapshot.directory.ids) & set(batch.index) - {served.buyer})
    return [served.regular, *ids[:: max(1, len(ids) // 8)]]


def test_served_churn_and_cltv_are_the_batch_scores(service: Any, served: Served) -> None:
    churn = _batch(served, "churn")
    cltv = _batch(served, "cltv")
    ids = _untouched(service, served, churn)
    assert len(ids) >= 5
    for score in service.churn(customer_ids=ids).scores:
        row = churn.loc[score.customer_id]
        assert score.churn_probability == pytest.approx(row["churn_probability"], rel=1e-9)
        batch_reasons = [row[f"reason_{i}"] for i in (1, 2, 3) if isinstance(row[f"reason_{i}"], str)]
        assert [reason.feature for reason in score.reasons] == batch_reasons
        assert [reason.impact for reason in score.reasons] == pytest.approx(
            [row[f"reason_{i}_impact"] for i in range(1, len(batch_reasons) + 1)], rel=1e-9
        )
    for score in service.cltv(customer_ids=ids).scores:
        row = cltv.loc[score.customer_id]
        assert (score.cltv, score.cltv_low, score.cltv_high) == pytest.approx(
            (row["cltv"], row["cltv_low"], row["cltv_high"]), rel=1e-9
        )
    view = service.engine.customer(served.regular)
    assert view.churn == service.churn(customer_ids=[served.regular]).scores[0]
    assert view.cltv == service.cltv(customer_ids=[served.regular]).scores[0]


def test_every_consenting_customer_is_scored_ahead_and_a_changed_input_is_scored_again(
    service: Any, served: Served
) -> None:
    scorer = service.engine.snapshot.churn
    assert served.buyer in scorer.scored and served.no_profiling not in scorer.scored
    kept_input = scorer.scored[served.buyer][0]
    # A live event moves the buyer's last event (an input of churn): the kept score no longer applies.
    service.events(
        customer_id=served.buyer,
        event_type="product_view",
        skus=[served.skus[0]],
        occurred_at=NOW - timedelta(minutes=5),
    )
    served_score = service.churn(customer_ids=[served.buyer]).scores[0]
    assert scorer.scored[served.buyer][0] != kept_input
    fresh = dataclasses.replace(scorer, scored={}).score([served.buyer], NOW)[0]
    assert served_score.churn_probability == fresh.fields["churn_probability"]
    assert served_score.reasons == fresh.reasons
