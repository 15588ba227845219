"""Delivery against the real RabbitMQ (127.0.0.1:5672) and a local webhook receiver (an http.server thread):
consent checked at send time, frequency caps, retries and dead letters, and a worker killed with SIGKILL
mid-batch that, restarted, delivers every pending activation (count sent = count decided, one key each)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import aio_pika
import pandas as pd
import pytest
from activation_fixtures import NOW, scores, write_profile, write_yaml

from activation.attributes import compute_attributes
from activation.delivery import Worker
from activation.membership import refresh
from activation.run import declarations
from activation.settings import ActivationSettings, membership_db
from activation.store import connect, counters

pytestmark = pytest.mark.integration
AMQP = "amqp://guest:guest@127.0.0.1:5672/"
SECRET = "test-webhook-secret"
ROOT = Path(__file__).resolve().parents[2]


class Receiver(BaseHTTPRequestHandler):
    """Records each signed activation; /flaky fails each key's first try, /down always fails."""

    received: list[dict] = []
    tries: dict[str, int] = {}

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        key = self.headers["X-Tessera-Idempotency-Key"]
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        Receiver.tries[key] = Receiver.tries.get(key, 0) + 1
        if self.headers["X-Tessera-Signature"] != expected:
            status = 401
        elif self.path == "/down" or (self.path == "/flaky" and Receiver.tries[key] == 1):
            status = 500
        else:
            Receiver.received.append(json.loads(body))
            status = 200
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def receiver() -> Iterator[str]:
    Receiver.received, Receiver.tries = [], {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture()
def exchange() -> Iterator[tuple[str, str]]:
    """A fresh exchange with one queue bound to every routing key; deleted afterwards."""
    name, queue = f"tessera.test.{uuid.uuid4().hex}", f"tessera.test.{uuid.uuid4().hex}"

    async def declare() -> None:
        connection = await aio_pika.connect(AMQP)
        channel = await connection.channel()
        found = await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=True)
        bound = await channel.declare_queue(queue, auto_delete=False)
        await bound.bind(found, "#")
        await connection.close()

    async def delete() -> None:
        connection = await aio_pika.connect(AMQP)
        channel = await connection.channel()
        await channel.queue_delete(queue)
        await channel.exchange_delete(name)
        await connection.close()

    asyncio.run(declare())
    yield name, queue
    asyncio.run(delete())


def drain(queue: str) -> list[str]:
    """The message ids of every message in the queue (consumed)."""

    async def run() -> list[str]:
        connection = await aio_pika.connect(AMQP)
        channel = await connection.channel()
        found = await channel.get_queue(queue)
        ids = []
        while (message := await found.get(no_ack=True, fail=False)) is not None:
            ids.append(message.message_id)
        await connection.close()
        return ids

    return asyncio.run(run())


def declared(tmp_path: Path, triggers: str, **extra: object) -> ActivationSettings:
    segments = write_yaml(tmp_path / "segments.yaml", "segments:\n  - name: gb\n    rule: country = 'GB'\n")
    return ActivationSettings(
        segments=segments,
        triggers=write_yaml(tmp_path / "triggers.yaml", triggers),
        webhook_secret=SECRET,
        backoff_seconds=0,
        poll_seconds=0.05,
        **extra,
    )


def test_consent_caps_retries_and_dead_letters(
    tmp_path: Path, receiver: str, exchange: tuple[str, str]
) -> None:
    """GB members: A (email and sms consent), B (neither), C (email only)."""
    settings = declared(
        tmp_path,
        f"""
triggers:
  - {{name: mail, on_entry: gb, purpose: email, destination: rabbitmq, routing_key: email.mail}}
  - {{name: sms_one, on_entry: gb, purpose: sms, destination: webhook, url: "{receiver}/flaky", cap: {{max: 1, per_hours: 24}}}}
  - {{name: sms_two, on_entry: gb, purpose: sms, destination: webhook, url: "{receiver}/flaky", cap: {{max: 1, per_hours: 24}}}}
  - {{name: down, on_entry: gb, purpose: email, destination: webhook, url: "{receiver}/down"}}
""",
        amqp_exchange=exchange[0],
        max_attempts=3,
    )
    workspace = write_profile(tmp_path / "ws")
    plan, triggers = declarations(settings)
    con = connect(membership_db(workspace))
    summary = refresh(con, plan, triggers, compute_attributes(workspace, plan.counts, NOW, scores()), NOW)
    assert summary["activations"] == 12  # 3 members x 4 triggers

    counts = Worker(workspace, settings, clock=lambda: NOW).run(until_empty=True)

    # mail: A and C sent, B suppressed; sms: A once (the second trigger is capped), B and C have no consent
    # (twice each); down: A and C retried twice then dead-lettered, B suppressed.
    assert counts == {
        "sent": 3,
        "suppressed_consent": 6,
        "suppressed_cap": 1,
        "retried": 2 * 2 + 1,
        "dead_lettered": 2,
    }
    assert sorted(drain(exchange[1])) == sorted(
        [f"mail:gb:entry:{c}:{NOW.isoformat(timespec='seconds')}" for c in ("A", "C")]
    )
    (sms,) = Receiver.received
    assert sms["customer_id"] == "A" and sms["contact"] == {"phone": "+447700900001"}
    assert sms["recommendations"] == ["S2", "S1"]
    con = connect(membership_db(workspace))
    dead = con.execute("SELECT customer_id, error FROM dead_letters ORDER BY customer_id").fetchall()
    assert dead == [("A", "webhook answered 500"), ("C", "webhook answered 500")]
    assert counters(con)["suppressed_consent"] == 6


