"""The HTTP contract around BentoML as one ASGI middleware: one pass per request instead of seven.

Every request the service answers goes through `Gateway` once, which in this order:

1. answers `/metrics` itself (Prometheus, `serving.metrics`; any method but GET and HEAD is a 405);
2. answers `/docs.json` itself: BentoML's document completed (`serving.contract.openapi_document`, built once
   per worker);
3. checks the API key (`serving.auth.KeyRing`) on every path that needs one: 401 without a valid key, 403 when
   it lacks the path's scope; the key id goes into the scope for the handlers' access log;
4. refuses a body over `TESSERA_SERVE_MAX_BODY_BYTES` with 413 before anything reads it (at once from
   `Content-Length`; a chunked body is read up to the limit, then handed on), and a body declared as anything
   but JSON with 415 (BentoML would try its other decoders, and a form without a boundary ends in a 500);
5. hands the request to BentoML, and on the way back turns the frameworks' plain-text errors (Starlette's 404
   for a path no route matches, its 405) into `{"error": ...}`, and sets a 405's `Allow` header to every method
   the document declares for the path (Starlette names only the first matching route's: `/customers/{id}` is a
   GET route and a DELETE route);
6. counts the answer by route template (`serving.metrics`) under the status it sent (also when the app raises
   after sending it; 500 when nothing was sent): 401s only as a counter.

Before, each step was a middleware of its own (a coroutine, a closure and often a `send` wrapper per request
each): together they cost more than the recommendation itself.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.auth import KeyRing, refuse
from serving.contract import UNSUPPORTED, openapi_document
from serving.metrics import METHODS, OTHER, exposition, metrics, route_label

METRICS_NOT_ALLOWED = json.dumps({"error": "method not allowed: GET /metrics"}).encode()
NO_BODY = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})
WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


class _Sent:
    """The status of the answer that went out for one request: 500 until the app (or a refusal) sent one."""

    __slots__ = ("status",)

    def __init__(self) -> None:
        self.status = 500


class Gateway:
    """ASGI middleware: metrics, the OpenAPI document, the key check, the size and type of bodies, JSON errors."""

    def __init__(
        self, app: ASGIApp, keys: KeyRing, max_body_bytes: int, spec: Callable[[], dict[str, Any]]
    ) -> None:
        self.app = app
        self.keys = keys
        self.limit = max_body_bytes
        self.too_large = json.dumps(
            {"error": f"the request body is over the limit of {max_body_bytes} bytes"}
        ).encode()
        self.spec = spec
        self._document: bytes | None = None
        self._allow: list[tuple[re.Pattern[str], bytes]] | None = None
        # (route template, method, status) -> the counter's and the histogram's series (a bounded set)
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    @classmethod
    def from_environment(cls, app: ASGIApp, spec: Callable[[], dict[str, Any]]) -> Gateway:
        """The keys and the size limit from `TESSERA_SERVE_*`, read when BentoML builds the app in each worker."""
        from serving.settings import ServeSettings

        settings = ServeSettings()
        return cls(app, KeyRing(settings.api_keys_hashed()), settings.max_body_bytes, spec)

    def document(self) -> bytes:
        """The completed OpenAPI document as sent (built on first use)."""
        if self._document is None:
            self._document = json.dumps(openapi_document(self.spec())).encode()
        return self._document

    def allowed(self, path: str) -> bytes | None:
        """Every method the document declares for the path (a 405's `Allow`), or None for a path it lacks."""
        if self._allow is None:
            self._allow = [
                (
                    re.compile("^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template)) + "$"),
                    ", ".join(sorted(m.upper() for m in methods if m != "parameters")).encode(),
                )
                for template, methods in json.loads(self.document()).get("paths", {}).items()
            ]
        return next((allow for pattern, allow in self._allow if pattern.match(path)), None)

    def _count(self, path: str, method: str, status: int, seconds: float) -> None:
        if status == 401:
            metrics().unauthenticated.inc()
            return
        key = (route_label(path), method if method in METHODS else OTHER, status)
        found = self._series.get(key)
        if found is None:
            series = metrics()
            labels = (key[0], key[1], str(status))
            found = self._series[key] = (series.requests.labels(*labels), series.duration.labels(*labels))
        found[0].inc()
        found[1].observe(seconds)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        if path == "/metrics":
            if method in ("GET", "HEAD"):
                body, content_type = exposition()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [
                            (b"content-type", content_type.encode()),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
            else:
                await refuse(send, 405, METRICS_NOT_ALLOWED, [(b"allow", b"GET, HEAD")])
            return
        if path == "/segments":  # the segments app's root, mounted at /segments/ (serving.service)
            scope = {**scope, "path": "/segments/", "raw_path": b"/segments/"}
        started = time.perf_counter()
        sent = _Sent()
        try:
            sent.status = await self._answer(scope, receive, send, path, method, sent)
        finally:
            self._count(path, method, sent.status, time.perf_counter() - started)

    async def _answer(
        self, scope: Scope, receive: Receive, send: Send, path: str, method: str, sent: _Sent
    ) -> int:
        """Answer the request (refused here or by the app); the status sent."""
        if path == "/docs.json":
            await refuse(send, 200, self.document())
            return 200
        refused = self.keys.admit(scope)
        if refused is not None:
            await refuse(send, *refused)
            return refused[0]
        headers = scope["headers"]
        declared = content_type = None
        for name, value in headers:
            if name == b"content-length":
                declared = value
            elif name == b"content-type":
                content_type = value
        if declared is not None:
            if not declared.isdigit() or int(declared) > self.limit:
                await refuse(send, 413, self.too_large)
                return 413
        elif method not in NO_BODY:
            # No length declared (chunked): read at most the limit, then replay what was read.
            messages: list[Message] = []
            size = 0
            while True:
                message = await receive()
                messages.append(message)
                if message["type"] != "http.request":
                    break
                size += len(message.get("body", b""))
                if size > self.limit:
                    await refuse(send, 413, self.too_large)
                    return 413
                if not message.get("more_body", False):
                    break
            outer = receive

            async def replay() -> Message:
                return messages.pop(0) if messages else await outer()

            receive = replay
        if (
            content_type is not None
            and method in WITH_BODY
            and not path.startswith("/desk/")  # the desk's forms post form-encoded bodies
            and content_type.split(b";")[0].strip().lower() != b"application/json"
        ):
            await refuse(send, 415, UNSUPPORTED)
            return 415
        return await self._pass_on(scope, receive, send, path, sent)

    async def _pass_on(self, scope: Scope, receive: Receive, send: Send, path: str, sent: _Sent) -> int:
        """Call BentoML; a plain-text error comes back as JSON, a 405 with every documented method.

        The status is noted in `sent` as it goes out: if the app raises afterwards, that is what was answered."""
        held: list[Message] = []

        async def answer(message: Message) -> None:
            if held:
                held.append(message)
                if not message.get("more_body", False):
                    sent.status = held[0]["status"]
                    await self._as_json(send, held)
                return
            if message["type"] == "http.response.start":
                status = message["status"]
                if status >= 400:
                    if status == 405 and (allow := self.allowed(path)) is not None:
                        kept = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"allow"]
                        message = {**message, "headers": [*kept, (b"allow", allow)]}
                    content_type = next(
                        (v for k, v in message.get("headers", []) if k == b"content-type"), b""
                    )
                    if content_type.startswith(b"text/plain"):
                        held.append(message)
                        return
                sent.status = status
            await send(message)

        await self.app(scope, receive, answer)
        return sent.status

    @staticmethod
    async def _as_json(send: Send, held: list[Message]) -> None:
        start = held[0]
        text = b"".join(m.get("body", b"") for m in held[1:]).decode("utf-8", "replace").strip()
        body = json.dumps({"error": text or "error"}).encode()
        headers = [
            (k, v) for k, v in start.get("headers", []) if k not in (b"content-type", b"content-length")
        ]
        await send(
            {
                **start,
                "headers": [
                    *headers,
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
