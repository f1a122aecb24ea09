"""Data-quality rules as data (DLT-expectation style): warn keeps, drop quarantines, fail stops."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame

from nyc911lib.config import QualityRule
from nyc911lib.transforms.compat import names_where, struct_fields


def rule_passes(rule: QualityRule) -> Column:
    """TRUE when a row meets the rule; a NULL condition counts as a failure (as it should for
    `incidents > 0` on a NULL count)."""
    return F.coalesce(F.expr(rule.condition), F.lit(False))


def with_quality_results(rules: Sequence[QualityRule]) -> Callable[[DataFrame], DataFrame]:
    """Evaluate every rule on every row.

    Adds `quarantine_reasons` (every failed `drop` rule), `quality_warnings` (every failed `warn`
    rule), `failed_fail_rules` (every failed `fail` rule) and `failed_rules` (all of them).

    One select over the input, so each rule appears twice (in its action's list and in
    `failed_rules`): flag columns computed first would have to be dropped again, and a drop (or
    `df.columns`) makes Spark Connect analyse the plan, which a declarative pipeline cannot do
    while it declares its datasets.
    """

    def failed(action: str | None) -> Column:
        return names_where([(r.name, ~rule_passes(r)) for r in rules if action in (None, r.action)])

    def transform(df: DataFrame) -> DataFrame:
        return df.select(
            "*",
            failed("drop").alias("quarantine_reasons"),
            failed("warn").alias("quality_warnings"),
            failed("fail").alias("failed_fail_rules"),
            failed(None).alias("failed_rules"),
        )

    return transform


def is_quarantined(df: DataFrame) -> Column:
    """Rows that failed at least one `drop` rule."""
    return F.size(df["quarantine_reasons"]) > 0


def quarantine_rows(evaluated: DataFrame) -> DataFrame:
    """Rows failing a drop rule, stored as received (source text) with every reason and lineage."""
    lineage = [c for c in evaluated.columns if c.startswith("_") and c not in ("_raw",)]
    return evaluated.where(is_quarantined(evaluated)).select(
        *struct_fields(evaluated, "_raw"),
        *lineage,
        "quarantine_reasons",
        "quality_warnings",
    )


def rule_metrics(rules: Sequence[QualityRule]) -> Callable[[DataFrame], DataFrame]:
    """Per batch and rule: rows evaluated, passed and failed (long format, one row per rule)."""

    def transform(evaluated: DataFrame) -> DataFrame:
        counts = [
            F.sum(F.array_contains("failed_rules", r.name).cast("long")).cast("long").alias(f"f{i}")
            for i, r in enumerate(rules)
        ]
        per_batch = evaluated.groupBy("_batch_id").agg(F.count(F.lit(1)).alias("rows_evaluated"), *counts)
        stacked = F.explode(
            F.array(
                *[
                    F.struct(
                        F.lit(r.name).alias("rule"),
                        F.lit(r.action).alias("action"),
                        F.lit(r.condition).alias("condition"),
                        F.col(f"f{i}").alias("rows_failed"),
                    )
                    for i, r in enumerate(rules)
                ]
            )
        ).alias("m")
        return per_batch.select(F.col("_batch_id").alias("batch_id"), "rows_evaluated", stacked).select(
            "batch_id",
            F.col("m.rule"),
            F.col("m.action"),
            F.col("m.condition"),
            "rows_evaluated",
            (F.col("rows_evaluated") - F.col("m.rows_failed")).alias("rows_passed"),
            F.col("m.rows_failed"),
        )

    return transform


SCHEMA_DRIFT_RULE = "source_schema_drift"


def schema_drift_metrics(known: Sequence[str]) -> Callable[[DataFrame], DataFrame]:
    """Bronze rows -> a `warn` metric per batch and source column the pipeline does not know:
    the column is kept in bronze (rescued), silver ignores it, and the metrics say so."""

    def transform(bronze: DataFrame) -> DataFrame:
        extra = [c for c in bronze.columns if not c.startswith("_") and c not in known]
        schema = "batch_id STRING, rule STRING, action STRING, condition STRING, rows_evaluated BIGINT, " + (
            "rows_passed BIGINT, rows_failed BIGINT"
        )
        if not extra:
            return bronze.sparkSession.createDataFrame([], schema)
        counts = bronze.groupBy(F.col("_batch_id").alias("batch_id")).agg(
            F.count(F.lit(1)).alias("rows_evaluated"),
            *[F.count(F.col(c)).alias(f"n{i}") for i, c in enumerate(extra)],
        )
        stacked = F.explode(
            F.array(
                *[
                    F.struct(
                        F.lit(f"new source column '{c}' (kept in bronze)").alias("condition"),
                        F.col(f"n{i}").alias("rows_failed"),
                    )
                    for i, c in enumerate(extra)
                ]
            )
        ).alias("m")
        return (
            counts.select("batch_id", "rows_evaluated", stacked)
            .where(F.col("m.rows_failed") > 0)
            .select(
                "batch_id",
                F.lit(SCHEMA_DRIFT_RULE).alias("rule"),
                F.lit("warn").alias("action"),
                F.col("m.condition"),
                "rows_evaluated",
                (F.col("rows_evaluated") - F.col("m.rows_failed")).alias("rows_passed"),
                F.col("m.rows_failed"),
            )
        )

    return transform
