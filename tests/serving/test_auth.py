"""API keys: which header carries one, which paths need one, and the comparison itself."""

from __future__ import annotations

from serving.auth import ApiKeyMiddleware, is_open, presented_key
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


def test_any_configured_key_is_valid_and_nothing_else() -> None:
    middleware = ApiKeyMiddleware(app=None, keys=[b"first", b"second"])  # type: ignore[arg-type]
    assert middleware.valid(b"first") and middleware.valid(b"second")
    assert not any(middleware.valid(k) for k in (b"firs", b"first ", b"", None, b"FIRST"))


def test_no_configured_key_refuses_everyone() -> None:
    middleware = ApiKeyMiddleware(app=None, keys=[])  # type: ignore[arg-type]
    assert not middleware.valid(b"") and not middleware.valid(b"anything")


def test_keys_are_read_comma_separated_from_the_environment(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("TESSERA_SERVE_API_KEYS", " one, two ,,")
    assert ServeSettings().keys() == (b"one", b"two")
