"""Segments over HTTP with the real server (serving/segments.py): live events move a customer in and out of the
shipped abandoned-cart segment, visible in GET /segments/... as soon as /events has answered; paging errors
are 400s with a message, an unknown segment a 404; the 360 view lists the customer's segments."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from serving_fixtures import ADMIN_KEY, AUTH, NOW, Served, serve_env

from activation.attributes import compute_attributes
from activation.membership import refresh
from activation.run import declarations
from activation.settings import ActivationSettings, membership_db
from activation.store import connect
from serving.process import running_service

pytestmark = pytest.mark.integration
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


@pytest.fixture(scope="module")
def segment_server(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The served workspace with the shipped segments refreshed as of NOW (without scores), and its server."""
    plan, triggers = declarations(ActivationSettings())
    attributes = compute_attributes(served.workspace, plan.counts, NOW)
    membership_db(served.workspace).unlink(missing_ok=True)
    con = connect(membership_db(served.workspace))
    refresh(con, plan, triggers, attributes, NOW)
    con.close()
    log = tmp_path_factory.mktemp("segments-server") / "server.log"
    with running_service(served.workspace.root, serve_env(served), log, "--now", NOW.isoformat()) as url:
        yield url


def members(client: httpx.Client, name: str) -> set[str]:
    answer = client.get(f"/segments/{name}/members", params={"limit": 1000}, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    return set(answer.json()["customer_ids"])


def test_a_purchase_leaves_abandoned_cart_and_an_add_to_cart_enters(
    segment_server: str, served: Served
) -> None:
    customer = served.buyer
    with httpx.Client(base_url=segment_server, headers=AUTH, timeout=30) as client:
        listing = client.get("/segments", headers=ADMIN).json()["segments"]
        assert {s["name"] for s in listing} >= {"abandoned_cart", "new_customers", "vip"}
        assert next(s for s in listing if s["name"] == "abandoned_cart")["live"] is True
        at = (NOW - timedelta(minutes=10)).isoformat()
        added = {
            "customer_id": customer,
            "event_type": "add_to_cart",
            "skus": [served.skus[1]],
            "occurred_at": at,
        }
        assert client.post("/events", json=added).status_code == 200
        # /events answers once the live change is committed: the next read sees it, no waiting
        assert customer in members(client, "abandoned_cart")
        assert "abandoned_cart" in client.get(f"/customers/{customer}").json()["segments"]
        later = (NOW - timedelta(minutes=5)).isoformat()
        bought = {
            "customer_id": customer,
            "event_type": "purchase",
            "skus": [served.skus[1]],
            "occurred_at": later,
        }
        assert client.post("/events", json=bought).status_code == 200
        assert customer not in members(client, "abandoned_cart")
        metrics = httpx.get(f"{segment_server}/metrics", timeout=10).text
        assert 'tessera_activation_total{kind="entries"}' in metrics


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ({"offset": "-1"}, 400),
        ({"offset": "99999999999999999999"}, 400),
        ({"limit": "0"}, 400),
        ({"limit": "1001"}, 400),
        ({"limit": "ten"}, 400),
        ({"offset": "0", "limit": "2"}, 200),
    ],
)
def test_paging_is_checked(segment_server: str, query: dict[str, str], status: int) -> None:
    answer = httpx.get(
        f"{segment_server}/segments/new_customers/members", params=query, headers=ADMIN, timeout=30
    )
    assert answer.status_code == status, answer.text
    if status == 400:
        assert "error" in answer.json()
    else:
        assert len(answer.json()["customer_ids"]) <= 2


def test_an_unknown_segment_is_a_404(segment_server: str) -> None:
    answer = httpx.get(f"{segment_server}/segments/nope/members", headers=ADMIN, timeout=30)
    assert answer.status_code == 404 and "unknown segment" in answer.json()["error"]


def test_the_document_declares_the_segment_routes(segment_server: str) -> None:
    paths = httpx.get(f"{segment_server}/docs.json", timeout=30).json()["paths"]
    assert "/segments" in paths and "/segments/" not in paths
    assert {"400", "404"} <= set(paths["/segments/{name}/members"]["get"]["responses"])
