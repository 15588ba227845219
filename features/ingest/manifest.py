"""What ingestion changed: the content hash of every canonical file it wrote, in `canonical/manifest.json`.

Later steps cache work per file content (the identity step summarises each canonical file once per
content). Hashing every file on each run would read all of them again; the manifest lets a reader trust
the hash ingestion computed when it wrote the file, as long as the file is still the one ingestion wrote
(same size and modification time). Any other writer (erasure rewriting a table, a file copied in by hand)
changes the modification time, and the reader hashes that file itself: the manifest can be stale, never
wrong.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from tessera.core.settings import Workspace

MANIFEST = "manifest.json"


def content_hash(path: Path) -> str:
    """A file's content hash (blake2b, 32 hex digits)."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "blake2b").hexdigest()[:32]


def _stamp(path: Path) -> list[int]:
    # Size and modification time: a rewrite (erasure's, a file copied in) gets a new modification time,
    # while a copy that keeps it (`cp -a`, `shutil.copytree`) keeps the content too.
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def record_files(workspace: Workspace, hashes: dict[Path, str]) -> None:
    """Add (or replace) the content hashes of files just written under `workspace.canonical`; drop the
    entries of files that no longer exist."""
    entries = _entries(workspace)
    for path, digest in hashes.items():
        entries[path.relative_to(workspace.canonical).as_posix()] = {"hash": digest, "stamp": _stamp(path)}
    entries = {name: entry for name, entry in entries.items() if (workspace.canonical / name).exists()}
    target = workspace.canonical / MANIFEST
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(entries, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, target)


def _entries(workspace: Workspace) -> dict[str, dict]:
    path = workspace.canonical / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}  # no manifest, or a damaged one: every file is hashed by its reader


class FileHashes:
    """Content hashes of canonical files: from the manifest where the file is still the one ingest wrote,
    computed otherwise."""

    def __init__(self, workspace: Workspace) -> None:
        self.root = workspace.canonical
        self.entries = _entries(workspace)
        self.computed = 0  # files hashed here because the manifest did not vouch for them

    def __call__(self, path: Path) -> str:
        try:
            entry = self.entries.get(path.relative_to(self.root).as_posix())
        except ValueError:
            entry = None
        if entry is not None and entry.get("stamp") == _stamp(path):
            return entry["hash"]
        self.computed += 1
        return content_hash(path)
