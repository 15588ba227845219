"""Importing any module does no work: it reads no setting and writes no file (STYLE.md, principle 1)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("tessera", "features", "simulator", "training", "serving", "activation")
# Settings that no settings class accepts: a module reading settings at import fails on them.
INVALID_SETTINGS = {
    "TESSERA_INGEST_CHUNK_ROWS": "not-a-number",
    "TESSERA_FEAST_ONLINE_STORE": "not-a-store",
    "TESSERA_TRAINING_HORIZON_DAYS": "not-a-number",
    "TESSERA_SERVE_WORKERS": "not-a-number",
}
IMPORT_EVERYTHING = f"""
import importlib, pkgutil
for name in {PACKAGES!r}:
    package = importlib.import_module(name)
    for module in pkgutil.walk_packages(package.__path__, prefix=name + "."):
        importlib.import_module(module.name)
        print(module.name)
"""


def _files(root: Path) -> dict[Path, int]:
    """Every file under `root` (but .git) with its modification time."""
    found = {}
    for folder, folders, names in os.walk(root):
        folders[:] = [f for f in folders if f != ".git"]
        for name in names:
            path = Path(folder) / name
            found[path] = path.lstat().st_mtime_ns
    return found


def test_every_module_imports_without_settings_and_writes_nothing(tmp_path: Path) -> None:
    cwd = tmp_path / "read-only"
    cwd.mkdir()
    before = _files(REPO)
    cwd.chmod(stat.S_IRUSR | stat.S_IXUSR)
    env = {"PATH": os.environ["PATH"], "HOME": os.environ["HOME"], **INVALID_SETTINGS}
    try:
        # -B: no bytecode caches, so any file that appears was written by a module.
        done = subprocess.run(
            [sys.executable, "-B", "-c", IMPORT_EVERYTHING],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        cwd.chmod(stat.S_IRWXU)
    assert done.returncode == 0, done.stderr[-3000:]
    imported = done.stdout.split()
    assert {"serving.service", "tessera.cli", "training.pipelines", "features.store.online_stores"} <= set(
        imported
    )
    assert list(cwd.iterdir()) == []
    after = _files(REPO)
    assert [str(p) for p in after.keys() - before.keys()] == []
    assert [str(p) for p in before if p in after and after[p] != before[p]] == []
