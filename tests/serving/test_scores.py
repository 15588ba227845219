"""Served churn and CLTV scores: the champions' own batch scores (`tessera score`), kept only while their input holds."""

from __future__ import annotations

import dataclasses
import math
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
    """Customers scored in batch whose online state no test changes (the live-event tests use the buyer and
    `scored_live`)."""
    ids = sorted(
        set(service.engine.snapshot.directory.ids) & set(batch.index) - {served.buyer, served.scored_live}
    )
    return [served.regular, *ids[:: max(1, len(ids) // 8)]]


def test_served_churn_and_cltv_are_the_batch_scores(service: Any, served: Served) -> None:
    churn = _batch(served, "churn")
    cltv = _batch(served, "cltv")
    ids = _untouched(service, served, churn)
    assert len(ids) >= 5
    for score in service.engine.churn(ids).scores:
        row = churn.loc[score.customer_id]
        assert score.churn_probability == pytest.approx(row["churn_probability"], rel=1e-9)
        batch_reasons = [row[f"reason_{i}"] for i in (1, 2, 3) if isinstance(row[f"reason_{i}"], str)]
        assert [reason.feature for reason in score.reasons] == batch_reasons
        assert [reason.impact for reason in score.reasons] == pytest.approx(
            [row[f"reason_{i}_impact"] for i in range(1, len(batch_reasons) + 1)], rel=1e-9
        )
    for score in service.engine.cltv(ids).scores:
        row = cltv.loc[score.customer_id]
        assert (score.cltv, score.cltv_low, score.cltv_high) == pytest.approx(
            (row["cltv"], row["cltv_low"], row["cltv_high"]), rel=1e-9
        )
    view = service.engine.customer(served.regular)
    assert view.churn == service.engine.churn([served.regular]).scores[0]
    assert view.cltv == service.engine.cltv([served.regular]).scores[0]


def test_every_consenting_customer_is_scored_ahead_and_a_changed_input_is_scored_again(
    service: Any, served: Served
) -> None:
    scorer = service.engine.snapshot.churn
    assert served.scored_live in scorer.scored and served.no_profiling not in scorer.scored
    kept_input = scorer.scored[served.scored_live][0]
    # A live event moves the customer's last event (an input of churn): the kept score no longer applies.
    service.events(
        customer_id=served.scored_live,
        event_type="product_view",
        skus=[served.skus[0]],
        occurred_at=NOW - timedelta(minutes=5),
    )
    served_score = service.engine.churn([served.scored_live]).scores[0]
    assert scorer.scored[served.scored_live][0] != kept_input
    fresh = dataclasses.replace(scorer, scored={}).score([served.scored_live], NOW)[0]
    assert served_score.churn_probability == fresh.fields["churn_probability"]
    assert served_score.reasons == fresh.reasons


def test_the_kept_answers_are_the_computed_answers(service: Any, served: Served) -> None:
    engine = service.engine
    known = sorted(engine.snapshot.directory.ids)
    # Kept ahead at load (a fixed now): the consenting and the not consenting, not the unknown.
    assert {served.regular, served.no_profiling} <= set(engine.snapshot.cltv.answers)
    for ids in (
        *([c] for c in known),
        [served.merged],
        ["nobody-at-all"],
        [served.regular, served.merged, "nobody-at-all", served.no_profiling, served.regular],
    ):
        assert engine.churn_json(ids) == engine.churn(ids).model_dump_json().encode(), ids
        assert engine.cltv_json(ids) == engine.cltv(ids).model_dump_json().encode(), ids
    assert "nobody-at-all" not in engine.snapshot.churn.answers
    # Every one kept now: answered without computing, the merged id under its own name.
    assert engine.churn_json([served.merged, served.no_profiling], compute=False) == (
        engine.churn([served.merged, served.no_profiling]).model_dump_json().encode()
    )


def test_a_live_event_makes_the_kept_answer_computed_again(service: Any, served: Served) -> None:
    engine = service.engine
    assert engine.churn_json([served.scored_live], compute=False) is not None
    service.events(
        customer_id=served.scored_live,
        event_type="product_view",
        skus=[served.skus[1]],
        occurred_at=NOW - timedelta(minutes=3),
    )
    assert engine.churn_json([served.scored_live], compute=False) is None
    assert engine.cltv_json([served.scored_live], compute=False) is None
    assert (
        engine.churn_json([served.scored_live])
        == engine.churn([served.scored_live]).model_dump_json().encode()
    )
    assert engine.churn_json([served.scored_live], compute=False) is not None


def test_a_reason_shows_the_value_the_model_read_derived_features_included(
    service: Any, served: Served
) -> None:
    # BG/NBD quantities and rhythm ratios are computed by the champion from the vector: no online column holds
    # them, so their value is read from the champion's inputs (for the champions that explain themselves).
    engine, derived = service.engine, 0
    for model, scorer, answer in (
        ("churn", engine.snapshot.churn, engine.churn),
        ("cltv", engine.snapshot.cltv, engine.cltv),
    ):
        if not hasattr(scorer.estimator, "inputs"):
            continue  # a textbook champion (BG/NBD) has no reasons
        ids = _untouched(service, served, _batch(served, model))
        vectors = scorer.reader.vectors(customer_ids=ids, request_time=NOW)
        for customer, score, vector in zip(ids, answer(ids).scores, vectors, strict=True):
            inputs = scorer.estimator.inputs(pd.DataFrame([vector])).iloc[0]
            for reason in score.reasons:
                if reason.feature not in vector:
                    derived += 1
                    read = float(inputs[reason.feature])
                    # A missing input (no gap yet to compare with) is a reason too; its value is null, not NaN.
                    expected = None if math.isnan(read) else pytest.approx(read)
                    assert reason.value == expected, (model, customer, reason)
    assert derived > 0, "no derived feature among the reasons: the check above ran on nothing"
