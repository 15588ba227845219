"""Vectorised parsers from a retailer's text (or an already typed column) to one canonical kind.

Every parser takes a Series and returns the parsed Series (same index, the kind's canonical dtype) and a
mask of the values that were present but could not be parsed. Parsing runs in Arrow compute kernels;
pandas is used only where Arrow cannot check the input (see `_strptime`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tessera.core.canonical import Kind

TEXT = pd.StringDtype("pyarrow")
DATE = pd.ArrowDtype(pa.date32())
UTC_TIMESTAMP = pa.timestamp("us", tz="UTC")
PANDAS_DTYPES: dict[str, object] = {
    "string": TEXT,
    "timestamp": "datetime64[us, UTC]",
    "date": DATE,
    "float": "float64",
    "int": "Int64",
    "bool": "boolean",
}
TRUE_WORDS = ("true", "t", "yes", "y", "1", "on")
FALSE_WORDS = ("false", "f", "no", "n", "0", "off")
ISO_8601 = "ISO 8601"
# A time followed by a UTC offset ("...T10:00:00+01:00", "... 10:00Z"); a bare date ends in "-02" too.
_OFFSET = r"[T ]\d{1,2}:?\d{2}(?::?\d{2}(?:[.,]\d+)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$"
# A time followed by the name of the zone with no offset, UTC or GMT (after a blank or not).
_UTC_NAME = r"(\d)\s?(?:UTC|GMT)$"
# Directives Arrow's strptime does not read; formats using them are parsed by pandas.
_PANDAS_ONLY = ("%f", "%z", "%Z", "%U", "%W", "%G", "%V", "%u")


@dataclass(frozen=True)
class ParseOptions:
    """How a source writes numbers and times (from its mapping)."""

    decimal: str = "."
    timezone: str = "UTC"
    date_formats: tuple[str, ...] = ()


@dataclass(frozen=True)
class Parsed:
    """A parsed column, the mask of present-but-unparseable values and what a good value looks like."""

    values: pd.Series
    bad: pd.Series
    expected: str


def _arrow(values: pd.Series) -> pa.Array:
    array = pa.array(values)
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def _series(array: pa.Array | pa.ChunkedArray, index: pd.Index, dtype: object) -> pd.Series:
    """An Arrow array as a Series of the given canonical dtype on the chunk's index."""
    if dtype == TEXT:
        return pd.Series(
            pd.arrays.ArrowStringArray(pa.chunked_array([array]).cast(pa.large_string())), index=index
        )
    if isinstance(dtype, pd.ArrowDtype):
        return pd.Series(pd.arrays.ArrowExtensionArray(pa.chunked_array([array])), index=index)
    mapper = {pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype()}.get
    converted = array.to_pandas(types_mapper=mapper)
    return pd.Series(converted.array, index=index).astype(dtype)


def _mask(array: pa.Array | pa.ChunkedArray, index: pd.Index) -> pd.Series:
    """A boolean Arrow array (nulls read as False) as a plain bool Series."""
    return pd.Series(pc.fill_null(array, False).to_numpy(zero_copy_only=False), index=index, dtype=bool)


def text_series(array: pa.Array | pa.ChunkedArray, index: pd.Index) -> pd.Series:
    """An Arrow text array as a text Series on `index`."""
    return _series(array, index, TEXT)


def repeated_text(value: str, index: pd.Index) -> pd.Series:
    """One text value on every row of `index`."""
    return text_series(pa.repeat(pa.scalar(value, pa.large_string()), len(index)), index)


def as_text(values: pd.Series) -> pd.Series:
    """The values as trimmed text, empty text as missing; typed values are written out with `str`."""
    if values.dtype != TEXT:
        if values.dtype == object:
            values = values.map(
                lambda v: v if v is None or isinstance(v, str) else str(v), na_action="ignore"
            )
        values = values.astype(TEXT)
    stripped = pc.utf8_trim_whitespace(_arrow(values))
    return _series(
        pc.if_else(pc.equal(stripped, ""), pa.scalar(None, stripped.type), stripped), values.index, TEXT
    )


