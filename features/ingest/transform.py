"""Pure steps from one chunk of a retailer's export to canonical rows and rejected rows.

The input frame holds the export's columns as read (text, or typed for Parquet and SQL) with the 1-based
data row as its index. A bad value in a required column rejects its row; one in an optional column is
blanked and counted, and the row is kept. Every step is vectorised; Python loops run only over the
rejected rows.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial, reduce
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.ingest.expressions import Expression, Formula
from features.ingest.mapping import ALLOWED_VALUES, PRICE_COLUMNS, VALUE_RANGES, LineRule, SourceConfig
from features.ingest.parse import (
    PANDAS_DTYPES,
    TEXT,
    Parsed,
    as_text,
    parse_values,
    repeated_text,
    text_series,
    whole_number_text,
)
from features.ingest.quarantine import no_rejected_rows, raw_json, reason_kind, rejected_rows
from tessera.core.canonical import META_COLUMNS, Column, Kind, columns

ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "date": pa.date32(),
    "float": pa.float64(),
    "int": pa.int64(),
    "bool": pa.bool_(),
}
_NOUNS = {"timestamp": "date", "date": "date", "float": "number", "int": "number", "bool": "boolean"}
# Optional columns whose bad value still rejects the row: blanking it would change what the row means.
ROW_DEFINING = {("order_lines", "line_type")}
# Person columns that single out a person. A country, city, postcode, region, gender, birth date or an
# address without a name is shared by many people: a row with only those is anonymous (docs/sources.md).
IDENTIFYING_COLUMNS = ("first_name", "middle_name", "last_name", "full_name", "email", "phone", "national_id")


def canonical_schema(source_type: str, extra_columns: Sequence[str] = ()) -> pa.Schema:
    """The Parquet schema of a canonical table: the type's columns, the meta columns, then `x_<column>` text."""
    fields = [pa.field(c.name, ARROW_TYPES[c.kind]) for c in (*columns(source_type), *META_COLUMNS)]
    return pa.schema(fields + [pa.field(f"x_{name}", pa.string()) for name in extra_columns])


@dataclass(frozen=True)
class Blanked:
    """Values of one field blanked for one kind of reason in the rows a chunk kept, with the first reason."""

    field: str
    kind: str
    values: int
    example: str


class Canonical(NamedTuple):
    """One chunk canonicalised: its rows, its rejected rows and the optional values it blanked."""

    rows: pd.DataFrame
    rejected: pd.DataFrame
    blanked: list[Blanked]


Message = Callable[[str], str]


class _Verdicts:
    """The first reason each row is rejected for, the retailer's field it concerns, and the blanked values."""

    def __init__(self, index: pd.Index) -> None:
        self.open = np.ones(len(index), dtype=bool)
        self.reason = np.full(len(index), None, dtype=object)
        self.field = np.full(len(index), None, dtype=object)
        self.blanks: list[tuple[np.ndarray, str, Callable[[], pd.Series], Message]] = []

    def add(
        self, mask: pd.Series, field: str, text: Callable[[], pd.Series], message: Callable[[str], str]
    ) -> None:
        """Reject the rows of `mask` not rejected yet; `text()` gives the values to quote in the reason."""
        new = mask.to_numpy(dtype=bool, na_value=False) & self.open
        if not new.any():
            return
        self.reason[new] = [message(value) for value in text()[new].astype(object)]
        self.field[new] = field
        self.open &= ~new

    def blank(self, mask: np.ndarray, field: str, text: Callable[[], pd.Series], message: Message) -> None:
        """Note values of an optional field blanked for one reason; counted once the kept rows are known."""
        if mask.any():
            self.blanks.append((mask, field, text, message))

    def blanked(self) -> list[Blanked]:
        """The blanked values of the rows that were not rejected, per field and reason."""
        found = []
        for mask, field, text, message in self.blanks:
            kept = mask & self.open
            if kept.any():
                example = message(str(text()[kept].iloc[0]))
                found.append(Blanked(field, reason_kind(example), int(kept.sum()), example))
        return found