def test_a_worker_killed_mid_batch_delivers_everything_once_per_key_after_restart(
    tmp_path: Path, exchange: tuple[str, str]
) -> None:
    settings = declared(
        tmp_path,
        "triggers:\n  - {name: mail, on_entry: gb, purpose: email, destination: rabbitmq}\n",
        amqp_exchange=exchange[0],
    )
    workspace = write_profile(tmp_path / "ws")
    plan, triggers = declarations(settings)
    n = 3000
    attributes = pd.DataFrame(
        {
            "customer_id": [f"K{i:05d}" for i in range(n)],
            "country": "GB",
            "consent_email": True,
            "consent_sms": False,
            "consent_personalisation": True,
            "top_skus": "S1",
        }
    )
    con = connect(membership_db(workspace))
    decided = refresh(con, plan, triggers, attributes, NOW)["activations"]
    assert decided == n
    env = {
        **os.environ,
        "TESSERA_ACTIVATION_SEGMENTS": str(settings.segments),
        "TESSERA_ACTIVATION_TRIGGERS": str(settings.triggers),
        "TESSERA_ACTIVATION_AMQP_EXCHANGE": exchange[0],
        "TESSERA_ACTIVATION_BATCH_SIZE": "100",
        "TESSERA_ACTIVATION_RATE_LIMIT_PER_SECOND": "500",
    }
    command = [sys.executable, "-m", "tessera.cli", "triggers", "run", "--workspace", str(workspace.root)]

    def sent() -> int:
        with sqlite3.connect(membership_db(workspace)) as db:
            return db.execute("SELECT count(*) FROM outbox WHERE status = 'sent'").fetchone()[0]

    worker = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while sent() < 300 and time.monotonic() < deadline and worker.poll() is None:
        time.sleep(0.05)
    assert worker.poll() is None, worker.stderr.read().decode()[-2000:] if worker.stderr else ""
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    assert 0 < sent() < n  # killed mid-way

    again = subprocess.run([*command, "--until-empty"], env=env, cwd=ROOT, capture_output=True, timeout=600)
    assert again.returncode == 0, again.stderr.decode()[-2000:]
    assert sent() == decided
    ids = drain(exchange[1])
    assert len(set(ids)) == decided  # every decided activation reached the broker, each key at least once
    # A batch published but not yet marked when the worker died is published again with the same keys: at
    # most one batch's worth of repeats, which the consumer drops by key.
    assert len(ids) - decided <= 100


def test_quiet_hours_hold_activations_until_they_end(tmp_path: Path, receiver: str) -> None:
    """Decided at 22:30 UTC with quiet hours 22-8: nothing goes out before 08:00, everything consented after."""
    settings = declared(
        tmp_path,
        f"""
triggers:
  - {{name: night, on_entry: gb, purpose: email, destination: webhook, url: "{receiver}/ok", quiet_hours: {{start: 22, end: 8}}}}
""",
    )
    workspace = write_profile(tmp_path / "ws")
    plan, triggers = declarations(settings)
    con = connect(membership_db(workspace))
    evening = NOW.replace(hour=22, minute=30)
    assert (
        refresh(con, plan, triggers, compute_attributes(workspace, plan.counts, evening, scores()), evening)[
            "activations"
        ]
        == 3
    )
    con.close()
    moments = [evening + pd.Timedelta(hours=h) for h in range(12)]  # one hour later at every batch
    seen: list[pd.Timestamp] = []

    def clock() -> pd.Timestamp:
        seen.append(moments[min(len(seen), len(moments) - 1)])
        return seen[-1]

    arrived: list[pd.Timestamp] = []
    original = Receiver.do_POST

    def stamped(handler: Receiver) -> None:
        arrived.append(seen[-1])
        original(handler)

    Receiver.do_POST = stamped  # type: ignore[method-assign]
    try:
        counts = Worker(workspace, settings, clock=clock).run(until_empty=True)
    finally:
        Receiver.do_POST = original  # type: ignore[method-assign]

    assert counts["sent"] == 2 and counts["suppressed_consent"] == 1  # A and C consented to email, B did not
    assert {r["customer_id"] for r in Receiver.received} == {"A", "C"}
    assert arrived and min(arrived).hour == 8 and min(arrived) > evening  # the first batch after 08:00
