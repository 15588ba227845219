"""The service under attack (issue 12): what a scanner, a fuzzer and an oversized body do to a running service.

    uv run python benchmarks/service_attack.py --workspace DIR [--now 2025-12-31T23:59:59Z] [--requests 10000]

DIR is a workspace with trained champions (`uv run tessera demo --workspace DIR --no-serve` makes one). The
service runs as `tessera serve` does (two workers). Printed: `/metrics`' size (and median scrape time of five)
before and after `--requests` unauthenticated requests to distinct paths (target: the same size ± 1 %); the
answer to a 50 MB body (target: 413, unread); schemathesis with every check, `--examples` examples per operation
and a fixed seed against the served OpenAPI document (target: no failure); and the lines the server logged
(target: no traceback, one line per client error).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from _measure import machine

HERE = Path(__file__).resolve().parent
# This folder holds a script named `serving`: keep it off the path so `import serving` finds the package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

from serving.process import serve_command, start, stop, wait_ready  # noqa: E402

KEY = "attack-benchmark-key"


def key_entry() -> str:
    """KEY's TESSERA_SERVE_API_KEY_HASHES entry, made by the documented tool (`python -m serving.auth`; this
    folder's serving.py shadows the package here)."""
    made = subprocess.run(
        [sys.executable, "-m", "serving.auth", "--id", "attack", "--scopes", "read,events", "--stdin"],
        input=KEY + "\n",
        capture_output=True,
        text=True,
        check=True,
        cwd=HERE.parent,
    )
    return made.stdout.strip().rsplit(" ", 1)[1]


def scrape(client: httpx.Client) -> tuple[int, float]:
    """The size of /metrics, and the median time of five scrapes."""
    times, size = [], 0
    for _ in range(5):
        started = time.perf_counter()
        size = len(client.get("/metrics").content)
        times.append(time.perf_counter() - started)
    return size, statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workspace", type=Path, required=True)
    parser.add_argument("--now", default=None)
    parser.add_argument("--port", type=int, default=3931)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--examples", type=int, default=25)
    args = parser.parse_args()
    print(machine())
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    env = {
        "TESSERA_SERVE_WORKSPACE": str(args.workspace.resolve()),
        "TESSERA_SERVE_API_KEY_HASHES": key_entry(),
        "TESSERA_SERVE_POLL_SECONDS": "0",
        "BENTOML_DO_NOT_TRACK": "true",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        **({"TESSERA_SERVE_NOW": args.now} if args.now else {}),
    }
    log = Path(tempfile.mkdtemp(prefix="tessera-attack-")) / "server.log"
    process = start(serve_command(args.workspace, args.port), env, log)
    url = f"http://127.0.0.1:{args.port}"
    try:
        wait_ready(url, process, log)
        with httpx.Client(base_url=url, timeout=60) as client:
            # Every route template and status the run will meet, once, so only counter values can change.
            for path in ("/customers/C000000000", "/no/such/path"):
                client.get(path)
            before, scrape_before = scrape(client)
            started = time.perf_counter()
            statuses = {
                client.get(f"/customers/C{i:09d}" if i % 2 else f"/no/such/path/{i}").status_code
                for i in range(args.requests)
            }
            sent = time.perf_counter() - started
            after, scrape_after = scrape(client)
            print(
                f"{args.requests:,} unauthenticated requests to distinct paths in {sent:.1f} s (answers {sorted(statuses)}): "
                f"/metrics {before:,} -> {after:,} bytes ({(after - before) / before * 100:+.2f} %), "
                f"scrape median {scrape_before * 1000:.1f} -> {scrape_after * 1000:.1f} ms"
            )
            started = time.perf_counter()
            big = client.post(
                "/recommend",
                content=b"x" * 50_000_000,
                headers={"X-API-Key": KEY, "Content-Type": "application/json"},
            )
            print(
                f"a 50 MB body: {big.status_code} {big.json()} in {(time.perf_counter() - started) * 1000:.0f} ms"
            )
        fuzz = subprocess.run(
            [
                str(Path(sys.executable).parent / "st"),
                "run",
                f"{url}/docs.json",
                "--checks",
                "all",
                "--max-examples",
                str(args.examples),
                "--seed",
                "42",
                "--header",
                f"Authorization: Bearer {KEY}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        found = re.findall(r"^\s*(\d+ generated.*)$", fuzz.stdout, flags=re.MULTILINE)
        print(
            f"schemathesis --checks all -n {args.examples} --seed 42: exit {fuzz.returncode}, {found[-1] if found else fuzz.stdout[-500:]}"
        )
    finally:
        stop(process)
    text = log.read_text(errors="replace")
    print(
        f"server log: {text.count('Traceback')} tracebacks, {text.count('client error')} client-error lines, "
        f"{len(text.splitlines()):,} lines ({log})"
    )


if __name__ == "__main__":
    main()
