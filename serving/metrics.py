"""Prometheus metrics with a bounded set of series: route templates as labels, one counter for refused calls.

BentoML's own request metrics label each series by the raw request path, also for requests refused with 401:
every distinct path (`/customers/C000000002`, a scanner's guesses) added series for good, grew `/metrics` and
its scrape time without bound, and showed which customer ids were looked up. So BentoML's are switched off
(`metrics.enabled: false` in `serving.service.SERVICE_CONFIG`) and the service's one middleware
(`serving.gateway.Gateway`) records instead:

- `tessera_request_total` and `tessera_request_duration_seconds` by `endpoint` (the route template, e.g.
  `/customers/{customer_id}`; every page of the service desk is `/desk`; any path the service does not serve is
  `other`), `method` and
  `http_response_code`, for requests that got past the key check;
- `tessera_unauthenticated_requests_total`, no labels, for every 401.

The gateway also answers `/metrics` (`exposition`). Under `bentoml serve` every worker writes to the multiprocess directory
BentoML sets up (`PROMETHEUS_MULTIPROC_DIR`), and a scrape of any worker sums them all.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ROUTES = (
    "/recommend",
    "/similar-items",
    "/churn",
    "/cltv",
    "/events",
    "/livez",
    "/healthz",
    "/readyz",
    "/docs.json",
    "/",
    "/segments",
)
TEMPLATES = (("/customers/", "/customers/{customer_id}"),)
METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"})
OTHER = "other"


def route_label(path: str) -> str:
    """The label a path is counted under: its route template, or `other`."""
    if path in ROUTES:
        return path
    if path == "/segments/" or (
        path.startswith("/segments/") and path.endswith("/members") and path.count("/") == 3
    ):
        return "/segments" if path == "/segments/" else "/segments/{name}/members"
    if path == "/desk" or path.startswith("/desk/"):
        return "/desk"  # the desk's pages, forms and static files: one series
    for prefix, template in TEMPLATES:
        rest = path[len(prefix) :]
        if path.startswith(prefix) and rest and "/" not in rest:
            return template
    return OTHER


@dataclass(frozen=True)
class _Series:
    requests: Any
    duration: Any
    unauthenticated: Any


_series: _Series | None = None
# Text appended to every scrape by other parts of the service (activation's counters, kept in its database so
# the delivery worker, batch refreshes and every worker count into the same totals); filled at service start.
extra_text: list[Callable[[], bytes]] = []


def metrics() -> _Series:
    """The process's metric objects, made on first use (prometheus_client must be imported after BentoML has
    set PROMETHEUS_MULTIPROC_DIR in the worker, and a registry refuses a second metric of the same name)."""
    global _series
    if _series is None:
        import prometheus_client

        _series = _Series(
            prometheus_client.Counter(
                "tessera_request",
                "Requests answered, by route template",
                ["endpoint", "method", "http_response_code"],
            ),
            prometheus_client.Histogram(
                "tessera_request_duration_seconds",
                "Time to answer a request, by route template",
                ["endpoint", "method", "http_response_code"],
                buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            ),
            prometheus_client.Counter("tessera_unauthenticated_requests", "Requests refused with 401"),
        )
    return _series


def exposition() -> tuple[bytes, str]:
    """The metrics of every worker (one process outside `bentoml serve`), and their content type."""
    import prometheus_client
    from prometheus_client import multiprocess

    metrics()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = prometheus_client.CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        text = prometheus_client.generate_latest(registry)
    else:
        text = prometheus_client.generate_latest()
    return text + b"".join(part() for part in extra_text), prometheus_client.CONTENT_TYPE_LATEST
