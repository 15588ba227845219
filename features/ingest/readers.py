"""Readers: a source's export as a stream of chunks of raw rows, numbered by their 1-based data row.

CSV and JSON Lines are read as text only (nothing guesses types), decompressed as they are read when
compressed; Parquet and SQL keep the types their schema declares; Excel cells are read as a CSV would write
them, a column of dates or times keeping that type (`excel.py`). A row the reader cannot split into fields is
rejected here, with its data row, so every row read is accounted for. With a glob, files are read in sorted order and data rows count on across them.
"""

from __future__ import annotations

import glob
import io
import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from features.ingest.mapping import WHITESPACE, SourceConfig
from features.ingest.parse import DATE, TEXT
from features.ingest.quarantine import no_rejected_rows, rejected_lines
from tessera.core.errors import InputError

InvalidRowHandler = Callable[[pacsv.InvalidRow], str]
_GLOB_CHARACTERS = set("*?[")
_CSV_BLOCK_BYTES = 4 << 20


@dataclass(frozen=True)
class RawChunk:
    """Rows of one export file as read: `frame` indexed by data row, plus the rows that could not be read."""

    frame: pd.DataFrame
    rejected: pd.DataFrame
    file: str | None
    rows_read: int


def resolve_files(source: SourceConfig, folder: Path) -> list[Path]:
    """The files of a `path` source, relative to the mapping's folder; a glob gives every match, sorted."""
    pattern = Path(source.path or "").expanduser()
    full = pattern if pattern.is_absolute() else folder / pattern
    if _GLOB_CHARACTERS & set(str(pattern)):
        files = [Path(p) for p in sorted(glob.glob(str(full), recursive=True)) if Path(p).is_file()]
        if not files:
            raise InputError(f"no file matches {str(full)!r}; expected at least one export file")
        return files
    if not full.is_file():
        raise InputError(f"file {str(full)!r} does not exist; expected the export named by `path`")
    return [full]


def open_text(path: Path, encoding: str) -> io.TextIOWrapper:
    """A text export opened for reading, decompressed as it is read when its name ends in `.gz`, `.bz2`, `.zst`
    or `.lz4` (Arrow's CSV reader does the same by itself)."""
    return io.TextIOWrapper(pa.input_stream(str(path), compression="detect"), encoding=encoding)


def arrow_frame(table: pa.Table, first_row: int) -> pd.DataFrame:
    """A typed Arrow table as a frame indexed by data row: text stays text, numbers and times keep their type."""
    data = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        kind = column.type
        if pa.types.is_dictionary(kind):
            column, kind = column.cast(kind.value_type), kind.value_type
        if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind):
            data[name] = column.cast(pa.large_string()).to_pandas(types_mapper=lambda _: TEXT)
        elif pa.types.is_integer(kind):
            data[name] = column.to_pandas(types_mapper=lambda _: pd.Int64Dtype()).astype("Int64")
        elif pa.types.is_floating(kind) or pa.types.is_decimal(kind):
            data[name] = column.cast(pa.float64()).to_pandas()
        elif pa.types.is_boolean(kind):
            data[name] = column.to_pandas(types_mapper=lambda _: pd.BooleanDtype())
        elif pa.types.is_timestamp(kind):
            data[name] = column.cast(pa.timestamp("us", tz=kind.tz), safe=False).to_pandas()
        elif pa.types.is_date(kind):
            data[name] = pd.Series(pd.arrays.ArrowExtensionArray(column.cast(pa.date32())), dtype=DATE)
        else:  # times of day, lists, structs, binary: kept as their text (nested values as JSON)
            values = [
                v
                if v is None or isinstance(v, str)
                else json.dumps(v, default=str)
                if isinstance(v, list | dict)
                else str(v)
                for v in column.to_pylist()
            ]
            data[name] = pd.Series(values, dtype=TEXT)
    index = pd.RangeIndex(first_row, first_row + table.num_rows, name="source_row")
    return pd.DataFrame({name: series.array for name, series in data.items()}, index=index)


# --- CSV ---------------------------------------------------------------------------------------------------


def _csv_parse_options(source: SourceConfig, handler: InvalidRowHandler | None = None) -> pacsv.ParseOptions:
    return pacsv.ParseOptions(
        delimiter=source.delimiter,
        quote_char=source.quotechar or False,
        newlines_in_values=True,
        invalid_row_handler=handler or (lambda row: "skip"),
    )


