"""Layer runs: read a layer's inputs, call the pure transforms, write its tables.

The notebooks (and the CLI through them) call these three functions; everything they do that
is not I/O lives in bronze/silver/quality/gold.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import reduce
from pathlib import Path

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, SparkSession

from nyc911lib import storage
from nyc911lib.anomalies import weekly_anomalies
from nyc911lib.bronze import (
    bronze_column_names,
    bronze_from_numbered_lines,
    check_required_columns,
    lines_of_files,
    lines_of_text_file,
    parse_header_line,
)
from nyc911lib.config import Params
from nyc911lib.data_quality import data_quality_batches, data_quality_rules
from nyc911lib.errors import ParamsError, QualityRuleError, SourceError
from nyc911lib.faults import fault_point
from nyc911lib.fetch import LANDED_PREFIX
from nyc911lib.gold import (
    kpi_monthly_agency,
    kpi_summary,
    kpi_weekly,
    publication_drift,
    restatements,
    within_weeks,
)
from nyc911lib.quality import (
    is_quarantined,
    quarantine_rows,
    rule_metrics,
    schema_drift_metrics,
    with_quality_results,
)
from nyc911lib.sample import write_sample
from nyc911lib.schema import BRONZE_SOURCE_NAMES, NATURAL_KEY
from nyc911lib.silver import (
    _EVALUATION_COLUMNS,
    VALUE_COLUMNS,
    latest_per_key,
    restatement_outcomes,
    silver_rows,
    superseded_rows,
    typed_e2e,
)
from nyc911lib.sla import SLA_RULES_SCHEMA, sla_alerts, sla_breach_weekly, sla_rules_table
from nyc911lib.spark import size_shuffles
from nyc911lib.streaming import landing_files, run_available_now, table_changes
from nyc911lib.trends import kpi_agency_weekly, kpi_headline, kpi_monthly_priority

log_ = logging.getLogger("nyc911")


def new_batch_id(sha256: str, now: dt.datetime | None = None) -> str:
    """A batch id that sorts by ingestion time and names the file content: `20261126T200102Z-1a2b3c4d`."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return f"{now:%Y%m%dT%H%M%S%f}Z-{sha256[:8]}"


LANDED_KINDS = ("sample", "file", "live")


def source_kind_of(file_name: str) -> str:
    """How a landed file arrived: `<stamp>__<kind>__<name>` (a replay or the sample), a fetched
    `nyc911_e2e_<stamp>.csv` (live), else a file dropped in by hand."""
    for kind in LANDED_KINDS:
        if f"__{kind}__" in file_name:
            return kind
    return "live" if file_name.startswith(LANDED_PREFIX) else "file"


def publication_id(file_name: str, modified: dt.datetime, sha256: str) -> str:
    """A landed file's batch id: its landing stamp (else its modification time) and content hash,
    `20261126T200102123456Z-1a2b3c4d`; ids sort in publication order."""
    stamp = storage.publication_stamp(file_name) or f"{modified:%Y%m%dT%H%M%S%f}Z"
    return f"{stamp}-{sha256[:8]}"


def land_source(params: Params, source: str | Path | None) -> tuple[Path, str, bool]:
    """Check an export and land it as a new publication: (landed file, kind, whether it is new).

    No source means the built-in sample. A file whose content is already in the landing folder
    is not landed twice. A bad file (missing, empty, HTML, required columns missing) raises here,
    before anything is landed or written.
    """
    path, kind = resolve_source(params, source)
    landed, new = storage.land_file(path, params.landing_dir, kind)
    return landed, kind, new


