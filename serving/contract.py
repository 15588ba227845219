"""The HTTP contract around BentoML: the OpenAPI document as the service answers, one log line per client error.
(`serving.gateway.Gateway` enforces it per request: keys, size limit, JSON bodies and errors, metrics.)

- `openapi_document` is what `/docs.json` serves: BentoML's generated document with what BentoML cannot know
  added — the security schemes and which scope each path needs, the 400/401/403/404/409/413/415/503 bodies as
  they really are (plain objects), and `/metrics` as text.
- `ClientErrors` turns BentoML's log record of a client error (a full traceback with an excerpt of the body)
  into one line with the status, method, path and the error's first line.
"""

from __future__ import annotations

import copy
import json
import logging
from typing import Any

from pydantic import BaseModel, ValidationError

from serving.auth import is_open, required_scope
from serving.schemas import ErrorBody, ValidationErrorBody

ERROR = "#/components/schemas/ErrorBody"
BAD_REQUEST = "#/components/schemas/ValidationErrorBody"
# Which answers each operation has beside 200 (and 400/401/403/413 for every keyed POST).
STEWARD = frozenset({"/identity/split", "/identity/merge"})  # steward decisions: they take the write lock
NOT_FOUND = frozenset(
    {"/events", "/similar-items", "/customers/{customer_id}", "/segments/{name}/members", *STEWARD}
)
PAGED = frozenset({"/segments/{name}/members"})  # offset/limit checked by the service: a 400 with a message
NEEDS_CHAMPION = frozenset({"/recommend", "/similar-items", "/churn", "/cltv"})
# A well-formed request the data refuses: 422, and why.
REFUSES = {
    "/events": "An event the data refuses: future or too old, unknown SKUs (named)",
    "/identity/split": "A record that is not the customer's, or its only record",
    "/identity/merge": "A customer merged with itself",
}
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
    if "/segments/" in doc["paths"]:  # the mounted app's root: the gateway serves it as /segments
        doc["paths"]["/segments"] = doc["paths"].pop("/segments/")
    _nullable_defaults(doc)
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            if "requestBody" in operation:  # every keyed POST needs its body: none is a 400
                operation["requestBody"]["required"] = True
            # BentoML keys some answers by int, FastAPI by str: one kind, as JSON has it.
            responses = {str(status): answer for status, answer in operation.get("responses", {}).items()}
            operation["responses"] = responses
            for status in ("400", "404", "409", "422", "500"):
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
            if path in PAGED:
                responses["400"] = _answer("An offset or limit that is not a whole number in its range")
            if path in REFUSES:
                responses["422"] = _answer(REFUSES[path])
            if path in NOT_FOUND:
                responses["404"] = _answer(
                    "Unknown segment" if path in PAGED else "Unknown customer or product"
                )
            if method == "delete" or path in STEWARD:
                responses["409"] = _answer(
                    "Another writer (a `tessera` command, an erasure, a steward decision) holds the workspace "
                    "lock: the message names its pid and command; nothing was changed, try again when it has "
                    "finished"
                )
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