def csv_columns(path: Path, source: SourceConfig) -> list[str]:
    """The header of a CSV export, each name trimmed (or the mapping's `column_names` for one without a header).

    A header written `rec_id, given_name, surname` names its columns `given_name` and `surname`, as the mapping
    would write them: the blanks after each delimiter are spacing, not part of the name.
    """
    return [name.strip() for name in _csv_header(path, source)]


def _csv_header(path: Path, source: SourceConfig) -> list[str]:
    """The header's names as written in the file (what Arrow's reader calls the columns)."""
    if not source.header:
        return list(source.column_names or [])
    if source.delimiter == WHITESPACE:
        return _first_line(path, source).split()
    try:
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(encoding=source.encoding, use_threads=False),
            parse_options=_csv_parse_options(source),
        )
        names = list(reader.schema.names)
        undecodable = [field.name for field in reader.schema if pa.types.is_binary(field.type)]
        reader.close()
    except (pa.ArrowInvalid, UnicodeDecodeError) as error:
        raise InputError(
            f"file {str(path)!r}: cannot read a CSV header ({error}); expected a header row"
        ) from None
    if undecodable:
        # Arrow falls back to bytes for a column that is not valid text in the first block.
        raise InputError(
            f"file {str(path)!r}: column(s) {', '.join(undecodable)} are not valid {source.encoding}; "
            "expected the `encoding` of the export"
        )
    trimmed = [name.strip() for name in names]
    duplicates = sorted({name for name in trimmed if trimmed.count(name) > 1})
    if duplicates:
        raise InputError(
            f"file {str(path)!r}: the header repeats column(s) {', '.join(duplicates)}; expected unique names"
        )
    return names


def _data_rows(count: int, start: int, bad: np.ndarray) -> np.ndarray:
    """The first `count` data rows from `start` on that are not among the `bad` (sorted) rows."""
    skipped = 0
    while True:
        end = start + count + skipped
        now = int(np.searchsorted(bad, end) - np.searchsorted(bad, start))
        if now == skipped:
            break
        skipped = now
    rows = np.arange(start, end, dtype=np.int64)
    return rows[~np.isin(rows, bad)] if skipped else rows


def wrong_field_count(row: int, fields: int, expected: int) -> str:
    return f"wrong number of fields: data row {row} has {fields} fields; expected {expected}"


def _open_csv(
    path: Path, source: SourceConfig, names: list[str], on_invalid: InvalidRowHandler
) -> pacsv.CSVStreamingReader:
    return pacsv.open_csv(
        path,
        # Single-threaded so Arrow reports the number of each invalid row; the chunks still stream.
        read_options=pacsv.ReadOptions(
            encoding=source.encoding,
            use_threads=False,
            block_size=_CSV_BLOCK_BYTES,
            column_names=None if source.header else names,
        ),
        parse_options=_csv_parse_options(source, on_invalid),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=False
        ),
    )