def _empty(kind: Kind, index: pd.Index) -> pd.Series:
    return pd.Series(None, index=index, dtype=PANDAS_DTYPES[kind])  # type: ignore[call-overload]


def _raw(raw: pd.DataFrame, name: str) -> pd.Series:
    """An export column of the chunk; all missing when this chunk lacks it (a JSON field not yet seen)."""
    return raw[name] if name in raw.columns else pd.Series(None, index=raw.index, dtype=TEXT)


# An ISO 8601 date or time whose year pandas' nanosecond timestamps cannot hold (they span 1677-09-21 to
# 2262-04-11): well-formed, so "unparseable" would be the wrong reason.
_ISO_YEAR = re.compile(r"^\s*([+-]?\d{4,})-\d{2}-\d{2}")
_YEARS = (1678, 2261)


def _unparseable(kind: Kind, field: str, expected: str) -> Message:
    noun = _NOUNS.get(kind, "value")

    def message(value: str) -> str:
        year = _ISO_YEAR.match(value) if noun == "date" else None
        if year and not _YEARS[0] <= int(year.group(1)) <= _YEARS[1]:
            return f"date out of range '{value}' in column '{field}'; expected a year from {_YEARS[0]} to {_YEARS[1]}"
        return f"unparseable {noun} '{value}' in column '{field}'; expected {expected}"

    return message


class _Checks:
    """The checks of one canonical column: a failed one rejects the row (required column) or blanks the value."""

    def __init__(self, source: SourceConfig, column: Column, verdicts: _Verdicts, index: pd.Index) -> None:
        self.column = column.name
        self.rejects = column.required or (source.type, column.name) in ROW_DEFINING
        self.verdicts = verdicts
        self.blanked = np.zeros(len(index), dtype=bool)

    def fail(self, mask: pd.Series, field: str, text: Callable[[], pd.Series], message: Message) -> None:
        """The rows of `mask` failed a check of `field`; `text()` gives the values to quote."""
        if self.rejects:
            self.verdicts.add(mask, field, text, message)
            return
        failed = mask.to_numpy(dtype=bool, na_value=False)
        self.verdicts.blank(failed & ~self.blanked, field, text, message)
        self.blanked |= failed


def _evaluate(raw: pd.DataFrame, source: SourceConfig, expression: Expression, checks: _Checks) -> pd.Series:
    """An expression over the chunk; its inputs are read as its input kind first, bad inputs checked."""
    inputs = {}
    for name in expression.inputs:
        series = _raw(raw, name)
        parsed = parse_values(series, expression.input_kind, source.parse_options)
        checks.fail(
            parsed.bad,
            name,
            partial(as_text, series),
            _unparseable(expression.input_kind, name, parsed.expected),
        )
        inputs[name] = parsed.values
    result = expression.evaluate(inputs, raw.index)
    if isinstance(expression, Formula):
        _check_finite(raw, expression, inputs, result, checks)
    return result


def _check_finite(
    raw: pd.DataFrame,
    formula: Formula,
    inputs: dict[str, pd.Series],
    result: pd.Series,
    checks: _Checks,
) -> None:
    """A formula whose inputs are all there but whose result is not a number (a division by zero, `0 / 0`, an
    overflow) fails its column with that reason, quoting the inputs, not as an empty value."""
    present = np.logical_and.reduce([inputs[name].notna().to_numpy() for name in formula.inputs])
    undefined = result.isna().to_numpy() & present
    if not undefined.any():
        return

    def quoted() -> pd.Series:
        text = pd.Series(None, index=raw.index, dtype=object)
        parts = [
            name + " '" + as_text(_raw(raw, name))[undefined].astype(str) + "'" for name in formula.inputs
        ]
        text[undefined] = reduce(lambda left, right: left + ", " + right, parts)
        return text

    checks.fail(
        pd.Series(undefined, index=raw.index),
        formula.label,
        quoted,
        lambda values: (
            f"division by zero or overflow: formula '{formula.label}' ({checks.column}) of {values}; "
            "expected a non-zero divisor"
        ),
    )


