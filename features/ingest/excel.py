"""Excel exports (`.xlsx`, `.xlsm`, `.xlsb`, `.xls`, `.ods`), read with calamine.

Cells are read as a CSV export would write them (a number as text, a whole number without its `.0`: customer
`17850`, invoice `536365`), except dates: a column whose filled cells are all date-times is read as (naive)
timestamps, one of dates as dates, as a typed Parquet column would be, so no `date_formats` are needed for them.
A date-time in a column of other values is written in ISO 8601 (`2010-12-01 08:26:00`). Blank rows are skipped
and not counted, as blank lines of a CSV. With several sheets, each is read as its own file
(`<path> [sheet <name>]`), so rows repeating an earlier sheet's are quarantined as overlapping exports.
"""

from __future__ import annotations

import datetime as dt
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from python_calamine import CalamineError, CalamineWorkbook

from features.ingest.mapping import ALL_SHEETS, SourceConfig
from features.ingest.quarantine import rejected_lines
from features.ingest.readers import RawChunk, arrow_frame, wrong_field_count
from tessera.core.errors import InputError


def _unreadable(path: Path, error: Exception) -> InputError:
    return InputError(
        f"file {str(path)!r} is not a readable Excel workbook ({type(error).__name__}: {error}); expected "
        ".xlsx, .xlsm, .xlsb, .xls or .ods"
    )


def _workbook(path: Path) -> CalamineWorkbook:
    try:
        return CalamineWorkbook.from_path(str(path))
    except (CalamineError, OSError, ValueError) as error:
        raise _unreadable(path, error) from None


def _sheet_rows(
    workbook: CalamineWorkbook, path: Path, sheet: str, nrows: int | None = None
) -> list[list[Any]]:
    """The sheet's cells, row by row (the empty area around the data left out)."""
    try:
        return workbook.get_sheet_by_name(sheet).to_python(skip_empty_area=True, nrows=nrows)
    except (CalamineError, ValueError) as error:
        raise _unreadable(path, error) from None


def sheets(path: Path, source: SourceConfig, workbook: CalamineWorkbook) -> list[str]:
    """The sheets the source reads, in order: `sheet` (a name, several, or "*"), else the first."""
    names = list(workbook.sheet_names)
    if source.sheet is None:
        return names[:1]
    if source.sheet == ALL_SHEETS:
        return names
    wanted = [source.sheet] if isinstance(source.sheet, str) else list(source.sheet)
    missing = [name for name in wanted if name not in names]
    if missing:
        raise InputError(
            f"file {str(path)!r} has no sheet {', '.join(map(repr, missing))}; expected one of its sheets: "
            f"{', '.join(map(repr, names))}"
        )
    return wanted


def several_sheets(source: SourceConfig) -> bool:
    """Whether the source may read more than one sheet (each then counts as a file of its own)."""
    return source.file_format == "excel" and (source.sheet == ALL_SHEETS or isinstance(source.sheet, list))


def _label(path: Path, sheet: str) -> str:
    return f"{path} [sheet {sheet}]"


def _letters(position: int) -> str:
    """The spreadsheet's name of the column at 0-based `position`: A, B, ..., Z, AA, ..."""
    name = ""
    position += 1
    while position:
        position, rest = divmod(position - 1, 26)
        name = string.ascii_uppercase[rest] + name
    return name


def _names(first: list[Any], path: Path, sheet: str) -> list[str]:
    """The header row's names, trimmed; a column without a name is called by its letter (F)."""
    names = [_text(cell, ".") or _letters(i) for i, cell in enumerate(first)]
    names = [name.strip() for name in names]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise InputError(
            f"file {_label(path, sheet)!r}: the header repeats column(s) {', '.join(duplicates)}; expected unique "
            "names"
        )
    return names


def excel_columns(path: Path, source: SourceConfig) -> dict[str, list[str]]:
    """Each read sheet's column names (the header row, or the mapping's `column_names`), keyed by its label."""
    found = {}
    workbook = _workbook(path)
    for sheet in sheets(path, source, workbook):
        if not source.header:
            found[_label(path, sheet)] = list(source.column_names or [])
            continue
        rows = _sheet_rows(workbook, path, sheet, nrows=1)
        found[_label(path, sheet)] = _names(rows[0] if rows else [], path, sheet)
    return found


