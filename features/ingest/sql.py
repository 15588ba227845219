"""SQL sources: a query's result read in chunks, from a database through SQLAlchemy with a server-side cursor,
or from embedded DuckDB over the export's own files (`connection: duckdb`).

The connection URL is expanded from the environment only here, and every value it took from the
environment is masked in any error message, so a password never reaches a log or a report.

DuckDB is for an export that comes as several files to be joined (order headers and order items, a
customers file keyed by order): the query reads them with DuckDB's own functions (`read_csv`,
`read_parquet`, `read_json`), and a relative path in it is read from the sources file's folder.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from features.ingest.mapping import SourceConfig, expand_connection
from features.ingest.quarantine import no_rejected_rows
from features.ingest.readers import RawChunk, arrow_frame
from tessera.core.errors import InputError

if TYPE_CHECKING:
    import duckdb
    from sqlalchemy.engine import Connection, CursorResult

DUCKDB = "duckdb"  # the `connection` of a query run by embedded DuckDB


def _is_duckdb(source: SourceConfig) -> bool:
    """Whether the source's query runs in embedded DuckDB rather than through SQLAlchemy."""
    return (source.connection or "").strip().lower() == DUCKDB


def _mask(message: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret:
            message = message.replace(secret, "***")
    return message


@contextmanager
def _result(source: SourceConfig, chunk_rows: int) -> Iterator[CursorResult[Any]]:
    """The query's result, streamed from the server `chunk_rows` rows at a time."""
    # Imported here: every `tessera resolve` imports this package (its manifest), and SQLAlchemy alone
    # cost it about 0.3 s of CPU at start (`python -X importtime`, 2026-12-03).
    import sqlalchemy as sa

    url, secrets = expand_connection(source)
    try:
        engine = sa.create_engine(url)
    except (sa.exc.ArgumentError, ImportError) as error:
        raise InputError(
            f"`connection` is not a usable SQLAlchemy URL: {_mask(str(error), secrets)}"
        ) from None
    try:
        with engine.connect() as connection:
            yield _execute(connection, source, chunk_rows)
    except sa.exc.SQLAlchemyError as error:
        detail = _mask(str(getattr(error, "orig", None) or error), secrets).strip()
        raise InputError(f"the database connection or the query failed: {detail}") from None
    finally:
        engine.dispose()


def _execute(connection: Connection, source: SourceConfig, chunk_rows: int) -> CursorResult[Any]:
    import sqlalchemy as sa

    streaming = connection.execution_options(stream_results=True, yield_per=chunk_rows)
    return streaming.execute(sa.text(source.query or ""))


@contextmanager
def _duckdb(source: SourceConfig, folder: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB whose relative file paths are the sources file's folder; errors as input errors."""
    import duckdb

    connection = duckdb.connect(":memory:")
    try:
        connection.execute("SET file_search_path = ?", [str(folder)])
        yield connection
    except duckdb.Error as error:
        raise InputError(f"the DuckDB query failed: {error}") from None
    finally:
        connection.close()


def _duckdb_result(connection: duckdb.DuckDBPyConnection, source: SourceConfig) -> duckdb.DuckDBPyRelation:
    result = connection.sql(source.query or "")
    if result is None:
        raise InputError("the DuckDB query returns no rows: expected one SELECT (or a query ending in one)")
    return result


def sql_columns(source: SourceConfig, folder: Path) -> list[str]:
    """The column names of the query's result (the query is planned or run, no row is fetched)."""
    if _is_duckdb(source):
        with _duckdb(source, folder) as connection:
            names = list(_duckdb_result(connection, source).columns)
    else:
        with _result(source, 1) as result:
            names = list(result.keys())
            result.close()
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise InputError(
            f"the query returns column(s) {', '.join(duplicates)} more than once; expected unique names"
        )
    return names


def _arrow_column(values: tuple[Any, ...]) -> pa.Array:
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # A column of mixed Python types: keep each value's text.
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())


def sql_chunks(source: SourceConfig, chunk_rows: int, folder: Path) -> Iterator[RawChunk]:
    """The query's rows in chunks of `chunk_rows`, typed as the database returns them."""
    if _is_duckdb(source):
        yield from _duckdb_chunks(source, chunk_rows, folder)
        return
    first_row = 1
    with _result(source, chunk_rows) as result:
        names = list(result.keys())
        for rows in result.partitions(chunk_rows):
            columns = list(zip(*rows, strict=True))
            table = pa.table(
                {name: _arrow_column(values) for name, values in zip(names, columns, strict=True)}
            )
            yield RawChunk(arrow_frame(table, first_row), no_rejected_rows(), None, len(rows))
            first_row += len(rows)


def _duckdb_chunks(source: SourceConfig, chunk_rows: int, folder: Path) -> Iterator[RawChunk]:
    first_row = 1
    with _duckdb(source, folder) as connection:
        for batch in _duckdb_result(connection, source).to_arrow_reader(chunk_rows):
            if batch.num_rows:
                yield RawChunk(
                    arrow_frame(pa.Table.from_batches([batch]), first_row),
                    no_rejected_rows(),
                    None,
                    batch.num_rows,
                )
                first_row += batch.num_rows
