"""Activation's three targets (issue 13), on a synthetic profile of `--customers` customers (seeded):

1. membership of 10 segments for 100k customers recomputed (attributes from the profile with DuckDB, every rule,
   the diff, the SQLite transaction with changes and outbox) in ≤ 30 s — a first refresh (everyone enters) and
   a second one after a day of new events;
2. a live event to segment change p99 ≤ 50 ms at 100 events/s (the live path as /events runs it, paced);
3. delivery to RabbitMQ (127.0.0.1:5672) ≥ 2,000 activations/s (the worker, publisher confirms per batch).

    uv run python benchmarks/activation.py --customers 100000

Prints wall and CPU seconds (process_time of this process: all of it runs in-process) and the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

# This script is itself named `activation` (and `training.py` sits beside it): keep its folder off the path so
# `import activation` and `import training` find the packages.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from activation.attributes import compute_attributes  # noqa: E402
from activation.delivery import Worker  # noqa: E402
from activation.live import LiveSegments, categories  # noqa: E402
from activation.membership import refresh  # noqa: E402
from activation.segments import SegmentSpec, load_segments, plan_of  # noqa: E402
from activation.settings import EXAMPLES, ActivationSettings, membership_db  # noqa: E402
from activation.store import connect  # noqa: E402
from activation.triggers import TriggerSpec  # noqa: E402
from tessera.core.settings import Workspace  # noqa: E402

NOW = datetime(2025, 12, 31, 23, 59, tzinfo=UTC)
EXTRA = [
    SegmentSpec(name="gb_email", rule="country = 'GB' AND consent_email"),
    SegmentSpec(name="shoe_browsers", rule="views_in_category('Shoes', 168) >= 2"),
    SegmentSpec(name="cart_adders_week", rule="events_in('add_to_cart', 168) >= 1 AND NOT in_segment('vip')"),
    SegmentSpec(name="big_spenders", rule="monetary > 500 AND frequency >= 5"),
    SegmentSpec(name="sleeping_vip", rule="in_segment('vip') AND recency_days > 120"),
]


def synthetic_profile(root: Path, customers: int, seed: int) -> Workspace:
    """customers, orders (~10 per customer) and interactions (~10 per customer) over two years, seeded."""
    rng = np.random.default_rng(seed)
    workspace = Workspace(root)
    workspace.profile.mkdir(parents=True, exist_ok=True)
    ids = np.array([f"C{i:09d}" for i in range(customers)])
    start = NOW.timestamp() - 2 * 365 * 86400
    n_orders = customers * 10
    order_customer = rng.integers(0, customers, n_orders)
    at = pd.to_datetime(start + rng.random(n_orders) * (NOW.timestamp() - start), unit="s", utc=True)
    orders = pd.DataFrame(
        {
            "customer_id": ids[order_customer],
            "order_id": np.arange(n_orders).astype(str),
            "ordered_at": at,
            "sku": rng.integers(0, 500, n_orders).astype(str),
            "amount": rng.gamma(2.0, 30.0, n_orders),
            "channel": np.where(rng.random(n_orders) < 0.5, "online", "store"),
            "line_type": "sale",
        }
    )
    orders.to_parquet(workspace.profile / "orders.parquet", index=False)
    n_events = customers * 10
    event_at = pd.to_datetime(NOW.timestamp() - rng.random(n_events) ** 3 * 365 * 86400, unit="s", utc=True)
    pd.DataFrame(
        {
            "customer_id": ids[rng.integers(0, customers, n_events)],
            "occurred_at": event_at,
            "channel": "web",
            "event_type": rng.choice(
                ["product_view", "add_to_cart", "page_view"], n_events, p=[0.6, 0.2, 0.2]
            ),
            "sku": rng.integers(0, 500, n_events).astype(str),
        }
    ).to_parquet(workspace.profile / "interactions.parquet", index=False)
    firsts = orders.groupby("customer_id")["ordered_at"].agg(["min", "max", "count"])
    frame = pd.DataFrame({"customer_id": ids}).join(firsts, on="customer_id")
    pd.DataFrame(
        {
            "customer_id": ids,
            "email": [f"{c.lower()}@example.com" for c in ids],
            "phone": None,
            "country": rng.choice(["GB", "FR", "DE"], customers),
            "city": "Leeds",
            "first_order_at": frame["min"],
            "last_order_at": frame["max"],
            "n_orders": frame["count"],
            "consent_email": rng.random(customers) < 0.6,
            "consent_sms": rng.random(customers) < 0.3,
            "consent_personalisation": True,
            "consent_profiling": rng.random(customers) < 0.95,
        }
    ).to_parquet(workspace.profile / "customers.parquet", index=False)
    folder = workspace.canonical_table("products")
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {
            "sku": np.arange(500).astype(str),
            "category": np.array(["Shoes", "Bags", "Hats", "Coats", "Socks"])[np.arange(500) % 5],
        }
    ).to_parquet(folder / "products.parquet", index=False)
    return workspace


def scores(customers: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed + 1)
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:09d}" for i in range(customers)],
            "churn_probability": rng.random(customers),
            "cltv": rng.gamma(1.5, 100.0, customers),
            "top_category": rng.choice(["Shoes", "Bags", "Hats"], customers),
            "top_skus": "1,2,3",
        }
    )


def timed(step):  # noqa: ANN001, ANN201
    wall, cpu = time.perf_counter(), time.process_time()
    result = step()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--events", type=int, default=3000, help="live events sent at --rate per second")
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--activations", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1000, help="the worker's batch size")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()}")
    folder = Path(tempfile.mkdtemp(prefix="tessera-activation-bench-"))
    try:
        workspace = synthetic_profile(folder, args.customers, args.seed)
        shipped = load_segments(EXAMPLES / "segments.yaml")
        plan = plan_of([*(s.spec for s in shipped.segments), *EXTRA])
        triggers = (TriggerSpec(name="mail", on_entry="gb_email", purpose="email", destination="rabbitmq"),)
        con = connect(membership_db(workspace))
        score = scores(args.customers, args.seed)

        def recompute(moment: datetime) -> dict:
            attributes = compute_attributes(workspace, plan.counts, moment, score)
            return refresh(con, plan, triggers, attributes, moment)

        first, wall, cpu = timed(lambda: recompute(NOW))
        print(
            f"membership, first refresh: {len(plan.segments)} segments x {first['customers']:,} customers: "
            f"{wall:.1f} s wall, {cpu:.1f} s CPU; {first['entries']:,} entries; members {first['members']}"
        )
        second, wall, cpu = timed(lambda: recompute(NOW + timedelta(days=1)))
        print(
            f"membership, next day: {wall:.1f} s wall, {cpu:.1f} s CPU; {second['entries']:,} entries, "
            f"{second['exits']:,} exits; load {os.getloadavg()[0]:.1f}"
        )

        live = (
            None
            if args.events == 0
            else LiveSegments(membership_db(workspace), plan, triggers, categories(workspace))
        )
        rng = np.random.default_rng(args.seed)
        kinds = rng.choice(["add_to_cart", "purchase", "product_view"], args.events)
        who = rng.integers(0, args.customers, args.events)
        latencies, changes = [], 0
        moment = NOW + timedelta(days=1)
        cpu = time.process_time()
        began = time.perf_counter()
        for i in range(args.events if live is not None else 0):
            due = began + i / args.rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            started = time.perf_counter()
            changes += len(live.on_event(f"C{who[i]:09d}", str(kinds[i]), [str(i % 500)], moment, moment))
            latencies.append(time.perf_counter() - started)
        spent = time.perf_counter() - began
        ms = np.array(latencies or [0.0]) * 1000
        print(
            f"live: {args.events:,} events in {spent:.1f} s ({args.events / spent:.0f}/s), {changes:,} changes; "
            f"latency p50 {np.percentile(ms, 50):.2f} ms, p99 {np.percentile(ms, 99):.2f} ms, max {ms.max():.1f} ms; "
            f"CPU {time.process_time() - cpu:.1f} s; load {os.getloadavg()[0]:.1f}"
        )
        if live is not None:
            live.close()

        # delivery: a fresh outbox of `--activations` pending RabbitMQ activations
        con.execute("DELETE FROM outbox")
        pending = [
            (
                f"bench:{i}",
                "mail",
                "rabbitmq",
                "email",
                f"C{i % args.customers:09d}",
                "gb_email",
                "entry",
                "bench",
                NOW.isoformat(),
            )
            for i in range(args.activations)
        ]
        con.execute("UPDATE attributes SET consent_email = 1")
        con.executemany(
            "INSERT INTO outbox (key, trigger, destination, purpose, customer_id, segment, kind, reason, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            pending,
        )
        segments_file = folder / "segments.yaml"
        segments_file.write_text(
            "segments:\n  - name: gb_email\n    rule: country = 'GB' AND consent_email\n", encoding="utf-8"
        )
        triggers_file = folder / "triggers.yaml"
        triggers_file.write_text(
            "triggers:\n  - {name: mail, on_entry: gb_email, purpose: email, destination: rabbitmq}\n",
            encoding="utf-8",
        )
        exchange = f"tessera.bench.{uuid.uuid4().hex}"
        queue = asyncio.run(_declare(exchange))
        settings = ActivationSettings(
            segments=segments_file,
            triggers=triggers_file,
            amqp_exchange=exchange,
            poll_seconds=0.01,
            batch_size=args.batch,
        )
        counts, wall, cpu = timed(
            lambda: Worker(workspace, settings, clock=lambda: NOW).run(until_empty=True)
        )
        received = asyncio.run(_count_and_delete(exchange, queue))
        print(
            f"delivery: {counts['sent']:,} activations to RabbitMQ in {wall:.2f} s = {counts['sent'] / wall:,.0f}/s "
            f"(CPU {cpu:.1f} s; batch {settings.batch_size}); queue received {received:,}; load {os.getloadavg()[0]:.1f}"
        )
        con.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def _declare(exchange: str) -> str:
    import aio_pika

    connection = await aio_pika.connect("amqp://guest:guest@127.0.0.1:5672/")
    channel = await connection.channel()
    found = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    queue = await channel.declare_queue(exchange, auto_delete=False)
    await queue.bind(found, "#")
    await connection.close()
    return exchange


async def _count_and_delete(exchange: str, queue: str) -> int:
    import aio_pika

    connection = await aio_pika.connect("amqp://guest:guest@127.0.0.1:5672/")
    channel = await connection.channel()
    declared = await channel.declare_queue(queue, passive=True)
    count = declared.declaration_result.message_count
    await channel.queue_delete(queue)
    await channel.exchange_delete(exchange)
    await connection.close()
    return count


if __name__ == "__main__":
    main()
