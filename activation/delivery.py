"""The delivery worker: activations from the outbox to RabbitMQ, signed webhooks and files, at least once.

Each pass takes a batch of pending activations in outbox order and decides each one at send time: its
purpose's consent as the customer has it now (the attributes of the last refresh), the trigger's frequency
cap per customer and channel, its quiet hours (the activation waits until they end). What goes out is sent
in one go per destination — RabbitMQ messages published together on a channel with publisher confirms
(all confirms awaited at once rather than one round trip per message), webhooks signed with HMAC-SHA256
concurrently, file rows appended — and the batch's outcome is marked in one transaction. A worker killed
between sending and marking sends those activations again on restart with the same idempotency key
(`message_id` on RabbitMQ, `X-Tessera-Idempotency-Key` on webhooks), so a consumer that keeps the keys it
has seen acts exactly once. A webhook that fails is retried with exponential backoff; after the last try
the activation is dead and a dead-letter record keeps the error.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import hmac
import json
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from activation.run import declarations
from activation.settings import ActivationSettings, exports_dir, membership_db
from activation.store import add_counters, connect
from activation.triggers import TriggerSpec
from tessera.core.errors import InputError
from tessera.core.settings import Workspace

log = logging.getLogger(__name__)
CONSENT = {"email": "consent_email", "sms": "consent_sms", "personalisation": "consent_personalisation"}
HANDLE = {"email": "email", "sms": "phone"}


@dataclass
class Pending:
    id: int
    key: str
    trigger: str
    destination: str
    purpose: str
    customer_id: str
    segment: str
    kind: str
    reason: str
    created_at: str
    attempts: int
    payload: dict[str, Any] = field(default_factory=dict)


def sign(secret: str, body: bytes) -> str:
    """The webhook signature header's value: `sha256=<hex HMAC of the body>`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def contacts(workspace: Workspace) -> dict[str, tuple[str | None, str | None]]:
    """Every customer's email and phone from the golden record (only ever sent to the consented channel)."""
    path = workspace.profile / "customers.parquet"
    if not path.exists():
        return {}
    with duckdb.connect() as con:
        rows = con.execute(f"SELECT customer_id, email, phone FROM read_parquet('{path}')").fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


