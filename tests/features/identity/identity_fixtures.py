"""Hand-made canonical tables for identity tests: a few people written the way ingestion writes them."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from tessera.core.canonical import META_COLUMNS, SOURCE_TYPES
from tessera.core.settings import Workspace

NOW = datetime(2025, 6, 1, tzinfo=UTC)
_DTYPES = {
    "string": "string",
    "timestamp": "datetime64[us, UTC]",
    "float": "float64",
    "int": "Int64",
    "bool": "boolean",
}


def write_canonical(
    workspace: Workspace, source_type: str, source: str, rows: list[dict], namespace: str | None = None
) -> None:
    """Write rows as a canonical table: every column of the type, record_id and identity_key filled in."""
    columns = [*META_COLUMNS, *SOURCE_TYPES[source_type]]
    frame = pd.DataFrame(rows)
    out = pd.DataFrame(index=range(len(rows)))
    for col in columns:
        values = frame[col.name] if col.name in frame else pd.Series([None] * len(rows))
        if col.kind == "date":
            out[col.name] = pd.to_datetime(values).dt.date
        else:
            out[col.name] = (
                pd.Series(values, dtype=_DTYPES[col.kind])
                if col.kind != "timestamp"
                else pd.to_datetime(values, utc=True)
            )
    out["source"] = source
    out["source_row"] = range(1, len(rows) + 1)
    if "customer_ref" in out:
        out["record_id"] = out["customer_ref"].fillna(out["record_id"])
    out["identity_key"] = (namespace or source) + ":" + out["record_id"]
    path = workspace.canonical_file(source_type, source)
    path.parent.mkdir(parents=True, exist_ok=True)
    out.to_parquet(path, index=False)


def contact(ref: str, first: str | None, last: str | None, **extra: object) -> dict:
    """A CRM contact row."""
    return {
        "customer_ref": ref,
        "first_name": first,
        "last_name": last,
        "updated_at": "2025-01-01T00:00:00Z",
        **extra,
    }