def _input(
    raw: pd.DataFrame, source: SourceConfig, name: str, checks: _Checks
) -> tuple[pd.Series, str] | None:
    """The values feeding a canonical column and how the retailer names them, or None when unmapped."""
    mapped = source.columns.get(name)
    if isinstance(mapped, str):
        return _raw(raw, mapped), mapped
    if mapped is not None:
        return _evaluate(raw, source, mapped, checks), mapped.label
    if name in source.constants:
        return repeated_text(source.constants[name], raw.index), f"constants.{name}"
    return None


def _parse_column(raw: pd.DataFrame, source: SourceConfig, column: Column, verdicts: _Verdicts) -> pd.Series:
    """One canonical column: mapped, translated by `values`, parsed and checked; reasons go to `verdicts`."""
    checks = _Checks(source, column, verdicts, raw.index)
    found = _input(raw, source, column.name, checks)
    if found is None:
        return _empty(column.kind, raw.index)
    series, field = found
    if column.name in source.values:
        series = as_text(series).replace(source.values[column.name])
    parsed: Parsed = parse_values(series, column.kind, source.parse_options)
    values = whole_number_text(parsed.values) if column.numeric_text else parsed.values

    def text() -> pd.Series:
        return as_text(series)

    checks.fail(parsed.bad, field, text, _unparseable(column.kind, field, parsed.expected))
    if column.required:
        missing = values.isna() & ~parsed.bad
        checks.fail(
            missing,
            field,
            text,
            lambda v: f"required value missing: column '{field}' ({column.name}) is empty",
        )
    allowed = ALLOWED_VALUES.get((source.type, column.name))
    if allowed:
        values = values.str.lower()
        wrong = values.notna() & ~values.isin(allowed)
        expected = ", ".join(allowed)
        checks.fail(
            wrong,
            field,
            text,
            lambda v: f"value not allowed '{v}' in column '{field}'; expected one of {expected}",
        )
    if column.name in PRICE_COLUMNS:
        checks.fail(
            values < 0, field, text, lambda v: f"negative price '{v}' in column '{field}'; expected 0 or more"
        )
    limits = VALUE_RANGES.get((source.type, column.name))
    if limits:
        low, high = limits
        outside = (values < low) | (values > high)
        checks.fail(
            outside,
            field,
            text,
            lambda v: f"value out of range '{v}' in column '{field}'; expected {low:g} to {high:g}",
        )
    return values.mask(checks.blanked) if checks.blanked.any() else values


def _rule_mask(rule: LineRule, raw: pd.DataFrame, rows: pd.DataFrame) -> np.ndarray:
    """Which lines a returns/cancellations rule marks."""
    if rule.by == "negative_quantity":
        return (rows["quantity"] < 0).to_numpy(dtype=bool)
    if rule.by == "flag":
        if rule.column not in raw.columns:
            return np.zeros(len(rows), dtype=bool)
        flags = as_text(raw[rule.column]).str.lower()
        return flags.isin([value.lower() for value in rule.values]).to_numpy(dtype=bool, na_value=False)
    ids = rows[rule.id_column]
    return ids.str.startswith(rule.prefix or "").to_numpy(dtype=bool, na_value=False)


def mark_line_types(rows: pd.DataFrame, raw: pd.DataFrame, source: SourceConfig) -> pd.DataFrame:
    """Order lines: `line_type` from the `returns`/`cancellations` rules, and every return's quantity negative."""
    line_type = pc.fill_null(pa.array(rows["line_type"]), "sale")
    # A cancellation marked by its own rule wins over a return (a cancelled invoice's lines are often negative).
    for rule, label in ((source.returns, "return"), (source.cancellations, "cancellation")):
        if rule is not None:
            line_type = pc.if_else(_rule_mask(rule, raw, rows), pa.scalar(label, line_type.type), line_type)
    rows = rows.copy()
    rows["line_type"] = text_series(line_type, rows.index)
    is_return = pc.equal(line_type, "return").to_numpy(zero_copy_only=False)
    quantity = rows["quantity"]
    rows["quantity"] = quantity.where(~is_return, -quantity.abs())
    return rows


