"""CPU per request of the service's one middleware (`serving.gateway.Gateway`), in-process, no network: a keyed
POST /recommend with a JSON body through the gateway to a trivial ASGI app answering 200, against the same app
called directly.

    uv run python benchmarks/serving_gateway.py [--requests 20000] [--passes 5]

Per pass, the CPU time (`time.thread_time`) of `--requests` calls; the figure is the median pass's per-request
difference (gateway minus bare app). Figures: docs/benchmarks.md, "Serving: one middleware".
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _measure import machine

# This folder holds a script named `serving`: keep it off the path so `import serving` finds the package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

BODY = b'{"customer_id": "C000000001", "k": 10}'


async def trivial(scope: dict, receive: Any, send: Any) -> None:
    await receive()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"2")],
        }
    )
    await send({"type": "http.response.body", "body": b"{}"})


def scope() -> dict:
    return {
        "type": "http",
        "method": "POST",
        "path": "/recommend",
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(BODY)).encode()),
            (b"authorization", b"Bearer benchmark-key"),
        ],
    }


async def drive(app: Any, n: int) -> float:
    async def receive() -> dict:
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message: dict) -> None:
        return None

    started = time.thread_time()
    for _ in range(n):
        await app(scope(), receive, send)
    return (time.thread_time() - started) / n


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--passes", type=int, default=5)
    args = parser.parse_args()
    print(machine())
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="tessera-gateway-bench-"))
    from serving.auth import KeyRing, hashed_key
    from serving.gateway import Gateway

    keys = KeyRing([hashed_key("bench", ["read", "events"], "benchmark-key")])
    gateway = Gateway(trivial, keys, 1_000_000, lambda: {"paths": {}})
    bare, through = [], []
    for _ in range(args.passes):
        bare.append(asyncio.run(drive(trivial, args.requests)))
        through.append(asyncio.run(drive(gateway, args.requests)))
    b, g = statistics.median(bare) * 1e6, statistics.median(through) * 1e6
    print(
        f"bare app: {b:.1f} µs CPU per request; through the gateway: {g:.1f} µs; the gateway's cost: {g - b:.1f} µs"
    )


if __name__ == "__main__":
    main()
