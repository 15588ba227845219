"""Ingestion records each canonical file's content hash; a reader trusts it only for the file ingest wrote."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pandas as pd

from features.ingest import ingest_sources
from features.ingest.manifest import MANIFEST, FileHashes
from tessera.core.settings import Settings, Workspace

MAPPING = """version: 1
sources:
  - name: crm
    type: contacts
    path: contacts.csv
    columns: {customer_ref: id, email: email, first_name: first}
"""


def _blake(path: Path) -> str:
    return hashlib.blake2b(path.read_bytes()).hexdigest()[:32]


def _ingest(tmp_path: Path, rows: str) -> Workspace:
    (tmp_path / "contacts.csv").write_text("id,email,first\n" + rows, encoding="utf-8")
    (tmp_path / "sources.yaml").write_text(MAPPING, encoding="utf-8")
    workspace = Workspace(tmp_path / "ws")
    assert ingest_sources(tmp_path / "sources.yaml", workspace, Settings()).ok
    return workspace


def test_ingest_records_the_content_hash_of_each_file_it_wrote(tmp_path: Path) -> None:
    workspace = _ingest(tmp_path, "1,ann@example.com,Ann\n")
    path = workspace.canonical_file("contacts", "crm")
    entries = json.loads((workspace.canonical / MANIFEST).read_text(encoding="utf-8"))
    assert list(entries) == ["contacts/crm.parquet"]
    assert entries["contacts/crm.parquet"]["hash"] == _blake(path)
    hashes = FileHashes(workspace)
    assert hashes(path) == _blake(path) and hashes.computed == 0  # taken from the manifest

    # A second load with another row: a new hash, still vouched for by the manifest.
    workspace = _ingest(tmp_path, "1,ann@example.com,Ann\n2,bob@example.com,Bob\n")
    hashes = FileHashes(workspace)
    assert hashes(path) == _blake(path) and hashes.computed == 0


def test_a_file_rewritten_by_another_writer_is_hashed_again(tmp_path: Path) -> None:
    workspace = _ingest(tmp_path, "1,ann@example.com,Ann\n2,bob@example.com,Bob\n")
    path = workspace.canonical_file("contacts", "crm")
    vouched = FileHashes(workspace)(path)
    # Erasure rewrites a table through a temporary file: a new modification time.
    rows = pd.read_parquet(path)
    tmp = path.with_suffix(".tmp")
    rows.iloc[:1].to_parquet(tmp, index=False)
    os.replace(tmp, path)
    hashes = FileHashes(workspace)
    assert hashes(path) == _blake(path) != vouched
    assert hashes.computed == 1


def test_a_missing_or_damaged_manifest_means_every_file_is_hashed(tmp_path: Path) -> None:
    workspace = _ingest(tmp_path, "1,ann@example.com,Ann\n")
    path = workspace.canonical_file("contacts", "crm")
    (workspace.canonical / MANIFEST).write_text("{not json", encoding="utf-8")
    hashes = FileHashes(workspace)
    assert hashes(path) == _blake(path) and hashes.computed == 1
    (workspace.canonical / MANIFEST).unlink()
    hashes = FileHashes(workspace)
    assert hashes(path) == _blake(path) and hashes.computed == 1
