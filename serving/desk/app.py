"""The service desk: server-rendered pages over the 360 view, mounted on the BentoML service at `/desk`.

    /desk/login            an API key with the `read` scope opens a session (steward actions need `admin`)
    /desk/search?q=        find a customer by name (typos too), email, phone in any format, loyalty card,
                           order number, customer id or any source record id
    /desk/customers/{id}   the 360 page: golden record with each field's rule and sources, linked records
                           with their link evidence and the steward decisions, one timeline, consent with
                           history, scores with reasons, recommendations with reasons
    POST /desk/customers/{id}/split, POST /desk/merge
                           steward actions (a key with `admin` too): split a record off, merge two customers,
                           each with a reason; applied at once (`serving.steward`, through `Tessera.decide`)

The pages reuse the service's `Engine` (the 360 view, scores and recommendations of `GET /customers/{id}`,
`/churn`, `/cltv`, `/recommend`): there is no second scorer. The Gateway lets `/desk` through without an API key
header: the desk checks the key once at login and then holds the session in a signed cookie (`HttpOnly`,
`SameSite=Strict`, `Secure` unless `TESSERA_SERVE_DESK_SECURE_COOKIE=false`, 8 hours). Every form carries the
session's CSRF token; a POST without it, or with another, is a 403.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bentoml
import pandas as pd
from itsdangerous import BadSignature, URLSafeTimedSerializer
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from serving.auth import KeyRing
from serving.desk.evidence import Evidence
from serving.desk.search import SearchIndex, index_version
from serving.engine import Engine, NotReady, UnknownCustomer
from serving.schemas import RecommendRequest
from serving.steward import merge, refusal_status, split
from tessera.core.errors import InputError
from tessera.core.lock import WorkspaceBusy

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
COOKIE = "tessera_desk"
SESSION_SECONDS = 8 * 3600


class Desk:
    """The desk's state in one worker: the engine it shows, the keys it admits, the search index, the evidence."""

    def __init__(self, engine: Engine, keys: KeyRing, secret: bytes, secure_cookie: bool = True) -> None:
        self.engine = engine
        self.keys = keys
        self.signer = URLSafeTimedSerializer(secret, salt="tessera-desk-session")
        self.secure_cookie = secure_cookie
        self.index = SearchIndex(engine.workspace)
        self.templates = Environment(
            loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"])
        )
        self._evidence: tuple[str, Evidence] | None = None
        self.prepare()
        engine.on_install.append(self.prepare)

    def prepare(self) -> None:
        """Build the search index and read the evidence now, off the request path: at start and after each reload
        (a failure is logged; the first request then tries again and answers the error)."""
        try:
            self.index.ensure()
            self.evidence()
        except Exception:
            log.exception("preparing the desk's search index and evidence failed")

    def evidence(self) -> Evidence:
        """The identity evidence, reloaded when the identity or profile files change."""
        version = index_version(self.engine.workspace)
        if self._evidence is None or self._evidence[0] != version:
            self._evidence = (version, Evidence.load(self.engine.workspace))
        return self._evidence[1]

    # --- sessions and CSRF ---------------------------------------------------------------------------------

    def session(self, request: Request) -> dict[str, Any]:
        """The signed session of the request (empty when missing, tampered with or expired)."""
        raw = request.cookies.get(COOKIE)
        if not raw:
            return {}
        try:
            found = self.signer.loads(raw, max_age=SESSION_SECONDS)
        except BadSignature:
            return {}
        return found if isinstance(found, dict) else {}

    def set_session(self, response: Response, session: dict[str, Any]) -> None:
        response.set_cookie(
            COOKIE,
            self.signer.dumps(session),
            max_age=SESSION_SECONDS,
            path="/desk",
            httponly=True,
            samesite="strict",
            secure=self.secure_cookie,
        )

    def render(self, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        return HTMLResponse(self.templates.get_template(name).render(**context), status_code=status)


def _desk() -> Desk:
    return bentoml.get_current_service().desk


def _csrf_ok(session: dict[str, Any], form: Any) -> bool:
    sent, kept = form.get("csrf_token"), session.get("csrf")
    return isinstance(sent, str) and isinstance(kept, str) and hmac.compare_digest(sent, kept)


Handler = Callable[[Request, Desk, dict[str, Any]], Awaitable[Response]]


def logged_in(scope: str) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """A page that needs a session whose key has `scope`; a POST also needs the session's CSRF token."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def page(request: Request) -> Response:
            desk = _desk()
            session = desk.session(request)
            if not session.get("key_id"):
                return RedirectResponse("/desk/login", status_code=303)
            if request.method == "POST" and not _csrf_ok(session, await request.form()):
                return desk.render("error.html", 403, session=session, message="missing or wrong CSRF token")
            if scope not in session.get("scopes", []):
                return desk.render(
                    "error.html", 403, session=session, message=f"your key lacks the `{scope}` scope"
                )
            return await handler(request, desk, session)

        return page

    return wrap


async def home(request: Request) -> Response:
    return RedirectResponse("/desk/search", status_code=303)


async def login(request: Request) -> Response:
    """GET: the form; POST: check the key (once) and open a session holding its id and scopes, never the key."""
    desk = _desk()
    session = desk.session(request)
    if request.method == "GET":
        session = {"csrf": session.get("csrf") or secrets.token_urlsafe(24)}
        response = desk.render("login.html", session=session)
        desk.set_session(response, session)
        return response
    form = await request.form()
    if not _csrf_ok(session, form):
        return desk.render("login.html", 403, session=session, message="missing or wrong CSRF token")
    key = desk.keys.identify(str(form.get("api_key", "")).strip().encode())
    if key is None:
        return desk.render("login.html", 401, session=session, message="unknown API key")
    if "read" not in key.scopes:
        return desk.render(
            "login.html", 403, session=session, message="this API key lacks the `read` scope the desk needs"
        )
    response = RedirectResponse("/desk/search", status_code=303)
    desk.set_session(
        response, {"key_id": key.key_id, "scopes": sorted(key.scopes), "csrf": secrets.token_urlsafe(24)}
    )
    return response


@logged_in("admin")
async def split_record(request: Request, desk: Desk, session: dict[str, Any]) -> Response:
    """A steward splits a record off the customer (form: identity_key, reason); then the remaining customer's page."""
    form = await request.form()
    customer_id, key = request.path_params["customer_id"], str(form.get("identity_key", ""))
    reason = str(form.get("reason", ""))
    return await _decide(
        desk,
        session,
        "split",
        lambda by, now: split(desk.engine.workspace, customer_id, key, reason, by, now),
    )


@logged_in("admin")
async def merge_customers(request: Request, desk: Desk, session: dict[str, Any]) -> Response:
    """A steward merges two customers (form: customer_id, other_customer_id, reason); then the survivor's page."""
    form = await request.form()
    pair = (str(form.get("customer_id", "")).strip(), str(form.get("other_customer_id", "")).strip())
    reason = str(form.get("reason", ""))
    return await _decide(
        desk, session, "merge", lambda by, now: merge(desk.engine.workspace, pair, reason, by, now)
    )


async def _decide(
    desk: Desk, session: dict[str, Any], kind: str, rows: Callable[[str, datetime], pd.DataFrame]
) -> Response:
    """Make and apply the decision as the session's key (`Tessera.decide`), then show the customer it leaves."""
    service = bentoml.get_current_service()
    try:
        applied = await run_in_threadpool(service.decide, kind, session["key_id"], rows)
    except (InputError, WorkspaceBusy) as exc:
        return desk.render("error.html", refusal_status(exc), session=session, message=str(exc))
    return RedirectResponse(f"/desk/customers/{applied.customer_id}", status_code=303)


@logged_in("read")
async def logout(request: Request, desk: Desk, session: dict[str, Any]) -> Response:
    response = RedirectResponse("/desk/login", status_code=303)
    response.delete_cookie(COOKIE, path="/desk")
    return response


@logged_in("read")
async def search(request: Request, desk: Desk, session: dict[str, Any]) -> Response:
    """Search results (the full page, or just the results for the page's script)."""
    query = request.query_params.get("q", "")[:200]
    hits = await run_in_threadpool(desk.index.search, query) if query else []
    template = "results.html" if request.query_params.get("fragment") else "search.html"
    return desk.render(template, session=session, query=query, hits=hits)


@logged_in("read")
async def customer(request: Request, desk: Desk, session: dict[str, Any]) -> Response:
    """The 360 page of a customer; a merged id redirects to the surviving customer's page."""
    asked = request.path_params["customer_id"]
    engine = desk.engine
    surviving = engine.resolve(asked)
    if surviving is None:
        return desk.render("error.html", 404, session=session, message=f"unknown customer {asked!r}")
    if surviving != asked:
        return RedirectResponse(f"/desk/customers/{surviving}", status_code=307)
    try:
        context = await run_in_threadpool(customer_context, desk, surviving)
    except UnknownCustomer as exc:
        return desk.render("error.html", 404, session=session, message=str(exc))
    service = bentoml.get_current_service()
    service.access_log.record(session["key_id"], surviving, "GET /desk/customers/{customer_id}")
    steward = "admin" in session.get("scopes", [])
    return desk.render("customer.html", session=session, steward=steward, **context)


def customer_context(desk: Desk, customer_id: str) -> dict[str, Any]:
    """Everything the 360 page shows, from the engine's 360 view and the identity evidence."""
    engine = desk.engine
    view = engine.customer(customer_id)
    golden = engine.snapshot.history.golden_record(customer_id) or {}
    evidence = desk.evidence()
    records = evidence.customer_records(customer_id)
    try:
        recommended = engine.recommend(RecommendRequest(customer_id=customer_id, k=5))
    except NotReady:
        recommended = None  # no recommender registered yet: the page says so
    timeline: list[dict[str, Any]] = []
    for order in view.recent_orders:
        returned = any(line.line_type == "return" for line in order.lines)
        timeline.append(
            {
                "at": order.ordered_at,
                "channel": order.channel or order.source or "",
                "what": ("return " if returned else "order ") + order.order_id,
                "detail": ", ".join(
                    f"{line.quantity:g} × {line.product_name or line.sku}"
                    for line in order.lines
                    if line.quantity is not None
                ),
                "amount": order.total,
            }
        )
    for event in view.recent_interactions:
        timeline.append(
            {
                "at": event.occurred_at,
                "channel": event.channel or event.source or "",
                "what": (event.event_type or "").replace("_", " "),
                "detail": " ".join(
                    str(p) for p in (event.sku, event.campaign_id, event.detail, event.status) if p
                ),
                "amount": None,
            }
        )
    timeline.sort(key=lambda e: e["at"] or datetime.min.replace(tzinfo=UTC), reverse=True)
    return {
        "customer_id": customer_id,
        "view": view,
        "fields": evidence.field_sources(golden, records),
        "records": records,
        "links": evidence.customer_links(customer_id),
        "decisions": evidence.customer_decisions(customer_id),
        "timeline": timeline,
        "consent_history": evidence.consent_history(customer_id),
        "churn_reasons": [
            plain_reason(r.feature, r.value, r.impact, "risk")
            for r in (view.churn.reasons if view.churn else [])
        ],
        "value_reasons": [
            plain_reason(r.feature, r.value, r.impact, "value")
            for r in (view.cltv.reasons if view.cltv else [])
        ],
        "recommended": recommended,
    }


def plain_reason(feature: str, value: Any, impact: float, what: str) -> str:
    """A model's reason in words: "days since last order is 120, which raises the risk"."""
    name = feature.replace("customer_", "").replace("__", " ").replace("_", " ")
    direction = "raises" if impact > 0 else "lowers"
    if value is None:
        return f"{name} {direction} the {what}"
    shown = f"{value:,.2f}".rstrip("0").rstrip(".") if isinstance(value, float) else value
    return f"{name} is {shown}, which {direction} the {what}"


def desk_app() -> Starlette:
    """The desk's routes (mounted by the service at /desk)."""
    return Starlette(
        routes=[
            Route("/", home),
            Route("/login", login, methods=["GET", "POST"]),
            Route("/logout", logout, methods=["POST"]),
            Route("/search", search),
            Route("/customers/{customer_id}", customer),
            Route("/customers/{customer_id}/split", split_record, methods=["POST"]),
            Route("/merge", merge_customers, methods=["POST"]),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ]
    )