def _blank(cell: Any) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def _text(cell: Any, decimal: str) -> str | None:
    """A cell as the text a CSV export would hold."""
    if _blank(cell):
        return None
    if isinstance(cell, bool):
        return "true" if cell else "false"
    if isinstance(cell, float):
        written = str(int(cell)) if cell.is_integer() and abs(cell) < 2**53 else repr(cell)
        return written.replace(".", decimal) if decimal != "." else written
    if isinstance(cell, dt.datetime):
        return cell.isoformat(sep=" ")
    if isinstance(cell, dt.date | dt.time):
        return cell.isoformat()
    return str(cell)


def _at_midnight(cell: dt.date) -> dt.datetime:
    return cell if isinstance(cell, dt.datetime) else dt.datetime(cell.year, cell.month, cell.day)


def _column(cells: list[Any], decimal: str) -> pa.Array:
    """One column: timestamps when every filled cell is a date-time (or a date among them), dates when every one
    is a date, else the text each cell would have in a CSV export. Numbers are text, as a CSV's are: a column of
    numbers in one sheet and numbers and codes in another reads alike, so a row repeated across them is one."""
    kinds = {type(cell) for cell in cells if not _blank(cell)}
    if dt.datetime in kinds and kinds <= {dt.datetime, dt.date}:  # calamine gives a midnight as a date
        return pa.array([None if _blank(cell) else _at_midnight(cell) for cell in cells], pa.timestamp("us"))
    if kinds == {dt.date}:
        return pa.array([None if _blank(cell) else cell for cell in cells], pa.date32())
    return pa.array([_text(cell, decimal) for cell in cells], pa.large_string())


def _sheet_chunks(
    rows: list[list[Any]], path: Path, sheet: str, source: SourceConfig, chunk_rows: int, first_row: int
) -> Iterator[RawChunk]:
    if source.header:
        names, rows = _names(rows[0] if rows else [], path, sheet), rows[1:]
    else:
        names = list(source.column_names or [])
    rows = [row for row in rows if not all(_blank(cell) for cell in row)]
    # Only with `column_names` can a row have a filled cell beyond the named columns (a header names every column
    # of the sheet's area): such a row cannot be read.
    beyond = [] if source.header else [row[len(names) :] for row in rows]
    filled = [
        len(names) + max((i + 1 for i, cell in enumerate(rest) if not _blank(cell)), default=0)
        for rest in beyond
    ]
    fits = np.array([width <= len(names) for width in filled] if beyond else [True] * len(rows), dtype=bool)
    table = pa.table(
        {
            name: _column([row[i] if i < len(row) else None for row in rows], source.decimal)
            for i, name in enumerate(names)
        }
    )
    label = _label(path, sheet)
    for start in range(0, len(rows), chunk_rows):
        stop = min(start + chunk_rows, len(rows))
        good = np.flatnonzero(fits[start:stop]) + start
        bad = np.flatnonzero(~fits[start:stop]) + start
        frame = arrow_frame(table.take(pa.array(good)), 0)
        frame.index = pd.Index(good + first_row, name="source_row")
        rejected = rejected_lines(
            [int(i) + first_row for i in bad],
            [wrong_field_count(int(i) + first_row, filled[i], len(names)) for i in bad],
            ["\t".join(_text(cell, ".") or "" for cell in rows[i]) for i in bad],
        )
        yield RawChunk(frame, rejected, label, stop - start)


def excel_chunks(path: Path, source: SourceConfig, chunk_rows: int, first_row: int) -> Iterator[RawChunk]:
    """The read sheets of an Excel export in chunks of `chunk_rows` rows; data rows count on across sheets."""
    workbook = _workbook(path)
    for sheet in sheets(path, source, workbook):
        rows = _sheet_rows(workbook, path, sheet)
        for chunk in _sheet_chunks(rows, path, sheet, source, chunk_rows, first_row):
            first_row += chunk.rows_read
            yield chunk