def whole_number_text(values: pd.Series) -> pd.Series:
    """Text written as a whole number with a decimal point (`13085.0`, as a spreadsheet or a float column with
    gaps writes `13085`) as that whole number; any other text as it is."""
    text = _arrow(values)
    if not pc.any(pc.match_substring(text, ".")).as_py():  # most chunks: a plain look for a point, no regex
        return values
    return _series(pc.replace_substring_regex(text, r"^(\d+)\.0+$", r"\1"), values.index, TEXT)


def parse_values(values: pd.Series, kind: Kind, options: ParseOptions) -> Parsed:
    """Parse one column into the canonical kind."""
    parser = {
        "string": _parse_string,
        "float": _parse_float,
        "int": _parse_int,
        "bool": _parse_bool,
        "timestamp": _parse_timestamp,
        "date": _parse_date,
    }[kind]
    return parser(values, options)


def _parse_string(values: pd.Series, options: ParseOptions) -> Parsed:
    text = as_text(values)
    return Parsed(text, pd.Series(False, index=values.index), "text")


# Written around a number by some exports: a currency symbol before or after it, digits grouped in thousands by a
# blank (a space, a no-break or a narrow no-break space) or an apostrophe (1'234.50) as well as by the separator
# that is not the decimal one.
_CURRENCY = "$£€¥₹"
_GROUP_BLANKS = " \u00a0\u202f'"


def _number_pattern(decimal: str, written_around: bool = False) -> str:
    """A number with `decimal`, digits optionally grouped by the other separator; `written_around`: also grouped
    by a blank or an apostrophe, and with a currency symbol before or after it."""
    groups = ("," if decimal == "." else ".") + (_GROUP_BLANKS if written_around else "")
    thousands = "[" + re.escape(groups) + "]"
    number = rf"(?:\d+|\d{{1,3}}(?:{thousands}\d{{3}})+)?(?:{re.escape(decimal)}\d*)?(?:[eE][+-]?\d+)?"
    if not written_around:
        return rf"^[+-]?{number}$"
    blank = "[ \u00a0\u202f]?"  # "12,50 €" is often written with a no-break space
    signed = rf"(?:[+-]?(?:[{_CURRENCY}]{blank})?|[{_CURRENCY}]{blank}[+-])"  # -$3.00 or $-3.00
    return rf"^{signed}{number}(?:{blank}[{_CURRENCY}])?$"


def _parse_float(values: pd.Series, options: ParseOptions) -> Parsed:
    expected = f"a number with decimal {options.decimal!r}"
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        return Parsed(values.astype("float64"), pd.Series(False, index=values.index), expected)
    text = _arrow(as_text(values))
    plain_number = pc.fill_null(pc.match_substring_regex(text, _number_pattern(options.decimal)), False)
    # The longer pattern (a currency, grouping blanks) only for what the plain one refused: half the time again.
    written_around = pc.any(pc.and_(pc.is_valid(text), pc.invert(plain_number))).as_py()
    if written_around:
        around = pc.match_substring_regex(text, _number_pattern(options.decimal, written_around=True))
        plain_number = pc.or_(plain_number, pc.fill_null(around, False))
    ok = pc.and_(plain_number, pc.match_substring_regex(text, r"\d"))
    plain = pc.replace_substring(text, "," if options.decimal == "." else ".", "")
    if written_around:
        plain = pc.replace_substring_regex(plain, "[" + re.escape(_GROUP_BLANKS + _CURRENCY) + "]", "")
    if options.decimal != ".":
        plain = pc.replace_substring(plain, options.decimal, ".")
    numbers = pc.cast(pc.if_else(ok, plain, pa.scalar(None, plain.type)), pa.float64())
    bad = pc.and_(pc.is_valid(text), pc.invert(pc.fill_null(ok, False)))
    return Parsed(_series(numbers, values.index, "float64"), _mask(bad, values.index), expected)


