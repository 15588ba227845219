"""SQL sources: a query's result read through SQLAlchemy in chunks, with a server-side cursor.

The connection URL is expanded from the environment only here, and every value it took from the
environment is masked in any error message, so a password never reaches a log or a report.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from features.ingest.mapping import SourceConfig, expand_connection
from features.ingest.quarantine import no_rejected_rows
from features.ingest.readers import RawChunk, arrow_frame
from tessera.core.errors import InputError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, CursorResult


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


def sql_columns(source: SourceConfig) -> list[str]:
    """The column names of the query's result (the query runs, no row is fetched)."""
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


def sql_chunks(source: SourceConfig, chunk_rows: int) -> Iterator[RawChunk]:
    """The query's rows in chunks of `chunk_rows`, typed as the database returns them."""
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