class Worker:
    """Sends the outbox's pending activations until stopped (or until none is pending)."""

    def __init__(
        self,
        workspace: Workspace,
        settings: ActivationSettings,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.workspace = workspace
        self.settings = settings
        self.clock = clock or (lambda: datetime.now(UTC))
        _, triggers = declarations(settings)
        self.triggers: dict[str, TriggerSpec] = {t.name: t for t in triggers}
        self.con = connect(membership_db(workspace))
        self._contacts: dict[str, tuple[str | None, str | None]] | None = None
        self._amqp: Any = None
        self._exchange: Any = None
        self.counts = {
            "sent": 0,
            "retried": 0,
            "dead_lettered": 0,
            "suppressed_consent": 0,
            "suppressed_cap": 0,
        }
        self.stopping = False

    # -- the loop --------------------------------------------------------------------------------------------
    def run(self, until_empty: bool = False) -> dict[str, int]:
        """Deliver until stopped (or, with `until_empty`, until nothing is pending); the counts of this run."""
        return asyncio.run(self._loop(until_empty))

    async def _loop(self, until_empty: bool) -> dict[str, int]:
        try:
            while not self.stopping:
                started = time.perf_counter()
                done = await self.deliver_batch()
                if done == 0:
                    if until_empty and not self._waiting():
                        break
                    await asyncio.sleep(self.settings.poll_seconds)
                elif self.settings.rate_limit_per_second > 0:
                    rest = done / self.settings.rate_limit_per_second - (time.perf_counter() - started)
                    await asyncio.sleep(max(0.0, rest))
        finally:
            await self._close()
        return dict(self.counts)

    def _waiting(self) -> bool:
        """Whether anything is still pending (later: quiet hours, backoff)."""
        return (
            self.con.execute("SELECT 1 FROM outbox WHERE status = 'pending' LIMIT 1").fetchone() is not None
        )

    async def _close(self) -> None:
        if self._amqp is not None:
            await self._amqp.close()
            self._amqp = None
        self.con.close()

    # -- one batch ----------------------------------------------------------------------------------------------
    def _take(self, now: float) -> list[Pending]:
        rows = self.con.execute(
            "SELECT id, key, trigger, destination, purpose, customer_id, segment, kind, reason, created_at, attempts "
            "FROM outbox WHERE status = 'pending' AND next_at <= ? ORDER BY id LIMIT ?",
            [now, self.settings.batch_size],
        ).fetchall()
        return [Pending(*row) for row in rows]

    def _consent(self, batch: list[Pending]) -> dict[str, dict[str, bool]]:
        ids = sorted({p.customer_id for p in batch})
        found: dict[str, dict[str, bool]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            for row in self.con.execute(
                f"SELECT customer_id, consent_email, consent_sms, consent_personalisation, top_skus "
                f"FROM attributes WHERE customer_id IN ({marks})",
                chunk,
            ):
                found[row[0]] = {
                    "email": bool(row[1]),
                    "sms": bool(row[2]),
                    "personalisation": bool(row[3]),
                    "top_skus": row[4],
                }
        return found

    async def deliver_batch(self) -> int:
        """Decide, send and mark one batch; how many activations it settled or deferred."""
        moment = self.clock()
        now = moment.timestamp()
        batch = self._take(now)
        if not batch:
            return 0
        consent = self._consent(batch)
        outgoing: dict[str, list[Pending]] = {"rabbitmq": [], "webhook": [], "file": []}
        counted: dict[tuple[str, str], int] = {}
        updates: list[tuple[Any, ...]] = []
        for item in batch:
            trigger = self.triggers.get(item.trigger)
            if trigger is None:
                updates.append(("dead", now, "the trigger is no longer declared", item.id))
                self._dead(item, "the trigger is no longer declared", moment)
                continue
            state = consent.get(item.customer_id)
            if state is None or not state.get(item.purpose, False):
                updates.append(
                    ("suppressed_consent", now, f"no {item.purpose} consent at send time", item.id)
                )
                self.counts["suppressed_consent"] += 1
                continue
            if trigger.quiet_hours is not None and trigger.quiet_hours.holds(moment):
                resume = trigger.quiet_hours.ends(moment).timestamp()
                self.con.execute("UPDATE outbox SET next_at = ? WHERE id = ?", [resume, item.id])
                continue
            if trigger.cap is not None:
                key = (item.customer_id, trigger.channel)
                if key not in counted:
                    counted[key] = self.con.execute(
                        "SELECT count(*) FROM outbox WHERE customer_id = ? AND purpose = ? AND status = 'sent' "
                        "AND sent_at > ?",
                        [item.customer_id, trigger.channel, now - trigger.cap.per_hours * 3600],
                    ).fetchone()[0]
                if counted[key] >= trigger.cap.max:
                    updates.append(
                        (
                            "suppressed_cap",
                            now,
                            f"cap of {trigger.cap.max} per {trigger.cap.per_hours} h",
                            item.id,
                        )
                    )
                    self.counts["suppressed_cap"] += 1
                    continue
                counted[key] += 1
            item.payload = self._payload(item, trigger, state)
            outgoing[trigger.destination].append(item)
        sent, failed = [], []
        for destination, items in outgoing.items():
            if not items:
                continue
            ok, errors = await self._send(destination, items)
            sent += ok
            failed += errors
        for item in sent:
            updates.append(("sent", now, None, item.id))
        self.counts["sent"] += len(sent)
        self.con.execute("BEGIN IMMEDIATE")
        try:
            self.con.executemany(
                "UPDATE outbox SET status = ?, sent_at = ?, detail = ?, attempts = attempts + 1 WHERE id = ?",
                [(s, t, d, i) if s == "sent" else (s, None, d, i) for s, t, d, i in updates],
            )
            retried = dead = 0
            for item, error in failed:
                if item.attempts + 1 >= self.settings.max_attempts:
                    self.con.execute(
                        "UPDATE outbox SET status = 'dead', attempts = attempts + 1, detail = ? WHERE id = ?",
                        [error[:500], item.id],
                    )
                    self._dead(item, error, moment)
                    dead += 1
                else:
                    wait = self.settings.backoff_seconds * 2**item.attempts
                    self.con.execute(
                        "UPDATE outbox SET attempts = attempts + 1, next_at = ?, detail = ? WHERE id = ?",
                        [now + wait, error[:500], item.id],
                    )
                    retried += 1
            self.counts["retried"] += retried
            self.counts["dead_lettered"] += dead
            add_counters(
                self.con,
                {
                    "sent": len(sent),
                    "retried": retried,
                    "dead_lettered": dead,
                    "suppressed_consent": sum(1 for u in updates if u[0] == "suppressed_consent"),
                    "suppressed_cap": sum(1 for u in updates if u[0] == "suppressed_cap"),
                },
            )
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        return len(batch)

    def _dead(self, item: Pending, error: str, moment: datetime) -> None:
        self.con.execute(
            "INSERT INTO dead_letters (outbox_id, key, trigger, customer_id, at, error) VALUES (?, ?, ?, ?, ?, ?)",
            [item.id, item.key, item.trigger, item.customer_id, moment.isoformat(), error[:500]],
        )

    def _payload(self, item: Pending, trigger: TriggerSpec, state: dict[str, Any]) -> dict[str, Any]:
        """What the channel needs: the customer, the consented handle for this channel only, the reason, picks."""
        contact: dict[str, str] = {}
        field_name = HANDLE.get(trigger.purpose)
        if field_name is not None:
            if self._contacts is None:
                self._contacts = contacts(self.workspace)
            email, phone = self._contacts.get(item.customer_id, (None, None))
            handle = email if field_name == "email" else phone
            if handle:
                contact[field_name] = handle
        skus = state.get("top_skus")
        return {
            "idempotency_key": item.key,
            "trigger": item.trigger,
            "segment": item.segment,
            "event": item.kind,
            "customer_id": item.customer_id,
            "purpose": trigger.purpose,
            "contact": contact,
            "reason": item.reason,
            "decided_at": item.created_at,
            "recommendations": skus.split(",") if skus else [],
        }

    # -- destinations -------------------------------------------------------------------------------------------
    async def _send(
        self, destination: str, items: list[Pending]
    ) -> tuple[list[Pending], list[tuple[Pending, str]]]:
        if destination == "rabbitmq":
            return await self._publish(items)
        if destination == "webhook":
            return await self._post(items)
        return self._append(items), []

    async def _publish(self, items: list[Pending]) -> tuple[list[Pending], list[tuple[Pending, str]]]:
        import aio_pika

        try:
            if self._amqp is None or self._amqp.is_closed:
                self._amqp = await aio_pika.connect_robust(self.settings.amqp_url.get_secret_value())
                channel = await self._amqp.channel(publisher_confirms=True)
                name = self.settings.amqp_exchange
                self._exchange = (
                    await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=True)
                    if name
                    else channel.default_exchange
                )
            publishes = [
                self._exchange.publish(
                    aio_pika.Message(
                        json.dumps(item.payload).encode(),
                        message_id=item.key,
                        content_type="application/json",
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    ),
                    routing_key=self.triggers[item.trigger].routing_key or f"activation.{item.trigger}",
                    mandatory=False,
                )
                for item in items
            ]
            results = await asyncio.gather(*publishes, return_exceptions=True)
        except Exception as exc:  # the broker is away: every item is retried later
            log.warning("RabbitMQ: %s", exc)
            self._amqp = None
            return [], [(item, f"RabbitMQ: {exc}") for item in items]
        ok = [item for item, r in zip(items, results, strict=True) if not isinstance(r, BaseException)]
        bad = [
            (item, f"RabbitMQ: {r}")
            for item, r in zip(items, results, strict=True)
            if isinstance(r, BaseException)
        ]
        return ok, bad

    async def _post(self, items: list[Pending]) -> tuple[list[Pending], list[tuple[Pending, str]]]:
        import httpx

        secret = self.settings.webhook_secret.get_secret_value()
        ok: list[Pending] = []
        bad: list[tuple[Pending, str]] = []
        async with httpx.AsyncClient(timeout=self.settings.webhook_timeout_seconds) as client:

            async def one(item: Pending) -> None:
                body = json.dumps(item.payload).encode()
                headers = {
                    "Content-Type": "application/json",
                    "X-Tessera-Signature": sign(secret, body),
                    "X-Tessera-Idempotency-Key": item.key,
                }
                try:
                    answer = await client.post(
                        self.triggers[item.trigger].url or "", content=body, headers=headers
                    )
                except httpx.HTTPError as exc:
                    bad.append((item, f"webhook: {type(exc).__name__}: {exc}"))
                    return
                if answer.status_code < 300:
                    ok.append(item)
                else:
                    bad.append((item, f"webhook answered {answer.status_code}"))

            await asyncio.gather(*(one(item) for item in items))
        return ok, bad

    def _append(self, items: list[Pending]) -> list[Pending]:
        folder = exports_dir(self.workspace)
        folder.mkdir(parents=True, exist_ok=True)
        by_trigger: dict[str, list[Pending]] = {}
        for item in items:
            by_trigger.setdefault(item.trigger, []).append(item)
        columns = [
            "idempotency_key",
            "trigger",
            "segment",
            "event",
            "customer_id",
            "contact",
            "reason",
            "decided_at",
        ]
        for trigger, group in by_trigger.items():
            path = folder / f"{trigger}.csv"
            new = not path.exists()
            with path.open("a", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                if new:
                    writer.writerow(columns)
                for item in group:
                    p = item.payload
                    writer.writerow(
                        [
                            *(p[c] for c in columns[:5]),
                            ";".join(p["contact"].values()),
                            p["reason"],
                            p["decided_at"],
                        ]
                    )
        return items


def export_segment(workspace: Workspace, settings: ActivationSettings, name: str, out: Path) -> int:
    """A segment's members to CSV or Parquet: customer id, member since, and the email of those who consented."""
    import pandas as pd

    from training.scoring import write_table

    plan, _ = declarations(settings)
    if plan.get(name) is None:
        raise InputError(f"unknown segment {name!r}: declared are {', '.join(plan.names)}")
    path = membership_db(workspace)
    if not path.exists():
        raise InputError(f"{path} is missing: run `tessera segments refresh` (or `tessera run`) first")
    con = connect(path)
    try:
        members = pd.read_sql_query(
            "SELECT m.customer_id, m.since, a.consent_email FROM members m LEFT JOIN attributes a "
            "USING (customer_id) WHERE m.segment = ? ORDER BY m.customer_id",
            con,
            params=[name],
        )
    except (sqlite3.Error, pd.errors.DatabaseError) as exc:
        raise InputError(f"{path}: {exc}: run `tessera segments refresh` first") from None
    finally:
        con.close()
    emails = contacts(workspace)
    members["email"] = [
        emails.get(c, (None, None))[0] if consented else None
        for c, consented in zip(members["customer_id"], members["consent_email"].fillna(0), strict=True)
    ]
    write_table(members.drop(columns="consent_email"), out)
    return len(members)
