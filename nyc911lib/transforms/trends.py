"""Gold: agency-level trends and the latest-week headline, incident-weighted like all of gold.

`kpi_agency_weekly` rolls kpi_weekly up to week x agency (plus an "All agencies" row per week);
`kpi_headline` compares the latest week with the same week a year earlier and with the median of
the 12 weeks before it; `kpi_monthly_priority` gives dispatch and travel times per agency and
priority.
"""

from __future__ import annotations

import pyspark.sql.functions as F
from pyspark.sql import DataFrame

from nyc911lib.transforms.compat import lookup
from nyc911lib.transforms.gold import incident_weighted_mean, pct

ALL_AGENCIES = "All agencies"
# The metrics of the agency trends and the headline: (column, lower is better?) None = neutral.
TREND_METRICS = {
    "incidents": None,
    "avg_call_to_first_pickup_s": True,
    "avg_dispatch_s": True,
    "avg_travel_s": True,
    "avg_call_to_agency_arrival_s": True,
}
_TIME_METRICS = [m for m in TREND_METRICS if m != "incidents"]
TRAILING_WEEKS = 12
DAYS_PER_YEAR_OF_WEEKS = 364  # 52 weeks: the same ISO weekday, nearly always the same ISO week


def _weekly_rollup(weekly: DataFrame, agency: F.Column) -> DataFrame:
    return weekly.groupBy("week_start_date", agency.alias("agency")).agg(
        F.sum("incidents").cast("long").alias("incidents"),
        *[incident_weighted_mean(m).alias(m) for m in _TIME_METRICS],
        F.count(F.lit(1)).alias("rows"),
    )


def kpi_agency_weekly(weekly: DataFrame) -> DataFrame:
    """kpi_weekly -> one row per week x agency, plus one `All agencies` row per week: incidents
    and the incident-weighted time metrics (seconds)."""
    return _weekly_rollup(weekly, F.col("agency")).unionByName(_weekly_rollup(weekly, F.lit(ALL_AGENCIES)))


def kpi_headline(agency_weekly: DataFrame) -> DataFrame:
    """kpi_agency_weekly -> the latest week of the data, one row per agency x metric: the value,
    the same week a year earlier (52 weeks back), the median of the 12 weeks before it, and the
    change against each in %. `lower_is_better` tells a reader which direction is good (NULL for
    volumes, which are neither)."""
    latest = agency_weekly.agg(F.max("week_start_date").alias("latest_week"))
    long = agency_weekly.unpivot(
        ["week_start_date", "agency"],
        [F.col(m).cast("double").alias(m) for m in TREND_METRICS],
        "metric",
        "value",
    )
    current = long.join(latest, F.col("week_start_date") == F.col("latest_week")).select(
        "week_start_date", "agency", "metric", "value"
    )
    history = long.select(
        "agency", "metric", F.col("week_start_date").alias("h_week"), F.col("value").alias("h_value")
    )
    last_year_week = F.date_sub(F.col("week_start_date"), DAYS_PER_YEAR_OF_WEEKS)
    trailing = (F.col("h_week") < F.col("week_start_date")) & (
        F.col("h_week") >= F.date_sub(F.col("week_start_date"), 7 * TRAILING_WEEKS)
    )
    joined = current.join(history, ["agency", "metric"], "left")
    compared = (
        joined.select("agency", "metric", "week_start_date", "value", "h_week", "h_value")
        .groupBy("agency", "metric", "week_start_date", "value")
        .agg(
            F.max(F.when(F.col("h_week") == last_year_week, F.col("h_value"))).alias("last_year_value"),
            F.median(F.when(trailing, F.col("h_value"))).alias("trailing_12w_median"),
            F.count(F.when(trailing & F.col("h_value").isNotNull(), 1)).alias("trailing_weeks"),
        )
    )
    direction = lookup(TREND_METRICS, "boolean")
    return compared.select(
        "agency",
        "metric",
        "week_start_date",
        "value",
        last_year_week.alias("last_year_week"),
        "last_year_value",
        pct(F.col("value") - F.col("last_year_value"), F.col("last_year_value")).alias(
            "change_vs_last_year_pct"
        ),
        "trailing_12w_median",
        "trailing_weeks",
        pct(F.col("value") - F.col("trailing_12w_median"), F.col("trailing_12w_median")).alias(
            "change_vs_trailing_median_pct"
        ),
        direction(F.col("metric")).alias("lower_is_better"),
    )


def kpi_monthly_priority(weekly: DataFrame) -> DataFrame:
    """kpi_weekly -> one row per month x agency x priority (NULL: the agency's types carry no
    priority): incidents and the incident-weighted dispatch and travel times, seconds."""
    month = F.trunc("week_start_date", "month").alias("month")
    return weekly.groupBy(month, "agency", "priority").agg(
        F.sum("incidents").cast("long").alias("incidents"),
        incident_weighted_mean("avg_dispatch_s").alias("avg_dispatch_s"),
        incident_weighted_mean("avg_travel_s").alias("avg_travel_s"),
        F.countDistinct("week_start_date").alias("weeks"),
    )
