"""API keys: every path but health, readiness, metrics and the API documentation needs one.

A caller sends `Authorization: Bearer <key>` or `X-API-Key: <key>`. Keys come from TESSERA_SERVE_API_KEYS
(comma-separated, so a key can be rotated by adding the new one before removing the old). Both sides are
hashed before `hmac.compare_digest`, and every configured key is compared, so neither the time taken nor an
early exit tells a caller how much of a key, or which key, was right.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

from serving.settings import ServeSettings

log = logging.getLogger(__name__)
# Paths anyone may call: probes, Prometheus, and the OpenAPI document with its viewer.
OPEN_PATHS = frozenset({"/livez", "/healthz", "/readyz", "/metrics", "/docs.json", "/schema.json", "/"})
OPEN_PREFIXES = ("/static_content/", "/assets/")
UNAUTHORISED = json.dumps(
    {"error": "missing or invalid API key: send `Authorization: Bearer <key>`"}
).encode()


def _digest(value: bytes) -> bytes:
    return hashlib.sha256(value).digest()


def presented_key(headers: Sequence[tuple[bytes, bytes]]) -> bytes | None:
    """The key a request carries, from `Authorization: Bearer` or `X-API-Key`."""
    for name, value in headers:
        if name == b"x-api-key":
            return value.strip()
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            return value[7:].strip()
    return None


def is_open(path: str) -> bool:
    """Whether a path is served without a key."""
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


class ApiKeyMiddleware:
    """ASGI middleware answering 401 to requests on protected paths without a valid key."""

    def __init__(self, app: ASGIApp, keys: Sequence[bytes]) -> None:
        self.app = app
        self.digests = [_digest(k) for k in keys]
        if not self.digests:
            log.warning("TESSERA_SERVE_API_KEYS is empty: every API call will be refused with 401")

    def valid(self, key: bytes | None) -> bool:
        """Whether the key is one of the configured keys (constant time)."""
        if key is None:
            return False
        presented = _digest(key)
        matched = False
        for digest in self.digests:
            matched |= hmac.compare_digest(presented, digest)
        return matched

    @classmethod
    def from_environment(cls, app: ASGIApp) -> ApiKeyMiddleware:
        """The middleware with TESSERA_SERVE_API_KEYS, read when BentoML builds the app in each worker."""
        return cls(app, ServeSettings().keys())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_open(scope["path"]) or self.valid(presented_key(scope["headers"])):
            await self.app(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(UNAUTHORISED)).encode()),
                    (b"www-authenticate", b'Bearer realm="tessera"'),
                ],
            }
        )
        await send({"type": "http.response.body", "body": UNAUTHORISED})
