"""JSON Lines exports: one JSON object per line, nested objects flattened to dotted paths ("customer.id").

Values are kept as their JSON text (numbers are not converted), so the canonical parsers see what the
export wrote. A line that is not a JSON object is rejected with its line number; blank lines are skipped.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import Any, TextIO

import pandas as pd

from features.ingest.parse import TEXT
from features.ingest.quarantine import rejected_lines
from features.ingest.readers import RawChunk, open_text
from tessera.core.errors import InputError

_BLOCK_LINES = 20_000


def flatten(record: dict[str, Any], prefix: str = "") -> dict[str, str | None]:
    """A JSON object as dotted paths to text: nested objects opened, lists kept as JSON text."""
    flat: dict[str, str | None] = {}
    for key, value in record.items():
        path = prefix + key
        kind = type(value)
        if kind is str or value is None:  # most values: checked first
            flat[path] = value
        elif kind is dict:
            if value:
                flat.update(flatten(value, path + "."))
            else:
                flat[path] = None
        elif kind is bool:
            flat[path] = "true" if value else "false"
        elif kind is list:
            flat[path] = json.dumps(value, ensure_ascii=False)
        else:
            flat[path] = str(value)
    return flat


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector: building many small dicts otherwise triggers it over and over
    (JSON objects hold no reference cycles, so nothing is left for it to collect)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _loads(text: str) -> Any:
    return json.loads(text, parse_float=str, parse_int=str)


def _lines(handle: TextIO, path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of every non-blank line."""
    try:
        for number, line in enumerate(handle, start=1):
            if number == 1:
                line = line.removeprefix("\ufeff")  # a byte-order mark some tools write before the first line
            if line.strip():
                yield number, line
    except UnicodeDecodeError as error:
        raise InputError(
            f"file {str(path)!r} cannot be decoded ({error}); expected the `encoding` of the export"
        ) from None


def _parse(lines: list[tuple[int, str]]) -> list[tuple[dict[str, Any] | None, str | None]]:
    """Each line's object, or None and the reason it is not one."""
    texts = [text.strip() for _, text in lines]
    try:
        # One call for the whole chunk is faster than one per line; when a line is broken (or the lines only
        # make sense together) every line is read on its own.
        objects = _loads("[" + ",".join(texts) + "]")
        if len(objects) == len(lines) and all(t.startswith("{") and t.endswith("}") for t in texts):
            return [
                (o, None) if isinstance(o, dict) else (None, _not_object(n, o))
                for (n, _), o in zip(lines, objects, strict=True)
            ]
    except json.JSONDecodeError:
        pass
    parsed: list[tuple[dict[str, Any] | None, str | None]] = []
    for number, text in lines:
        try:
            value = _loads(text)
        except json.JSONDecodeError as error:
            parsed.append((None, f"unparseable JSON: line {number}: {error.msg} at column {error.colno}"))
            continue
        parsed.append((value, None) if isinstance(value, dict) else (None, _not_object(number, value)))
    return parsed


def _not_object(number: int, value: Any) -> str:
    return f"not a JSON object: line {number} holds a {type(value).__name__}; expected one object per line"


def jsonl_columns(path: Path, encoding: str, sample_rows: int) -> list[str]:
    """The dotted paths found in the first `sample_rows` objects of a JSON Lines export."""
    with open_text(path, encoding) as handle:
        lines = list(islice(_lines(handle, path), sample_rows))
    found: dict[str, None] = {}
    for record, _ in _parse(lines):
        if record is not None:
            found.update(dict.fromkeys(flatten(record)))
    return list(found)


def _frame(records: list[tuple[int, dict[str, Any]]]) -> pd.DataFrame:
    """Flattened objects as a text frame indexed by data row."""
    if not records:
        return pd.DataFrame(index=pd.Index([], dtype="int64"))
    with _no_cyclic_gc():
        flat = [flatten(record) for _, record in records]
        frame = pd.DataFrame.from_records(flat, index=[row for row, _ in records])
    return frame.astype(TEXT)


def _chunk(lines: list[tuple[int, str]], first_row: int, path: Path) -> RawChunk:
    """One chunk of lines as raw rows, numbered from `first_row`; lines that are not objects rejected."""
    frames, failed = [], []
    # Python objects take many times the room of the text they come from: they are built a block at a time.
    for start in range(0, len(lines), _BLOCK_LINES):
        block = lines[start : start + _BLOCK_LINES]
        with _no_cyclic_gc():
            parsed = _parse(block)
        rows = range(first_row + start, first_row + start + len(block))
        records = [(row, record) for row, (record, _) in zip(rows, parsed, strict=True) if record is not None]
        failed += [
            (row, text, reason)
            for row, (_, text), (_, reason) in zip(rows, block, parsed, strict=True)
            if reason
        ]
        frames.append(_frame(records))
    frame = pd.concat(frames) if len(frames) > 1 else frames[0]
    rejected = rejected_lines(
        [row for row, _, _ in failed],
        [reason for _, _, reason in failed],
        [text.rstrip("\r\n") for _, text, _ in failed],
    )
    return RawChunk(frame.astype(TEXT).rename_axis("source_row"), rejected, str(path), len(lines))


def jsonl_chunks(path: Path, encoding: str, chunk_rows: int, first_row: int) -> Iterator[RawChunk]:
    """A JSON Lines export in chunks of `chunk_rows` non-blank lines."""
    with open_text(path, encoding) as handle:
        lines = _lines(handle, path)
        while chunk := list(islice(lines, chunk_rows)):
            yield _chunk(chunk, first_row, path)
            first_row += len(chunk)
