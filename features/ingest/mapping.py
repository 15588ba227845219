"""The sources mapping file (`sources.yaml`, see docs/sources.md): its models and every check that needs no data.

A mapping that cannot work raises `InputError` naming the mapping file (and the line, where the problem
sits on one), the source and what was expected, before any data is read. Checks that need the export
itself (do the named columns exist?) live with the readers. `connection` strings keep their `${VAR}`
placeholders here; they are expanded only when a reader connects, so the secrets they hold never reach a
model, a log line or a report.
"""

from __future__ import annotations

import codecs
import os
import re
from collections.abc import Callable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd
import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, PrivateAttr, Tag, ValidationError

from features.ingest.expressions import FORMS, Concat, Expression, Extract, Formula
from features.ingest.parse import ParseOptions, parse_values
from tessera.core.canonical import (
    CHANNELS,
    CONSENT_PURPOSES,
    CONSENT_STATUSES,
    EMAIL_EVENT_TYPES,
    IDENTIFIER_TYPES,
    LINE_TYPES,
    META_COLUMNS,
    SOURCE_TYPES,
    TICKET_CHANNELS,
    WEB_EVENT_TYPES,
    Column,
)
from tessera.core.errors import InputError

FORMATS = ("csv", "parquet", "jsonl", "excel")
_SUFFIX_FORMATS = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet"}
_SUFFIX_FORMATS |= {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}
_SUFFIX_FORMATS |= {suffix: "excel" for suffix in (".xlsx", ".xlsm", ".xlsb", ".xls", ".ods")}
# A compressed text export (`orders.csv.gz`) has the format of the suffix before it; read as it is decompressed.
COMPRESSED_SUFFIXES = (".gz", ".bz2", ".zst", ".lz4")
# The `sheet` of an Excel source that reads every sheet of the workbook, in the workbook's order.
ALL_SHEETS = "*"
RETURN_RULES = ("negative_quantity", "flag", "id_prefix")
CANCELLATION_RULES = ("flag", "id_prefix")
# The `delimiter` of an export whose fields are separated by runs of blanks.
WHITESPACE = "whitespace"
# The values a column allows, per source type (after the mapping's `values`; compared in lower case).
ALLOWED_VALUES: dict[tuple[str, str], tuple[str, ...]] = {
    ("order_lines", "channel"): CHANNELS,
    ("order_lines", "line_type"): LINE_TYPES,
    ("web_events", "event_type"): WEB_EVENT_TYPES,
    ("email_events", "event_type"): EMAIL_EVENT_TYPES,
    ("support_tickets", "channel"): TICKET_CHANNELS,
    ("consents", "identifier_type"): IDENTIFIER_TYPES,
    ("consents", "purpose"): CONSENT_PURPOSES,
    ("consents", "status"): CONSENT_STATUSES,
}
# Columns whose values must lie in a closed range.
VALUE_RANGES: dict[tuple[str, str], tuple[float, float]] = {("support_tickets", "satisfaction"): (1, 5)}
PRICE_COLUMNS = ("unit_price", "price")
# Builds the InputError for a problem of the source being checked (and the key it concerns, for its line).
Fail = Callable[..., InputError]
# Where each key of a mapping file starts: (sources, 0, columns, sku) -> line.
Lines = Mapping[tuple[str | int, ...], int]
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_ENV_VAR = re.compile(r"\$\{([^}]*)\}")


class _YamlLoader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true/false, so `yes`, `no`, `on`, `off` stay text (`values: {on: granted}`)."""


_BOOL_TAG = "tag:yaml.org,2002:bool"
_YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != _BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_YamlLoader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _as_text(value: Any) -> Any:
    """YAML reads `1`, `true` and `2024-01-01` as numbers, booleans and dates; the mapping means text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value


Text = Annotated[str, BeforeValidator(_as_text)]


def _column_form(value: Any) -> str | None:
    """Which form a `columns` value is: an export column's name, or the expression its one key names."""
    if not isinstance(value, dict):
        return "column"
    found = [key for key in FORMS if key in value]
    return found[0] if len(found) == 1 else None


