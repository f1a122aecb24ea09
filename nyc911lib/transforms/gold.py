"""Gold: all KPI logic, incident-weighted. BI and the report read only these tables.

Every time column of the source is an average (or median) over the incidents of its row, so any
rollup weights each row by its `incidents`: a plain mean of weekly averages is wrong, and so is a
row count presented as incidents.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable, Sequence
from functools import reduce

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame, Window, WindowSpec

from nyc911lib.config import SlaRule

# The public kpi_weekly contract (BI users depend on these names; columns may be added).
KPI_WEEKLY_METRICS = {
    "avg_call_to_first_pickup_s": "call_to_first_pickup_s",
    "avg_call_to_agency_dispatch_s": "call_to_agency_dispatch_s",
    "avg_call_to_agency_arrival_s": "call_to_agency_arrival_s",
    "avg_dispatch_s": "avg_dispatch_s",
    "avg_travel_s": "avg_travel_s",
    "median_dispatch_s": "median_dispatch_s",
    "median_travel_s": "median_travel_s",
    "avg_call_to_first_arrival_multi_agency_s": "call_to_first_arrival_multi_agency_s",
}
MONTHLY_METRICS = (
    "avg_call_to_first_pickup_s",
    "avg_dispatch_s",
    "avg_travel_s",
    "avg_call_to_agency_arrival_s",
)


def incident_weighted_mean(value: str, weight: str = "incidents", over: WindowSpec | None = None) -> Column:
    """sum(value * incidents) / sum(incidents), over the rows where `value` is known: an
    aggregate, or with `over` a window function (e.g. the 52 weeks ending with each row's week).

    Rows with a NULL value carry no information about it, so their incidents are left out of
    the denominator too (otherwise a missing value would pull the mean towards zero).
    """
    known = F.col(value).isNotNull()
    numerator = F.sum(F.when(known, F.col(value) * F.col(weight)))
    denominator = F.sum(F.when(known, F.col(weight)))
    if over is not None:
        numerator, denominator = numerator.over(over), denominator.over(over)
    return numerator / denominator


def pct(part: Column, whole: Column) -> Column:
    """100 * part / whole, NULL when the whole is zero or NULL."""
    return F.when(whole > 0, F.lit(100.0) * part / whole)


def sla_breach_flag(rule: SlaRule) -> Column:
    """TRUE/FALSE whether a kpi_weekly row breaches `rule`; NULL when the rule does not apply to
    the row (out of its agency / incident-type scope) or the metric is unknown."""
    in_scope = F.lit(True)
    if rule.agencies:
        in_scope = in_scope & F.col("agency").isin(list(rule.agencies))
    if rule.incident_types:
        in_scope = in_scope & F.col("incident_type").isin(list(rule.incident_types))
    return F.when(in_scope & F.col(rule.metric).isNotNull(), F.col(rule.metric) > rule.threshold_s)


def within_weeks(date_from: dt.date | None, date_to: dt.date | None) -> Callable[[DataFrame], DataFrame]:
    """Keep the weeks whose start date lies in [date_from, date_to] (either bound optional)."""

    def transform(df: DataFrame) -> DataFrame:
        cond = F.lit(True)
        if date_from is not None:
            cond = cond & (F.col("week_start_date") >= F.lit(date_from))
        if date_to is not None:
            cond = cond & (F.col("week_start_date") <= F.lit(date_to))
        return df.where(cond)

    return transform


def kpi_weekly(sla_rules: Sequence[SlaRule]) -> Callable[[DataFrame], DataFrame]:
    """Silver rows -> the weekly KPI table: one row per week x agency x incident type.

    Adds one `sla_breach_<rule>` flag per SLA rule and `sla_breached` (any applicable rule
    breached; NULL when no rule applies).
    """

    def transform(silver: DataFrame) -> DataFrame:
        metrics = [F.col(src).alias(name) for name, src in KPI_WEEKLY_METRICS.items()]
        base = silver.select(
            "week_start_date",
            "agency",
            "incident_type",
            "priority",
            "incidents",
            *metrics,
            F.col("_source_kind").alias("source_kind"),
        )
        flags = [sla_breach_flag(rule).alias(rule.flag_column) for rule in sla_rules]
        flagged = base.select("*", *flags)
        if sla_rules:
            cols = [F.col(r.flag_column) for r in sla_rules]
            evaluated = reduce(operator.or_, [c.isNotNull() for c in cols])
            any_breach = F.when(evaluated, reduce(operator.or_, [F.coalesce(c, F.lit(False)) for c in cols]))
        else:
            any_breach = F.lit(None).cast("boolean")
        return flagged.withColumn("sla_breached", any_breach)

    return transform


def _breach_aggregates() -> list[Column]:
    evaluated = F.col("sla_breached").isNotNull()
    breached = F.coalesce(F.col("sla_breached"), F.lit(False))
    return [
        pct(
            F.sum(F.when(breached, F.col("incidents")).otherwise(0)),
            F.sum(F.when(evaluated, F.col("incidents")).otherwise(0)),
        ).alias("sla_breach_incidents_pct"),
        pct(F.sum(breached.cast("long")), F.sum(evaluated.cast("long"))).alias("sla_breach_rows_pct"),
    ]


def kpi_monthly_agency(weekly: DataFrame) -> DataFrame:
    """kpi_weekly -> one row per month x agency; a week belongs to the month of its start date.

    `sla_breach_rate_pct` is the share of incidents in breaching rows (incident-weighted, like
    every other figure); `sla_breach_rows_pct` the share of rows, for comparison. `weeks` counts
    the weeks starting in the month (4 or 5, fewer at the edges of the data): monthly sums swing
    with it, so volumes compare across months as `incidents_per_week`, the month's mean of its
    weekly incidents.
    """
    month = F.trunc("week_start_date", "month").alias("month")
    agg = weekly.groupBy(month, "agency").agg(
        F.sum("incidents").cast("long").alias("incidents"),
        *[incident_weighted_mean(m).alias(m) for m in MONTHLY_METRICS],
        *_breach_aggregates(),
        F.count(F.lit(1)).alias("rows"),
        F.countDistinct("week_start_date").alias("weeks"),
    )
    return agg.withColumn("sla_breach_rate_pct", F.col("sla_breach_incidents_pct")).select(
        "month",
        "agency",
        "incidents",
        *MONTHLY_METRICS,
        "sla_breach_rate_pct",
        "sla_breach_rows_pct",
        "rows",
        "weeks",
        (F.col("incidents") / F.col("weeks")).alias("incidents_per_week"),
    )


def kpi_summary(
    scope_from: dt.date | None = None,
    scope_to: dt.date | None = None,
    by: Sequence[str] = (),
) -> Callable[[DataFrame], DataFrame]:
    """kpi_weekly -> one row for the run scope (or one per value of the `by` columns, e.g. per
    agency, those columns first): weeks covered, totals and weighted headline KPIs.

    `source_kinds` says where the data came from (`sample` marks the synthetic built-in sample).
    """

    def transform(weekly: DataFrame) -> DataFrame:
        aggregates = (
            F.lit(scope_from).cast("date").alias("scope_from"),
            F.lit(scope_to).cast("date").alias("scope_to"),
            F.min("week_start_date").alias("first_week"),
            F.max("week_start_date").alias("last_week"),
            F.coalesce(F.sum("incidents"), F.lit(0)).cast("long").alias("total_incidents"),
            F.count(F.lit(1)).alias("rows"),
            F.countDistinct("agency").alias("agencies"),
            incident_weighted_mean("avg_call_to_first_pickup_s").alias("avg_call_to_first_pickup_s"),
            *_breach_aggregates(),
            F.concat_ws(",", F.array_sort(F.collect_set("source_kind"))).alias("source_kinds"),
        )
        return weekly.groupBy(*by).agg(*aggregates) if by else weekly.agg(*aggregates)

    return transform


# What a restatement compares: the count and every time the gold contract exposes.
RESTATED_COLUMNS = ("incidents", *KPI_WEEKLY_METRICS.values())
_PUBLICATION_ORDER = ("_ingested_at", "_batch_id", "_line_number")


def restatements(versions: DataFrame) -> DataFrame:
    """Every valid version of every key (silver rows and the rows they superseded) -> one row per
    change between consecutive versions: what a later publication revised.

    A version identical to the one before it (same count and times) is not a restatement.
    """
    key = Window.partitionBy("week_start_date", "agency", "incident_type").orderBy(*_PUBLICATION_ORDER)
    previous = {c: F.lag(c).over(key) for c in (*RESTATED_COLUMNS, "_batch_id", "_source_file")}
    changed = reduce(operator.or_, [~F.col(c).eqNullSafe(F.col(f"previous_{c}")) for c in RESTATED_COLUMNS])
    return (
        versions.select("*", *[v.alias(f"previous_{c}") for c, v in previous.items()])
        .where(F.col("previous__batch_id").isNotNull() & changed)
        .select(
            "week_start_date",
            "agency",
            "incident_type",
            F.col("previous__batch_id").alias("old_batch_id"),
            F.col("_batch_id").alias("new_batch_id"),
            F.col("previous__source_file").alias("old_source_file"),
            F.col("_source_file").alias("new_source_file"),
            F.col("previous_incidents").alias("old_incidents"),
            F.col("incidents").alias("new_incidents"),
            F.col("previous_call_to_first_pickup_s").alias("old_avg_call_to_first_pickup_s"),
            F.col("call_to_first_pickup_s").alias("new_avg_call_to_first_pickup_s"),
            F.array_compact(
                F.array(
                    *[
                        F.when(~F.col(c).eqNullSafe(F.col(f"previous_{c}")), F.lit(c))
                        for c in RESTATED_COLUMNS
                    ]
                )
            ).alias("changed_columns"),
        )
    )


def publication_drift(versions: DataFrame) -> DataFrame:
    """Per week x agency: the KPIs as first published next to the KPIs as currently restated.

    "First published" takes each key's earliest valid version, "current" its latest (what silver
    holds); both incident-weighted. Shows how much recent weeks move after publication.
    """
    key = Window.partitionBy("week_start_date", "agency", "incident_type")
    first = F.row_number().over(key.orderBy(*_PUBLICATION_ORDER)) == 1
    latest = F.row_number().over(key.orderBy(*[F.col(c).desc() for c in _PUBLICATION_ORDER])) == 1
    marked = versions.select("*", first.alias("_first"), latest.alias("_latest"))

    measures = ("incidents", "avg_call_to_first_pickup_s", "avg_travel_s", "rows")

    def side(flag: str, prefix: str) -> DataFrame:
        rows = marked.where(F.col(flag))
        return rows.groupBy("week_start_date", "agency").agg(
            F.sum("incidents").cast("long").alias(f"{prefix}_incidents"),
            incident_weighted_mean("call_to_first_pickup_s").alias(f"{prefix}_avg_call_to_first_pickup_s"),
            incident_weighted_mean("avg_travel_s").alias(f"{prefix}_avg_travel_s"),
            F.count(F.lit(1)).alias(f"{prefix}_rows"),
        )

    first_published = side("_first", "first_published")
    current = side("_latest", "current")
    joined = first_published.join(current, ["week_start_date", "agency"], "full")
    # Selected by name first (SQLFrame then forgets which side each came from, issue #210); named
    # here rather than read from `joined.columns`, which would analyse the plan.
    sides = [f"{prefix}_{m}" for prefix in ("first_published", "current") for m in measures]
    return joined.select("week_start_date", "agency", *sides).select(
        "*",
        (F.col("current_incidents") - F.col("first_published_incidents")).alias("incidents_change"),
        pct(
            F.col("current_incidents") - F.col("first_published_incidents"),
            F.col("first_published_incidents"),
        ).alias("incidents_change_pct"),
        (
            F.col("current_avg_call_to_first_pickup_s") - F.col("first_published_avg_call_to_first_pickup_s")
        ).alias("avg_call_to_first_pickup_change_s"),
    )