def _parse_int(values: pd.Series, options: ParseOptions) -> Parsed:
    expected = "a whole number"
    if pd.api.types.is_integer_dtype(values.dtype):
        return Parsed(values.astype("Int64"), pd.Series(False, index=values.index), expected)
    if pd.api.types.is_float_dtype(values.dtype):  # a typed export's floats, or a formula's result
        bad = values.notna() & (values != values.round())
        return Parsed(values.mask(bad).astype("Int64"), bad, expected)
    text = _arrow(as_text(values))
    # "3.0" is a whole number too: spreadsheets and pandas write integers that way.
    pattern = rf"^[+-]?\d{{1,18}}(?:{re.escape(options.decimal)}0*)?$"
    ok = pc.match_substring_regex(text, pattern)
    digits = pc.replace_substring_regex(text, rf"{re.escape(options.decimal)}0*$", "")
    numbers = pc.cast(pc.if_else(ok, digits, pa.scalar(None, digits.type)), pa.int64())
    bad = pc.and_(pc.is_valid(text), pc.invert(pc.fill_null(ok, False)))
    return Parsed(_series(numbers, values.index, "Int64"), _mask(bad, values.index), expected)


def _parse_bool(values: pd.Series, options: ParseOptions) -> Parsed:
    expected = "one of " + ", ".join(f"{t}/{f}" for t, f in zip(TRUE_WORDS, FALSE_WORDS, strict=True))
    if pd.api.types.is_bool_dtype(values.dtype):
        return Parsed(values.astype("boolean"), pd.Series(False, index=values.index), expected)
    text = pc.utf8_lower(_arrow(as_text(values)))
    is_true = pc.is_in(text, pa.array(TRUE_WORDS))
    is_false = pc.is_in(text, pa.array(FALSE_WORDS))
    known = pc.or_(is_true, is_false)
    parsed = pc.if_else(known, is_true, pa.scalar(None, pa.bool_()))
    bad = pc.and_(pc.is_valid(text), pc.invert(known))
    return Parsed(_series(parsed, values.index, "boolean"), _mask(bad, values.index), expected)


def _localise(naive: pa.Array, timezone: str) -> pa.Array:
    """Wall-clock times in `timezone` as UTC instants; DST-ambiguous times take the first, gaps the later."""
    if timezone == "UTC":
        return naive.cast(UTC_TIMESTAMP)
    local = pc.assume_timezone(naive, timezone=timezone, ambiguous="earliest", nonexistent="latest")
    return local.cast(UTC_TIMESTAMP)


def _pandas_strptime(text: pa.Array, fmt: str) -> pa.Array:
    """Python's strptime rules through pandas: slower, but exact about every directive and date."""
    aware = "%z" in fmt or "%Z" in fmt
    parsed = pd.to_datetime(pd.Series(text.to_pylist(), dtype=object), format=fmt, errors="coerce", utc=aware)
    return pa.array(parsed.dt.as_unit("us"), type=UTC_TIMESTAMP if aware else pa.timestamp("us"))


def _strptime(text: pa.Array, fmt: str) -> pa.Array:
    """Timestamps in `fmt` (naive, or UTC when the format has an offset); null where the text does not match."""
    if any(directive in fmt for directive in _PANDAS_ONLY):
        return _pandas_strptime(text, fmt)
    fast = pc.strptime(text, format=fmt, unit="us", error_is_null=True)
    if "%d" not in fmt:
        return fast
    # Arrow rolls an impossible day over ("31/02" becomes 2 March), so a result in the first days of a month
    # may be a rolled-over invalid date: those few are re-read by pandas, which rejects them.
    suspect = pc.fill_null(pc.less_equal(pc.day(fast), 3), False)
    if not pc.any(suspect).as_py():
        return fast
    checked = _pandas_strptime(pc.filter(text, suspect), fmt)
    return pc.replace_with_mask(fast, suspect, checked)


def _iso_to_utc(text: pa.Array) -> pa.Array:
    parsed = pd.to_datetime(
        pd.Series(text.to_pandas(), dtype=object), format="ISO8601", errors="coerce", utc=True
    )
    return pa.array(parsed.dt.as_unit("us"), type=UTC_TIMESTAMP)


