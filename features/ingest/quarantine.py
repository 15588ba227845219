"""Rejected rows: the quarantine table's schema and how a rejected row is written down."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

import pandas as pd
import pyarrow as pa

QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("source", pa.string()),
        pa.field("source_row", pa.int64()),
        pa.field("file", pa.string()),  # the export file the row came from (null for a SQL source)
        pa.field("field", pa.string()),  # the retailer's column, null when the whole line is unreadable
        pa.field("reason", pa.string()),
        pa.field("raw", pa.string()),  # the row's original fields as a JSON object
    ]
)
# What `reason_kind` keeps of a reason; the quality report runs the same pattern in SQL.
REASON_KIND = re.compile(r"^[^:'\"]*")


def rejected_rows(
    source_rows: Sequence[int] | pd.Index,
    fields: Sequence[str | None],
    reasons: Sequence[str],
    raws: Sequence[str],
) -> pd.DataFrame:
    """Rejected rows of one chunk, before the run adds `source` and `file`."""
    return pd.DataFrame(
        {
            "source_row": pd.array(list(source_rows), dtype="int64"),
            "field": pd.array(list(fields), dtype=object),
            "reason": pd.array(list(reasons), dtype=object),
            "raw": pd.array(list(raws), dtype=object),
        }
    )


def rejected_lines(source_rows: Sequence[int], reasons: Sequence[str], lines: Sequence[str]) -> pd.DataFrame:
    """Rejected rows no field could be read from: no field named, the line's text kept as `{"_line": ...}`."""
    raws = [json.dumps({"_line": line}, ensure_ascii=False) for line in lines]
    return rejected_rows(source_rows, [None] * len(raws), reasons, raws)


def no_rejected_rows() -> pd.DataFrame:
    """An empty set of rejected rows."""
    return rejected_rows([], [], [], [])


def raw_json(frame: pd.DataFrame) -> list[str]:
    """Each row's original fields as a JSON object (missing values as null, typed values as text)."""
    plain = frame.astype(object).where(frame.notna(), None)
    return [
        json.dumps(
            {str(k): v if v is None or isinstance(v, str) else str(v) for k, v in row.items()},
            ensure_ascii=False,
        )
        for row in plain.to_dict("records")
    ]


def reason_kind(reason: str) -> str:
    """The kind of a reason: its text up to the first quote or colon ("unparseable date")."""
    match = REASON_KIND.match(reason)
    return (match.group(0) if match else reason).strip()
