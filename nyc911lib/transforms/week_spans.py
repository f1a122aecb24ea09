"""Sets of weeks as sorted, disjoint date spans: what an incremental gold build recomputes.

A gold table whose rows are weeks declares its `WeekReach`: which input days one of its output
weeks reads (the week itself; for anomalies also the same weeks 1..3 calendar years earlier, give
or take the baseline window; for the response time the trailing weeks and the same weeks 52 weeks
earlier). From the weeks silver changed, the reach gives the output weeks to recompute (every week
whose inputs include a changed one) and the input days that recomputing them reads. Spans may
cover more than the exact weeks (a day or a few): recomputing a week that did not change gives the
same rows, so a span errs on the wide side, never the narrow one.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame

Span = tuple[dt.date, dt.date]  # [first, last] day, both included
WEEK = "week_start_date"  # the week column of silver and of every gold table of weekly rows
ONE_DAY, ONE_WEEK = dt.timedelta(days=1), dt.timedelta(days=7)


def merged(spans: Iterable[Span], join: dt.timedelta = ONE_DAY) -> tuple[Span, ...]:
    """The fewest sorted spans covering `spans` and no other day: overlapping and adjacent spans
    join (and spans whose starts lie at most `join` after the end of the one before)."""
    out: list[Span] = []
    for low, high in sorted(spans):
        if out and low - out[-1][1] <= join:
            out[-1] = (out[-1][0], max(out[-1][1], high))
        else:
            out.append((low, high))
    return tuple(out)


def spans_of(weeks: Iterable[dt.date]) -> tuple[Span, ...]:
    """Week start dates -> spans covering them (consecutive weeks, 7 days apart, make one span)."""
    return merged(((w, w) for w in weeks), join=ONE_WEEK)


# Every day a table of this project can hold, with room for a reach to move it by years and days.
ALL_DAYS: Span = (dt.date(1000, 1, 1), dt.date(9000, 12, 31))


def pieces(rows_per_week: Mapping[dt.date, int], count: int) -> tuple[Span, ...]:
    """At most `count` consecutive spans covering `ALL_DAYS`, cut at weeks of `rows_per_week` so
    that each holds about the same number of its rows (a week is never split)."""
    total, seen, cuts = sum(rows_per_week.values()), 0, []
    for week in sorted(rows_per_week):
        rows = rows_per_week[week]
        if len(cuts) < count - 1 and seen > 0 and seen + rows > total * (len(cuts) + 1) / count:
            cuts.append(week)  # this week would take the piece past its share: the next one starts
        seen += rows
    lows, highs = [ALL_DAYS[0], *cuts], [*(cut - ONE_DAY for cut in cuts), ALL_DAYS[1]]
    return tuple(zip(lows, highs, strict=True))


def plus_years(day: dt.date, years: int) -> dt.date:
    """The same date `years` calendar years later (earlier when negative); 29 February -> 28th."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


@dataclass(frozen=True)
class WeekReach:
    """Which input days an output week W reads: for each window (years, first, last), the days
    `first` to `last` (both included, relative) around W moved back `years` calendar years.
    `WeekReach()` is W alone. A window moved by years is widened by a day on both sides (29
    February has no same date in the other years)."""

    windows: tuple[tuple[int, int, int], ...] = ((0, 0, 0),)

    def outputs(self, changed: Iterable[Span]) -> tuple[Span, ...]:
        """The output weeks whose inputs include a day of `changed`."""
        out = []
        for low, high in changed:
            for years, first, last in self.windows:
                leap = ONE_DAY if years else dt.timedelta(0)
                out.append(
                    (
                        plus_years(low - dt.timedelta(days=last), years) - leap,
                        plus_years(high - dt.timedelta(days=first), years) + leap,
                    )
                )
        return merged(out)

    def inputs(self, outputs: Iterable[Span]) -> tuple[Span, ...]:
        """The input days that the output weeks `outputs` read."""
        out = []
        for low, high in outputs:
            for years, first, last in self.windows:
                leap = ONE_DAY if years else dt.timedelta(0)
                out.append(
                    (
                        plus_years(low, -years) + dt.timedelta(days=first) - leap,
                        plus_years(high, -years) + dt.timedelta(days=last) + leap,
                    )
                )
        return merged(out)


def _in_spans(spans: Iterable[Span], column: str) -> Column | None:
    """TRUE for a `column` (a date) in one of `spans`; None for no span. (>= and <= rather than
    `between`: SQLFrame writes a `between` of date literals with aliases DuckDB cannot parse.)"""
    each = [(F.col(column) >= F.lit(low)) & (F.col(column) <= F.lit(high)) for low, high in spans]
    return functools.reduce(operator.or_, each) if each else None


def outside_spans(spans: Iterable[Span], column: str = WEEK) -> Callable[[DataFrame], DataFrame]:
    """Keep the rows whose `column` lies in none of `spans` (or is NULL)."""
    spans = tuple(spans)

    def transform(df: DataFrame) -> DataFrame:
        inside = _in_spans(spans, column)
        return df if inside is None else df.where(~inside | F.col(column).isNull())

    return transform


def within_spans(spans: Iterable[Span], column: str = WEEK) -> Callable[[DataFrame], DataFrame]:
    """Keep the rows whose `column` (a date) lies in one of `spans` (none: no row)."""
    spans = tuple(spans)

    def transform(df: DataFrame) -> DataFrame:
        inside = _in_spans(spans, column)
        return df.where(F.lit(False) if inside is None else inside)

    return transform
