"""Vectorised text formatting with Arrow compute: ids, money, timestamps, phone numbers, concatenation."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

Text = pa.Array | pa.ChunkedArray | str


def strings(values: np.ndarray | list[str | None]) -> pa.Array:
    """An Arrow string array from a numpy object array (None stays null)."""
    return pa.array(values, type=pa.string())


def _arrow(part: Text) -> pa.Array | pa.ChunkedArray | pa.Scalar:
    return pa.scalar(part, pa.string()) if isinstance(part, str) else part


def column(frame: pd.DataFrame, name: str) -> pa.Array:
    """A frame's column as an Arrow string array (None stays null)."""
    return strings(frame[name].to_numpy(dtype=object))


def join(*parts: Text) -> pa.Array:
    """Concatenate arrays and literal strings element-wise; a null part makes the result null."""
    return pc.binary_join_element_wise(*map(_arrow, parts), "")


def numbers(values: np.ndarray, width: int = 0) -> pa.Array:
    """Integers as decimal text, left-padded with zeros to `width`."""
    text = pc.cast(pa.array(np.asarray(values, dtype=np.int64)), pa.string())
    return pc.utf8_lpad(text, width, "0") if width else text


def ids(prefix: str, values: np.ndarray, width: int) -> pa.Array:
    """Ids like `prefix` + zero-padded number."""
    return join(prefix, numbers(values, width))


def money(pence: np.ndarray, decimal: str = ".") -> pa.Array:
    """Amounts in pence as text with two decimals and the given decimal mark (negative allowed)."""
    pence = np.asarray(pence, dtype=np.int64)
    sign = pa.array(np.where(pence < 0, "-", ""), type=pa.string())
    whole = numbers(np.abs(pence) // 100)
    cents = numbers(np.abs(pence) % 100, 2)
    return join(sign, whole, decimal, cents)


@cache
def _time_of_day_table(fmt: str) -> pa.Array:
    """The time part of a format for every second of a day (86,400 strings)."""
    return pc.strftime(pa.array(np.arange(86_400, dtype=np.int64), pa.timestamp("s", tz="UTC")), format=fmt)


def _local(seconds: np.ndarray, tz: str) -> np.ndarray:
    """Wall-clock seconds in `tz`: the UTC offset is looked up once per hour of the covered range."""
    if tz == "UTC" or len(seconds) == 0:
        return seconds
    hours = seconds // 3600
    first = int(hours.min())
    span = pd.date_range(pd.Timestamp(first * 3600, unit="s"), periods=int(hours.max()) - first + 1, freq="h")
    wall = span.tz_localize("UTC").tz_convert(tz).tz_localize(None)
    offsets = ((wall - span).total_seconds()).to_numpy().astype(np.int64)
    return seconds + offsets[hours - first]


def timestamps(seconds: np.ndarray, fmt: str, tz: str = "UTC") -> pa.Array:
    """Epoch seconds formatted with a strftime format (date directives before time ones) in a time zone.

    Dates are formatted once per day and times once per second of the day, then joined by lookup:
    several times faster than formatting every row.
    """
    local = _local(np.asarray(seconds, dtype=np.int64), tz)
    split = min(i for i in (fmt.find("%H"), fmt.find("%I"), len(fmt)) if i >= 0)
    day = local // 86_400
    first = int(day.min()) if len(day) else 0
    days = np.arange(first, (int(day.max()) if len(day) else first) + 1, dtype=np.int64) * 86_400
    day_table = pc.strftime(pa.array(days, pa.timestamp("s", tz="UTC")), format=fmt[:split])
    date_part = pc.take(day_table, pa.array(day - first))
    if split == len(fmt):
        return date_part
    return join(date_part, pc.take(_time_of_day_table(fmt[split:]), pa.array(local % 86_400)))


def lookup(values: np.ndarray, index: np.ndarray) -> pa.Array:
    """`values[index]` as text, converting only the (small) table of values; index -1 gives null."""
    return take(strings(np.asarray(values, dtype=object)), index)


def where(mask: np.ndarray, if_true: Text, if_false: Text) -> pa.Array:
    """Element-wise choice between two texts (arrays or literals)."""
    return pc.if_else(pa.array(np.asarray(mask, dtype=bool)), _arrow(if_true), _arrow(if_false))


def null_where(mask: np.ndarray, values: pa.Array) -> pa.Array:
    """`values` with the masked positions set to null."""
    return pc.if_else(pa.array(np.asarray(mask, dtype=bool)), pa.scalar(None, values.type), values)


def take(values: pa.Array, index: np.ndarray) -> pa.Array:
    """Rows of `values` by integer position; position -1 gives null."""
    index = np.asarray(index, dtype=np.int64)
    positions = pa.array(index, mask=index < 0)
    return pc.take(values, positions)


def pick(choice: np.ndarray, options: list[pa.Array]) -> pa.Array:
    """Element-wise `options[choice[i]][i]`: one of several formatted variants per row."""
    result = options[0]
    for k in range(1, len(options)):
        result = pc.if_else(pa.array(np.asarray(choice) == k), options[k], result)
    return result
