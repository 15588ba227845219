"""Scoped API keys: every path but health, readiness, metrics and the API documentation needs a key with the
path's scope.

Scopes: `read` (recommendations, similar items, churn and CLTV scores, the 360 view), `events` (live events),
`admin` (erasure, steward split and merge, segment administration). A caller sends
`Authorization: Bearer <key>` or `X-API-Key: <key>`: no key or an unknown one is a 401, a known key without the
path's scope a 403.

The service never holds a key, only salted hashes of keys: `TESSERA_SERVE_API_KEY_HASHES` lists entries
`id:scope+scope:salt:sha256(salt + key)` (comma-separated, several per scope so a key can be rotated by adding
the new one before removing the old); `python -m serving.auth --id shop --scopes read,events` makes a key and
prints it with its entry. Keys are random (`secrets.token_urlsafe`), so a fast salted hash is enough (no
dictionary to guess from). The presented key is hashed with every entry's salt and compared to every entry's
digest with `hmac.compare_digest`, so neither the time taken nor an early exit tells a caller how much of a key,
or which key, was right. The key id (never the key) is what the access log records.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import logging
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger(__name__)

SCOPES = ("read", "events", "admin")
# Paths anyone may call: probes, Prometheus, and the OpenAPI document with its viewer.
OPEN_PATHS = frozenset(
    {"/livez", "/healthz", "/readyz", "/metrics", "/docs.json", "/schema.json", "/", "/desk"}
)
# The service desk (`/desk`) checks the key itself at login and then holds a signed session cookie.
OPEN_PREFIXES = ("/static_content/", "/assets/", "/desk/")
# Which scope a call needs; a path not listed needs any valid key (and is then BentoML's 404).
READ_PATHS = frozenset({"/recommend", "/similar-items", "/churn", "/cltv"})
EVENT_PATHS = frozenset({"/events"})
ADMIN_PREFIXES = ("/admin/", "/segments", "/identity/")
# The key id of the scope the request was let in with, for the handlers (the 360 view's access log).
KEY_ID = "tessera.key_id"
_ENTRY = re.compile(
    r"^(?P<id>[A-Za-z0-9_.-]{1,64}):(?P<scopes>[a-z+]+):(?P<salt>[0-9a-f]{16,}):(?P<digest>[0-9a-f]{64})$"
)


def _body(message: str) -> bytes:
    return json.dumps({"error": message}).encode()


UNAUTHORISED = _body("missing or invalid API key: send `Authorization: Bearer <key>`")


@dataclass(frozen=True)
class ApiKey:
    """One configured key: its id, its scopes, and the salted hash it is recognised by."""

    key_id: str
    scopes: frozenset[str]
    salt: bytes
    digest: bytes

    def entry(self) -> str:
        """The key as a `TESSERA_SERVE_API_KEY_HASHES` entry."""
        return f"{self.key_id}:{'+'.join(sorted(self.scopes))}:{self.salt.hex()}:{self.digest.hex()}"


def _hash(salt: bytes, key: bytes) -> bytes:
    return hashlib.sha256(salt + key).digest()


def hashed_key(key_id: str, scopes: Sequence[str], key: str, salt: bytes | None = None) -> ApiKey:
    """The hashed form of a key (a random salt unless one is given)."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise ValueError(
            f"API key {key_id!r}: scopes must be some of {', '.join(SCOPES)}, got {list(scopes)}"
        )
    salt = salt if salt is not None else secrets.token_bytes(16)
    return ApiKey(key_id, frozenset(scopes), salt, _hash(salt, key.encode()))


