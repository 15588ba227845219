"""The suppression list: salted hashes of erased people's identifiers, which ingest honours.

An erased person's rows must not come back when the same exports are ingested again, yet the list must not
hold their identifiers. Each identifier (`identity_key`, the key identity resolution works on, and every
email, phone and loyalty number, as written and standardised, lower-cased) is kept as an HMAC-SHA256 under a
secret salt: `TESSERA_ERASURE_SALT`, or else a random
per-workspace secret generated on first use in `data/suppression/salt` (mode 0600). Keep that salt for good:
a new one makes every stored hash unmatched. Without the salt the list cannot be tested against a guessed
email (a plain hash could).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from tessera.core.settings import Settings, Workspace

SUPPRESSION_FOLDER = "suppression"
# Canonical columns whose value names a person: the identity key, contact fields and consent records' identifier.
SUPPRESSED_COLUMNS = ("identity_key", "email", "phone", "loyalty_number", "identifier")


def suppression_folder(workspace: Workspace) -> Path:
    return workspace.data / SUPPRESSION_FOLDER


def suppression_salt(workspace: Workspace, settings: Settings) -> bytes:
    """The configured salt, or the workspace's own secret (created on first use, readable by its owner only)."""
    if settings.erasure_salt is not None:
        return settings.erasure_salt.get_secret_value().encode()
    path = suppression_folder(workspace) / "salt"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


def identifier_hash(value: str, salt: bytes) -> str:
    """The salted hash of one identifier (emails compared lower-cased and stripped)."""
    return hmac.new(salt, value.strip().lower().encode(), hashlib.sha256).hexdigest()


def read_suppressed(workspace: Workspace, settings: Settings) -> frozenset[str]:
    """Every suppressed hash of the workspace (empty when nothing was ever erased)."""
    path = suppression_folder(workspace) / "suppressed.parquet"
    if not path.exists():
        return frozenset()
    return frozenset(pd.read_parquet(path, columns=["hash"])["hash"])


def add_suppressed(workspace: Workspace, hashes: Iterable[str], erasure_id: str) -> int:
    """Append hashes to the list (the erasure's id beside each, never the identifier); how many were new."""
    path = suppression_folder(workspace) / "suppressed.parquet"
    old = pd.read_parquet(path) if path.exists() else pd.DataFrame({"hash": [], "erasure_id": []})
    new = pd.DataFrame({"hash": sorted(set(hashes) - set(old["hash"])), "erasure_id": erasure_id})
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.concat([old, new], ignore_index=True).to_parquet(path.with_suffix(".tmp"), index=False)
    path.with_suffix(".tmp").replace(path)
    return len(new)


def suppressed_rows(rows: pd.DataFrame, suppressed: frozenset[str], salt: bytes) -> pd.Series:
    """Which canonical rows belong to a suppressed person: a value of theirs in a SUPPRESSED_COLUMNS column.

    A value ending in a digit also matches with `.0` after it: until ingestion read `13085.0` as 13085
    (`numeric_text`, docs/sources.md), such ids and numbers were kept, and hashed at erasure, as written.
    """
    hit = np.zeros(len(rows), dtype=bool)
    for column in SUPPRESSED_COLUMNS:
        if suppressed and column in rows.columns:
            present = rows[column].notna().to_numpy()
            codes, distinct = pd.factorize(rows[column][present].astype(str))  # each value hashed once
            erased = np.array(
                [
                    identifier_hash(v, salt) in suppressed
                    or (v[-1:].isdigit() and identifier_hash(f"{v}.0", salt) in suppressed)
                    for v in distinct
                ],
                dtype=bool,
            )
            hit[present] |= erased[codes]
    return pd.Series(hit, index=rows.index)
