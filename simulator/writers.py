"""Append-only writers for the exports: CSV (any delimiter and encoding), JSON lines and Parquet.

Text files are assembled with Arrow string kernels (one line per row, quoted only where needed), so
millions of rows never pass through Python one by one.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq


def _text(column: pa.Array) -> pa.Array:
    if pa.types.is_string(column.type):
        return column
    return pc.cast(column, pa.string())


def _concat_lines(lines: pa.Array) -> pa.Buffer:
    """The bytes of all elements of a string array, back to back (each already ends with a newline)."""
    lines = lines.combine_chunks() if isinstance(lines, pa.ChunkedArray) else lines
    if len(lines) == 0:
        return pa.py_buffer(b"")
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32, count=len(lines) + 1, offset=lines.offset * 4)
    return lines.buffers()[2].slice(int(offsets[0]), int(offsets[-1] - offsets[0]))


def csv_bytes(table: pa.Table, delimiter: str, header: bool) -> pa.Buffer | bytes:
    """CSV text of `table`: nulls empty, values quoted only when they hold a delimiter, quote or newline."""
    cells = []
    for column in table.columns:
        text = _text(column.combine_chunks())
        needs = pc.match_substring(text, delimiter)
        for special in ('"', "\n", "\r"):
            needs = pc.or_(needs, pc.match_substring(text, special))
        if pc.any(needs).as_py():  # quote only the columns (and values) that need it
            quoted = pc.binary_join_element_wise('"', pc.replace_substring(text, '"', '""'), '"', "")
            text = pc.if_else(needs, quoted, text)
        cells.append(pc.fill_null(text, ""))
    rows = pc.binary_join_element_wise(*cells, delimiter) if len(cells) > 1 else cells[0]
    body = _concat_lines(pc.binary_join_element_wise(rows, "\n", ""))
    if header:
        return (delimiter.join(table.column_names) + "\n").encode("utf-8") + body.to_pybytes()
    return body


class TextSink:
    """A CSV or JSON-lines file written chunk by chunk in a given encoding."""

    def __init__(
        self, path: Path, encoding: str = "utf-8", delimiter: str = ",", jsonl: bool = False
    ) -> None:
        self.path, self.encoding, self.delimiter, self.jsonl = path, encoding, delimiter, jsonl
        self._file: BinaryIO | None = None
        self.rows = 0

    def write(self, table: pa.Table | pa.Array) -> None:
        """Append rows: a table for CSV, an array of newline-terminated JSON texts for JSON lines."""
        first = self._file is None
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("wb")
            if self.encoding == "utf-8-sig":
                self._file.write(b"\xef\xbb\xbf")
        # JSON texts already end with a newline; CSV rows are assembled here.
        data = _concat_lines(table) if self.jsonl else csv_bytes(table, self.delimiter, header=first)
        if self.encoding not in ("utf-8", "utf-8-sig"):
            data = memoryview(data).tobytes().decode("utf-8").encode(self.encoding)
        self._file.write(data)
        self.rows += len(table)

    def close(self) -> None:
        """Close the file (if anything was written)."""
        if self._file is not None:
            self._file.close()


class ParquetSink:
    """A Parquet file written one row group per chunk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer: pq.ParquetWriter | None = None
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        """Append the rows as one row group."""
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(self.path, table.schema, compression="zstd")
        self._writer.write_table(table)
        self.rows += len(table)

    def close(self) -> None:
        """Finish the file (if anything was written)."""
        if self._writer is not None:
            self._writer.close()
