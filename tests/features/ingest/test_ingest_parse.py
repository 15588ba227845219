"""The canonical parsers: text in, typed values and a mask of unparseable values out."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from features.ingest.parse import ParseOptions, parse_values

LONDON = ParseOptions(timezone="Europe/London", date_formats=("%d/%m/%Y %H:%M", "%d/%m/%Y"))


def parsed(values: list, kind: str, options: ParseOptions | None = None) -> tuple[list, list]:
    result = parse_values(pd.Series(values, dtype=object), kind, options or ParseOptions())  # type: ignore[arg-type]
    return [None if pd.isna(v) else v for v in result.values], list(result.bad)


def test_impossible_dates_are_unparseable_not_rolled_over() -> None:
    values, bad = parsed(
        ["31/02/2024 10:00", "29/02/2024 10:00", "29/02/2023", "1/3/2024 9:05"], "timestamp", LONDON
    )
    assert bad == [True, False, True, False]
    assert values[1] == pd.Timestamp("2024-02-29 10:00", tz="UTC")
    assert values[3] == pd.Timestamp("2024-03-01 09:05", tz="UTC")


def test_naive_times_are_local_and_stored_in_utc() -> None:
    values, _ = parsed(["01/07/2024 10:00", "27/10/2024 01:30", "31/03/2024 01:30"], "timestamp", LONDON)
    assert values[0] == pd.Timestamp("2024-07-01 09:00", tz="UTC")  # summer time
    assert values[1] == pd.Timestamp("2024-10-27 00:30", tz="UTC")  # an hour that happens twice: the first
    assert values[2] == pd.Timestamp("2024-03-31 01:00", tz="UTC")  # an hour that never happens: moved on


def test_iso_times_keep_their_own_offset() -> None:
    values, bad = parsed(
        ["2024-03-01T10:00:00+01:00", "2024-03-01T10:01:00", "2024-03-01", "2024-13-01"], "timestamp"
    )
    assert values[:3] == [
        pd.Timestamp("2024-03-01 09:00", tz="UTC"),
        pd.Timestamp("2024-03-01 10:01", tz="UTC"),  # no offset: UTC, not the offset of the row before
        pd.Timestamp("2024-03-01", tz="UTC"),
    ]
    assert bad == [False, False, False, True]


def test_iso_times_named_utc_or_gmt_are_utc_whatever_the_sources_timezone() -> None:
    berlin = ParseOptions(timezone="Europe/Berlin")
    written = [
        "2019-10-01 00:00:03 UTC",
        "2019-10-01 00:00:03GMT",
        "2019-10-01 00:00:03",
        "2019-10-01 00:00 CET",
    ]
    values, bad = parsed(written, "timestamp", berlin)
    assert values[:3] == [
        pd.Timestamp("2019-10-01 00:00:03", tz="UTC"),
        pd.Timestamp("2019-10-01 00:00:03", tz="UTC"),
        pd.Timestamp("2019-09-30 22:00:03", tz="UTC"),  # no zone: Berlin's wall time
    ]
    assert bad == [False, False, False, True]  # another zone's name is not guessed


def test_dates_accept_the_date_part_of_the_formats_and_iso() -> None:
    values, bad = parsed(["12/03/1985", "1985-03-12", "12/03/1985 10:00", "1985-02-30", ""], "date", LONDON)
    assert values == [dt.date(1985, 3, 12)] * 3 + [None, None]
    assert bad == [False, False, False, True, False]


def test_numbers_follow_the_decimal_separator() -> None:
    values, bad = parsed(
        ["12,50", "1.234,5", "-3", "12.5", "1,2,3", " 7 ", None], "float", ParseOptions(decimal=",")
    )
    assert values == [12.5, 1234.5, -3.0, None, None, 7.0, None]
    assert bad == [False, False, False, True, True, False, False]
    values, bad = parsed(["1,234.50", "1,5", "3.0"], "float")
    assert values == [1234.5, None, 3.0] and bad == [False, True, False]


def test_numbers_may_carry_a_currency_symbol_and_group_thousands_by_a_blank_or_an_apostrophe() -> None:
    written = ["$12.50", "12.50 €", "-$3.00", "$-3", "1 234.5", "1\u202f234.5", "1'234.50", "£1,234"]
    values, bad = parsed(written, "float")
    assert values == [12.5, 12.5, -3.0, -3.0, 1234.5, 1234.5, 1234.5, 1234.0] and not any(bad)
    values, bad = parsed(
        ["1 234,50 €", "€ 3,5", "1\u00a0234", "12,50\u00a0€"], "float", ParseOptions(decimal=",")
    )
    assert values == [1234.5, 3.5, 1234.0, 12.5] and not any(bad)
    # Not a number written around, but something else: still unparseable.
    values, bad = parsed(["-$-3", "$", "1 2", "12 USD", "(4.00)", "12$50"], "float")
    assert values == [None] * 6 and all(bad)


def test_whole_numbers_and_booleans() -> None:
    assert parsed(["3", "3.0", "3.5", "x"], "int") == ([3, 3, None, None], [False, False, True, True])
    values, bad = parsed(["Yes", "n", "TRUE", "0", "maybe", ""], "bool")
    assert values == [True, False, True, False, None, None]
    assert bad == [False, False, False, False, True, False]


def test_floats_are_whole_numbers_only_when_whole_whatever_the_decimal_separator() -> None:
    floats = pd.Series([3.0, 3.5, None], dtype="float64")
    result = parse_values(floats, "int", ParseOptions(decimal=","))
    assert [None if pd.isna(v) else v for v in result.values] == [3, None, None]
    assert list(result.bad) == [False, True, False]