def _bronze_batch(spark: SparkSession, params: Params, files: DataFrame, txn: storage.Txn) -> list[dict]:
    """One micro-batch of landed files -> bronze rows (one append) and one ingest-log row per file.

    Every header is checked before anything is written. A file whose content was ingested before
    (the same export downloaded twice) is logged as a duplicate and not appended again.
    """
    found = {r["path"]: r for r in files.select("path", "modificationTime", "length").collect()}
    # Small files are read whole (their content is already in `files`); a file over the limit is
    # read in parallel line splits and hashed on the driver, so no task has to hold a whole file.
    limit = params.performance.whole_file_max_mb * 2**20
    big = sorted(path for path, f in found.items() if f["length"] > limit)
    lines = lines_of_files(files.where(~F.col("path").isin(big)) if big else files).persist()
    try:
        sha_of, header_of, data_lines, line_frames = {}, {}, {}, {}
        for r in lines.where(F.col("_line_number") == 1).select("path", "_source_sha256", "value").collect():
            sha_of[r["path"]], header_of[r["path"]] = r["_source_sha256"], parse_header_line(r["value"])
        for r in lines.where(F.col("_line_number") > 1).groupBy("path").count().collect():
            data_lines[r["path"]] = r["count"]  # every line but the header is one bronze row
        for path in big:
            local = storage.local_file(path)
            sha_of[path], header_of[path] = storage.file_sha256(local), storage.read_source_header(local)
            text = storage.read_file_lines(spark, path)
            line_frames[path] = text.transform(lines_of_text_file(path, sha_of[path]))
            data_lines[path] = text.count() - 1  # one plain pass: numbering the lines is not needed
        for path in sorted(found):
            if path not in header_of:
                raise SourceError(f"landed file is empty: {path}; remove it from the landing folder")
            check_required_columns(path, bronze_column_names(header_of[path]))
        seen: dict[str, str] = {}
        if storage.table_exists(spark, params, "bronze", "e2e_raw"):
            seen = {
                r[0]: r[1]
                for r in storage.read_table(spark, params, "bronze", "e2e_raw")
                .where(F.col("_source_sha256").isin(list(sha_of.values())))
                .select("_source_sha256", "_batch_id")
                .distinct()
                .collect()
            }
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        frames, log = [], []
        files_in_order = sorted(
            found.values(),
            key=lambda f: publication_id(Path(f["path"]).name, f["modificationTime"], sha_of[f["path"]]),
        )
        for f in files_in_order:
            path, sha = f["path"], sha_of[f["path"]]
            name, kind = Path(path).name, source_kind_of(Path(path).name)
            batch_id = publication_id(name, f["modificationTime"], sha)
            # the same content under an earlier batch id; a replay of this very batch is not a
            # duplicate (it is appended again and Delta's transaction id skips it)
            duplicate_of = seen.get(sha) if seen.get(sha, batch_id) != batch_id else None
            entry = {
                "batch_id": batch_id,
                "source_file": path.removeprefix("file:"),
                "source_kind": kind,
                "source_sha256": sha,
                "bytes": f["length"],
                "status": "duplicate" if duplicate_of else "ingested",
                "duplicate_of": duplicate_of,
                "ingested_at": now,
                "rows": 0 if duplicate_of else data_lines.get(path, 0),
            }
            log.append(entry)
            if duplicate_of:
                log_.info("bronze: %s has the content of batch %s; not appended", path, duplicate_of)
                continue
            seen[sha] = batch_id
            frames.append(
                line_frames.get(path, lines.where(F.col("path") == path))
                .drop("path")
                .transform(
                    bronze_from_numbered_lines(
                        header_of[path], entry["source_file"], kind, batch_id, F.lit(now)
                    )
                )
            )
        if frames:
            bronze = reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), frames)
            storage.write_table(bronze, params, "bronze", "e2e_raw", mode="append", txn=txn)
            fault_point("bronze.after_append")
        log_df = spark.createDataFrame(log, schema=INGEST_LOG_SCHEMA)
        storage.write_table(log_df, params, "bronze", "ingest_log", mode="append", txn=txn)
        return log
    finally:
        lines.unpersist()


INGEST_LOG_SCHEMA = (
    "batch_id STRING, source_file STRING, source_kind STRING, source_sha256 STRING, bytes BIGINT, "
    "status STRING, duplicate_of STRING, ingested_at TIMESTAMP, rows BIGINT"
)


def ingest_bronze(spark: SparkSession, params: Params) -> list[dict]:
    """Append every landed file not yet ingested to bronze (Structured Streaming, availableNow).

    Returns the ingest-log entries of this run (empty: nothing new, and no table changed). When
    bronze was removed, its checkpoint is reset so the whole landing folder is ingested again.
    """
    checkpoint = storage.checkpoint_dir(params, "bronze")
    if not storage.table_exists(spark, params, "bronze", "e2e_raw"):
        storage.reset_checkpoint(checkpoint)
    if params.warehouse is not None:
        params.landing_dir.mkdir(parents=True, exist_ok=True)
    entries: list[dict] = []

    def handle(files: DataFrame, _batch_id: int, txn: storage.Txn) -> None:
        entries.extend(_bronze_batch(spark, params, files, txn))

    run_available_now(spark, landing_files(spark, params), "bronze", checkpoint, handle)
    return entries


