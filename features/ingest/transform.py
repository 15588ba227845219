"""Pure steps from one chunk of a retailer's export to canonical rows and rejected rows.

The input frame holds the export's columns as read (text, or typed for Parquet and SQL) with the 1-based
data row as its index. Every step is vectorised; Python loops run only over the rejected rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.canonical import META_COLUMNS, PERSON_COLUMNS, Column, Kind, columns
from features.ingest.mapping import ALLOWED_VALUES, PRICE_COLUMNS, VALUE_RANGES, LineRule, SourceConfig
from features.ingest.parse import (
    PANDAS_DTYPES,
    TEXT,
    Parsed,
    as_text,
    parse_values,
    repeated_text,
    text_series,
)
from features.ingest.quarantine import no_rejected_rows, raw_json, rejected_rows

ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "date": pa.date32(),
    "float": pa.float64(),
    "int": pa.int64(),
    "bool": pa.bool_(),
}
_NOUNS = {"timestamp": "date", "date": "date", "float": "number", "int": "number", "bool": "boolean"}


def canonical_schema(source_type: str, extra_columns: Sequence[str] = ()) -> pa.Schema:
    """The Parquet schema of a canonical table: the type's columns, the meta columns, then `x_<column>` text."""
    fields = [pa.field(c.name, ARROW_TYPES[c.kind]) for c in (*columns(source_type), *META_COLUMNS)]
    return pa.schema(fields + [pa.field(f"x_{name}", pa.string()) for name in extra_columns])


class _Verdicts:
    """The first reason each row is rejected for, and the retailer's field it concerns."""

    def __init__(self, index: pd.Index) -> None:
        self.open = np.ones(len(index), dtype=bool)
        self.reason = np.full(len(index), None, dtype=object)
        self.field = np.full(len(index), None, dtype=object)

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


def _empty(kind: Kind, index: pd.Index) -> pd.Series:
    return pd.Series(None, index=index, dtype=PANDAS_DTYPES[kind])  # type: ignore[call-overload]


def _input(raw: pd.DataFrame, source: SourceConfig, name: str) -> tuple[pd.Series, str] | None:
    """The column feeding a canonical column and the name the retailer knows it by, or None when unmapped."""
    if name in source.columns:
        retailer = source.columns[name]
        series = raw[retailer] if retailer in raw.columns else pd.Series(None, index=raw.index, dtype=TEXT)
        return series, retailer
    if name in source.constants:
        return repeated_text(source.constants[name], raw.index), f"constants.{name}"
    return None


def _parse_column(raw: pd.DataFrame, source: SourceConfig, column: Column, verdicts: _Verdicts) -> pd.Series:
    """One canonical column: mapped, translated by `values`, parsed and checked; reasons go to `verdicts`."""
    found = _input(raw, source, column.name)
    if found is None:
        return _empty(column.kind, raw.index)
    series, field = found
    if column.name in source.values:
        series = as_text(series).replace(source.values[column.name])
    parsed: Parsed = parse_values(series, column.kind, source.parse_options)
    values = parsed.values

    def text() -> pd.Series:
        return as_text(series)

    noun = _NOUNS.get(column.kind, "value")
    verdicts.add(
        parsed.bad,
        field,
        text,
        lambda v: f"unparseable {noun} '{v}' in column '{field}'; expected {parsed.expected}",
    )
    if column.required:
        missing = values.isna() & ~parsed.bad
        verdicts.add(
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
        verdicts.add(
            wrong,
            field,
            text,
            lambda v: f"value not allowed '{v}' in column '{field}'; expected one of {expected}",
        )
    if column.name in PRICE_COLUMNS:
        verdicts.add(
            values < 0, field, text, lambda v: f"negative price '{v}' in column '{field}'; expected 0 or more"
        )
    limits = VALUE_RANGES.get((source.type, column.name))
    if limits:
        low, high = limits
        outside = (values < low) | (values > high)
        verdicts.add(
            outside,
            field,
            text,
            lambda v: f"value out of range '{v}' in column '{field}'; expected {low:g} to {high:g}",
        )
    return values


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

    persons = [rows[c.name].notna().to_numpy() for c in PERSON_COLUMNS if c.name in names]
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


def canonicalise(
    raw: pd.DataFrame, source: SourceConfig, extra_columns: Sequence[str] = ()
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The canonical rows and the rejected rows of one chunk; `raw`'s index is the 1-based data row."""
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
        return rows.reset_index(drop=True), no_rejected_rows()
    rejected = rejected_rows(
        raw.index[~keep], verdicts.field[~keep], verdicts.reason[~keep], raw_json(raw.loc[~keep])
    )
    return rows.loc[keep].reset_index(drop=True), rejected