_COLUMN_INPUT = (
    "expected the export's column name, or a mapping with exactly one of the keys concat, formula, extract"
)
# What feeds a canonical column: the export's column, or an expression over its columns (expressions.py).
ColumnInput = Annotated[
    Annotated[Text, Tag("column")]
    | Annotated[Concat, Tag("concat")]
    | Annotated[Formula, Tag("formula")]
    | Annotated[Extract, Tag("extract")],
    Discriminator(_column_form, custom_error_type="column_input", custom_error_message=_COLUMN_INPUT),
]


class LineRule(BaseModel):
    """How a return or a cancellation line is marked in an order-lines export."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    by: str
    column: Text | None = None
    values: list[Text] = []
    prefix: Text | None = None

    @property
    def id_column(self) -> str:
        """The canonical column an id_prefix rule reads (default order_id)."""
        return self.column or "order_id"


class SourceConfig(BaseModel):
    """One declared source: where its rows come from and how its columns map to the canonical ones."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Text
    type: str
    path: Text | None = None
    format: str | None = None
    sheet: Text | list[Text] | None = None  # excel only: a sheet's name, several, or "*"; default the first
    encoding: str = "utf-8"
    delimiter: Text = ","  # one character, or `whitespace` for fields separated by runs of blanks
    quotechar: Text | None = '"'
    header: bool = True  # false: the first line is data, and `column_names` names the fields
    column_names: list[Text] | None = None
    decimal: Text = "."
    timezone: str = "UTC"
    date_formats: list[Text] = []
    id_namespace: Text | None = None
    columns: dict[str, ColumnInput] = {}
    constants: dict[str, Text] = {}
    values: dict[str, dict[Text, Text]] = {}
    returns: LineRule | None = None
    cancellations: LineRule | None = None
    query: str | None = None
    connection: str | None = None

    @property
    def namespace(self) -> str:
        """The id scheme of `customer_ref`: `id_namespace`, or the source's name."""
        return self.id_namespace or self.name

    @property
    def file_format(self) -> str:
        """csv, parquet, jsonl or excel: the declared format, else the one the path's suffix names (the suffix
        before a compression suffix such as `.gz` for a compressed text export)."""
        if self.format:
            return self.format
        suffixes = [suffix.lower() for suffix in Path(self.path or "").suffixes]
        if len(suffixes) > 1 and suffixes[-1] in COMPRESSED_SUFFIXES:
            found = _SUFFIX_FORMATS.get(suffixes[-2], "")
            return found if found in ("csv", "jsonl") else ""
        return _SUFFIX_FORMATS.get(suffixes[-1] if suffixes else "", "")

    @property
    def parse_options(self) -> ParseOptions:
        """How this source writes numbers and times."""
        return ParseOptions(
            decimal=self.decimal, timezone=self.timezone, date_formats=tuple(self.date_formats)
        )

    def canonical_columns(self) -> tuple[Column, ...]:
        """The canonical columns of this source's type."""
        return SOURCE_TYPES[self.type]

    def expressions(self) -> dict[str, Expression]:
        """The canonical columns built by an expression, and their expressions."""
        return {name: value for name, value in self.columns.items() if not isinstance(value, str)}

    def input_columns(self) -> list[str]:
        """The export's columns that feed canonical columns, directly or through an expression."""
        found = [name for value in self.columns.values() for name in _inputs(value)]
        return list(dict.fromkeys(found))

    def flag_columns(self) -> list[str]:
        """The retailer's columns the returns/cancellations rules read."""
        rules = (self.returns, self.cancellations)
        return [rule.column for rule in rules if rule is not None and rule.by == "flag" and rule.column]


def _inputs(value: str | Expression) -> list[str]:
    return [value] if isinstance(value, str) else value.inputs


