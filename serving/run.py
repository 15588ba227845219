"""Start the service and say how to use it: `serve_forever` (what `tessera serve` and the demo call).

BentoML runs the service in worker processes that read their settings from `TESSERA_SERVE_*` variables when
they construct the service, so the arguments here are passed on through the environment; the settings BentoML
itself needs (workers, timeout, access log, tracing) go through BentoML's `BENTOML_CONFIG_OVERRIDES`, which
the serving process and every worker lay over the service's declared configuration.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from serving.auth import SCOPES, hashed_key
from serving.settings import ServeSettings
from tessera.core.errors import InputError
from tessera.core.settings import Workspace
from training.tracking import shown_uri, tracking_uri

log = logging.getLogger(__name__)
# BentoML's own variable: JSON configuration it merges over the service's in every process it starts.
OVERRIDES = "BENTOML_CONFIG_OVERRIDES"


def serve_environment(
    workspace: Path,
    port: int,
    host: str = "127.0.0.1",
    now: datetime | None = None,
    api_keys: list[str] | None = None,
    workers: int | None = None,
    poll_seconds: float | None = None,
) -> dict[str, str]:
    """The `TESSERA_SERVE_*` variables for these arguments (unset arguments are left to the environment).

    Keys given here reach the workers only as salted hashes (`api-1`, `api-2`, ... with every scope)."""
    env = {
        "TESSERA_SERVE_WORKSPACE": str(Path(workspace).resolve()),
        "TESSERA_SERVE_PORT": str(port),
        "TESSERA_SERVE_HOST": host,
    }
    if now is not None:
        env["TESSERA_SERVE_NOW"] = now.isoformat()
    if api_keys:
        entries = [hashed_key(f"api-{i}", SCOPES, key).entry() for i, key in enumerate(api_keys, start=1)]
        env["TESSERA_SERVE_API_KEY_HASHES"] = ",".join(entries)
    if workers is not None:
        env["TESSERA_SERVE_WORKERS"] = str(workers)
    if poll_seconds is not None:
        env["TESSERA_SERVE_POLL_SECONDS"] = str(poll_seconds)
    return env


def bentoml_overrides(settings: ServeSettings, existing: str | None = None) -> str:
    """BENTOML_CONFIG_OVERRIDES for these settings, laid over any overrides already in the environment."""
    ours = {
        "workers": settings.workers,
        "traffic": {"timeout": settings.timeout_seconds},
        "logging": {"access": {"enabled": settings.access_log}},
        "tracing": {"excluded_urls": [] if settings.tracing else [".*"]},
        "http": {"host": settings.host, "port": settings.port},
    }
    return json.dumps(_merged(json.loads(existing) if existing else {}, {"services": {"tessera": ours}}))


def _merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        both_dicts = isinstance(value, dict) and isinstance(merged.get(key), dict)
        merged[key] = _merged(merged[key], value) if both_dicts else value
    return merged


def example_ids(workspace: Workspace) -> tuple[str, str]:
    """A customer with orders who consented to personalisation, and a best-selling sku, to show requests on."""
    customers, orders = workspace.profile / "customers.parquet", workspace.profile / "orders.parquet"
    with duckdb.connect() as con:
        present = {
            r[0] for r in con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(customers)]).fetchall()
        }
        consent = (
            "coalesce(consent_personalisation, true)" if "consent_personalisation" in present else "true"
        )
        customer = con.execute(
            f"SELECT c.customer_id FROM read_parquet(?) c JOIN (SELECT customer_id, count(*) AS n FROM read_parquet(?) "
            f"GROUP BY 1) o USING (customer_id) WHERE {consent} ORDER BY o.n DESC, 1 LIMIT 1",
            [str(customers), str(orders)],
        ).fetchone()
        sku = con.execute(
            "SELECT CAST(sku AS VARCHAR) FROM read_parquet(?) WHERE sku IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1",
            [str(orders)],
        ).fetchone()
    return (customer[0] if customer else "C000000001"), (sku[0] if sku else "SKU")


def example_requests(base_url: str, api_key: str, customer_id: str, sku: str, workspace: Workspace) -> str:
    """Ready-to-paste requests for every endpoint, and how to open the MLflow UI on the workspace's runs."""
    auth = f"-H 'Authorization: Bearer {api_key}'"
    post = f"curl -s {auth} -H 'Content-Type: application/json'"
    return "\n".join(
        [
            f"Tessera is serving at {base_url} (OpenAPI viewer: {base_url}/, document: {base_url}/docs.json)",
            f"API key: {api_key}",
            "",
            "# recommendations, a purchase, recommendations again (what was just bought is not offered)",
            f"""{post} {base_url}/recommend -d '{{"customer_id": "{customer_id}", "k": 5}}'""",
            f"""{post} {base_url}/events -d '{{"customer_id": "{customer_id}", "event_type": "purchase", "skus": ["{sku}"]}}'""",
            f"""{post} {base_url}/recommend -d '{{"customer_id": "{customer_id}", "k": 5}}'""",
            "# an anonymous visitor with something in the cart: items similar to it, flagged as a fallback",
            f"""{post} {base_url}/recommend -d '{{"customer_id": "guest", "k": 5, "cart": ["{sku}"]}}'""",
            "# similar products; churn and value with reasons; everything about the customer (360 view)",
            f"""{post} {base_url}/similar-items -d '{{"sku": "{sku}", "k": 5}}'""",
            f"""{post} {base_url}/churn -d '{{"customer_ids": ["{customer_id}"]}}'""",
            f"""{post} {base_url}/cltv -d '{{"customer_ids": ["{customer_id}"]}}'""",
            f"curl -s -L {auth} {base_url}/customers/{customer_id}",
            "# probes and Prometheus metrics (no key needed)",
            f"curl -s {base_url}/readyz; curl -s {base_url}/metrics | head",
            "",
            "# the models' runs and registry in the MLflow UI, then open http://127.0.0.1:5000",
            f"uv run mlflow ui --backend-store-uri {shown_uri(tracking_uri(workspace))} --port 5000",
        ]
    )


