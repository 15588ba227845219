"""The BentoML service called directly: every endpoint, the consent rules, fallbacks, merged ids, live events."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from pydantic import ValidationError
from serving_fixtures import Served

from serving.engine import UnknownCustomer


def call(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def test_recommendations_for_a_regular_customer_are_personalised(service: Any, served: Served) -> None:
    response = call(service.recommend(customer_id=served.regular, k=5))
    assert response.customer_id == served.regular
    assert len(response.items) == 5 and response.personalised and not response.fallback
    assert {item.reason for item in response.items} == {"personalised"}
    assert all(item.name for item in response.items)
    assert response.model_version


def test_an_unknown_customer_gets_flagged_best_sellers(service: Any) -> None:
    response = call(service.recommend(customer_id="nobody-at-all", k=4))
    assert len(response.items) == 4
    assert response.fallback and response.fallback_reason == "unknown_customer" and not response.personalised
    assert {item.reason for item in response.items} == {"popular"}


def test_without_personalisation_consent_nothing_of_the_customer_is_used(
    service: Any, served: Served
) -> None:
    response = call(service.recommend(customer_id=served.no_personalisation, k=5, cart=[served.skus[0]]))
    assert (
        response.fallback
        and response.fallback_reason == "no_personalisation_consent"
        and not response.personalised
    )
    assert {item.reason for item in response.items} == {"popular"}  # the cart is not used either
    assert served.skus[0] not in {item.sku for item in response.items}  # but still not offered
    popular = call(service.recommend(customer_id="nobody-at-all", k=6))
    assert [i.sku for i in response.items] == [i.sku for i in popular.items if i.sku != served.skus[0]][:5]


def test_a_merged_id_is_served_as_the_surviving_customer(service: Any, served: Served) -> None:
    response = call(service.recommend(customer_id=served.merged, k=3))
    assert response.customer_id == served.survivor and response.personalised


def test_filters_excludes_and_cart(service: Any, served: Served) -> None:
    response = call(
        service.recommend(customer_id=served.regular, k=10, category="Food", exclude=served.skus[:2])
    )
    assert all(item.category.startswith("Food") for item in response.items)
    assert not {item.sku for item in response.items} & set(served.skus[:2])
    with_cart = call(service.recommend(customer_id="nobody-at-all", k=3, cart=[served.skus[0]]))
    assert with_cart.items[0].reason == "similar_to_cart" and served.skus[0] not in {
        i.sku for i in with_cart.items
    }


def test_invalid_requests_are_refused(service: Any) -> None:
    for bad in (
        {"customer_id": "C1", "k": 0},
        {"customer_id": "C1", "k": 101},
        {"customer_id": ""},
        {"customer_id": "C1", "x": 1},
    ):
        with pytest.raises(ValidationError):
            call(service.recommend(**bad))


def test_a_purchase_is_not_offered_again_on_the_next_request(service: Any, served: Served) -> None:
    before = call(service.recommend(customer_id=served.buyer, k=5))
    bought = before.items[0].sku
    pushed = service.events(customer_id=served.buyer, event_type="purchase", skus=[bought])
    assert pushed.accepted and pushed.state.last_order_skus == [bought] and pushed.state.cart_items == 0
    after = call(service.recommend(customer_id=served.buyer, k=5))
    assert bought not in {item.sku for item in after.items}
    added = service.events(
        customer_id=served.buyer, event_type="add_to_cart", skus=[served.skus[1]], quantity=2
    )
    assert added.state.cart_items == 2


def test_events_need_a_known_customer(service: Any) -> None:
    answer = service.events(customer_id="nobody-at-all", event_type="product_view", skus=["P001"])
    assert answer.status_code == 404 and b"nobody-at-all" in answer.body


def test_similar_items(service: Any, served: Served) -> None:
    response = call(service.similar_items(sku=served.skus[0], k=4))
    assert len(response.items) == 4 and not response.fallback
    assert served.skus[0] not in {item.sku for item in response.items}
    missing = call(service.similar_items(sku="no-such-sku", k=3))
    assert missing.status_code == 404 and json.loads(missing.body)["error"].startswith(
        "unknown sku 'no-such-sku'"
    )


def test_churn_scores_bands_and_reasons(service: Any, served: Served) -> None:
    response = service.engine.churn([served.regular, served.merged, "nobody-at-all"])
    regular, merged, unknown = response.scores
    assert (
        regular.scored
        and 0 <= regular.churn_probability <= 1
        and regular.risk_band in ("low", "medium", "high")
    )
    assert all(reason.impact > 0 for reason in regular.reasons) and len(regular.reasons) <= 3
    assert merged.scored and merged.resolved_id == served.survivor
    assert (
        not unknown.scored
        and unknown.not_scored_reason == "unknown_customer"
        and unknown.churn_probability is None
    )
    assert response.horizon_days == 90


def test_a_batch_of_unknown_ids_is_answered_not_refused(service: Any) -> None:
    scores = service.engine.churn(["nobody-at-all", "nobody-either"]).scores
    assert [s.not_scored_reason for s in scores] == ["unknown_customer", "unknown_customer"]


def test_withdrawn_profiling_consent_means_no_score_at_all(service: Any, served: Served) -> None:
    churn = service.engine.churn([served.no_profiling]).scores[0]
    cltv = service.engine.cltv([served.no_profiling]).scores[0]
    for score in (churn, cltv):
        assert not score.scored and score.not_scored_reason == "no_profiling_consent" and not score.reasons
    assert churn.churn_probability is None and churn.risk_band is None
    assert cltv.cltv is None and cltv.value_band is None
    view = service.engine.customer(served.no_profiling)
    assert view.labels.risk_band is None and view.labels.value_band is None
    assert not view.churn.scored and not view.cltv.scored


def test_cltv_value_interval_and_band(service: Any, served: Served) -> None:
    response = service.engine.cltv([served.regular])
    score = response.scores[0]
    assert (
        score.scored
        and score.cltv_low <= score.cltv <= score.cltv_high
        and score.value_band in ("low", "medium", "high")
    )
    assert response.interval == (0.1, 0.9)


def test_the_360_view(service: Any, served: Served) -> None:
    view = service.engine.customer(served.regular)
    assert view.customer_id == served.regular
    assert [(i.source, i.record_id) for i in view.identities] == [("shop", served.regular.replace("T", "S"))]
    assert view.consent.personalisation and view.consent.profiling
    assert view.recent_orders and view.recent_orders == sorted(
        view.recent_orders, key=lambda o: o.ordered_at, reverse=True
    )
    assert all(
        order.lines and order.total == pytest.approx(sum(line.amount for line in order.lines))
        for order in view.recent_orders
    )
    assert {i.channel for i in view.recent_interactions} == {"web"}
    assert view.labels.risk_band == view.churn.risk_band and view.labels.value_band == view.cltv.value_band
    with pytest.raises(UnknownCustomer):
        service.engine.customer("nobody-at-all")
