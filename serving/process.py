"""A server in a child process: started in a session of its own, waited for until `/readyz` answers, stopped
with every worker it started.

    with running_service(workspace, env, log, "--workers", "2") as url:   # `python -m tessera.serving_cli`
        httpx.get(f"{url}/readyz")

What the HTTP tests (`tests/serving/serving_fixtures.py`) and the benchmarks (`benchmarks/serving.py`,
`benchmarks/service_attack.py`) share; `start`, `wait_ready` and `stop` also run other servers (the benchmark's
bare Starlette app, `tessera demo`).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class NotStarted(RuntimeError):
    """The server exited, or did not answer `/readyz` in time; the message ends with its log's tail."""


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_command(workspace: Path, port: int, *extra: str) -> list[str]:
    """`python -m tessera.serving_cli` on the workspace and port (what `tessera serve` runs), `extra` appended."""
    return [
        sys.executable,
        "-m",
        "tessera.serving_cli",
        "--workspace",
        str(workspace),
        "--port",
        str(port),
        *extra,
    ]


def start(command: Sequence[str], env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    """The command from the repository root, in a session of its own (so it and its workers stop together),
    with `env` over this process's environment, its output into `log`."""
    with log.open("wb") as out:
        return subprocess.Popen(
            list(command),
            env={**os.environ, **env},
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 300.0) -> None:
    """Return once `{url}/readyz` answers 200; NotStarted if the process exits or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise NotStarted(f"the server exited ({process.returncode}); its log {log}:\n{_tail(log)}")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:  # refused while starting, 503 until ready, a timeout
            pass
        time.sleep(1.0)
    raise NotStarted(f"the server was not ready in {timeout:.0f} s; its log {log}:\n{_tail(log)}")


def stop(process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """SIGTERM to the process's session (the server and its workers), SIGKILL to whatever is left after
    `timeout` seconds or once the server itself has exited."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=timeout)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@contextmanager
def running_service(
    workspace: Path,
    env: Mapping[str, str],
    log: Path,
    *extra: str,
    port: int | None = None,
    timeout: float = 300.0,
) -> Iterator[str]:
    """The service on the workspace (`serve_command`, a free loopback port unless one is given) until ready;
    its base URL. Stopped afterwards with its workers."""
    port = port or free_port()
    process = start(serve_command(workspace, port, *extra), env, log)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, process, log, timeout)
        yield url
    finally:
        stop(process)