def _size_shuffles_to_bronze(spark: SparkSession, params: Params) -> int:
    """Silver and gold shuffle rows that all come from bronze: size the shuffles to it; return
    bronze's size in bytes."""
    size = storage.table_size_bytes(spark, params, "bronze", "e2e_raw")
    partitions = size_shuffles(spark, size, params.performance)
    log_.info("bronze is %.1f MB: %d shuffle partitions", size / 2**20, partitions)
    return size


ZORDER_COLUMNS = ("agency", "week_start_date")


def zorder_gold(spark: SparkSession, params: Params, bronze_bytes: int, metadata: dict) -> list[str]:
    """Z-order the gold tables over `performance.zorder_min_mb` by agency and week (those of the
    two columns they have); return their keys. Gold is smaller than bronze, so while bronze is
    under the limit no table is even looked at (no cost on the small export).

    Liquid clustering would be the modern choice, but a DataFrame overwrite (how gold is rebuilt)
    drops a table's clustering columns in Delta 4.4 OSS (checked: `clusteringColumns` goes from
    ['agency'] to [] after `mode("overwrite")`), so Z-ORDER it is.
    """
    limit = params.performance.zorder_min_mb * 2**20
    if bronze_bytes < limit:
        return []
    done = []
    for table in GOLD_OUTPUTS:
        if storage.table_size_bytes(spark, params, "gold", table) < limit:
            continue
        columns = storage.read_table(spark, params, "gold", table).columns
        zorder_by = [c for c in ZORDER_COLUMNS if c in columns]
        if zorder_by:
            storage.zorder_table(spark, params, "gold", table, columns=zorder_by, metadata=metadata)
            done.append(table)
    return done


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


SILVER_OUTPUTS = ("e2e_weekly", "quarantine", "superseded")
ACCOUNTING_OUTCOMES = ("silver", "unchanged", "superseded")


def _batch_accounting(evaluated: DataFrame, outcomes: DataFrame) -> DataFrame:
    """Per publication in a micro-batch: where each of its rows went, and how many silver rows it
    replaced. rows_bronze = rows_silver + rows_unchanged + rows_superseded + rows_quarantined."""
    incoming = (
        outcomes.where(F.col("_origin") == 1)
        .select("_batch_id", "outcome")
        .unionByName(
            evaluated.where(is_quarantined(evaluated)).select(
                "_batch_id", F.lit("quarantined").alias("outcome")
            )
        )
    )
    replaced = (
        outcomes.where(F.col("outcome") == "replaced")
        .groupBy(F.col("superseded_by_batch_id").alias("_batch_id"))
        .agg(F.count(F.lit(1)).alias("rows_replaced"))
    )
    counts = (
        incoming.groupBy("_batch_id")
        .pivot("outcome", [*ACCOUNTING_OUTCOMES, "quarantined"])
        .count()
        .join(replaced, "_batch_id", "left")
        .na.fill(0)
    )
    parts = [F.col(c) for c in (*ACCOUNTING_OUTCOMES, "quarantined")]
    return counts.select(
        F.col("_batch_id").alias("batch_id"),
        reduce(lambda a, b: a + b, parts).alias("rows_bronze"),
        F.col("silver").alias("rows_silver"),
        F.col("unchanged").alias("rows_unchanged"),
        F.col("superseded").alias("rows_superseded"),
        F.col("quarantined").alias("rows_quarantined"),
        F.col("rows_replaced"),
    )


