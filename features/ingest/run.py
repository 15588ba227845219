"""Ingestion, the I/O edge: check every source against its export, then stream each into its canonical table.

Every source is checked (files exist, mapped columns exist, the database answers) before any table is
written. Each source is then written chunk by chunk to a temporary Parquet file renamed at the end, so
memory does not grow with the export and a failed run leaves the previous tables in place.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.ingest.excel import excel_chunks, excel_columns, several_sheets
from features.ingest.jsonl import jsonl_chunks, jsonl_columns
from features.ingest.manifest import content_hash, record_files
from features.ingest.mapping import SourceConfig, SourcesConfig, load_sources
from features.ingest.quarantine import QUARANTINE_SCHEMA, reason_kind
from features.ingest.readers import (
    RawChunk,
    csv_chunks,
    csv_columns,
    parquet_chunks,
    parquet_columns,
    resolve_files,
)
from features.ingest.repeats import RepeatedRows
from features.ingest.report import IngestReport, SourceReport
from features.ingest.sql import sql_chunks, sql_columns
from features.ingest.suppression import read_suppressed, suppressed_rows, suppression_salt
from features.ingest.transform import Canonical, canonical_schema, canonicalise
from tessera.core.canonical import national_id_columns
from tessera.core.errors import InputError
from tessera.core.progress import track
from tessera.core.settings import Settings, Workspace

log = logging.getLogger(__name__)
# JSON Lines has no header: its fields are those of the first objects (later new fields get a warning).
JSONL_SAMPLE_ROWS = 10_000


@dataclass(frozen=True)
class SourcePlan:
    """A source checked against its export: the files to read and the export's unmapped columns."""

    source: SourceConfig
    files: tuple[Path, ...]
    extra_columns: tuple[str, ...]
    folder: Path  # the sources file's folder: relative paths (of files, of a DuckDB query) start here


@contextmanager
def _about(config: SourcesConfig, source: SourceConfig) -> Iterator[None]:
    """Name the mapping file and the source in every input error raised inside."""
    try:
        yield
    except InputError as error:
        message = str(error)
        if not message.startswith(str(config.path)):
            message = f"{config.path}: source {source.name!r}: {message}"
        raise InputError(message) from None


def _export_columns(
    source: SourceConfig, files: tuple[Path, ...], sample_rows: int, folder: Path
) -> dict[str, list[str]]:
    """The columns of each export file (or of the query's result, keyed "query")."""
    if source.query is not None:
        return {"query": sql_columns(source, folder)}
    if source.file_format == "csv":
        return {str(path): csv_columns(path, source) for path in files}
    if source.file_format == "parquet":
        return {str(path): parquet_columns(path) for path in files}
    if source.file_format == "excel":
        return {label: names for path in files for label, names in excel_columns(path, source).items()}
    # JSON Lines has no header: a field may be absent from some objects, so the files count together.
    found = {name: None for path in files for name in jsonl_columns(path, source.encoding, sample_rows)}
    return {", ".join(str(p) for p in files): list(found)}


def plan_source(config: SourcesConfig, source: SourceConfig) -> SourcePlan:
    """Check a source against its export before anything is written."""
    with _about(config, source):
        files = tuple(resolve_files(source, config.folder)) if source.path is not None else ()
        found = _export_columns(source, files, JSONL_SAMPLE_ROWS, config.folder)
        inputs = source.input_columns()
        mapped = list(dict.fromkeys([*inputs, *source.flag_columns()]))
        for where, names in found.items():
            missing = [name for name in mapped if name not in names]
            if missing:
                what = "the query's result" if where == "query" else f"{where!r}"
                if source.file_format == "jsonl" and where != "query":
                    what += f" (first {JSONL_SAMPLE_ROWS:,} objects)"
                raise InputError(
                    f"{_first_use(config, source, missing[0])}column(s) {', '.join(map(repr, missing))} "
                    f"not found in {what}; expected one of the export's columns: {', '.join(names)}"
                )
        every = dict.fromkeys(name for names in found.values() for name in names)
        extras = tuple(name for name in every if name not in set(inputs))
        return SourcePlan(source, files, extras, config.folder)


