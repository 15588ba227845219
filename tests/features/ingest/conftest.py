"""Ingestion test fixtures: a workspace and a writer of sources.yaml files, both in a temporary folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tessera.core.settings import Settings, Workspace


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "workspace")


@pytest.fixture
def settings() -> Settings:
    # Tiny chunks, so even three-row fixtures cross chunk boundaries.
    return Settings(ingest_chunk_rows=2)


@pytest.fixture
def write_mapping(tmp_path: Path) -> Callable[..., Path]:
    """Write a sources.yaml declaring the given sources next to the fixtures; returns its path."""

    def write(*sources: dict) -> Path:
        path = tmp_path / "sources.yaml"
        path.write_text(
            yaml.safe_dump({"version": 1, "sources": list(sources)}, allow_unicode=True), encoding="utf-8"
        )
        return path

    return write