def _silver_batch(
    spark: SparkSession, params: Params, bronze: DataFrame, txn: storage.Txn, run_id: str
) -> list[dict]:
    """Apply one micro-batch of new bronze rows to silver; return its per-publication accounting.

    Order of the commits, chosen so a crash anywhere loses nothing: quarantine, superseded rows,
    metrics and accounting are appended first (idempotent), the silver MERGE comes last. A replay
    of the batch recomputes the same rows against the same silver and Delta skips what it has.
    """
    evaluated = bronze.transform(evaluate_bronze(params)).persist()
    outcomes = None
    try:
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        stamp = [F.lit(run_id).alias("run_id"), F.lit(now).alias("evaluated_at")]
        metrics = (
            evaluated.transform(rule_metrics(params.quality_rules))
            .unionByName(bronze.transform(schema_drift_metrics(BRONZE_SOURCE_NAMES)))
            .select(*stamp, "*")
        )
        failing = {
            r["rule"]: r["rows_failed"]
            for r in metrics.where((F.col("action") == "fail") & (F.col("rows_failed") > 0)).collect()
        }
        if failing:
            raise QualityRuleError(
                "quality rules with action 'fail' were violated, nothing was written: "
                + ", ".join(f"{rule} ({n} rows)" for rule, n in sorted(failing.items()))
            )
        valid = evaluated.where(~is_quarantined(evaluated)).drop(*_EVALUATION_COLUMNS)
        versions = valid.withColumn("_origin", F.lit(1))
        # Pinned to the version read now: Spark re-evaluates these frames after the MERGE (the
        # MERGE invalidates cached plans over silver) and they must still describe this batch.
        silver_version = storage.table_version(spark, params, "silver", "e2e_weekly")
        silver_exists = silver_version is not None
        if silver_exists:
            current = storage.read_table(spark, params, "silver", "e2e_weekly", silver_version).join(
                valid.select(*NATURAL_KEY).distinct(), list(NATURAL_KEY), "left_semi"
            )
            versions = versions.unionByName(current.withColumn("_origin", F.lit(0)), allowMissingColumns=True)
        outcomes = versions.transform(restatement_outcomes()).persist()
        moved = F.col("outcome").isin("replaced", "superseded")
        superseded = outcomes.where(moved).drop("_origin", "outcome")
        storage.write_table(superseded, params, "silver", "superseded", mode="append", txn=txn)
        quarantine = quarantine_rows(evaluated)
        storage.write_table(quarantine, params, "silver", "quarantine", mode="append", txn=txn)
        storage.write_table(metrics, params, "silver", "dq_metrics", mode="append", txn=txn)
        accounting = _batch_accounting(evaluated, outcomes).select(*stamp, "*")
        storage.write_table(accounting, params, "silver", "batch_accounting", mode="append", txn=txn)
        fault_point("silver.before_merge")
        rows = outcomes.where(F.col("outcome") == "silver").drop(
            "_origin", "outcome", "superseded_by_batch_id", "superseded_by_line_number"
        )
        if silver_exists:
            storage.merge_on_key(
                spark, params, "silver", "e2e_weekly", rows, on=NATURAL_KEY, values=VALUE_COLUMNS, txn=txn
            )
        else:
            storage.write_table(
                rows, params, "silver", "e2e_weekly", mode="append", txn=txn, properties=SILVER_PROPERTIES
            )
        return [r.asDict() for r in accounting.orderBy("batch_id").collect()]
    finally:
        evaluated.unpersist()
        if outcomes is not None:
            outcomes.unpersist()


# Change Data Feed on silver: every insert, and the before/after image of every restatement.
SILVER_PROPERTIES = {"delta.enableChangeDataFeed": "true"}


def build_silver(spark: SparkSession, params: Params, run_id: str, full_refresh: bool = False) -> list[dict]:
    """Apply the bronze rows silver has not seen yet (Structured Streaming on the bronze table).

    Each micro-batch is typed, checked against the quality rules and MERGEd on the natural key:
    a newer publication's different row replaces the current one (the old one moves to
    superseded), an identical row is a no-op. `full_refresh` (or a missing silver table) drops
    silver and its checkpoint and replays all of bronze. Returns this run's accounting rows
    (empty: nothing new, and no table changed).
    """
    checkpoint = storage.checkpoint_dir(params, "silver")
    missing = not all(storage.table_exists(spark, params, "silver", t) for t in SILVER_OUTPUTS)
    if full_refresh or missing:
        for table in SILVER_OUTPUTS:
            storage.drop_table(spark, params, "silver", table)
        storage.reset_checkpoint(checkpoint)
    accounting: list[dict] = []
    # A run with nothing new in bronze skips even starting the stream (measured 4-8 s for a Delta
    # source with nothing to read): the mark is bronze's table id and version read *before* the
    # last run's availableNow stream started and written only after it ended, so every bronze
    # commit up to it was processed. A crash leaves the old mark (or none), and a bronze table
    # written anew has another id: the stream runs.
    bronze_state = storage.table_state(spark, params, "bronze", "e2e_raw")
    if bronze_state is not None and storage.source_version_mark(checkpoint) == bronze_state:
        log_.info("silver: bronze unchanged (%s) since silver last read it", bronze_state)
        return accounting

    _size_shuffles_to_bronze(spark, params)

    def handle(bronze: DataFrame, _batch_id: int, txn: storage.Txn) -> None:
        accounting.extend(_silver_batch(spark, params, bronze, txn, run_id))

    stream = table_changes(spark, params, "bronze", "e2e_raw")
    run_available_now(spark, stream, "silver", checkpoint, handle)
    storage.mark_source_version(checkpoint, bronze_state)
    return accounting


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