def _announce_when_ready(base_url: str, text: str, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base_url}/readyz", timeout=2) as response:
                if response.status == 200:
                    print(f"\n{text}\n", flush=True)
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1.0)
    log.warning("the service was not ready after %.0f s: see the log above", timeout)


def check_servable(workspace: Workspace) -> None:
    """An InputError, before any worker starts, when the workspace has no profile or no feature store to serve
    (a worker failing on it would be restarted by BentoML for ever)."""
    customers = workspace.profile / "customers.parquet"
    if not customers.exists():
        raise InputError(f"{customers} is missing: run `tessera run` on this workspace before serving it")
    from features.store import FeatureStoreSettings, open_store
    from serving.features import LiveFeatures

    LiveFeatures(open_store(workspace, FeatureStoreSettings()))


def serve_forever(
    workspace: Path,
    port: int = 3000,
    host: str = "127.0.0.1",
    now: datetime | None = None,
    api_keys: list[str] | None = None,
    workers: int | None = None,
    poll_seconds: float | None = None,
) -> None:
    """Serve the workspace until interrupted; once ready, print example requests (a key with every scope is made
    when none is given or configured)."""
    configured = ServeSettings()
    has_hashes = bool(configured.api_key_hashes.get_secret_value().strip())
    keys = api_keys or list(configured.legacy_keys())
    if not keys and not has_hashes:
        keys = [secrets.token_urlsafe(24)]
    new = api_keys or ([] if has_hashes or configured.legacy_keys() else keys)
    env = serve_environment(workspace, port, host, now, new, workers, poll_seconds)
    if has_hashes and "TESSERA_SERVE_API_KEY_HASHES" in env:  # the configured keys stay valid
        env["TESSERA_SERVE_API_KEY_HASHES"] += "," + configured.api_key_hashes.get_secret_value()
    os.environ.update(env)
    settings = ServeSettings()
    os.environ[OVERRIDES] = bentoml_overrides(settings, os.environ.get(OVERRIDES))

    from serving.service import Tessera

    paths = settings.workspace_paths()
    check_servable(paths)
    base_url = f"http://{host}:{port}"
    text = example_requests(base_url, keys[0] if keys else "<your key>", *example_ids(paths), paths)
    threading.Thread(target=_announce_when_ready, args=(base_url, text), daemon=True).start()
    worker = _delivery_worker(paths.root)
    try:
        Tessera.serve_http(port=port, host=host)
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=30)


def _delivery_worker(workspace: Path) -> subprocess.Popen | None:
    """`tessera triggers run` beside the service when TESSERA_ACTIVATION_WORKER_IN_SERVE is set (docs/activation.md)."""
    from activation.settings import ActivationSettings

    if not ActivationSettings().worker_in_serve:
        return None
    command = [sys.executable, "-m", "tessera.cli", "triggers", "run", "--workspace", str(workspace)]
    return subprocess.Popen(command)
