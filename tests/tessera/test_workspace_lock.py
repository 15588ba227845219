"""One lock for every writing command, with real processes: the second writer exits 3 naming the holder, and the
lock of a process killed while holding it is taken over."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tessera.core.lock import WorkspaceBusy, lock_path, workspace_lock
from tessera.core.settings import Workspace

HOLD = """
import sys
from pathlib import Path
from tessera.core.settings import Workspace
from tessera.core.lock import workspace_lock
with workspace_lock(Workspace(Path(sys.argv[1])), sys.argv[2]):
    print("held", flush=True)
    sys.stdin.readline()
"""
# Every writing command, as the command line gives it (each would fail on the empty workspace: the lock
# refuses it before it starts).
WRITERS = {
    "ingest": ["ingest", "--sources", "sources.yaml"],
    "resolve": ["resolve"],
    "profile": ["profile"],
    "features apply": ["features", "apply"],
    "features materialize": ["features", "materialize"],
    "train": ["train", "churn"],
    "run": ["run", "--sources", "sources.yaml"],
    "retrain": ["retrain"],
}


@pytest.fixture
def holder(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[subprocess.Popen]:
    """Another process holding the workspace's lock as `request.param`."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path), request.param],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "held"
        yield process
    finally:
        if process.poll() is None:
            process.communicate("done\n", timeout=30)


def tessera(workspace: Path, args: list[str]) -> subprocess.CompletedProcess:
    (workspace / "sources.yaml").write_text("sources: []\n")
    return subprocess.run(
        [sys.executable, "-m", "tessera.cli", *args, "--workspace", str(workspace)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=workspace,
    )


# (holder, second writer): every writer against a running retrain, and a few pairs the other way round.
PAIRS = [("tessera retrain", command) for command in WRITERS] + [
    ("tessera ingest", "ingest"),
    ("tessera ingest", "retrain"),
    ("tessera run", "profile"),
]


@pytest.mark.parametrize(("holder", "command"), PAIRS, indirect=["holder"])
def test_a_second_writer_exits_3_naming_the_holder(
    tmp_path: Path, holder: subprocess.Popen, command: str
) -> None:
    done = tessera(tmp_path, WRITERS[command])
    holding = json.loads(lock_path(Workspace(tmp_path)).read_text())
    assert done.returncode == 3, done.stderr
    message = " ".join(done.stderr.replace("│", " ").split())
    assert f"locked by pid {holder.pid} (`{holding['command']}`" in message
    assert f"not starting `tessera {command}`" in message and "Traceback" not in done.stderr


def test_two_real_commands_at_once(tmp_path: Path) -> None:
    """Two `tessera ingest` started together: one runs, the other is refused with status 3 (or runs after)."""
    (tmp_path / "sources.yaml").write_text("sources: []\n")
    args = [
        sys.executable,
        "-m",
        "tessera.cli",
        "ingest",
        "--sources",
        "sources.yaml",
        "--workspace",
        str(tmp_path),
    ]
    first = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    second = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    outcomes = [p.communicate(timeout=300) + (p.returncode,) for p in (first, second)]
    # Neither ends in a collision's traceback; a refusal is status 3 with the message.
    for _, err, code in outcomes:
        assert "Traceback" not in err
        assert code != 3 or "is locked by pid" in " ".join(err.replace("│", " ").split())


def test_the_lock_of_a_killed_holder_is_taken_over(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    workspace = Workspace(tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path), "tessera profile"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "held"
    with (
        pytest.raises(WorkspaceBusy, match=f"pid {process.pid}"),
        workspace_lock(workspace, "tessera resolve"),
    ):
        pass
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert json.loads(lock_path(workspace).read_text())["pid"] == process.pid  # what the dead holder left
    with caplog.at_level(logging.WARNING), workspace_lock(workspace, "tessera resolve"):
        assert json.loads(lock_path(workspace).read_text())["pid"] == os.getpid()
        # The holder may take it again (a retrain's chain inside it).
        with workspace_lock(workspace, "tessera profile"):
            pass
    assert f"taking over the workspace lock of pid {process.pid}" in caplog.text
    assert lock_path(workspace).read_text() == ""  # released: nobody named


# A holder caught between taking the lock and writing its name: it writes the name a moment later.
SLOW_TO_NAME = """
import fcntl, json, os, sys, time
with open(sys.argv[1], "a+") as handle:
    fcntl.flock(handle, fcntl.LOCK_EX)
    print("locked", flush=True)
    time.sleep(0.3)
    handle.write(json.dumps({"pid": os.getpid(), "command": "tessera ingest", "started": "now"}))
    handle.flush()
    sys.stdin.readline()
"""


def test_a_refusal_names_a_holder_that_has_not_written_its_name_yet(tmp_path: Path) -> None:
    """The race `tessera ingest` twice at once can hit: the refused one waits for the holder's name."""
    workspace = Workspace(tmp_path)
    lock_path(workspace).parent.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [sys.executable, "-c", SLOW_TO_NAME, str(lock_path(workspace))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "locked"
        with (
            pytest.raises(WorkspaceBusy, match=f"locked by pid {process.pid} \\(`tessera ingest`"),
            workspace_lock(workspace, "tessera resolve"),
        ):
            pass
    finally:
        process.communicate("done\n", timeout=30)