def parse_key_hashes(raw: str) -> list[ApiKey]:
    """The keys of a `TESSERA_SERVE_API_KEY_HASHES` value; an entry that does not parse is named (never shown)."""
    keys = []
    for position, entry in enumerate((e.strip() for e in raw.split(",")), start=1):
        if not entry:
            continue
        found = _ENTRY.match(entry)
        if found is None:
            raise ValueError(
                f"TESSERA_SERVE_API_KEY_HASHES entry {position}: expected `id:scope+scope:salt:sha256`, "
                "as `python -m serving.auth` prints it"
            )
        scopes = found["scopes"].split("+")
        unknown = sorted(set(scopes) - set(SCOPES))
        if unknown:
            raise ValueError(
                f"TESSERA_SERVE_API_KEY_HASHES entry {position} ({found['id']}): unknown scope {unknown}, "
                f"expected some of {', '.join(SCOPES)}"
            )
        keys.append(
            ApiKey(
                found["id"], frozenset(scopes), bytes.fromhex(found["salt"]), bytes.fromhex(found["digest"])
            )
        )
    return keys


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


def required_scope(method: str, path: str) -> str | None:
    """The scope a call needs (None: any valid key)."""
    if path in READ_PATHS:
        return "read"
    if path in EVENT_PATHS:
        return "events"
    if path.startswith(ADMIN_PREFIXES) or (method == "DELETE" and path.startswith("/customers/")):
        return "admin"
    if path.startswith("/customers/"):
        return "read"
    return None


class KeyRing:
    """The configured keys, and which one a request presents."""

    def __init__(self, keys: Sequence[ApiKey]) -> None:
        self.keys = list(keys)
        if not self.keys:
            log.warning(
                "no API key is configured (TESSERA_SERVE_API_KEY_HASHES): every API call is refused with 401"
            )

    def identify(self, key: bytes | None) -> ApiKey | None:
        """The configured key presented, or None; every entry is hashed and compared (constant time)."""
        if key is None:
            return None
        found = None
        for candidate in self.keys:
            if hmac.compare_digest(_hash(candidate.salt, key), candidate.digest):
                found = candidate
        return found

    def admit(self, scope: Scope) -> tuple[int, bytes, list[tuple[bytes, bytes]]] | None:
        """None when the request may pass (its key id then in `scope[KEY_ID]`), else the refusal to send:
        401 without a valid key, 403 when the key lacks the path's scope."""
        path = scope["path"]
        if is_open(path):
            return None
        key = self.identify(presented_key(scope["headers"]))
        if key is None:
            return 401, UNAUTHORISED, [(b"www-authenticate", b'Bearer realm="tessera"')]
        needed = required_scope(scope["method"], path)
        if needed is not None and needed not in key.scopes:
            return 403, _body(f"this API key lacks the `{needed}` scope {path} needs"), []
        scope[KEY_ID] = key.key_id
        return None


class ApiKeyMiddleware(KeyRing):
    """The key check alone as an ASGI middleware (the bare-Starlette yardstick of `benchmarks/serving.py`; the
    service checks keys in `serving.gateway.Gateway`, with everything else it does per request)."""

    def __init__(self, app: ASGIApp, keys: Sequence[ApiKey]) -> None:
        super().__init__(keys)
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refused = self.admit(scope) if scope["type"] == "http" else None
        if refused is not None:
            await refuse(send, *refused)
            return
        await self.app(scope, receive, send)


async def refuse(send: Send, status: int, body: bytes, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    """Answer a request with a JSON body without passing it on."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def main(argv: Sequence[str] | None = None, out: Callable[[str], None] = print) -> None:
    """Make a key (or hash one read from stdin) and print it with its `TESSERA_SERVE_API_KEY_HASHES` entry."""
    parser = argparse.ArgumentParser(prog="python -m serving.auth", description=main.__doc__)
    parser.add_argument("--id", required=True, help="the key's id (what the access log records)")
    parser.add_argument("--scopes", required=True, help=f"comma-separated, some of {', '.join(SCOPES)}")
    parser.add_argument(
        "--stdin", action="store_true", help="hash the key read from stdin instead of making one"
    )
    args = parser.parse_args(argv)
    key = input().strip() if args.stdin else secrets.token_urlsafe(32)
    entry = hashed_key(args.id, [s.strip() for s in args.scopes.split(",") if s.strip()], key).entry()
    if not args.stdin:
        out(f"key (give it to the client, it is not stored): {key}")
    out(f"entry (add it to TESSERA_SERVE_API_KEY_HASHES): {entry}")


if __name__ == "__main__":
    main()