def gold_views(spark: SparkSession, params: Params, weekly: DataFrame) -> dict[str, DataFrame]:
    """Every gold table derived from the whole of kpi_weekly, silver's versions and the run logs,
    by table key (in the order they are written)."""
    silver = storage.read_table(spark, params, "silver", "e2e_weekly")
    superseded = storage.read_table(spark, params, "silver", "superseded")
    versions = silver.unionByName(superseded, allowMissingColumns=True)
    agency_weekly = kpi_agency_weekly(weekly)
    rules = spark.createDataFrame(sla_rules_table(params.sla_rules), SLA_RULES_SCHEMA)
    return {
        "kpi_monthly_agency": kpi_monthly_agency(weekly),
        "kpi_summary": weekly.transform(kpi_summary()),
        "restatements": restatements(versions),
        "publication_drift": publication_drift(versions),
        "kpi_agency_weekly": agency_weekly,
        "kpi_headline": kpi_headline(agency_weekly),
        "kpi_monthly_priority": kpi_monthly_priority(weekly),
        "sla_alerts": weekly.transform(sla_alerts(params.sla_rules)),
        "sla_breach_weekly": weekly.transform(sla_breach_weekly(params.sla_rules)),
        "sla_rules": rules,
        "anomalies": weekly.transform(weekly_anomalies(**params.anomalies)),
        "data_quality_batches": data_quality_batches(
            storage.read_table(spark, params, "bronze", "ingest_log"),
            storage.read_table(spark, params, "silver", "batch_accounting"),
        ),
        "data_quality_rules": data_quality_rules(storage.read_table(spark, params, "silver", "dq_metrics")),
    }


GOLD_OUTPUTS = (
    "kpi_weekly",
    "kpi_monthly_agency",
    "kpi_summary",
    "restatements",
    "publication_drift",
    "kpi_agency_weekly",
    "kpi_headline",
    "kpi_monthly_priority",
    "sla_alerts",
    "sla_breach_weekly",
    "sla_rules",
    "anomalies",
    "data_quality_batches",
    "data_quality_rules",
)
GOLD_WRITERS = 4  # gold tables written at once (see build_gold)
# What gold is computed from: a change to any of these tables makes gold stale.
GOLD_INPUTS = (
    ("silver", "e2e_weekly"),
    ("silver", "superseded"),
    ("silver", "batch_accounting"),
    ("silver", "dq_metrics"),
    ("bronze", "ingest_log"),
)


def gold_state(spark: SparkSession, params: Params) -> dict:
    """The versions of gold's inputs (stored in every gold commit's userMetadata) and the SLA
    rules applied (a rule change makes gold stale too)."""
    state = {f"{lay}.{tab}": storage.table_version(spark, params, lay, tab) for lay, tab in GOLD_INPUTS}
    state["sla_rules"] = sla_rules_table(params.sla_rules)
    return state


def gold_is_current(spark: SparkSession, params: Params) -> bool:
    """Whether every gold table was last written, in full, from the current inputs.

    The 14 commit lookups are independent driver-side reads of small Delta logs: done from a few
    threads at once (measured: about half the time of one after the other).
    """
    state = {**gold_state(spark, params), "scope": "all"}
    with ThreadPoolExecutor(max_workers=GOLD_WRITERS, thread_name_prefix="gold-check") as pool:
        found = pool.map(lambda t: storage.last_commit_metadata(spark, params, "gold", t), GOLD_OUTPUTS)
        return all(metadata == state for metadata in found)