class SourcesConfig(BaseModel):
    """A whole `sources.yaml`: its version and its sources, plus where the file lives."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1]
    sources: list[SourceConfig]
    path: Path
    _lines: Lines = PrivateAttr(default_factory=dict)

    @property
    def folder(self) -> Path:
        """Relative source paths are read from here."""
        return self.path.resolve().parent

    def where(self, source: SourceConfig, *keys: str | int) -> str:
        """`<mapping file>, line <n>` for a key of a source (the line of its nearest enclosing key known)."""
        index = next(i for i, s in enumerate(self.sources) if s.name == source.name)
        return _where(self.path, self._lines, ("sources", index, *keys))


def _key_lines(node: yaml.Node, path: tuple[str | int, ...] = ()) -> dict[tuple[str | int, ...], int]:
    """The 1-based line of every key and list item under a composed YAML node."""
    lines: dict[tuple[str | int, ...], int] = {}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            here = (*path, str(key.value))
            lines[here] = key.start_mark.line + 1
            lines.update(_key_lines(value, here))
    elif isinstance(node, yaml.SequenceNode):
        for position, item in enumerate(node.value):
            here = (*path, position)
            lines[here] = item.start_mark.line + 1
            lines.update(_key_lines(item, here))
    return lines


def _where(mapping_path: Path, lines: Lines, loc: tuple[str | int, ...]) -> str:
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return f"{mapping_path}, line {lines[loc[:end]]}"
    return str(mapping_path)


def load_sources(mapping_path: Path) -> SourcesConfig:
    """Read and check a sources mapping file, raising `InputError` for anything that cannot work."""
    mapping_path = Path(mapping_path)
    try:
        text = mapping_path.read_text(encoding="utf-8")
        document = yaml.load(text, Loader=_YamlLoader)
        root = yaml.compose(text, Loader=_YamlLoader)
    except FileNotFoundError:
        raise InputError(f"{mapping_path}: the sources mapping file does not exist") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise InputError(f"{mapping_path}: cannot read the sources mapping: {error}") from None
    if not isinstance(document, dict):
        raise InputError(f"{mapping_path}: expected a mapping with `version: 1` and a `sources:` list")
    lines = _key_lines(root) if root is not None else {}
    try:
        config = SourcesConfig.model_validate({**document, "path": mapping_path})
    except ValidationError as error:
        raise InputError(_describe(mapping_path, document, lines, error)) from None
    config._lines = lines
    if not config.sources:
        raise InputError(f"{mapping_path}: `sources` is empty; expected at least one source")
    seen: set[str] = set()
    for source in config.sources:
        if source.name in seen:
            raise InputError(
                f"{mapping_path}: source {source.name!r} is declared twice; source names must be unique"
            )
        seen.add(source.name)
        check_source(source, config)
    return config


def _describe(mapping_path: Path, document: dict, lines: Lines, error: ValidationError) -> str:
    """The first pydantic error, said in the mapping's own terms."""
    problem = error.errors()[0]
    loc = list(problem["loc"])
    message = problem["msg"]
    # The form pydantic tried for a `columns` value: a level of its own in `loc`, none in the YAML.
    form = loc.pop(4) if len(loc) >= 5 and loc[0] == "sources" and loc[2] == "columns" else None
    if form in FORMS:
        model: type[BaseModel] = FORMS[str(form)]
    elif len(loc) >= 3 and loc[0] == "sources":
        model = SourceConfig if len(loc) == 3 else LineRule
    else:
        model = SourcesConfig
    if form == "column":
        message = _COLUMN_INPUT
    at = _where(mapping_path, lines, tuple(loc))
    where = ""
    if len(loc) >= 2 and loc[0] == "sources" and isinstance(loc[1], int):
        raw = (document.get("sources") or [])[loc[1]]
        name = raw.get("name") if isinstance(raw, dict) else None
        where = f"source {name!r}: " if name else f"source #{loc[1] + 1}: "
        loc = loc[2:]
    key = ".".join(str(part) for part in loc)
    if problem["type"] == "value_error":
        message = str(problem["ctx"]["error"])
    if problem["type"] == "extra_forbidden":
        keys = [k for k in model.model_fields if model is not SourcesConfig or k != "path"]
        message = f"unknown key; expected one of {', '.join(keys)}"
    return f"{at}: {where}`{key}`: {message}"