def csv_chunks(path: Path, source: SourceConfig, chunk_rows: int, first_row: int) -> Iterator[RawChunk]:
    """A CSV export in chunks of about `chunk_rows` rows; a line with the wrong number of fields is rejected."""
    written = _csv_header(path, source)
    names = [name.strip() for name in written]
    if source.delimiter == WHITESPACE:
        yield from _whitespace_chunks(path, source, names, chunk_rows, first_row)
        return
    bad: list[tuple[int, str, int]] = []
    header_lines = 1 if source.header else 0

    def on_invalid(row: pacsv.InvalidRow) -> str:
        # Arrow counts rows from the file's first line (the header, if any) and skips blank lines.
        bad.append((row.number - header_lines, row.text, row.actual_columns))
        return "skip"

    schema = pa.schema([pa.field(name, pa.string()) for name in written])
    batches: list[pa.RecordBatch] = []
    pending = 0
    next_row = 1  # the next data row of this file

    def emit(final: bool) -> RawChunk:
        nonlocal next_row, batches, pending
        bad.sort()
        bad_rows = np.array([b[0] for b in bad], dtype=np.int64)
        rows = _data_rows(pending, next_row, bad_rows)
        end = int(rows[-1]) + 1 if len(rows) else next_row
        if final and len(bad_rows):
            end = max(end, int(bad_rows[-1]) + 1)
        mine = [b for b in bad if b[0] < end]
        del bad[: len(mine)]
        table = pa.Table.from_batches(batches, schema=schema).rename_columns(names)
        frame = table.to_pandas(types_mapper=lambda _: TEXT)
        frame.index = pd.Index(rows + first_row - 1, name="source_row")
        rejected = rejected_lines(
            [first_row - 1 + row for row, _, _ in mine],
            [wrong_field_count(row, n, len(names)) for row, _, n in mine],
            [text for _, text, _ in mine],
        )
        chunk = RawChunk(frame, rejected, str(path), end - next_row)
        next_row, batches, pending = end, [], 0
        return chunk

    reader: pacsv.CSVStreamingReader | None = None
    try:
        reader = _open_csv(path, source, written, on_invalid)
        for batch in reader:
            batches.append(batch)
            pending += batch.num_rows
            if pending >= chunk_rows:
                yield emit(final=False)
        yield emit(final=True)
    except (pa.ArrowInvalid, UnicodeDecodeError) as error:
        raise InputError(
            f"file {str(path)!r} cannot be read as {source.encoding} CSV ({error}); expected the `encoding` of the export"
        ) from None
    finally:
        if reader is not None:
            reader.close()


def _first_line(path: Path, source: SourceConfig) -> str:
    try:
        with open_text(path, source.encoding) as lines:
            return next((line for line in lines if line.strip()), "")
    except UnicodeDecodeError as error:
        raise InputError(f"file {str(path)!r} cannot be read as {source.encoding} ({error})") from None


def _whitespace_chunks(
    path: Path, source: SourceConfig, names: list[str], chunk_rows: int, first_row: int
) -> Iterator[RawChunk]:
    """An export whose fields are separated by runs of blanks (fixed-width reports); blank lines skipped."""
    with open_text(path, source.encoding) as handle:
        lines = (line.rstrip("\r\n") for line in handle)
        numbered = ((n, line) for n, line in enumerate((x for x in lines if x.strip()), start=1))
        if source.header:
            next(numbered, None)
            numbered = ((n - 1, line) for n, line in numbered)
        while batch := list(itertools.islice(numbered, chunk_rows)):
            yield _split_whitespace(batch, names, first_row, str(path))


def _split_whitespace(batch: list[tuple[int, str]], names: list[str], first_row: int, file: str) -> RawChunk:
    rows = np.array([n for n, _ in batch], dtype=np.int64) + first_row - 1
    parts = pc.utf8_split_whitespace(pa.array([line.strip() for _, line in batch], pa.string()))
    counts = pc.list_value_length(parts).to_numpy()
    good = counts == len(names)
    kept = parts.filter(pa.array(good))
    frame = pd.DataFrame(
        {
            name: pc.list_element(kept, i).to_pandas(types_mapper=lambda _: TEXT)
            for i, name in enumerate(names)
        }
    )
    frame.index = pd.Index(rows[good], name="source_row")
    bad = np.flatnonzero(~good)
    rejected = rejected_lines(
        [int(rows[i]) for i in bad],
        [wrong_field_count(int(rows[i]), counts[i], len(names)) for i in bad],
        [batch[i][1] for i in bad],
    )
    return RawChunk(frame, rejected, file, len(batch))


# --- Parquet -----------------------------------------------------------------------------------------------


def parquet_columns(path: Path) -> list[str]:
    """The column names of a Parquet export."""
    try:
        return list(pq.ParquetFile(path).schema_arrow.names)
    except (pa.ArrowInvalid, OSError) as error:
        raise InputError(f"file {str(path)!r} is not a readable Parquet file ({error})") from None


def parquet_chunks(path: Path, chunk_rows: int, first_row: int) -> Iterator[RawChunk]:
    """A Parquet export in chunks of `chunk_rows` rows, typed as its schema says."""
    with pq.ParquetFile(path) as parquet:
        for batch in parquet.iter_batches(batch_size=chunk_rows):
            frame = arrow_frame(pa.Table.from_batches([batch]), first_row)
            first_row += batch.num_rows
            yield RawChunk(frame, no_rejected_rows(), str(path), batch.num_rows)
