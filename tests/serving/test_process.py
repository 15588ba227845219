"""Starting and stopping a server in a child process (`serving.process`); the real service over HTTP is
tests/serving/test_integration.py and test_erase_over_http.py."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from serving.process import NotStarted, free_port, serve_command, start, stop, wait_ready


def test_a_server_that_exits_is_reported_with_its_log(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    process = start([sys.executable, "-c", "print('no such workspace'); raise SystemExit(3)"], {}, log)
    with pytest.raises(NotStarted, match=r"exited \(3\)(.|\n)*no such workspace"):
        wait_ready(f"http://127.0.0.1:{free_port()}", process, log, timeout=60)
    stop(process)


def test_stop_ends_the_server_and_the_children_it_started(tmp_path: Path) -> None:
    import psutil

    child = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); time.sleep(600)"
    process = start([sys.executable, "-c", child], {}, tmp_path / "server.log")
    parent = psutil.Process(process.pid)
    for _ in range(600):  # until the child is started (at most a minute)
        if parent.children():
            break
        time.sleep(0.1)
    children = parent.children(recursive=True)
    stop(process, timeout=10)
    assert process.returncode is not None
    # A killed process takes a moment to die (longer on a busy machine); one still sleeping after 10 s was missed.
    _, alive = psutil.wait_procs(children, timeout=10)
    assert not [c for c in alive if c.status() != psutil.STATUS_ZOMBIE]


def test_the_service_command_is_tessera_serve_on_the_workspace() -> None:
    command = serve_command(Path("/ws"), 3123, "--workers", "2")
    assert command[1:] == [
        "-m",
        "tessera.serving_cli",
        "--workspace",
        "/ws",
        "--port",
        "3123",
        "--workers",
        "2",
    ]
