"""Tessera's BentoML service: recommendations, similar items, churn and CLTV scores, live events, the 360 view.

    bentoml serve serving.service:Tessera          # or: tessera serve --workspace DIR --port 3000

Every endpoint is a typed method over `serving.engine.Engine`, which loads the champions and opens the
online store once per worker in `__init__`, and whose errors BentoML answers itself (404) or the endpoint does
(503 for a missing champion, with its message: BentoML hides a 5xx's). Health (/livez, /healthz), readiness (/readyz), Prometheus
(/metrics) and the OpenAPI document (/docs.json, viewer at /) are BentoML's own; every other path needs an
API key (`serving.auth`). Nothing reads a setting at import: each worker reads `TESSERA_SERVE_*` when BentoML
constructs the service in it, and `tessera serve` passes the settings BentoML needs through BentoML's own
`BENTOML_CONFIG_OVERRIDES` (`serving.run`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio.to_thread
import bentoml
import pandas as pd
from fastapi import FastAPI
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.requests import Request

from activation.settings import ActivationSettings
from features.store.settings import FeatureStoreSettings
from serving.audit import AccessLog
from serving.auth import KEY_ID, KeyRing
from serving.contract import quiet_client_errors
from serving.desk.app import Desk, desk_app
from serving.engine import Engine, NotReady, UnknownCustomer, UnknownProduct
from serving.erasure import erase_person, find_person
from serving.events import EventRefused, check_event, first_record_at
from serving.gateway import Gateway
from serving.recommender import load_products
from serving.schemas import (
    ChurnResponse,
    CltvResponse,
    CustomerView,
    DecisionResponse,
    ErrorBody,
    EventRequest,
    EventResponse,
    MergeRequest,
    RecommendRequest,
    RecommendResponse,
    ScoreRequest,
    SimilarItemsRequest,
    SimilarItemsResponse,
    SplitRequest,
)
from serving.segments import BadPage, SegmentList, SegmentMembers, Segments, UnknownSegment
from serving.settings import ServeSettings
from serving.steward import Applied, apply_decision, merge, refusal_status, split
from tessera.core.errors import InputError
from tessera.core.known_warnings import ignore_known_warnings
from tessera.core.lock import WorkspaceBusy, workspace_lock
from tessera.core.settings import Settings

# BentoML's configuration of the service before any setting. Stock BentoML spends more per request than a
# recommendation costs: an OpenTelemetry span around every request and its body reads, an access-log line, and
# a thread hop for synchronous APIs. Tracing and access logs are off here (TESSERA_SERVE_TRACING and
# _ACCESS_LOG turn them on, through `serving.run.bentoml_overrides`); the hot APIs are `async` so they run on
# the event loop (/churn and /cltv too: they hand scoring to a thread themselves). The threads serve the
# blocking endpoints (/events, /customers/{id}): BentoML reads them from this declaration only, never from its
# configuration overrides, so they are fixed here.
SERVICE_CONFIG: dict[str, Any] = {
    "threads": 4,
    "logging": {"access": {"enabled": False}},
    "tracing": {"excluded_urls": [".*"]},
    # BentoML's request metrics label series by the raw path (one series per customer id looked up, also for
    # refused calls): `serving.metrics` records by route template instead and answers /metrics itself.
    "metrics": {"enabled": False, "namespace": "tessera"},
}


# BentoML's worker processes import this module first: the known third-party warnings stay out of their logs.
ignore_known_warnings()

# The 360 view is a GET with the id in the path, which BentoML's APIs (POST, JSON body) do not do; a FastAPI
# app mounted on the service does, and BentoML merges its routes into the service's OpenAPI document (so the
# sub-app's own documentation pages are switched off).
customers = FastAPI(
    title="Tessera customers",
    description="The customer 360 view.",
    docs_url=None,
    redoc_url=None,
    openapi_url=None,
)


# Segments (activation): the list, and a segment's members paged; `serving.segments` does the work.
segments = FastAPI(
    title="Tessera segments",
    description="Segments and their members.",
    docs_url=None,
    redoc_url=None,
    openapi_url=None,
)


@bentoml.asgi_app(segments, path="/segments")
@bentoml.asgi_app(desk_app(), path="/desk")
@bentoml.asgi_app(customers, path="/customers")
@bentoml.service(name="tessera", **SERVICE_CONFIG)
class Tessera:
    """Recommendations, scores, live events and the customer 360 view of one Tessera workspace."""

    def __init__(self) -> None:
        quiet_client_errors()
        settings, self.store_settings = ServeSettings(), FeatureStoreSettings()
        self.engine = Engine(settings, self.store_settings)
        self.settings = Settings(workspace=settings.workspace)  # the erasure salt (TESSERA_ERASURE_SALT)
        self.access_log = AccessLog(settings.access_log_file())
        self.event_future = timedelta(seconds=settings.event_future_seconds)
        self._catalogue: tuple[object, frozenset[str]] | None = None
        self.segments = Segments(self.engine.workspace, ActivationSettings())
        # The service desk's pages (serving/desk, mounted at /desk) over the same engine.
        self.desk = Desk(
            self.engine,
            KeyRing(settings.api_keys_hashed()),
            settings.desk_session_secret(),
            settings.desk_secure_cookie,
        )

    def known_skus(self) -> frozenset[str]:
        """Every SKU a product or an order line names (the recommender's catalogue when one is loaded)."""
        snapshot = self.engine.snapshot
        source = snapshot.recommender if snapshot.recommender is not None else snapshot.history
        if self._catalogue is None or self._catalogue[0] is not source:
            products = (
                snapshot.recommender.products
                if snapshot.recommender is not None
                else load_products(self.engine.workspace)
            )
            extra = snapshot.recommender.skus if snapshot.recommender is not None else ()
            self._catalogue = (source, frozenset(map(str, products.index)) | frozenset(map(str, extra)))
        return self._catalogue[1]

    @bentoml.on_shutdown
    def close(self) -> None:
        self.engine.close()

    def __is_ready__(self) -> bool:
        return self.engine.ready()

    @bentoml.api(route="/recommend", input_spec=RecommendRequest)
    async def recommend(self, **request: Any) -> RecommendResponse:
        """Top-k products for a customer, each with its reason; a flagged fallback when history can't be used."""
        try:
            return self.engine.recommend(RecommendRequest(**request))
        except NotReady as exc:
            return _error(503, exc)  # type: ignore[return-value]

    @bentoml.api(route="/similar-items", input_spec=SimilarItemsRequest)
    async def similar_items(self, **request: Any) -> SimilarItemsResponse:
        """Products similar to one (ALS item vectors); best sellers of its category when the model lacks it."""
        try:
            return self.engine.similar_items(SimilarItemsRequest(**request))
        except UnknownProduct as exc:
            return _error(404, exc)  # type: ignore[return-value]
        except NotReady as exc:
            return _error(503, exc)  # type: ignore[return-value]

    @bentoml.api(route="/churn", input_spec=ScoreRequest)
    async def churn(self, **request: Any) -> ChurnResponse:
        """Churn probability within the horizon, risk band and top reasons; none without profiling consent."""
        return await _scores_answer(self.engine.churn_json, ScoreRequest(**request).customer_ids)

    @bentoml.api(route="/cltv", input_spec=ScoreRequest)
    async def cltv(self, **request: Any) -> CltvResponse:
        """Value over the horizon with its interval, value band and top reasons; none without profiling consent."""
        return await _scores_answer(self.engine.cltv_json, ScoreRequest(**request).customer_ids)

    @bentoml.api(route="/events", input_spec=EventRequest)
    def events(self, **request: Any) -> EventResponse:
        """A live event (purchase, cart, product view) into the online store: the next recommendation sees it.

        Refused with 422 (the state left as it was): dated in the future or before the customer's first record,
        naming unknown SKUs (all named), a purchase without SKUs."""
        event = EventRequest(**request)
        engine = self.engine
        customer_id = engine.resolve(event.customer_id)
        try:
            if customer_id is None:
                raise UnknownCustomer(
                    f"unknown customer {event.customer_id!r}: events need a Tessera customer id"
                )
            history = engine.snapshot.history
            first = first_record_at(history, history.golden_record(customer_id), customer_id)
            check_event(event, engine.now(), first, self.known_skus(), self.event_future)
            answer = engine.event(event)
            now = engine.now()
            self.segments.on_event(
                answer.customer_id, event.event_type, event.skus, event.occurred_at or now, now
            )
            return answer
        except UnknownCustomer as exc:
            return _error(404, exc)  # type: ignore[return-value]
        except EventRefused as exc:
            return _error(422, exc)  # type: ignore[return-value]

    @bentoml.api(route="/identity/split", input_spec=SplitRequest)
    def identity_split(self, ctx: bentoml.Context, **request: Any) -> DecisionResponse:
        """Split a record off a customer (a wrong merge), with a reason: it gets a new customer id, the old id stays
        with the rest. Recorded with the key's id and honoured by every later resolution; applied at once through
        identity, profile and feature store (404: unknown customer; 422: a record not on that customer, its only
        record; 409: another writer holds the workspace)."""
        body = SplitRequest(**request)
        return self._decide(
            "split",
            ctx,
            lambda by, now: split(
                self.engine.workspace, body.customer_id, body.identity_key, body.reason, by, now
            ),
        )

    @bentoml.api(route="/identity/merge", input_spec=MergeRequest)
    def identity_merge(self, ctx: bentoml.Context, **request: Any) -> DecisionResponse:
        """Merge two customers, with a reason: the older id survives and the other becomes its alias. Recorded and
        applied like a split (404: unknown customer; 422: a customer with itself; 409: the workspace is busy)."""
        body = MergeRequest(**request)
        pair = (body.customer_ids[0], body.customer_ids[1])
        return self._decide(
            "merge", ctx, lambda by, now: merge(self.engine.workspace, pair, body.reason, by, now)
        )

    def decide(self, kind: str, key_id: str, rows: Callable[[str, datetime], pd.DataFrame]) -> Applied:
        """Make a steward decision as `key_id` and apply it under the workspace's write lock, then reload at once.

        Raises `InputError` (an unknown id: `UnknownCustomer`) or `WorkspaceBusy`; the desk calls it too."""
        workspace, now = self.engine.workspace, self.engine.now()
        with workspace_lock(workspace, f"POST /identity/{kind}"):
            # When it was decided is the clock's time, whatever `now` the service serves.
            decided = rows(key_id, datetime.now(UTC))
            applied = apply_decision(workspace, decided, now, self.settings, self.store_settings)
        self.engine.watcher.check()
        return applied

    def _decide(self, kind: str, ctx: bentoml.Context, rows: Callable[[str, datetime], pd.DataFrame]) -> Any:
        try:
            applied = self.decide(kind, str(ctx.request.scope.get(KEY_ID)), rows)
        except (InputError, WorkspaceBusy) as exc:
            # With a `ctx` parameter BentoML sends a returned response's body under `ctx.response`'s status.
            status = ctx.response.status_code = refusal_status(exc)
            return _error(status, exc)
        return DecisionResponse(
            decision_id=applied.decision_id, kind=kind, customers=applied.customers, seconds=applied.seconds
        )

    @customers.get(
        "/{customer_id}",
        response_model=CustomerView,
        responses={
            404: {"model": ErrorBody},
            307: {"description": "A merged id: the surviving customer's view."},
        },
    )
    def customer(self, customer_id: str, request: Request) -> Any:
        """The 360 view: golden record, identities, consent, recent orders and interactions, labels, scores.

        Every view served is recorded in the access log (key id, customer id, time)."""
        surviving = self.engine.resolve(customer_id)
        if surviving is None:
            return JSONResponse({"error": f"unknown customer {customer_id!r}"}, status_code=404)
        if surviving != customer_id:
            return RedirectResponse(f"{request.scope.get('root_path', '')}/{surviving}", status_code=307)
        try:
            view = self.engine.customer(surviving)
        except UnknownCustomer as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)
        self.access_log.record(request.scope.get(KEY_ID), surviving, "GET /customers/{customer_id}")
        return view.model_copy(update={"segments": self.segments.of_customer(surviving)})

    @segments.get("/", response_model=SegmentList)
    def list_segments(self) -> Any:
        """Every declared segment: its rule, whether live events update it, its member count."""
        return self.segments.listing()

    @segments.get(
        "/{name}/members",
        response_model=SegmentMembers,
        responses={400: {"model": ErrorBody}, 404: {"model": ErrorBody}},
    )
    def segment_members(self, name: str, offset: str | None = None, limit: str | None = None) -> Any:
        """A segment's members by customer id, `limit` (1-1000, default 100) from `offset` (default 0)."""
        try:
            return self.segments.members(name, offset, limit)
        except BadPage as exc:
            return _error(400, exc)
        except UnknownSegment as exc:
            return _error(404, exc)

    @customers.delete("/{customer_id}", responses={404: {"model": ErrorBody}, 409: {"model": ErrorBody}})
    def erase_customer(self, customer_id: str, request: Request) -> Any:
        """Erase the customer from every store and suppress them, as `tessera erase --customer`; the receipt.

        It holds the workspace's write lock, as `tessera erase` does: while another writer (a command, another
        erasure) holds it, the answer is 409 naming the holder, and nothing is erased. The loaded state drops the
        customer at once (the recommender's per-customer rows too), then is reloaded (the poll would within its
        period): the customer is unknown to every endpoint before the answer leaves.
        """
        workspace = self.engine.workspace
        try:
            with workspace_lock(workspace, "DELETE /customers/{customer_id}"):
                person = find_person(workspace, customer=customer_id)
                self.engine.forget(person.customer_ids)
                receipt = erase_person(workspace, self.settings, self.store_settings, person)
        except InputError as exc:
            return _error(404, exc)
        except WorkspaceBusy as exc:
            return _error(409, exc)
        self.engine.watcher.check()
        erased = f"erased:{receipt['erasure_id']}"  # the receipt's id, never the erased person's own
        self.access_log.record(request.scope.get(KEY_ID), erased, "DELETE /customers/{customer_id}")
        return receipt


async def _scores_answer(answer: Callable[[list[str], bool], bytes | None], ids: list[str]) -> Any:
    """/churn's or /cltv's JSON (`Engine.scores_json`): on the event loop when every answer is kept (one read of
    the online store), else computed in a thread (scoring blocks for milliseconds); 503 saying so without a
    champion."""
    try:
        body = answer(ids, False)
        if body is None:
            body = await anyio.to_thread.run_sync(answer, ids, True)
    except NotReady as exc:
        return _error(503, exc)
    return Response(body, media_type="application/json")


def _error(status: int, exc: Exception) -> JSONResponse:
    """An error answer as the OpenAPI document declares it: `{"error": ...}` (BentoML's own wraps it in a list)."""
    message = exc.args[0] if exc.args else str(exc)
    return JSONResponse({"error": str(message)}, status_code=status)


# One middleware, one pass per request: metrics see every answer (401s as a counter), the document needs no key,
# a refused key reads no body, an oversized or non-JSON body is refused before BentoML parses it, and every error
# leaves as JSON (serving.gateway).
Tessera.add_asgi_middleware(Gateway.from_environment, spec=lambda: Tessera.openapi_spec.asdict())  # type: ignore[arg-type]