def check_source(source: SourceConfig, config: SourcesConfig) -> None:
    """Every check of one source that needs no data; raises `InputError` naming file, source and expectation."""

    def fail(problem: str, *keys: str) -> InputError:
        return InputError(f"{config.where(source, *keys)}: source {source.name!r}: {problem}")

    if not _NAME.match(source.name):
        raise fail("a source name may hold only letters, digits, '_', '.' and '-' (it names files)")
    if source.type not in SOURCE_TYPES:
        raise fail(f"unknown source type {source.type!r}; expected one of: {', '.join(SOURCE_TYPES)}")
    if source.id_namespace is not None and not _NAME.match(source.id_namespace):
        raise fail("`id_namespace` may hold only letters, digits, '_', '.' and '-'")
    _check_origin(source, fail)
    _check_text_options(source, fail)
    _check_columns(source, fail)
    _check_rules(source, fail)


# What to write for a required column an export commonly lacks (docs/sources.md, "Orders without products").
_MISSING_HINTS = {
    "unit_price": 'an export without amounts sets `unit_price: "0"` in `constants` (a line total: a formula, '
    '`{formula: "Total / Qty"}`)',
    "quantity": 'an export without counts sets `quantity: "1"` in `constants`',
    "order_id": 'an export without order numbers builds one, e.g. `{concat: [Customer, Date], separator: "-"}`',
}


def _check_origin(source: SourceConfig, fail: Fail) -> None:
    if (source.path is None) == (source.query is None):
        raise fail("expected exactly one of `path` (a file export) or `query` (a SQL source)")
    if source.query is not None:
        if not source.connection:
            raise fail(
                "a `query` source needs a `connection`: `duckdb` (the export's own files, joined in DuckDB) or an "
                "SQLAlchemy URL (write secrets as ${VAR})"
            )
        for variable in _ENV_VAR.findall(source.connection):
            if not variable or variable not in os.environ:
                raise fail(f"environment variable {variable!r} used in `connection` is not set")
        return
    if source.connection is not None:
        raise fail("`connection` belongs to a `query` source; a `path` source reads a file")
    if source.file_format not in FORMATS:
        stated = (
            f"unknown format {source.format!r}"
            if source.format
            else f"cannot tell the format of {source.path!r}"
        )
        raise fail(f"{stated}; expected `format:` one of {', '.join(FORMATS)}")
    if source.sheet is not None and source.file_format != "excel":
        raise fail("`sheet` names a sheet of an Excel workbook; this source is not `format: excel`")


