"""Change-point window sums in DuckDB: exact windowed counts at every moment, with few rows.

A windowed count over (T - w, T] only changes when an event enters (at its time) or leaves (at its time +
w). Writing one row at each such change point, plus one at `now`, makes "the latest row at or before t"
exact for every t, so Feast's point-in-time join needs no TTL and never sees the future. Sums are running
totals C(t) per key; a window is C(T) - C(T - w), both read with ASOF joins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def running_totals_sql(
    events: str,
    sums: Sequence[str],
    lasts: Mapping[str, str] | None = None,
    firsts: Mapping[str, str] | None = None,
) -> str:
    """Per key and time: running sums of `sums`, latest non-null of `lasts`, earliest non-null of `firsts`.

    `events` is a query with columns `key`, `ts` and every column named; `lasts` and `firsts` map an output
    name to an input column. Events at the same key and time are one step.
    """
    lasts, firsts = lasts or {}, firsts or {}
    grouped = (
        [f"sum({c}) AS {c}" for c in sums]
        + [f"max({c}) AS {c}__max" for c in dict.fromkeys(lasts.values())]
        + [f"min({c}) AS {c}__min" for c in dict.fromkeys(firsts.values())]
    )
    running = (
        [f"sum({c}) OVER w AS {c}" for c in sums]
        + [f"last_value({col}__max IGNORE NULLS) OVER w AS {name}" for name, col in lasts.items()]
        + [f"min({col}__min) OVER w AS {name}" for name, col in firsts.items()]
    )
    return f"""
        SELECT key, ts, {", ".join(running)}
        FROM (SELECT key, ts, {", ".join(grouped)} FROM ({events}) GROUP BY key, ts)
        WINDOW w AS (PARTITION BY key ORDER BY ts ROWS UNBOUNDED PRECEDING)
    """


def change_points_sql(totals: str, windows: Sequence[int], population: str, extra: str = "") -> str:
    """Every moment a windowed total can change, up to `$now`, plus `$now` for every key of `population`."""
    exits = " ".join(f"UNION ALL SELECT key, ts + INTERVAL ({w}) DAY FROM {totals}" for w in windows)
    extra_points = f"UNION ALL {extra}" if extra else ""
    return f"""
        SELECT DISTINCT key, t FROM (
            SELECT key, ts AS t FROM {totals} {exits}
            UNION ALL SELECT key, $now FROM ({population})
            {extra_points}
        ) WHERE t <= $now
    """


def asof_joins_sql(points: str, totals: str, windows: Sequence[int]) -> str:
    """FROM clause: `p` the points, `c` the totals at t, `c<w>` the totals at t - w days (all ASOF)."""
    shifted = ", ".join(f"t - INTERVAL ({w}) DAY AS t{w}" for w in windows)
    joins = " ".join(
        f"ASOF LEFT JOIN {totals} c{w} ON p.key = c{w}.key AND p.t{w} >= c{w}.ts" for w in windows
    )
    select = f"SELECT key, t{', ' + shifted if windows else ''} FROM {points}"
    return f"({select}) p ASOF LEFT JOIN {totals} c ON p.key = c.key AND p.t >= c.ts {joins}"


def window_sum(column: str, days: int) -> str:
    """The sum of `column` over the last `days` days at the point (0 without events)."""
    return f"(coalesce(c.{column}, 0) - coalesce(c{days}.{column}, 0))"


def total(column: str) -> str:
    """The running total of `column` at the point (0 without events)."""
    return f"coalesce(c.{column}, 0)"
