"""API keys: which header carries one, which scope each path needs, the hashed entries and the comparison."""

from __future__ import annotations

import pytest

from serving.auth import (
    SCOPES,
    KeyRing,
    hashed_key,
    is_open,
    main,
    parse_key_hashes,
    presented_key,
    required_scope,
)
from serving.settings import ServeSettings


def test_the_key_comes_from_bearer_or_x_api_key() -> None:
    assert presented_key([(b"authorization", b"Bearer abc ")]) == b"abc"
    assert presented_key([(b"authorization", b"bearer abc")]) == b"abc"
    assert presented_key([(b"x-api-key", b"abc")]) == b"abc"
    assert presented_key([(b"authorization", b"Basic abc")]) is None
    assert presented_key([]) is None


def test_only_probes_metrics_and_docs_are_open() -> None:
    assert all(
        is_open(p)
        for p in ("/livez", "/healthz", "/readyz", "/metrics", "/docs.json", "/", "/static_content/x.js")
    )
    assert not any(
        is_open(p) for p in ("/recommend", "/customers/C1", "/events", "/metrics/../recommend", "/livez/x")
    )


def test_each_path_needs_its_scope() -> None:
    assert {
        p: required_scope("POST", p) for p in ("/recommend", "/similar-items", "/churn", "/cltv", "/events")
    } == {
        "/recommend": "read",
        "/similar-items": "read",
        "/churn": "read",
        "/cltv": "read",
        "/events": "events",
    }
    assert required_scope("GET", "/customers/C1") == "read"
    assert required_scope("DELETE", "/customers/C1") == "admin"
    assert required_scope("POST", "/segments") == "admin"
    assert required_scope("GET", "/nowhere") is None


def test_a_key_is_known_by_its_salted_hash_only() -> None:
    keys = [hashed_key("a", ["read"], "first"), hashed_key("b", ["read", "events"], "second")]
    entries = ",".join(k.entry() for k in keys)
    assert "first" not in entries and "second" not in entries
    # The same key under two salts gives two digests: a leaked list does not show which keys are equal.
    assert hashed_key("c", ["read"], "first").digest != keys[0].digest
    middleware = KeyRing(parse_key_hashes(entries))
    assert middleware.identify(b"first").key_id == "a"
    assert middleware.identify(b"second").scopes == {"read", "events"}
    assert not any(middleware.identify(k) for k in (b"firs", b"first ", b"", None, b"FIRST"))


def test_no_configured_key_refuses_everyone() -> None:
    middleware = KeyRing([])
    assert middleware.identify(b"") is None and middleware.identify(b"anything") is None


@pytest.mark.parametrize(
    "entry, message",
    [("nonsense", "entry 1: expected"), ("k:read+write:" + "ab" * 8 + ":" + "0" * 64, "unknown scope")],
)
def test_a_bad_entry_is_named_not_shown(entry: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        parse_key_hashes(entry)
    assert "nonsense" not in str(raised.value)


def test_keys_and_legacy_keys_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    scoped = hashed_key("ops", ["admin"], "admin-key")
    monkeypatch.setenv("TESSERA_SERVE_API_KEY_HASHES", f" {scoped.entry()} ,")
    monkeypatch.setenv("TESSERA_SERVE_API_KEYS", " one, two ,,")
    keys = ServeSettings().api_keys_hashed()
    assert [(k.key_id, sorted(k.scopes)) for k in keys] == [
        ("ops", ["admin"]),
        ("legacy-1", ["events", "read"]),
        ("legacy-2", ["events", "read"]),
    ]
    middleware = KeyRing(keys)
    assert (
        middleware.identify(b"two").key_id == "legacy-2" and middleware.identify(b"admin-key").key_id == "ops"
    )


def test_the_helper_makes_a_key_and_its_entry() -> None:
    printed: list[str] = []
    main(["--id", "shop", "--scopes", "read,events"], out=printed.append)
    key = printed[0].rsplit(" ", 1)[1]
    (parsed,) = parse_key_hashes(printed[1].rsplit(" ", 1)[1])
    assert parsed.key_id == "shop" and parsed.scopes == {"read", "events"}
    assert KeyRing([parsed]).identify(key.encode()) == parsed
    with pytest.raises(ValueError, match="scopes must be some of"):
        main(["--id", "x", "--scopes", "root"], out=printed.append)
    assert set(SCOPES) == {"read", "events", "admin"}
