"""The service through `to_asgi()`: HTTP status codes, error messages, API keys, redirects, probes, OpenAPI."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from serving_fixtures import API_KEY, AUTH, OTHER_KEY, Served
from starlette.testclient import TestClient

from serving.schemas import MAX_BATCH, MAX_K


@pytest.fixture(scope="module")
def client(serving_settings: None) -> Iterator[TestClient]:
    from serving.service import Tessera

    with TestClient(Tessera.to_asgi(), raise_server_exceptions=False) as test_client:
        yield test_client


def no_stack_trace(text: str) -> bool:
    return "Traceback" not in text and 'File "' not in text


def test_recommend_over_http(client: TestClient, served: Served) -> None:
    response = client.post("/recommend", json={"customer_id": served.regular, "k": 3}, headers=AUTH)
    assert response.status_code == 200
    body = response.json()
    assert (
        len(body["items"]) == 3
        and body["personalised"]
        and set(body["items"][0]) == {"sku", "name", "category", "score", "reason"}
    )


@pytest.mark.parametrize(
    "body",
    [
        '{"customer_id": "C1", "k": 3',  # malformed JSON
        '{"customer_id": "C1", "k": 0}',
        f'{{"customer_id": "C1", "k": {MAX_K + 1}}}',
        '{"k": 3}',
        '{"customer_id": "C1", "k": "many"}',
        '["C1"]',
    ],
)
def test_bad_input_is_a_400_with_a_message(client: TestClient, body: str) -> None:
    response = client.post("/recommend", content=body, headers={**AUTH, "Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"] and no_stack_trace(response.text)


def test_an_unknown_customer_is_a_flagged_fallback_not_an_error(client: TestClient) -> None:
    response = client.post("/recommend", json={"customer_id": "nobody-at-all", "k": 2}, headers=AUTH)
    assert response.status_code == 200 and response.json()["fallback_reason"] == "unknown_customer"


def test_too_large_a_batch_is_refused(client: TestClient, served: Served) -> None:
    ids = [served.regular] * (MAX_BATCH + 1)
    for path in ("/churn", "/cltv"):
        response = client.post(path, json={"customer_ids": ids}, headers=AUTH)
        assert (
            response.status_code == 400 and "customer_ids" in response.text and no_stack_trace(response.text)
        )
    assert client.post("/churn", json={"customer_ids": []}, headers=AUTH).status_code == 400


def test_scores_over_http(client: TestClient, served: Served) -> None:
    churn = client.post(
        "/churn", json={"customer_ids": [served.regular, served.no_profiling]}, headers=AUTH
    ).json()
    assert [s["scored"] for s in churn["scores"]] == [True, False]
    cltv = client.post("/cltv", json={"customer_ids": [served.regular]}, headers=AUTH).json()
    assert cltv["scores"][0]["cltv"] is not None and cltv["model_version"]


def test_similar_items_unknown_sku_is_a_404(client: TestClient, served: Served) -> None:
    assert (
        client.post("/similar-items", json={"sku": served.skus[0], "k": 3}, headers=AUTH).status_code == 200
    )
    response = client.post("/similar-items", json={"sku": "no-such-sku", "k": 3}, headers=AUTH)
    assert response.status_code == 404 and "no-such-sku" in response.text


def test_events_over_http(client: TestClient, served: Served) -> None:
    ok = client.post(
        "/events",
        json={"customer_id": served.survivor, "event_type": "product_view", "skus": [served.skus[2]]},
        headers=AUTH,
    )
    assert ok.status_code == 200 and ok.json()["customer_id"] == served.survivor
    unknown = client.post(
        "/events", json={"customer_id": "nobody-at-all", "event_type": "purchase"}, headers=AUTH
    )
    assert unknown.status_code == 404 and "nobody-at-all" in unknown.text
    wrong_type = client.post(
        "/events", json={"customer_id": served.survivor, "event_type": "teleport"}, headers=AUTH
    )
    assert wrong_type.status_code == 400


def test_the_360_view_redirects_a_merged_id_and_404s_an_unknown_one(
    client: TestClient, served: Served
) -> None:
    view = client.get(f"/customers/{served.regular}", headers=AUTH)
    assert view.status_code == 200 and view.json()["customer_id"] == served.regular
    assert {
        "golden_record",
        "identities",
        "consent",
        "recent_orders",
        "recent_interactions",
        "labels",
        "churn",
        "cltv",
        "live",
    } <= set(view.json())
    moved = client.get(f"/customers/{served.merged}", headers=AUTH, follow_redirects=False)
    assert moved.status_code == 307 and moved.headers["location"] == f"/customers/{served.survivor}"
    followed = client.get(f"/customers/{served.merged}", headers=AUTH)
    assert followed.status_code == 200 and followed.json()["customer_id"] == served.survivor
    missing = client.get("/customers/nobody-at-all", headers=AUTH)
    assert missing.status_code == 404 and missing.json() == {"error": "unknown customer 'nobody-at-all'"}


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"X-API-Key": ""}, {"Authorization": API_KEY}]
)
def test_a_missing_or_wrong_key_is_a_401(client: TestClient, served: Served, headers: dict[str, str]) -> None:
    for method, path, body in (
        ("post", "/recommend", {"customer_id": served.regular}),
        ("post", "/churn", {"customer_ids": [served.regular]}),
        ("get", f"/customers/{served.regular}", None),
    ):
        response = client.request(method.upper(), path, json=body, headers=headers)
        assert response.status_code == 401 and "API key" in response.json()["error"]


def test_either_configured_key_works_in_either_header(client: TestClient, served: Served) -> None:
    for headers in ({"X-API-Key": OTHER_KEY}, {"Authorization": f"bearer {OTHER_KEY}"}, AUTH):
        assert (
            client.post("/recommend", json={"customer_id": served.regular}, headers=headers).status_code
            == 200
        )


def test_probes_metrics_and_openapi_need_no_key(client: TestClient) -> None:
    for path in ("/livez", "/healthz", "/readyz"):
        assert client.get(path).status_code == 200
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and 'tessera_request_total{endpoint="/readyz"' in metrics.text
    paths = client.get("/docs.json").json()["paths"]
    assert {"/recommend", "/similar-items", "/churn", "/cltv", "/events", "/customers/{customer_id}"} <= set(
        paths
    )
    schema = paths["/recommend"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert schema