def _prefixed(prefix: str | pa.Array, ids: pa.Array) -> pa.Array:
    """`<prefix>:<id>`, null where the id is null."""
    if isinstance(prefix, str):
        prefix = pa.scalar(prefix, pa.large_string())
    return pc.binary_join_element_wise(prefix, ids, pa.scalar(":", pa.large_string()))


def add_record_ids(rows: pd.DataFrame, source: SourceConfig) -> pd.DataFrame:
    """`record_id` and `identity_key` by the first rule of docs/sources.md that applies to each row."""
    names = set(rows.columns)
    none = pa.nulls(len(rows), pa.large_string())

    def text(name: str) -> pa.Array:
        return pa.array(rows[name]) if name in names else none

    persons = [rows[name].notna().to_numpy() for name in IDENTIFYING_COLUMNS if name in names]
    any_person = pa.array(np.logical_or.reduce(persons) if persons else np.zeros(len(rows), dtype=bool))
    customer_ref = text("customer_ref")
    if source.type == "consents":
        # A consent is no person record; one given for an account is keyed like that account (docs/sources.md).
        for_account = pc.equal(text("identifier_type"), "customer_ref")
        customer_ref = pc.if_else(for_account, text("identifier"), none)
    # (condition, id) in the order of the rules; the first that holds gives the row's record_id.
    rules: list[tuple[pa.Array, pa.Array]] = [(pc.is_valid(customer_ref), customer_ref)]
    if source.type == "order_lines":
        rules.append((any_person, _prefixed("order", text("order_id"))))
    if source.type == "support_tickets":
        rules.append((any_person, _prefixed("ticket", text("ticket_id"))))
    rules.append((pa.scalar(True), _prefixed("card", text("loyalty_number"))))
    rules.append((pa.scalar(True), _prefixed("email", pc.utf8_lower(text("email")))))
    record_id = none
    for condition, ids in reversed(rules):
        record_id = pc.if_else(pc.and_(condition, pc.is_valid(ids)), ids, record_id)
    namespace = pc.if_else(pc.is_valid(customer_ref), source.namespace, source.name).cast(pa.large_string())
    identity_key = _prefixed(namespace, record_id)
    rows = rows.copy()
    rows["record_id"] = text_series(record_id, rows.index)
    rows["identity_key"] = text_series(identity_key, rows.index)
    return rows


def canonicalise(raw: pd.DataFrame, source: SourceConfig, extra_columns: Sequence[str] = ()) -> Canonical:
    """The canonical rows, rejected rows and blanked values of one chunk; `raw`'s index is the 1-based data row."""
    verdicts = _Verdicts(raw.index)
    rows = pd.DataFrame({c.name: _parse_column(raw, source, c, verdicts) for c in source.canonical_columns()})
    if source.type == "order_lines":
        rows = mark_line_types(rows, raw, source)
    rows = add_record_ids(rows, source)
    rows["source"] = repeated_text(source.name, raw.index)
    rows["source_row"] = raw.index.to_numpy(dtype="int64")
    meta = [c.name for c in META_COLUMNS]
    rows = rows[[c.name for c in source.canonical_columns()] + meta]
    extras = {
        f"x_{name}": as_text(raw[name])
        if name in raw.columns
        else pd.Series(None, index=raw.index, dtype=TEXT)
        for name in extra_columns
    }
    if extras:
        rows = pd.concat([rows, pd.DataFrame(extras, index=raw.index)], axis=1)
    keep = verdicts.open
    if keep.all():
        return Canonical(rows.reset_index(drop=True), no_rejected_rows(), verdicts.blanked())
    rejected = rejected_rows(
        raw.index[~keep], verdicts.field[~keep], verdicts.reason[~keep], raw_json(raw.loc[~keep])
    )
    return Canonical(rows.loc[keep].reset_index(drop=True), rejected, verdicts.blanked())