def _first_use(config: SourcesConfig, source: SourceConfig, column: str) -> str:
    """Where the mapping first reads an export column: `<file>, line <n>: source ..: columns.<name> (<expression>): `."""
    for name, value in source.columns.items():
        if value == column or (not isinstance(value, str) and column in value.inputs):
            expression = "" if isinstance(value, str) else f" ({value.label})"
            return f"{config.where(source, 'columns', name)}: source {source.name!r}: `columns.{name}`{expression}: "
    return ""


def _chunks(plan: SourcePlan, chunk_rows: int) -> Iterator[RawChunk]:
    source = plan.source
    if source.query is not None:
        yield from sql_chunks(source, chunk_rows, plan.folder)
        return
    first_row = 1
    for path in plan.files:
        if source.file_format == "csv":
            chunks = csv_chunks(path, source, chunk_rows, first_row)
        elif source.file_format == "parquet":
            chunks = parquet_chunks(path, chunk_rows, first_row)
        elif source.file_format == "excel":
            chunks = excel_chunks(path, source, chunk_rows, first_row)
        else:
            chunks = jsonl_chunks(path, source.encoding, chunk_rows, first_row)
        for chunk in chunks:
            first_row += chunk.rows_read
            yield chunk


def _quarantine_table(rejected: pd.DataFrame, source: str, file: str | None) -> pa.Table:
    frame = rejected.assign(source=source, file=file)
    return pa.Table.from_pandas(
        frame[QUARANTINE_SCHEMA.names], schema=QUARANTINE_SCHEMA, preserve_index=False
    )


def _split(chunk: RawChunk, plan: SourcePlan, id_salt: str) -> Canonical:
    """A chunk canonicalised, with all its rejected rows (the reader's and the checks') in row order.

    A national id is kept only as its salted hash (and its neighbourhood's, `national_id_near`): a column
    mapped by name is hashed before anything reads it, so neither a canonical nor a quarantined row holds
    the raw id; one built by an expression is hashed as soon as it is computed.
    """
    if not len(chunk.frame):
        return Canonical(chunk.frame, chunk.rejected, [])
    frame = chunk.frame
    national_id = plan.source.columns.get("national_id")
    by_name = isinstance(national_id, str)
    near = None
    if by_name and national_id in frame.columns:
        hashed, near = national_id_columns(frame[national_id], id_salt)  # by source row, the frame's index
        frame = frame.assign(**{national_id: hashed})
    rows, rejected, blanked = canonicalise(frame, plan.source, plan.extra_columns)
    if near is not None:
        rows = rows.assign(national_id_near=near.reindex(rows["source_row"].to_numpy()).to_numpy())
    elif national_id is not None and "national_id" in rows.columns:
        hashed, near = national_id_columns(rows["national_id"], id_salt)
        rows = rows.assign(national_id=hashed, national_id_near=near)
    if len(chunk.rejected):
        rejected = (
            pd.concat([chunk.rejected, rejected]).sort_values("source_row")
            if len(rejected)
            else chunk.rejected
        )
    return Canonical(rows, rejected, blanked)