def build_gold(
    spark: SparkSession,
    params: Params,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    force: bool = False,
) -> dict:
    """Bring gold up to date with silver and return the summary row as a dict.

    Without a range, gold is rewritten in full when its inputs changed since gold was built (or
    `force`), and left untouched otherwise. With `date_from`/`date_to` (a backfill, e.g. after an
    SLA rule change) only those weeks of kpi_weekly are recomputed (Delta replaceWhere); every
    other gold table is then recomputed from the whole of kpi_weekly and silver, so all gold
    tables always describe the same rows.
    """
    ranged = date_from is not None or date_to is not None
    if not ranged and not force and gold_is_current(spark, params):
        log_.info("gold: already computed from the current silver; nothing rewritten")
        return storage.read_table(spark, params, "gold", "kpi_summary").first().asDict()
    state = {**gold_state(spark, params), "scope": "range" if ranged else "all"}
    bronze_bytes = _size_shuffles_to_bronze(spark, params)
    silver = storage.read_table(spark, params, "silver", "e2e_weekly")
    if ranged and storage.table_exists(spark, params, "gold", "kpi_weekly"):
        weekly = silver.transform(within_weeks(date_from, date_to)).transform(kpi_weekly(params.sla_rules))
        scope = week_predicate(date_from, date_to)
        storage.write_table(weekly, params, "gold", "kpi_weekly", metadata=state, replace_where=scope)
    else:
        weekly = silver.transform(kpi_weekly(params.sla_rules))
        storage.write_table(weekly, params, "gold", "kpi_weekly", metadata=state)
    fault_point("gold.after_kpi_weekly")
    weekly = storage.read_table(spark, params, "gold", "kpi_weekly")
    # The derived tables are independent small jobs whose time is mostly Delta commit and job
    # overhead, not CPU: writing them from a few threads at once overlaps that latency. Each write
    # is still its own atomic commit carrying the same state.
    views = gold_views(spark, params, weekly)
    with ThreadPoolExecutor(max_workers=GOLD_WRITERS, thread_name_prefix="gold") as pool:
        writes = [
            pool.submit(storage.write_table, frame, params, "gold", table, metadata=state)
            for table, frame in views.items()
        ]
        for write in writes:
            write.result()
    for table in zorder_gold(spark, params, bronze_bytes, state):
        log_.info("gold: %s Z-ordered by %s", table, ", ".join(ZORDER_COLUMNS))
    return storage.read_table(spark, params, "gold", "kpi_summary").first().asDict()


def week_predicate(date_from: dt.date | None, date_to: dt.date | None) -> str:
    """The SQL predicate of a week range, for Delta's replaceWhere."""
    parts = []
    if date_from is not None:
        parts.append(f"week_start_date >= DATE'{date_from.isoformat()}'")
    if date_to is not None:
        parts.append(f"week_start_date <= DATE'{date_to.isoformat()}'")
    return " AND ".join(parts) or "true"


@dataclass(frozen=True)
class RunOutcome:
    """What one incremental run did: files ingested, accounting of silver, and the gold summary."""

    ingested: list[dict]
    accounting: list[dict]
    summary: dict
    gold_rebuilt: bool = True


def run_layers(
    spark: SparkSession,
    params: Params,
    run_id: str,
    *,
    full_refresh: bool = False,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
) -> RunOutcome:
    """Bronze, silver and gold in one process (what the notebooks do one layer each)."""
    ingested = ingest_bronze(spark, params)
    accounting = build_silver(spark, params, run_id, full_refresh)
    before = storage.table_version(spark, params, "gold", "kpi_summary")
    summary = build_gold(spark, params, date_from, date_to, force=full_refresh)
    rebuilt = storage.table_version(spark, params, "gold", "kpi_summary") != before
    return RunOutcome(ingested, accounting, summary, gold_rebuilt=rebuilt)


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


def parse_flag(value: str | bool | None, name: str) -> bool:
    """A yes/no parameter (a bool, or `true`/`false` text from a Databricks widget)."""
    if value is None or isinstance(value, bool):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no", ""):
        return False
    raise ParamsError(f"{name} must be true or false, got '{value}'")


def sample_source_path(params: Params) -> Path:
    """Where a run without a source lands the built-in synthetic sample."""
    if params.warehouse is None:
        raise ParamsError("the built-in sample needs a local warehouse; pass a source instead")
    return params.warehouse / "sample" / "nyc911_sample.csv"


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
