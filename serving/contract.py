"""The HTTP contract around BentoML: a request-size limit, the OpenAPI document as the service answers, one log
line per client error.

- `JsonErrors` turns the frameworks' plain-text errors (a path no route matches, a wrong method) into JSON.
- `JsonBodies` answers 415 to a body declared as anything but JSON.
- `BodyLimit` answers 413 to a body over `TESSERA_SERVE_MAX_BODY_BYTES` before anything reads it: at once from
  `Content-Length`, and for a chunked body by reading at most the limit (then handing what it read on).
- `OpenApiDocument` serves `/docs.json`: BentoML's generated document with what BentoML cannot know added —
  the security schemes and which scope each path needs, the 400/401/403/404/413/503 bodies as they really
  are (plain objects), and `/metrics` as text.
- `ClientErrors` turns BentoML's log record of a client error (a full traceback with an excerpt of the body)
  into one line with the status, method, path and the error's first line.
"""

from __future__ import annotations

import copy
import json
import logging
import re
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.auth import is_open, refuse, required_scope
from serving.schemas import ErrorBody, ValidationErrorBody

ERROR = "#/components/schemas/ErrorBody"
BAD_REQUEST = "#/components/schemas/ValidationErrorBody"
# Which answers each operation has beside 200 (and 400/401/403/413 for every keyed POST).
NOT_FOUND = frozenset({"/events", "/similar-items", "/customers/{customer_id}"})
NEEDS_CHAMPION = frozenset({"/recommend", "/similar-items", "/churn", "/cltv"})
REFUSES = frozenset({"/events"})  # a well-formed request the data refuses: 422
SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "`Authorization: Bearer <key>`"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}


def _answer(description: str, ref: str = ERROR) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": ref}}}}


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema(ref_template="#/components/schemas/{model}")


