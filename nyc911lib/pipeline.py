"""Layer runs: read a layer's inputs, call the pure transforms, write its tables.

The notebooks (and the CLI through them) call these three functions; everything they do that
is not I/O lives in bronze/silver/quality/gold.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, SparkSession

from nyc911lib import storage
from nyc911lib.bronze import bronze_column_names, bronze_from_lines, check_required_columns
from nyc911lib.config import Params
from nyc911lib.errors import ParamsError, QualityRuleError
from nyc911lib.gold import (
    kpi_monthly_agency,
    kpi_summary,
    kpi_weekly,
    publication_drift,
    restatements,
    within_weeks,
)
from nyc911lib.quality import is_quarantined, quarantine_rows, rule_metrics, with_quality_results
from nyc911lib.sample import write_sample
from nyc911lib.silver import latest_per_key, silver_rows, superseded_rows, typed_e2e

log = logging.getLogger("nyc911")


@dataclass(frozen=True)
class BronzeResult:
    """What one bronze ingestion did."""

    batch_id: str
    source_file: str
    source_sha256: str
    already_ingested: bool


def new_batch_id(sha256: str, now: dt.datetime | None = None) -> str:
    """A batch id that sorts by ingestion time and names the file content: `20261126T200102Z-1a2b3c4d`."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return f"{now:%Y%m%dT%H%M%S%f}Z-{sha256[:8]}"


def ingest_bronze(
    spark: SparkSession, params: Params, source: str | Path, source_kind: str = "file"
) -> BronzeResult:
    """Append one export to bronze as received, unless the same content was ingested before.

    The header is checked before Spark reads anything: a missing file, an empty file or a file
    without the required columns raises a SourceError and nothing is written.
    """
    source = Path(source).resolve()
    header = storage.read_source_header(source)
    check_required_columns(str(source), bronze_column_names(header))
    sha = storage.file_sha256(source)
    if storage.table_exists(spark, params, "bronze", "e2e_raw"):
        seen = (
            storage.read_table(spark, params, "bronze", "e2e_raw")
            .where(F.col("_source_sha256") == sha)
            .select("_batch_id")
            .limit(1)
            .collect()
        )
        if seen:
            log.info("bronze: %s was already ingested as batch %s; nothing appended", source, seen[0][0])
            return BronzeResult(seen[0][0], str(source), sha, True)
    batch_id = new_batch_id(sha)
    bronze = (
        storage.read_source_lines(spark, source)
        .transform(bronze_from_lines(header, str(source), source_kind, batch_id))
        .withColumn("_source_sha256", F.lit(sha))
    )
    storage.write_table(bronze, params, "bronze", "e2e_raw", mode="append")
    return BronzeResult(batch_id, str(source), sha, False)


@dataclass(frozen=True)
class SilverTables:
    """The frames one silver build produces (not yet written)."""

    silver: DataFrame
    quarantine: DataFrame
    superseded: DataFrame
    metrics: DataFrame
    accounting: DataFrame


def evaluate_bronze(params: Params) -> Callable[[DataFrame], DataFrame]:
    """Bronze rows -> typed rows with every quality rule evaluated (nothing removed yet)."""

    def transform(bronze: DataFrame) -> DataFrame:
        return bronze.transform(
            typed_e2e(params.agency_codes, params.incident_type_fixes, params.unspecified_incident_type)
        ).transform(with_quality_results(params.quality_rules))

    return transform


def silver_tables(evaluated: DataFrame, params: Params) -> SilverTables:
    """Evaluated bronze -> every silver output: rows, quarantine, dedupe losers, metrics, accounting.

    Every evaluated row ends in exactly one of silver, quarantine or superseded.
    """
    ranked = latest_per_key(evaluated.where(~is_quarantined(evaluated)))
    outcome = ranked.select(
        "_batch_id", F.when(F.col("_rank") == 1, "silver").otherwise("superseded").alias("outcome")
    ).unionByName(
        evaluated.where(is_quarantined(evaluated)).select("_batch_id", F.lit("quarantine").alias("outcome"))
    )
    accounting = (
        outcome.groupBy(F.col("_batch_id").alias("batch_id"))
        .pivot("outcome", ["silver", "quarantine", "superseded"])
        .count()
        .na.fill(0)
        .select(
            "batch_id",
            (F.col("silver") + F.col("quarantine") + F.col("superseded")).alias("rows_bronze"),
            F.col("silver").alias("rows_silver"),
            F.col("quarantine").alias("rows_quarantined"),
            F.col("superseded").alias("rows_superseded"),
        )
    )
    return SilverTables(
        silver=silver_rows(ranked),
        quarantine=quarantine_rows(evaluated),
        superseded=superseded_rows(ranked),
        metrics=evaluated.transform(rule_metrics(params.quality_rules)),
        accounting=accounting,
    )


