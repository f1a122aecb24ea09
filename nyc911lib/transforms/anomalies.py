"""Anomalies: kpi_weekly rows that depart from the same weeks of prior years, per metric.

Baseline. Every series (agency x incident type x metric) is compared with itself one to
`prior_years` years earlier: for week W, the values of the weeks within +-`window_weeks` of the
Monday nearest to W minus k calendar years, k = 1..`prior_years` (3 x 3 = 9 values by default).
Calendar years rather than 52-week steps keep fixed-date holidays (Christmas, New Year, July 4th)
aligned without drift, so ordinary seasonality -- summer, holiday weeks -- is in the baseline and
is not flagged. The window is +-1 week on purpose: Christmas and New Year weeks then make up most
of a holiday week's baseline, whereas a +-2 window would put the dip in a minority and let its
median drift back to a normal December week. Only prior years are used, so an anomaly never
dilutes its own baseline, and a shift lasting weeks (spring 2020) keeps standing out.

Score. A robust z: (observed - median) / max(1.4826 * MAD, floor), median and MAD (median absolute
deviation) over the baseline values. The floor keeps near-flat series from flagging noise:
- `incidents` is compared on the log scale, where a 3x spike and a drop to 1/3 weigh alike:
  z = ln(observed / median) / max(1.4826 * MAD / median, `relative_floor`, 1 / sqrt(median)),
  MAD / median being the spread of the logs to first order and 1 / sqrt(median) the Poisson noise
  of a count (what a small series swings by on its own);
- time metrics linearly, with the floor max(`relative_floor` * |median|, `time_floor_s`).
Time metrics are averages over the row's incidents, so rows with fewer than `min_incidents`
incidents, and negative averages (data defects, counted by the data-quality rules), are neither
scored nor used in a baseline; `incidents` itself
is scored on every row. Values are per series and unweighted. Only rows whose baseline holds at
least `min_baseline_weeks` values are scored (default 6: two prior years' windows), so new incident
types and the first two years of the data are not.

Defaults were tuned on the 2013-2025 export: ~4% of scored rows flag, late-December weeks no more
often than other weeks, spring 2020 about 4x as often. A lasting level shift (a reclassified
incident type, a trend in dispatch times) keeps flagging until the prior years' median catches up,
about 18 months with 3 prior years: the baseline answers "unusual for this time of year", not
"unusual since last month".

Computation. Each value is joined with the (at most `prior_years` x (2 x `window_weeks` + 1) = 9)
values of its baseline weeks, each pair tagged with its slot; one hash aggregation then makes a
series-week's baseline a single row of 9 columns, and median and MAD are read off two sorted
9-element arrays of that row (`_median_of_first`). No sort or window over the 9x larger pair
table: at 100x the export (4.5 M scored values) this takes 18 s on DuckDB where a window median
then a grouped median spilled 50 GB and did not finish. Results are bit-for-bit those of
`median()` on both engines (checked at 10x), and tests/anomaly_reference.py recomputes them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame

from nyc911lib.transforms.week_spans import WeekReach

ANOMALY_METRICS = ("incidents", "avg_call_to_first_pickup_s", "avg_dispatch_s", "avg_travel_s")
PRIOR_YEARS, WINDOW_WEEKS = 3, 1  # the default baseline: 3 x (2 x 1 + 1) = 9 weeks
MAD_TO_SIGMA = 1.4826  # 1 / Phi^-1(3/4): the MAD of a normal sample times this estimates its sigma
_KEYS = ("agency", "incident_type", "metric")
ANOMALY_COLUMNS = (
    "week_start_date",
    "agency",
    "incident_type",
    "metric",
    "observed",
    "baseline_median",
    "baseline_mad",
    "robust_z",
    "direction",
    "ratio",
    "baseline_weeks",
    "incidents",
)


def robust_z(observed: Column, median: Column, mad: Column, floor: Column) -> Column:
    """(observed - median) / max(1.4826 * mad, floor); NULL when that scale is not positive or
    any input is NULL."""
    scale = F.greatest(F.lit(MAD_TO_SIGMA) * mad, floor)
    known = observed.isNotNull() & median.isNotNull() & mad.isNotNull() & floor.isNotNull()
    return F.when(known & (scale > 0), (observed - median) / scale)


def _long_values(metrics: Sequence[str], min_incidents: int) -> Callable[[DataFrame], DataFrame]:
    """kpi_weekly -> one row per week x agency x incident type x metric with a usable `value`."""

    def transform(weekly: DataFrame) -> DataFrame:
        values = [F.col(m).cast("double").alias(m) for m in metrics]
        ids = ["week_start_date", "agency", "incident_type", "_incidents"]
        wide = weekly.select(*ids[:3], F.col("incidents").alias("_incidents"), *values)
        long = wide.unpivot(ids, list(metrics), "metric", "value")
        long = long.withColumnRenamed("_incidents", "incidents")
        # A negative average time is a data defect (silver keeps it with the other_times_non_negative
        # warning, and the data-quality section counts it), not a fast week: it is not scored.
        is_volume = F.col("metric") == "incidents"
        usable = is_volume | ((F.col("incidents") >= min_incidents) & (F.col("value") >= 0))
        return long.where(F.col("value").isNotNull() & usable)

    return transform


def _baseline_weeks(prior_years: int, window_weeks: int) -> Column:
    """The Mondays of the baseline of `week_start_date`: +-window_weeks around the Monday nearest
    the same date k years earlier, k = 1..prior_years."""
    dates = []
    for k in range(1, prior_years + 1):
        same_date = F.add_months(F.col("week_start_date"), -12 * k)
        nearest_monday = F.trunc(F.date_add(same_date, 3), "week")
        dates += [F.date_add(nearest_monday, 7 * j) for j in range(-window_weeks, window_weeks + 1)]
    return F.array(*dates)


def baseline_reach(settings: Mapping[str, Any]) -> WeekReach:
    """The days a week's anomaly score reads, for the anomaly `settings` (params `anomalies`): the
    week, and its baseline weeks: +- window_weeks around the Monday nearest the same date k =
    1..prior_years calendar years earlier (3 days away at most)."""
    prior_years = int(settings.get("prior_years", PRIOR_YEARS))
    days = 7 * int(settings.get("window_weeks", WINDOW_WEEKS)) + 3
    return WeekReach(((0, 0, 0), *((k, -days, days) for k in range(1, prior_years + 1))))


_AFTER_ALL = 1e300  # pads a baseline's sorted arrays after its values (counts and seconds, far below)


def _median_of_first(ascending: Column, n: Column) -> Column:
    """The median of the first `n` values of an ascending array (1 <= n <= its size): its middle
    value, or halfway between the two middle ones (as Spark's and DuckDB's `median`)."""
    low = F.element_at(ascending, F.floor((n + 1) / 2).cast("int"))  # 1-based
    high = F.element_at(ascending, F.floor(n / 2).cast("int") + 1)
    return low + (high - low) * 0.5


def weekly_anomalies(
    *,
    metrics: Sequence[str] = ANOMALY_METRICS,
    threshold: float = 3.5,
    min_baseline_weeks: int = 6,
    min_incidents: int = 20,
    prior_years: int = PRIOR_YEARS,
    window_weeks: int = WINDOW_WEEKS,
    relative_floor: float = 0.1,
    time_floor_s: float = 1.0,
) -> Callable[[DataFrame], DataFrame]:
    """kpi_weekly -> the anomalies table: one row per week x agency x incident type x metric whose
    |robust_z| >= threshold against its seasonal baseline (see the module docstring).

    `observed`, `baseline_median` and `baseline_mad` are in the metric's own unit; `ratio` is
    observed / baseline_median; `direction` is 'high' or 'low'; `baseline_weeks` counts the values
    the baseline used; `incidents` is the row's incident count. `threshold=0` returns every scored
    row.
    """
    if threshold < 0 or min_baseline_weeks < 1 or prior_years < 1 or window_weeks < 0:
        raise ValueError("threshold must be >= 0, min_baseline_weeks and prior_years >= 1, window_weeks >= 0")

    slots = prior_years * (2 * window_weeks + 1)

    def transform(weekly: DataFrame) -> DataFrame:
        values = weekly.transform(_long_values(metrics, min_incidents))
        targets = values.select(
            *_KEYS,
            "week_start_date",
            F.col("value").alias("observed"),
            "incidents",
            F.posexplode(_baseline_weeks(prior_years, window_weeks)).alias("_slot", "_baseline_week"),
        )
        history = values.select(
            *_KEYS, F.col("week_start_date").alias("_baseline_week"), F.col("value").alias("_b")
        )
        pairs = targets.join(history, [*_KEYS, "_baseline_week"])
        # One pass: each baseline week has its slot, so a series-week's baseline is one row of
        # `slots` columns; median and MAD are then read off sorted arrays of that row.
        wide = pairs.groupBy(*_KEYS, "week_start_date", "observed", "incidents").agg(
            F.count(F.lit(1)).alias("baseline_weeks"),
            *[F.max(F.when(F.col("_slot") == i, F.col("_b"))).alias(f"_b{i}") for i in range(slots)],
        )
        n, pad = F.col("baseline_weeks"), F.lit(_AFTER_ALL)
        values_sorted = F.sort_array(F.array(*[F.coalesce(F.col(f"_b{i}"), pad) for i in range(slots)]))
        wide = wide.withColumn("_sorted", values_sorted)
        wide = wide.withColumn("baseline_median", _median_of_first(F.col("_sorted"), n))
        deviations = F.sort_array(
            F.array(
                *[
                    F.when(
                        F.lit(i) <= n, F.abs(F.element_at("_sorted", i) - F.col("baseline_median"))
                    ).otherwise(pad)
                    for i in range(1, slots + 1)
                ]
            )
        )
        baselines = wide.withColumn("baseline_mad", _median_of_first(deviations, n))
        observed, median, mad = F.col("observed"), F.col("baseline_median"), F.col("baseline_mad")
        is_volume = F.col("metric") == "incidents"
        volume_z = robust_z(
            F.log(observed),
            F.log(median),
            F.when(median > 0, mad / median),
            F.greatest(F.lit(relative_floor), F.when(median > 0, F.lit(1.0) / F.sqrt(median))),
        )
        time_z = robust_z(
            observed, median, mad, F.greatest(F.lit(relative_floor) * F.abs(median), F.lit(time_floor_s))
        )
        z = F.when(is_volume & (observed > 0) & (median > 0), volume_z).when(~is_volume, time_z)
        scored = baselines.where(F.col("baseline_weeks") >= min_baseline_weeks).withColumn("robust_z", z)
        return scored.where(F.abs("robust_z") >= threshold).select(
            "week_start_date",
            "agency",
            "incident_type",
            "metric",
            "observed",
            "baseline_median",
            "baseline_mad",
            "robust_z",
            F.when(F.col("robust_z") > 0, "high").otherwise("low").alias("direction"),
            F.when(median != 0, observed / median).alias("ratio"),
            "baseline_weeks",
            "incidents",
        )

    return transform