def ingest_source(
    plan: SourcePlan, workspace: Workspace, settings: Settings, suppressed: frozenset[str] = frozenset()
) -> SourceReport:
    """Stream one source into its canonical table and its quarantine; returns its accounting.

    Rows of an erased person (`suppressed`, the suppression list's hashes) are dropped and counted. A row of
    a later file that repeats one of an earlier file of the source (overlapping exports) is quarantined
    (`features.ingest.repeats`).
    """
    source = plan.source
    started = time.perf_counter()
    output = workspace.canonical_file(source.type, source.name)
    quarantine = workspace.quarantine_table(source.name)
    report = SourceReport(
        name=source.name,
        type=source.type,
        read_from=[str(p) for p in plan.files] or ["query"],
        output=str(output),
        quarantine=str(quarantine),
    )
    schema = canonical_schema(source.type, plan.extra_columns)
    known = set(source.input_columns()) | set(plan.extra_columns)
    reasons: Counter[str] = Counter()
    unknown: dict[str, None] = {}
    temporary = [output.with_name(output.name + ".tmp"), quarantine.with_name(quarantine.name + ".tmp")]
    for path in temporary:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with (
            pq.ParquetWriter(temporary[0], schema) as rows_out,
            pq.ParquetWriter(temporary[1], QUARANTINE_SCHEMA) as bad_out,
        ):
            several = len(plan.files) > 1 or several_sheets(source)
            repeats = RepeatedRows() if several else None  # overlapping exports
            for chunk in track(
                _chunks(plan, settings.ingest_chunk_rows), description=f"ingest {source.name}"
            ):
                report.rows_read += chunk.rows_read
                if repeats is not None:
                    chunk = repeats.split_off(chunk)
                unknown.update(dict.fromkeys(c for c in chunk.frame.columns if c not in known))
                rows, rejected, blanked = _split(chunk, plan, settings.id_salt)
                if suppressed and len(rows):
                    erased = suppressed_rows(rows, suppressed, suppression_salt(workspace, settings))
                    rows = rows[~erased]
                    report.rows_suppressed += int(erased.sum())
                for values in blanked:
                    report.count_blanked(values.field, values.kind, values.values, values.example)
                if len(rows):
                    rows_out.write_table(pa.Table.from_pandas(rows, schema=schema, preserve_index=False))
                    report.rows_loaded += len(rows)
                if len(rejected):
                    bad_out.write_table(_quarantine_table(rejected, source.name, chunk.file))
                    report.rows_quarantined += len(rejected)
                    reasons.update(reason_kind(reason) for reason in rejected["reason"])
        for path, final in zip(temporary, (output, quarantine), strict=True):
            os.replace(path, final)
    finally:
        for path in temporary:
            path.unlink(missing_ok=True)
    if unknown:
        report.warnings.append(
            f"field(s) first seen after the sampled rows were not kept: {', '.join(unknown)}"
        )
    report.reasons = dict(reasons.most_common())
    report.seconds = round(time.perf_counter() - started, 2)
    log.info("ingested %s: %s rows read in %.1f s", source.name, f"{report.rows_read:,}", report.seconds)
    return report


def _remove_stale(workspace: Workspace, written: set[Path]) -> list[str]:
    """Delete tables of sources the mapping no longer declares, so they cannot leak into later steps."""
    stale = [
        p
        for p in [*workspace.canonical.glob("*/*.parquet"), *workspace.quarantine.glob("*.parquet")]
        if p not in written
    ]
    for path in stale:
        path.unlink()
    return sorted(str(p) for p in stale)


def write_report(report: IngestReport, workspace: Workspace) -> None:
    """Write the report as `ingest.json` and its summary as `ingest.txt`."""
    workspace.reports.mkdir(parents=True, exist_ok=True)
    (workspace.reports / "ingest.json").write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
    (workspace.reports / "ingest.txt").write_text(report.summary() + "\n", encoding="utf-8")


def ingest_sources(mapping_path: Path, workspace: Workspace, settings: Settings) -> IngestReport:
    """Read every source `mapping_path` declares into the canonical tables and the quarantine; report the accounting."""
    started_at, started = datetime.now(UTC), time.perf_counter()
    config = load_sources(Path(mapping_path))
    plans = [plan_source(config, source) for source in config.sources]
    report = IngestReport(mapping=str(config.path), started_at=started_at)
    written: set[Path] = set()
    hashes: dict[Path, str] = {}
    suppressed = read_suppressed(workspace, settings)
    for plan in plans:
        with _about(config, plan.source):
            report.sources.append(ingest_source(plan, workspace, settings, suppressed))
        output = workspace.canonical_file(plan.source.type, plan.source.name)
        hashes[output] = content_hash(output)
        written |= {
            workspace.canonical_file(plan.source.type, plan.source.name),
            workspace.quarantine_table(plan.source.name),
        }
    report.removed = _remove_stale(workspace, written)
    record_files(workspace, hashes)
    report.seconds = round(time.perf_counter() - started, 2)
    write_report(report, workspace)
    return report