def openapi_document(spec: dict[str, Any]) -> dict[str, Any]:
    """BentoML's OpenAPI document completed: security, scopes and every error answer as it is sent."""
    doc = copy.deepcopy(spec)
    components = doc.setdefault("components", {})
    components["securitySchemes"] = SECURITY_SCHEMES
    schemas = components.setdefault("schemas", {})
    schemas["ErrorBody"] = _schema(ErrorBody)
    schemas["ValidationErrorBody"] = _schema(ValidationErrorBody)
    for name in (
        "InvalidArgument",
        "NotFound",
        "InternalServerError",
        "HTTPValidationError",
        "ValidationError",
    ):
        schemas.pop(name, None)
    doc["paths"]["/metrics"] = {
        "get": {
            "tags": ["Infrastructure"],
            "description": "Prometheus metrics: requests by route template, refused calls as one counter.",
            "responses": {
                "200": {
                    "description": "Prometheus text format",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            },
        }
    }
    doc["paths"].pop("/schema.json", None)
    _nullable_defaults(doc)
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            if "requestBody" in operation:  # every keyed POST needs its body: none is a 400
                operation["requestBody"]["required"] = True
            # BentoML keys some answers by int, FastAPI by str: one kind, as JSON has it.
            responses = {str(status): answer for status, answer in operation.get("responses", {}).items()}
            operation["responses"] = responses
            for status in ("400", "404", "422", "500"):
                responses.pop(status, None)
            if is_open(path):
                operation["security"] = []
                if path == "/readyz":
                    responses["503"] = {"description": "Not ready yet (the champions are loading)"}
                continue
            scope = required_scope(method.upper(), path.replace("{customer_id}", "x"))
            operation["security"] = [{"bearer": []}, {"apiKey": []}]
            operation["description"] = f"{operation.get('description', '')}\n\nScope: `{scope}`.".strip()
            responses["401"] = _answer("No API key, or an unknown one")
            responses["403"] = _answer(f"The API key lacks the `{scope}` scope")
            responses["500"] = _answer("An unexpected error (logged server-side)")
            if method == "post":
                responses["400"] = _answer(
                    "Malformed JSON or an invalid field (named in `detail`)", BAD_REQUEST
                )
                responses["413"] = _answer("The body is over the size limit")
                responses["415"] = _answer("A body that is not `application/json`")
            if path in REFUSES:
                responses["422"] = _answer(
                    "An event the data refuses: future or too old, unknown SKUs (named)"
                )
            if path in NOT_FOUND:
                responses["404"] = _answer("Unknown customer or product")
            if path in NEEDS_CHAMPION:
                responses["503"] = _answer("No champion of the model is registered yet")
    return doc


def _nullable_defaults(node: Any) -> None:
    """Mark every property whose default is null as nullable: BentoML's conversion to OpenAPI 3.0 drops the
    `null` of `X | None`, so the document would call a `null` the service accepts invalid."""
    if isinstance(node, dict):
        for prop in (node.get("properties") or {}).values():
            if (
                isinstance(prop, dict)
                and "default" in prop
                and prop["default"] is None
                and "$ref" not in prop
            ):
                prop["nullable"] = True
        for value in node.values():
            _nullable_defaults(value)
    elif isinstance(node, list):
        for value in node:
            _nullable_defaults(value)


class OpenApiDocument:
    """ASGI middleware serving the completed OpenAPI document at /docs.json (built once per worker)."""

    def __init__(self, app: ASGIApp, spec: Callable[[], dict[str, Any]]) -> None:
        self.app = app
        self.spec = spec
        self._body: bytes | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/docs.json":
            await self.app(scope, receive, send)
            return
        if self._body is None:
            self._body = json.dumps(openapi_document(self.spec())).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(self._body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": self._body})


class BodyLimit:
    """ASGI middleware answering 413 to a request body over `limit` bytes, before the application reads it."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.refusal = json.dumps({"error": f"the request body is over the limit of {limit} bytes"}).encode()

    @classmethod
    def from_environment(cls, app: ASGIApp) -> BodyLimit:
        """The limit from TESSERA_SERVE_MAX_BODY_BYTES, read when BentoML builds the app in each worker."""
        from serving.settings import ServeSettings

        return cls(app, ServeSettings().max_body_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if declared is not None:
            if not declared.isdigit() or int(declared) > self.limit:
                await refuse(send, 413, self.refusal)
                return
            await self.app(scope, receive, send)
            return
        if scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
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
                await refuse(send, 413, self.refusal)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


class JsonBodies:
    """ASGI middleware answering 415 to a request body that is not JSON (BentoML would try its other decoders,
    and a form without a boundary ends in a 500)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("POST", "PUT", "PATCH"):
            declared = next((v for k, v in scope["headers"] if k == b"content-type"), None)
            if declared is not None and declared.split(b";")[0].strip().lower() != b"application/json":
                await refuse(send, 415, UNSUPPORTED)
                return
        await self.app(scope, receive, send)


class AllowAsDocumented:
    """ASGI middleware setting a 405's `Allow` header to every method the document declares for the path.

    Starlette names only the methods of the first route that matched the path, so `/customers/{id}`, served
    by a GET route and a DELETE route, would answer `Allow: GET`."""

    def __init__(self, app: ASGIApp, spec: Callable[[], dict[str, Any]]) -> None:
        self.app = app
        self.spec = spec
        self._paths: list[tuple[re.Pattern[str], bytes]] | None = None

    def allowed(self, path: str) -> bytes | None:
        if self._paths is None:
            self._paths = [
                (
                    re.compile("^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template)) + "$"),
                    ", ".join(sorted(m.upper() for m in methods if m != "parameters")).encode(),
                )
                for template, methods in openapi_document(self.spec()).get("paths", {}).items()
            ]
        return next((allow for pattern, allow in self._paths if pattern.match(path)), None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_allow(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                allow = self.allowed(scope["path"])
                if allow is not None:
                    headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"allow"]
                    message = {**message, "headers": [*headers, (b"allow", allow)]}
            await send(message)

        await self.app(scope, receive, send_allow)


class JsonErrors:
    """ASGI middleware turning the plain-text errors of the frameworks underneath (Starlette's 404 for a path no
    route matches, its 405) into `{"error": ...}`: JSON everywhere, as the document says."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held: list[Message] = []

        async def send_json(message: Message) -> None:
            if message["type"] == "http.response.start":
                content_type = next((v for k, v in message.get("headers", []) if k == b"content-type"), b"")
                if message["status"] >= 400 and content_type.startswith(b"text/plain"):
                    held.append(message)
                    return
            elif held:
                held.append(message)
                if message.get("more_body", False):
                    return
                start = held[0]
                text = b"".join(m.get("body", b"") for m in held[1:]).decode("utf-8", "replace").strip()
                body = json.dumps({"error": text or "error"}).encode()
                headers = [
                    (k, v)
                    for k, v in start.get("headers", [])
                    if k not in (b"content-type", b"content-length")
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
                return
            await send(message)

        await self.app(scope, receive, send_json)


UNSUPPORTED = json.dumps({"error": "send the body as `Content-Type: application/json`"}).encode()


class ClientErrors(logging.Filter):
    """Rewrites BentoML's record of a client error (4xx) as one line without traceback or body excerpt."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.exc_info or record.exc_info[1] is None:
            return True
        exc = record.exc_info[1]
        status = _client_status(exc)
        if status is None:
            return True
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        path, method = record.args if isinstance(record.args, tuple) and len(record.args) == 2 else ("?", "?")
        record.msg = "client error %s on %s %s: %s"
        record.args = (status, method, path, first[:200])
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info = None
        record.exc_text = None
        return True


def _client_status(exc: BaseException) -> int | None:
    if isinstance(exc, ValidationError):
        return 400
    code = getattr(getattr(exc, "error_code", None), "value", None)
    return code if isinstance(code, int) and 400 <= code < 500 else None


def quiet_client_errors() -> None:
    """Install `ClientErrors` on BentoML's request logger (once per process: the service's entry point)."""
    logger = logging.getLogger("bentoml._internal.server.http_app")
    if not any(isinstance(f, ClientErrors) for f in logger.filters):
        logger.addFilter(ClientErrors())
