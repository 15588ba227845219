"""The gateway's metrics count the status that went out, also when the app fails after sending it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from serving.auth import KeyRing, hashed_key
from serving.gateway import Gateway
from serving.metrics import exposition

KEY = "gateway-test-key"
BODY = b'{"customer_ids": ["C1"]}'


class Broken(Exception):
    """What the app raises."""


def start(status: int, content_type: bytes) -> dict[str, Any]:
    return {"type": "http.response.start", "status": status, "headers": [(b"content-type", content_type)]}


async def ok_then_raise(scope: dict, receive: Any, send: Any) -> None:
    """An app that sent its 200 and then failed (e.g. while streaming the body)."""
    await receive()
    await send(start(200, b"application/json"))
    raise Broken("after the status")


async def raise_at_once(scope: dict, receive: Any, send: Any) -> None:
    await receive()
    raise Broken("before anything was sent")


async def plain_404_then_raise(scope: dict, receive: Any, send: Any) -> None:
    """A plain-text error the gateway holds back (to send it as JSON), then a failure: nothing went out."""
    await receive()
    await send(start(404, b"text/plain; charset=utf-8"))
    raise Broken("before the held body")


def call(app: Any, path: str) -> list[dict[str, Any]]:
    """POST `path` through the gateway around `app`; the messages sent (the app's exception is raised on)."""
    gateway = Gateway(
        app, KeyRing([hashed_key("test", ["read", "events"], KEY)]), 1_000, lambda: {"paths": {}}
    )
    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(BODY)).encode()),
            (b"authorization", f"Bearer {KEY}".encode()),
        ],
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    with pytest.raises(Broken):
        asyncio.run(gateway(scope, receive, send))
    return sent


def counted(endpoint: str, status: int) -> float:
    """tessera_request_total for POST `endpoint` answered `status`."""
    from prometheus_client.parser import text_string_to_metric_families

    wanted = {"endpoint": endpoint, "method": "POST", "http_response_code": str(status)}
    text = exposition()[0].decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "tessera_request_total" and sample.labels == wanted
    )


def test_a_failure_after_the_status_was_sent_counts_the_status_sent() -> None:
    before = counted("/churn", 200), counted("/churn", 500)
    sent = call(ok_then_raise, "/churn")
    assert [m["status"] for m in sent] == [200]
    assert (counted("/churn", 200), counted("/churn", 500)) == (before[0] + 1, before[1])


def test_a_failure_before_anything_was_sent_counts_a_500() -> None:
    before = counted("/cltv", 200), counted("/cltv", 500)
    assert call(raise_at_once, "/cltv") == []
    assert (counted("/cltv", 200), counted("/cltv", 500)) == (before[0], before[1] + 1)


def test_a_held_error_never_sent_counts_a_500_not_its_own_status() -> None:
    before = counted("/events", 404), counted("/events", 500)
    assert call(plain_404_then_raise, "/events") == []
    assert (counted("/events", 404), counted("/events", 500)) == (before[0], before[1] + 1)