def _parse_iso(text: pa.Array, timezone: str) -> pa.Array:
    """ISO 8601 timestamps as UTC; those written without an offset are read as wall time in `timezone`.

    A time written with the zone's name UTC or GMT after it (`2019-10-01 00:00:03 UTC`, as event exports of some
    shop platforms write it) has the offset +00:00.
    """
    named = pc.or_(pc.ends_with(text, "UTC"), pc.ends_with(text, "GMT"))  # a 50th of the regex's time
    if pc.any(named).as_py():
        text = pc.replace_substring_regex(text, _UTC_NAME, r"\1+00:00")
    # Parsed apart: in one call pandas reads an offset-less time with the offset of the value before it.
    has_offset = pc.fill_null(pc.match_substring_regex(text, _OFFSET), False)
    result = pa.nulls(len(text), UTC_TIMESTAMP)
    for mask, local in ((has_offset, False), (pc.invert(has_offset), True)):
        if pc.any(mask).as_py():
            parsed = _iso_to_utc(pc.filter(text, mask))
            if local and timezone != "UTC":
                parsed = _localise(parsed.cast(pa.timestamp("us")), timezone)
            result = pc.replace_with_mask(result, mask, parsed)
    return result


def _parse_times(text: pa.Array, formats: tuple[str, ...], timezone: str) -> pa.Array:
    """The first format that reads each value wins; ISO 8601 when no format is given."""
    result = pa.nulls(len(text), UTC_TIMESTAMP)
    remaining = pc.is_valid(text)
    for fmt in formats:
        if not pc.any(remaining).as_py():
            break
        parsed = _parse_iso(text, timezone) if fmt == ISO_8601 else _strptime(text, fmt)
        if parsed.type != UTC_TIMESTAMP:
            parsed = _localise(parsed, timezone)
        take = pc.and_(remaining, pc.is_valid(parsed))
        result = pc.if_else(take, parsed, result)
        remaining = pc.and_(remaining, pc.invert(take))
    return result


def _parse_timestamp(values: pd.Series, options: ParseOptions) -> Parsed:
    formats = options.date_formats or (ISO_8601,)
    expected = "one of " + ", ".join(formats)
    no_bad = pd.Series(False, index=values.index)
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return Parsed(values.dt.tz_convert("UTC").dt.as_unit("us"), no_bad, expected)
    if pd.api.types.is_datetime64_dtype(values.dtype):
        instants = _localise(pa.array(values.dt.as_unit("us")), options.timezone)
        return Parsed(_series(instants, values.index, "datetime64[us, UTC]"), no_bad, expected)
    if isinstance(values.dtype, pd.ArrowDtype) and pa.types.is_date(values.dtype.pyarrow_dtype):
        naive = _arrow(values).cast(pa.timestamp("us"))
        return Parsed(
            _series(_localise(naive, options.timezone), values.index, "datetime64[us, UTC]"), no_bad, expected
        )
    text = _arrow(as_text(values))
    parsed = _parse_times(text, formats, options.timezone)
    bad = pc.and_(pc.is_valid(text), pc.is_null(parsed))
    return Parsed(_series(parsed, values.index, "datetime64[us, UTC]"), _mask(bad, values.index), expected)


def date_formats(formats: tuple[str, ...]) -> tuple[str, ...]:
    """Formats tried for a date column: the source's formats, their date parts, then ISO 8601."""
    found: list[str] = []
    for fmt in formats:
        found.append(fmt)
        date_part = re.split(r"[T ]?%[HIp]", fmt, maxsplit=1)[0].strip()
        if date_part and date_part != fmt:
            found.append(date_part)
    found.append(ISO_8601)
    return tuple(dict.fromkeys(found))


def _parse_date(values: pd.Series, options: ParseOptions) -> Parsed:
    formats = date_formats(options.date_formats)
    expected = "one of " + ", ".join(formats)
    no_bad = pd.Series(False, index=values.index)
    if isinstance(values.dtype, pd.ArrowDtype) and pa.types.is_date(values.dtype.pyarrow_dtype):
        return Parsed(_series(_arrow(values).cast(pa.date32()), values.index, DATE), no_bad, expected)
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        dates = pa.array(values.dt.tz_localize(None) if values.dt.tz else values).cast(pa.date32())
        return Parsed(_series(dates, values.index, DATE), no_bad, expected)
    text = _arrow(as_text(values))
    # Dates are calendar days, not instants: read as wall time, never shifted between time zones.
    parsed = _parse_times(text, formats, "UTC")
    dates = parsed.cast(pa.timestamp("us")).cast(pa.date32())
    bad = pc.and_(pc.is_valid(text), pc.is_null(parsed))
    return Parsed(_series(dates, values.index, DATE), _mask(bad, values.index), expected)
