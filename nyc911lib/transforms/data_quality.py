"""Gold: the data-quality status of every publication, from the run logs of bronze and silver.

A report reads gold only, so what it says about trust (rows landed, quarantined per rule,
superseded, how fresh the data is) is derived here from `bronze.ingest_log`,
`silver.batch_accounting` and `silver.dq_metrics`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, Window

_ACCOUNTING_COLUMNS = (
    "rows_bronze",
    "rows_silver",
    "rows_unchanged",
    "rows_superseded",
    "rows_quarantined",
    "rows_replaced",
)


def latest_log_entries(
    keys: Sequence[str], columns: Sequence[str], order: str = "evaluated_at"
) -> Callable[[DataFrame], DataFrame]:
    """The newest row of each `keys` in a run log, with `columns`. A batch replayed after a crash
    is logged again under a new run; both entries hold the same counts, one is kept."""

    def transform(log: DataFrame) -> DataFrame:
        newest = F.row_number().over(Window.partitionBy(*keys).orderBy(F.col(order).desc()))
        return log.select(*columns, newest.alias("_newest")).where(F.col("_newest") == 1).select(*columns)

    return transform


def data_quality_batches(ingest_log: DataFrame, accounting: DataFrame) -> DataFrame:
    """One row per landed file: where it came from, when it was ingested, and where its rows went.

    `rows_accounted` is TRUE when every data line of an ingested file is in silver, unchanged,
    superseded or quarantine (rows_bronze = rows_landed); duplicates of an earlier publication
    add no rows, and a file silver has not processed yet has NULL counts.
    """
    per_batch = accounting.transform(latest_log_entries(["batch_id"], ["batch_id", *_ACCOUNTING_COLUMNS]))
    logged = ("batch_id", "source_file", "source_kind", "status", "duplicate_of", "ingested_at", "rows")
    files = ingest_log.transform(
        latest_log_entries(["batch_id", "source_file"], logged, "ingested_at")
    ).withColumnRenamed("rows", "rows_landed")
    joined = files.join(per_batch, "batch_id", "left")
    return joined.withColumn(
        "rows_accounted",
        F.when(F.col("status") == "duplicate", F.lit(True)).otherwise(
            F.col("rows_bronze") == F.col("rows_landed")
        ),
    )


def data_quality_rules(metrics: DataFrame) -> DataFrame:
    """silver.dq_metrics -> one row per publication x rule: the rule's action and how many rows
    failed it. A quarantined row can fail several `drop` rules, so per-rule counts may add up to
    more than the batch's quarantined rows."""
    columns = ("batch_id", "rule", "action", "condition", "rows_evaluated", "rows_failed")
    return metrics.transform(latest_log_entries(["batch_id", "rule"], columns))
