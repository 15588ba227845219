"""The yardstick of benchmarks/serving.py: the same /recommend with no BentoML, on bare Starlette and uvicorn.

It runs the very same `serving.engine.Engine` (same online reads, same scoring, same response model) behind
the same API-key check (alone: the service's gateway also does metrics, size limits and JSON errors), so the difference in throughput is what BentoML itself costs per request.

    TESSERA_SERVE_WORKSPACE=DIR uv run uvicorn benchmarks.serving_bare:app --workers 2 --port 3001   # from the repository root
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from features.store.settings import FeatureStoreSettings
from serving.auth import ApiKeyMiddleware
from serving.engine import Engine
from serving.schemas import RecommendRequest
from serving.settings import ServeSettings

ENGINE: dict[str, Engine] = {}


@asynccontextmanager
async def lifespan(_: Starlette) -> AsyncIterator[None]:
    ENGINE["engine"] = Engine(ServeSettings(), FeatureStoreSettings())
    yield
    ENGINE.pop("engine").close()


async def recommend(request: Request) -> Response:
    try:
        body = RecommendRequest.model_validate_json(await request.body())
    except ValidationError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    return Response(ENGINE["engine"].recommend(body).model_dump_json(), media_type="application/json")


def key_check(app: ASGIApp) -> ApiKeyMiddleware:
    """The service's API-key check alone (the keys read when uvicorn builds the app in each worker)."""
    return ApiKeyMiddleware(app, ServeSettings().api_keys_hashed())


async def readyz(_: Request) -> Response:
    ready = "engine" in ENGINE and ENGINE["engine"].ready()
    return PlainTextResponse("\n", status_code=200 if ready else 503)


app = Starlette(
    routes=[Route("/recommend", recommend, methods=["POST"]), Route("/readyz", readyz)],
    middleware=[Middleware(key_check)],
    lifespan=lifespan,
)
