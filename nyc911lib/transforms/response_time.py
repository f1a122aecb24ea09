"""Gold: the end-to-end response time, NYC's headline 911 indicator.

The time from the call to the agency's arrival (`avg_call_to_agency_arrival_s`) for each
agency's most urgent incident types (params `response_time.most_urgent`), split into its three
segments as the city's reporting presents it:

- pickup: call to first pickup;
- pickup to dispatch: call to agency dispatch minus the pickup (the source's call-to-dispatch
  already contains the pickup);
- travel: dispatch to arrival (the source's average travel).

In the source, arrival equals call-to-dispatch plus travel within 0.3 s on 9 rows in 10;
`arrival_minus_segments_s` shows what is left over. Every figure is incident-weighted over the
weeks of its period, like all of gold. Each week of each series gets three periods, so a report
that ends on any week (its scope) reads its headline from gold without math of its own:

- `week`: the week itself;
- `trailing_weeks`: the `trailing_weeks` weeks ending with it (default 52);
- `year_earlier`: the same weeks 52 weeks (364 days) earlier.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable, Sequence
from functools import reduce

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, Window

from nyc911lib.transforms.gold import incident_weighted_mean, pct
from nyc911lib.transforms.trends import DAYS_PER_YEAR_OF_WEEKS
from nyc911lib.transforms.week_spans import WeekReach

PICKUP, DISPATCH, TRAVEL, ARRIVAL = (
    "avg_call_to_first_pickup_s",
    "avg_call_to_agency_dispatch_s",
    "avg_travel_s",
    "avg_call_to_agency_arrival_s",
)
# The segments, in the order they happen: (column, what it is).
SEGMENTS = {
    "pickup_s": "Pickup (call to first pickup)",
    "pickup_to_dispatch_s": "Pickup to dispatch",
    "travel_s": "Travel (dispatch to arrival)",
}
WEEK, TRAILING, YEAR_EARLIER = "week", "trailing_weeks", "year_earlier"
PERIODS = (WEEK, TRAILING, YEAR_EARLIER)
_EPOCH = dt.date(1970, 1, 1)


def period_day_spans(trailing_weeks: int) -> dict[str, tuple[int, int]]:
    """Each period as the days, relative to its week's start, of the first and the last week it
    holds (both inclusive)."""
    span = 7 * (trailing_weeks - 1)
    return {
        WEEK: (0, 0),
        TRAILING: (-span, 0),
        YEAR_EARLIER: (-span - DAYS_PER_YEAR_OF_WEEKS, -DAYS_PER_YEAR_OF_WEEKS),
    }


def response_time_reach(trailing_weeks: int) -> WeekReach:
    """The days a week's response time rows read: each period's weeks (see `period_day_spans`)."""
    return WeekReach(tuple((0, first, last) for first, last in period_day_spans(trailing_weeks).values()))


def kpi_response_time(
    most_urgent: Sequence[tuple[str, str]], trailing_weeks: int = 52
) -> Callable[[DataFrame], DataFrame]:
    """kpi_weekly -> one row per week x (agency, incident type) of `most_urgent` x period (`week`,
    `trailing_weeks`, `year_earlier`): the period's first and last week, the weeks with data,
    incidents, the incident-weighted end-to-end time and its three segments, seconds; on the
    trailing rows, the end-to-end time's change against the same weeks a year earlier, %."""

    def transform(weekly: DataFrame) -> DataFrame:
        chosen = reduce(
            operator.or_,
            [(F.col("agency") == agency) & (F.col("incident_type") == kind) for agency, kind in most_urgent],
            F.lit(False),
        )
        # The window orders by a day number selected first (SQLFrame cannot order a window by an
        # expression with an alias inside it).
        rows = weekly.where(chosen).select(
            "week_start_date",
            "agency",
            "incident_type",
            "incidents",
            PICKUP,
            DISPATCH,
            TRAVEL,
            ARRIVAL,
            F.datediff(F.col("week_start_date"), F.lit(_EPOCH)).alias("_day"),
        )
        series = Window.partitionBy("agency", "incident_type").orderBy("_day")
        spans = period_day_spans(trailing_weeks)
        windows = {period: series.rangeBetween(first, last) for period, (first, last) in spans.items()}
        trailing, earlier = (
            incident_weighted_mean(ARRIVAL, over=windows[p]) for p in (TRAILING, YEAR_EARLIER)
        )
        parts = []
        for period, (first, last) in spans.items():
            window = windows[period]
            change = pct(trailing - earlier, earlier) if period == TRAILING else F.lit(None).cast("double")
            parts.append(
                rows.select(
                    "week_start_date",
                    "agency",
                    "incident_type",
                    F.lit(period).alias("period"),
                    F.date_add(F.col("week_start_date"), first).alias("period_first_week"),
                    F.date_add(F.col("week_start_date"), last).alias("period_last_week"),
                    F.count(F.lit(1)).over(window).cast("int").alias("weeks_with_data"),
                    F.coalesce(F.sum("incidents").over(window), F.lit(0)).cast("long").alias("incidents"),
                    *[
                        incident_weighted_mean(m, over=window).alias(m)
                        for m in (ARRIVAL, PICKUP, DISPATCH, TRAVEL)
                    ],
                    change.alias("arrival_change_vs_year_earlier_pct"),
                )
            )
        periods = reduce(DataFrame.unionByName, parts)
        return periods.select(
            "*",
            F.col(PICKUP).alias("pickup_s"),
            (F.col(DISPATCH) - F.col(PICKUP)).alias("pickup_to_dispatch_s"),
            F.col(TRAVEL).alias("travel_s"),
            (F.col(ARRIVAL) - F.col(DISPATCH) - F.col(TRAVEL)).alias("arrival_minus_segments_s"),
        )

    return transform
