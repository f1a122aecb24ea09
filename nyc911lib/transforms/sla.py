"""Gold: SLA breaches as alerts and as weekly rates (what went wrong, where, since when).

Both tables derive from `kpi_weekly`, whose `sla_breach_<rule>` flags are the one place a
threshold is applied; nothing here re-evaluates a rule.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import reduce

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, Window

from nyc911lib.config import SlaRule
from nyc911lib.schema import BREACH_COLUMNS
from nyc911lib.transforms.gold import pct

SERIES = ("rule", "agency", "incident_type")


def _breaching_rows(weekly: DataFrame, rule: SlaRule) -> DataFrame:
    return weekly.where(F.col(rule.flag_column)).select(
        F.lit(rule.name).alias("rule"),
        F.lit(rule.metric).alias("metric"),
        "agency",
        "incident_type",
        "week_start_date",
        F.col(rule.metric).cast("double").alias("observed_s"),
        F.lit(float(rule.threshold_s)).cast("double").alias("threshold_s"),
        F.col("incidents").alias("incidents_affected"),
    )


def with_breach_streaks(alerts: DataFrame) -> DataFrame:
    """Breach rows (schema.BREACH_COLUMNS) -> the same with `streak_start_week` and `streak_weeks`: the
    first week of the run of consecutive weekly breaches (same rule, agency and incident type)
    that a row belongs to, and how many weeks that run has lasted up to and including the row's
    week. A week without a breach (or without data) ends a streak."""
    ordered = Window.partitionBy(*SERIES).orderBy("week_start_date")
    # Gaps and islands: within a run of consecutive weeks, week - 7 * row_number is constant.
    island = F.date_sub(F.col("week_start_date"), (F.row_number().over(ordered) * 7).cast("int"))
    marked = alerts.withColumn("_island", island)
    streak = Window.partitionBy(*SERIES, "_island").orderBy("week_start_date")
    return marked.select(
        *BREACH_COLUMNS,
        F.min("week_start_date").over(streak).alias("streak_start_week"),
        F.row_number().over(streak).cast("int").alias("streak_weeks"),
    )


def sla_alerts(sla_rules: Sequence[SlaRule]) -> Callable[[DataFrame], DataFrame]:
    """kpi_weekly -> one row per SLA breach: rule, agency, incident type, week, the observed value
    and threshold (seconds), the incidents affected and the breach streak it belongs to."""

    def transform(weekly: DataFrame) -> DataFrame:
        parts = [_breaching_rows(weekly, rule) for rule in sla_rules]
        if not parts:
            empty = weekly.limit(0)
            parts = [
                empty.select(
                    F.lit(None).cast("string").alias("rule"),
                    F.lit(None).cast("string").alias("metric"),
                    "agency",
                    "incident_type",
                    "week_start_date",
                    F.lit(None).cast("double").alias("observed_s"),
                    F.lit(None).cast("double").alias("threshold_s"),
                    F.col("incidents").alias("incidents_affected"),
                )
            ]
        return reduce(DataFrame.unionByName, parts).transform(with_breach_streaks)

    return transform


def sla_breach_weekly(sla_rules: Sequence[SlaRule]) -> Callable[[DataFrame], DataFrame]:
    """kpi_weekly -> per rule x week x agency: rows and incidents the rule applies to, those in
    breach, and the breach rate as % of incidents (rows out of the rule's scope do not count)."""

    def transform(weekly: DataFrame) -> DataFrame:
        parts = []
        for rule in sla_rules:
            flag = F.col(rule.flag_column)
            evaluated = flag.isNotNull()
            breached = F.coalesce(flag, F.lit(False))
            parts.append(
                weekly.where(evaluated)
                .groupBy("week_start_date", "agency")
                .agg(
                    F.count(F.lit(1)).alias("rows_evaluated"),
                    F.sum(breached.cast("long")).cast("long").alias("rows_breached"),
                    F.sum("incidents").cast("long").alias("incidents_evaluated"),
                    F.sum(F.when(breached, F.col("incidents")).otherwise(0))
                    .cast("long")
                    .alias("incidents_breached"),
                )
                .select(F.lit(rule.name).alias("rule"), "*")
            )
        if not parts:
            return weekly.sparkSession.createDataFrame(
                [],
                "rule STRING, week_start_date DATE, agency STRING, rows_evaluated BIGINT, "
                "rows_breached BIGINT, incidents_evaluated BIGINT, incidents_breached BIGINT, "
                "breach_incidents_pct DOUBLE",
            )
        rates = reduce(DataFrame.unionByName, parts)
        return rates.withColumn(
            "breach_incidents_pct", pct(F.col("incidents_breached"), F.col("incidents_evaluated"))
        )

    return transform


def sla_rules_table(sla_rules: Sequence[SlaRule]) -> list[dict]:
    """The SLA rules gold was computed with, as rows (the report states them next to the numbers)."""
    return [
        {
            "rule": r.name,
            "metric": r.metric,
            "threshold_s": float(r.threshold_s),
            "description": r.description,
            "agencies": list(r.agencies),
            "incident_types": list(r.incident_types),
        }
        for r in sla_rules
    ]


SLA_RULES_SCHEMA = (
    "rule STRING, metric STRING, threshold_s DOUBLE, description STRING, "
    "agencies ARRAY<STRING>, incident_types ARRAY<STRING>"
)