def build_silver(spark: SparkSession, params: Params, run_id: str) -> list[dict]:
    """Rebuild silver from all of bronze and append this run's quality metrics.

    Checks the `fail` rules first: when one is violated nothing is written. Returns the per-batch
    row accounting (small: one row per batch).
    """
    evaluated = storage.read_table(spark, params, "bronze", "e2e_raw").transform(evaluate_bronze(params))
    evaluated = evaluated.persist()  # read by every output below
    try:
        tables = silver_tables(evaluated, params)
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        stamp = [F.lit(run_id).alias("run_id"), F.lit(now).alias("evaluated_at")]
        metrics = tables.metrics.select(*stamp, "*")
        failing = {
            r["rule"]: r["rows_failed"]
            for r in metrics.where((F.col("action") == "fail") & (F.col("rows_failed") > 0)).collect()
        }
        if failing:
            raise QualityRuleError(
                "quality rules with action 'fail' were violated, nothing was written: "
                + ", ".join(f"{rule} ({n} rows)" for rule, n in sorted(failing.items()))
            )
        storage.write_table(tables.silver, params, "silver", "e2e_weekly")
        storage.write_table(tables.quarantine, params, "silver", "quarantine")
        storage.write_table(tables.superseded, params, "silver", "superseded")
        storage.write_table(metrics, params, "silver", "dq_metrics", mode="append")
        accounting = tables.accounting.select(*stamp, "*")
        storage.write_table(accounting, params, "silver", "batch_accounting", mode="append")
        return [r.asDict() for r in accounting.orderBy("batch_id").collect()]
    finally:
        evaluated.unpersist()


@dataclass(frozen=True)
class GoldTables:
    """The gold frames of one scope (not yet written)."""

    kpi_weekly: DataFrame
    kpi_monthly_agency: DataFrame
    kpi_summary: DataFrame


def gold_tables(
    silver: DataFrame, params: Params, date_from: dt.date | None = None, date_to: dt.date | None = None
) -> GoldTables:
    """Silver -> the gold KPI tables for the weeks in [date_from, date_to]."""
    weekly = silver.transform(within_weeks(date_from, date_to)).transform(kpi_weekly(params.sla_rules))
    return GoldTables(
        kpi_weekly=weekly,
        kpi_monthly_agency=kpi_monthly_agency(weekly),
        kpi_summary=weekly.transform(kpi_summary(date_from, date_to)),
    )


def build_gold(
    spark: SparkSession, params: Params, date_from: dt.date | None = None, date_to: dt.date | None = None
) -> dict:
    """Rewrite the gold tables from silver and return the summary row as a dict.

    The monthly and summary tables are computed from the written kpi_weekly table, so all three
    describe exactly the same rows.
    """
    scope = within_weeks(date_from, date_to)
    silver = storage.read_table(spark, params, "silver", "e2e_weekly").transform(scope)
    weekly = silver.transform(kpi_weekly(params.sla_rules))
    storage.write_table(weekly, params, "gold", "kpi_weekly")
    weekly = storage.read_table(spark, params, "gold", "kpi_weekly")
    storage.write_table(kpi_monthly_agency(weekly), params, "gold", "kpi_monthly_agency")
    storage.write_table(weekly.transform(kpi_summary(date_from, date_to)), params, "gold", "kpi_summary")
    superseded = storage.read_table(spark, params, "silver", "superseded").transform(scope)
    versions = silver.unionByName(superseded, allowMissingColumns=True)
    storage.write_table(restatements(versions), params, "gold", "restatements")
    storage.write_table(publication_drift(versions), params, "gold", "publication_drift")
    return storage.read_table(spark, params, "gold", "kpi_summary").first().asDict()


def new_run_id(now: dt.datetime | None = None) -> str:
    """An id for one pipeline run, sortable by time: `run-20261126T200102Z`."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return f"run-{now:%Y%m%dT%H%M%S}Z"


def parse_date(value: str | dt.date | None, name: str) -> dt.date | None:
    """A `YYYY-MM-DD` parameter as a date (None stays None); a clear error otherwise."""
    if value is None or isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as exc:
        raise ParamsError(f"{name} must be a date as YYYY-MM-DD, got '{value}'") from exc


def sample_source_path(params: Params) -> Path:
    """Where a run without a source lands the built-in synthetic sample."""
    if params.warehouse is None:
        raise ParamsError("the built-in sample needs a local warehouse; pass a source instead")
    return params.warehouse / "landing" / "nyc911_sample.csv"


def resolve_source(params: Params, source: str | Path | None) -> tuple[Path, str]:
    """The file to ingest and its kind: a given export (`file`) or the built-in sample (`sample`),
    written on first use. The source is checked (exists, not empty, required columns) here, so a
    bad source fails before any Spark work."""
    if source is None:
        path = sample_source_path(params)
        if not path.is_file():
            write_sample(path)
        kind = "sample"
    else:
        path, kind = Path(source).resolve(), "file"
    header = storage.read_source_header(path)
    check_required_columns(str(path), bronze_column_names(header))
    return path, kind
