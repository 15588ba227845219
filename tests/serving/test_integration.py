"""The real server: `python -m tessera.serving_cli` in a subprocess on a free loopback port, called over HTTP,
on each online store (the embedded SQLite file, then Redis)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from serving_fixtures import AUTH, NOW, Served, serve_env

from serving.process import running_service
from training import tracking

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", params=["sqlite", "redis"])
def on_store(request: pytest.FixtureRequest, served: Served) -> tuple[Served, dict[str, str]]:
    """The served workspace on each online store: the embedded SQLite file, then Redis (production)."""
    return (served, {}) if request.param == "sqlite" else request.getfixturevalue("served_on_redis")


@pytest.fixture(scope="module")
def served_here(on_store: tuple[Served, dict[str, str]]) -> Served:
    """The workspace the running server serves (a copy on Redis has the customers and products of `served`)."""
    return on_store[0]


@pytest.fixture(scope="module")
def server(
    on_store: tuple[Served, dict[str, str]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    served, store_env = on_store
    log = tmp_path_factory.mktemp("server") / "server.log"
    env = {**serve_env(served, poll_seconds=1), **store_env}
    extra = ("--now", NOW.isoformat(), "--workers", "1", "--poll-seconds", "1")
    with running_service(served.workspace.root, env, log, *extra) as url:
        yield url


def test_every_endpoint(server: str, served: Served) -> None:
    with httpx.Client(base_url=server, headers=AUTH, timeout=30) as client:
        assert client.post("/recommend", json={"customer_id": served.regular, "k": 5}).json()["personalised"]
        assert len(client.post("/similar-items", json={"sku": served.skus[0], "k": 3}).json()["items"]) == 3
        assert client.post("/churn", json={"customer_ids": [served.regular]}).json()["scores"][0]["scored"]
        assert client.post("/cltv", json={"customer_ids": [served.regular]}).json()["scores"][0]["scored"]
        assert client.get(f"/customers/{served.regular}").json()["customer_id"] == served.regular
        moved = client.get(f"/customers/{served.merged}", follow_redirects=True)
        assert moved.history[0].status_code == 307 and moved.json()["customer_id"] == served.survivor
        event = {"customer_id": served.survivor, "event_type": "add_to_cart", "skus": [served.skus[3]]}
        assert client.post("/events", json=event).json()["accepted"]
    for path in ("/livez", "/healthz", "/readyz", "/metrics", "/docs.json"):
        assert httpx.get(f"{server}{path}", timeout=10).status_code == 200
    assert httpx.post(f"{server}/recommend", json={"customer_id": served.regular}).status_code == 401


def test_the_server_reads_the_online_store_it_was_given(server: str, on_store: tuple[Served, dict]) -> None:
    served, store_env = on_store
    assert httpx.get(f"{server}/readyz", timeout=10).status_code == 200
    project = store_env.get("TESSERA_FEAST_PROJECT")
    # On Redis the workspace holds no SQLite online store (none was copied, the server made none) and Redis
    # holds the project's vectors (keys end with the project's name).
    assert (served.workspace.feature_repo_data / "online_store.db").exists() == (project is None)
    if project is not None:
        assert any(redis.Redis(host="127.0.0.1", port=6379).scan_iter(match=f"*{project}", count=1000))


def test_a_purchase_changes_the_next_recommendation(server: str, served: Served) -> None:
    with httpx.Client(base_url=server, headers=AUTH, timeout=30) as client:
        first = client.post("/recommend", json={"customer_id": served.regular, "k": 5}).json()
        bought = first["items"][0]["sku"]
        event = {"customer_id": served.regular, "event_type": "purchase", "skus": [bought]}
        assert client.post("/events", json=event).status_code == 200
        after = client.post("/recommend", json={"customer_id": served.regular, "k": 5}).json()
    assert bought not in {item["sku"] for item in after["items"]}


def test_a_new_champion_is_picked_up_while_requests_keep_succeeding(server: str, served_here: Served) -> None:
    statuses: list[int] = []
    versions: list[str] = []
    stop_sending = threading.Event()

    def send() -> None:
        with httpx.Client(base_url=server, headers=AUTH, timeout=30) as client:
            deadline = time.monotonic() + 180
            while not stop_sending.is_set() and time.monotonic() < deadline:
                response = client.post("/recommend", json={"customer_id": served_here.buyer, "k": 5})
                statuses.append(response.status_code)
                if response.status_code == 200:
                    versions.append(response.json()["model_version"])

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    time.sleep(1)
    name = "next_best_product"
    workspace = served_here.workspace
    # A new version of the same files, promoted as a training does.
    with tracking.mlflow_store(workspace) as client:
        current = client.get_model_version(name, tracking.alias_version(workspace, name))
        new = client.create_model_version(name, current.source, run_id=current.run_id)
    logged = tracking.LoggedVersion(name, str(new.version), current.run_id, current.source)
    tracking.promote(workspace, [tracking.gate_decision(workspace, logged, "ndcg_at_10", 1.0, None, 0.0)])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not versions or versions[-1] != str(new.version)):
        time.sleep(0.5)
    time.sleep(1)
    stop_sending.set()
    sender.join(timeout=60)
    assert versions and versions[-1] == str(new.version), f"still serving {versions[-1:]} after 120 s"
    assert str(current.version) in versions  # requests were served before, during and after the change
    assert len(statuses) > 10 and set(statuses) == {200}


def test_schemathesis_finds_nothing_against_the_running_service(server: str, tmp_path: Path) -> None:
    """Schemathesis with every check, a bounded number of examples and a fixed seed, on the served document."""
    st = Path(sys.executable).parent / "st"
    done = subprocess.run(
        [
            str(st),
            "run",
            f"{server}/docs.json",
            "--checks",
            "all",
            "--max-examples",
            "25",
            "--seed",
            "42",
            "--header",
            f"Authorization: {AUTH['Authorization']}",
            "--request-timeout",
            "30",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
    )
    summary = done.stdout[-3000:]
    assert done.returncode == 0, summary
    assert "passed" in summary and "failure" not in summary.lower(), summary