def _check_text_options(source: SourceConfig, fail: Fail) -> None:
    try:
        codecs.lookup(source.encoding)
    except LookupError:
        raise fail(
            f"unknown encoding {source.encoding!r}; expected a Python codec name such as utf-8 or latin-1"
        ) from None
    if len(source.delimiter) != 1 and source.delimiter != WHITESPACE:
        raise fail(f"`delimiter` {source.delimiter!r} must be one character, or `whitespace`")
    if not source.header and not source.column_names:
        raise fail("`header: false` needs `column_names`, the export's fields in order")
    if source.header and source.column_names:
        raise fail("`column_names` is for an export without a header; add `header: false` or remove it")
    if source.quotechar is not None and len(source.quotechar) != 1:
        raise fail(f"`quotechar` {source.quotechar!r} must be one character, or null for no quoting")
    if source.decimal not in (".", ","):
        raise fail(f"`decimal` {source.decimal!r}: expected '.' or ','")
    try:
        ZoneInfo(source.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise fail(
            f"unknown timezone {source.timezone!r}; expected an IANA name such as Europe/London"
        ) from None
    for fmt in source.date_formats:
        if "%" not in fmt:
            raise fail(f"date format {fmt!r} has no % directive; expected e.g. '%d/%m/%Y %H:%M'")


def _check_columns(source: SourceConfig, fail: Fail) -> None:
    known = {column.name: column for column in source.canonical_columns()}
    meta = {column.name for column in META_COLUMNS}

    def check_name(name: str, key: str) -> Column:
        if name in meta:
            raise fail(f"`{key}`: {name!r} is added by ingestion and cannot be mapped", key, name)
        if name in known and known[name].derived:
            raise fail(
                f"`{key}`: {name!r} is computed by ingestion and cannot be mapped; {known[name].doc}",
                key,
                name,
            )
        if name not in known:
            raise fail(
                f"`{key}`: unknown canonical column {name!r} for {source.type}; expected one of: {', '.join(known)}",
                key,
                name,
            )
        return known[name]

    for name, retailer in source.columns.items():
        column = check_name(name, "columns")
        if isinstance(retailer, str) and not retailer.strip():
            raise fail(
                f"`columns.{name}` is empty; expected the name of the export's column", "columns", name
            )
        if isinstance(retailer, Formula) and column.kind not in ("float", "int"):
            raise fail(
                f"`columns.{name}`: a formula gives a number, but {name} is {column.kind}; "
                "expected concat or extract for a text or date column",
                "columns",
                name,
            )
    for name, value in source.constants.items():
        column = check_name(name, "constants")
        if name in source.columns:
            raise fail(f"{name!r} is both mapped in `columns` and set in `constants`; expected one of them")
        _check_constant(source, column, value, fail)
    for name in source.values:
        check_name(name, "values")
        if name not in source.columns and name not in source.constants:
            raise fail(f"`values.{name}`: the column is neither mapped in `columns` nor set in `constants`")
    missing = [
        c.name
        for c in known.values()
        if c.required and c.name not in source.columns and c.name not in source.constants
    ]
    if missing:
        hints = "".join(f"; {_MISSING_HINTS[name]}" for name in missing if name in _MISSING_HINTS)
        raise fail(
            f"required canonical column(s) {', '.join(missing)} have no mapping; expected them in `columns` or `constants`"
            + hints
        )


def _check_constant(source: SourceConfig, column: Column, value: str, fail: Fail) -> None:
    """A constant must be a value its column accepts, or every row would be quarantined."""
    value = source.values.get(column.name, {}).get(value, value)
    parsed = parse_values(pd.Series([value]), column.kind, source.parse_options)
    if parsed.bad.iloc[0] or parsed.values.isna().iloc[0]:
        raise fail(f"`constants.{column.name}` {value!r} is not valid; expected {parsed.expected}")
    allowed = ALLOWED_VALUES.get((source.type, column.name))
    if allowed and value.strip().lower() not in allowed:
        raise fail(
            f"`constants.{column.name}` {value!r} is not allowed; expected one of {', '.join(allowed)}"
        )


def _check_rules(source: SourceConfig, fail: Fail) -> None:
    for key, rule, kinds in (
        ("returns", source.returns, RETURN_RULES),
        ("cancellations", source.cancellations, CANCELLATION_RULES),
    ):
        if rule is None:
            continue
        if source.type != "order_lines":
            raise fail(f"`{key}` applies to order_lines only, not to {source.type}")
        if rule.by not in kinds:
            raise fail(f"`{key}.by` {rule.by!r}: expected one of {', '.join(kinds)}")
        if rule.by == "negative_quantity" and (rule.column or rule.values or rule.prefix):
            raise fail(f"`{key}` by negative_quantity takes no `column`, `values` or `prefix`")
        if rule.by == "flag" and (not rule.column or not rule.values or rule.prefix):
            raise fail(
                f"`{key}` by flag needs `column` (the export's column) and `values` (the flag values), no `prefix`"
            )
        if rule.by == "id_prefix":
            column = rule.id_column
            if not rule.prefix or rule.values:
                raise fail(f"`{key}` by id_prefix needs `prefix` (e.g. 'C-') and no `values`")
            kinds_of = {c.name: c.kind for c in source.canonical_columns()}
            if kinds_of.get(column) != "string" or column not in {**source.columns, **source.constants}:
                raise fail(
                    f"`{key}.column` {column!r}: expected a mapped canonical text column such as order_id"
                )


def expand_connection(source: SourceConfig) -> tuple[str, list[str]]:
    """The connection URL with `${VAR}` read from the environment, and the values it took (to mask them)."""
    secrets: list[str] = []

    def substitute(match: re.Match[str]) -> str:
        value = os.environ.get(match.group(1))
        if value is None:
            raise InputError(f"source {source.name!r}: environment variable {match.group(1)!r} is not set")
        secrets.append(value)
        return value

    return _ENV_VAR.sub(substitute, source.connection or ""), secrets
