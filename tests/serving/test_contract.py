"""The service under attack, through `to_asgi()`: scopes per endpoint, the access log, bounded metrics, the
request-size limit, strict types, plain-object errors and the OpenAPI document that declares them."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from serving_fixtures import ADMIN_KEY, API_KEY, EVENTS_KEY, READ_KEY, Served
from starlette.testclient import TestClient

from serving.audit import AccessLog


@pytest.fixture(scope="module")
def client(serving_settings: None) -> Iterator[TestClient]:
    from serving.service import Tessera

    with TestClient(Tessera.to_asgi(), raise_server_exceptions=False) as test_client:
        yield test_client


def calls(served: Served) -> list[tuple[str, str, dict | None, str]]:
    """Every keyed endpoint: method, path, body, and the scope it needs."""
    return [
        ("POST", "/recommend", {"customer_id": served.regular, "k": 2}, "read"),
        ("POST", "/similar-items", {"sku": served.skus[0], "k": 2}, "read"),
        ("POST", "/churn", {"customer_ids": [served.regular]}, "read"),
        ("POST", "/cltv", {"customer_ids": [served.regular]}, "read"),
        ("GET", f"/customers/{served.regular}", None, "read"),
        (
            "POST",
            "/events",
            {"customer_id": served.regular, "event_type": "product_view", "skus": [served.skus[0]]},
            "events",
        ),
    ]


KEYS_BY_SCOPE = {"read": READ_KEY, "events": EVENTS_KEY, "admin": ADMIN_KEY}


@pytest.mark.parametrize("scope", ["read", "events", "admin"])
def test_each_endpoint_with_each_scope(client: TestClient, served: Served, scope: str) -> None:
    key = KEYS_BY_SCOPE[scope]
    for method, path, body, needed in calls(served):
        without = client.request(method, path, json=body)
        assert without.status_code == 401 and "API key" in without.json()["error"], path
        unknown = client.request(method, path, json=body, headers={"X-API-Key": key + "x"})
        assert unknown.status_code == 401, path
        answer = client.request(method, path, json=body, headers={"Authorization": f"Bearer {key}"})
        if needed == scope:
            assert answer.status_code == 200, (path, answer.text)
        else:
            assert answer.status_code == 403 and answer.json() == {
                "error": f"this API key lacks the `{needed}` scope {path} needs"
            }, path


def test_admin_paths_need_the_admin_scope(client: TestClient, served: Served) -> None:
    for key in (API_KEY, READ_KEY, EVENTS_KEY):
        assert client.delete(f"/customers/{served.regular}", headers={"X-API-Key": key}).status_code == 403
    # The admin key passes the check and meets the erasure route (an unknown customer: nothing is erased).
    answer = client.delete("/customers/NO-SUCH-CUSTOMER", headers={"X-API-Key": ADMIN_KEY})
    assert answer.status_code == 404 and "error" in answer.json()


def test_the_360_view_is_logged_by_key_id_without_pii(client: TestClient, served: Served) -> None:
    from serving.settings import ServeSettings

    log = AccessLog(ServeSettings().access_log_file())
    before = len(log.read())
    assert client.get(f"/customers/{served.regular}", headers={"X-API-Key": READ_KEY}).status_code == 200
    assert client.get(f"/customers/{served.merged}", headers={"X-API-Key": API_KEY}).status_code == 200
    new = log.read()[before:]
    assert [(e["key_id"], e["customer_id"]) for e in new] == [
        ("desk", served.regular),
        ("shop-1", served.survivor),
    ]
    assert all(set(e) == {"at", "key_id", "customer_id", "endpoint"} for e in new)
    text = log.path.read_text()
    assert READ_KEY not in text and API_KEY not in text and "@" not in text


def metrics_size(client: TestClient) -> int:
    response = client.get("/metrics")
    assert response.status_code == 200
    return len(response.content)


def test_unauthenticated_requests_to_distinct_paths_leave_metrics_the_same_size(
    client: TestClient, served: Served
) -> None:
    # Every route template and status seen once first, so only the counters' values can change.
    for path in (f"/customers/C{0:09d}", "/no/such/path/0", "/recommend"):
        client.get(path)
    client.get(f"/customers/{served.regular}", headers={"X-API-Key": READ_KEY})
    client.get("/no/such/path", headers={"X-API-Key": READ_KEY})
    before = metrics_size(client)
    for i in range(10_000):
        path = f"/customers/C{i:09d}" if i % 2 else f"/no/such/path/{i}"
        assert client.get(path).status_code == 401
    after = metrics_size(client)
    assert abs(after - before) <= 0.01 * before, (before, after)
    text = client.get("/metrics").text
    assert "C000000001" not in text and "/no/such" not in text
    assert 'tessera_request_total{endpoint="/customers/{customer_id}"' in text
    assert 'tessera_request_total{endpoint="other"' in text
    unauthenticated = next(
        line for line in text.splitlines() if line.startswith("tessera_unauthenticated_requests_total")
    )
    assert float(unauthenticated.split()[-1]) >= 10_000


def test_a_body_over_the_limit_is_a_413_before_it_is_read(client: TestClient, served: Served) -> None:
    from serving.settings import ServeSettings

    limit = ServeSettings().max_body_bytes
    body = json.dumps({"customer_id": served.regular, "exclude": ["x" * 100] * (limit // 100)})
    response = client.post(
        "/recommend", content=body, headers={"X-API-Key": READ_KEY, "Content-Type": "application/json"}
    )
    assert response.status_code == 413 and response.json() == {
        "error": f"the request body is over the limit of {limit} bytes"
    }

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked
        yield body[: limit // 2].encode()
        yield body[limit // 2 :].encode()

    chunked = client.post(
        "/recommend", content=chunks(), headers={"X-API-Key": READ_KEY, "Content-Type": "application/json"}
    )
    assert chunked.status_code == 413
    small = client.post(
        "/recommend",
        content=iter([json.dumps({"customer_id": served.regular, "k": 2}).encode()]),
        headers={"X-API-Key": READ_KEY, "Content-Type": "application/json"},
    )
    assert small.status_code == 200 and len(small.json()["items"]) == 2


@pytest.mark.parametrize(
    "path, body",
    [
        ("/recommend", {"customer_id": "C1", "k": True}),
        ("/recommend", {"customer_id": "C1", "k": 2.0}),
        ("/recommend", {"customer_id": "C1", "exclude_purchased": 1}),
        ("/events", {"customer_id": "C1", "event_type": "add_to_cart", "skus": ["A"], "quantity": True}),
    ],
)
def test_a_boolean_is_not_an_int_nor_an_int_a_boolean(client: TestClient, path: str, body: dict) -> None:
    response = client.post(path, json=body, headers={"X-API-Key": API_KEY})
    assert response.status_code == 400 and isinstance(response.json()["detail"], list)


def test_404s_are_plain_objects(client: TestClient, served: Served) -> None:
    for path, body in (
        ("/similar-items", {"sku": "no-such-sku", "k": 3}),
        ("/events", {"customer_id": "nobody-at-all", "event_type": "product_view", "skus": [served.skus[0]]}),
    ):
        response = client.post(path, json=body, headers={"X-API-Key": API_KEY})
        assert response.status_code == 404 and response.headers["content-type"] == "application/json"
        assert set(response.json()) == {"error"}


def test_a_client_error_is_one_log_line_without_traceback(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    secret_payload = "Z" * 5000
    with caplog.at_level(logging.INFO):
        client.post(
            "/recommend",
            content='{"customer_id": "' + secret_payload,
            headers={"X-API-Key": API_KEY, "Content-Type": "application/json"},
        )
        client.post("/recommend", json={"customer_id": "C1", "k": 0}, headers={"X-API-Key": API_KEY})
    records = [r for r in caplog.records if r.name == "bentoml._internal.server.http_app"]
    assert len(records) == 2
    for record in records:
        line = record.getMessage()
        assert record.exc_info is None and "\n" not in line and secret_payload[:50] not in line
        assert line.startswith("client error 400 on POST /recommend")


def test_the_openapi_document_declares_keys_scopes_and_errors(client: TestClient) -> None:
    doc = client.get("/docs.json").json()
    assert set(doc["components"]["securitySchemes"]) == {"bearer", "apiKey"}
    paths = doc["paths"]
    for path in ("/recommend", "/similar-items", "/churn", "/cltv", "/events"):
        responses = paths[path]["post"]["responses"]
        assert {"200", "400", "401", "403", "413"} <= set(responses), path
        assert ("422" in responses) == (path == "/events"), path
        assert paths[path]["post"]["security"] == [{"bearer": []}, {"apiKey": []}]
    assert (
        "404" in paths["/events"]["post"]["responses"]
        and "404" not in paths["/recommend"]["post"]["responses"]
    )
    view = paths["/customers/{customer_id}"]["get"]
    assert {"200", "307", "401", "403", "404"} <= set(view["responses"]) and "Scope: `read`" in view[
        "description"
    ]
    assert paths["/metrics"]["get"]["security"] == [] and paths["/livez"]["get"]["security"] == []
    detail = doc["components"]["schemas"]["ValidationErrorBody"]["properties"]["detail"]
    assert detail["type"] == "array"


def test_every_error_is_json(client: TestClient) -> None:
    key = {"X-API-Key": API_KEY}
    for method, path, headers, status in (
        ("GET", "/no/such/path", key, 404),
        ("GET", "/customers/a%2Fb", key, 404),
        ("POST", "/readyz", {}, 405),
        ("TRACE", "/metrics", {}, 405),
        ("POST", "/churn", {**key, "Content-Type": "multipart/form-data"}, 415),
        ("POST", "/recommend", {**key, "Content-Type": "text/plain"}, 415),
    ):
        response = client.request(method, path, headers=headers, content=b'{"customer_ids": ["C1"]}')
        assert response.status_code == status, (method, path, response.text)
        assert response.headers["content-type"] == "application/json" and set(response.json()) == {"error"}
