"""Layer runs: read a layer's inputs, call the pure transforms, write its tables.

The notebooks (and the CLI through them) call these three functions; everything they do that
is not I/O lives in bronze/silver/quality/gold.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, SparkSession

from nyc911lib import bronze_io, engine, landing, storage
from nyc911lib.anomalies import weekly_anomalies
from nyc911lib.config import Params
from nyc911lib.data_quality import data_quality_batches, data_quality_rules
from nyc911lib.errors import QualityRuleError
from nyc911lib.faults import fault_point
from nyc911lib.gold import (
    kpi_monthly_agency,
    kpi_summary,
    kpi_weekly,
    publication_drift,
    restatements,
    within_weeks,
)
from nyc911lib.quality import (
    check_quality_rules,
    is_quarantined,
    quarantine_rows,
    rule_metrics,
    schema_drift_metrics,
    with_quality_results,
)
from nyc911lib.schema import BRONZE_SOURCE_NAMES, NATURAL_KEY
from nyc911lib.silver import (
    _EVALUATION_COLUMNS,
    VALUE_COLUMNS,
    batch_accounting,
    restatement_outcomes,
    typed_e2e,
)
from nyc911lib.sla import SLA_RULES_SCHEMA, sla_alerts, sla_breach_weekly, sla_rules_table
from nyc911lib.tables import DateRange
from nyc911lib.trends import kpi_agency_weekly, kpi_headline, kpi_monthly_priority

log_ = logging.getLogger("nyc911")


def _pending_files(spark: SparkSession, params: Params) -> tuple[list[Path], dict[str, dict]]:
    """The landed files bronze's ingest log does not list (by file name, so a moved or copied
    warehouse still knows what it ingested), and the log's rows by file name."""
    logged: dict[str, dict] = {}
    if storage.table_exists(spark, params, "bronze", "ingest_log"):
        columns = ("source_file", "source_kind", "source_sha256", "batch_id", "status")
        for r in storage.read_table(spark, params, "bronze", "ingest_log").select(*columns).collect():
            logged[Path(r["source_file"]).name] = r.asDict()
    pending = [p for p in landing.landed_files(params.landing_dir) if p.name not in logged]
    return pending, logged


INGEST_LOG_SCHEMA = (
    "batch_id STRING, source_file STRING, source_kind STRING, source_sha256 STRING, bytes BIGINT, "
    "status STRING, duplicate_of STRING, ingested_at TIMESTAMP, rows BIGINT"
)
BRONZE_TXN_PREFIX = "nyc911-bronze-"  # + batch id: the idempotent append of one publication


def ingest_bronze(spark: SparkSession, params: Params, *, allow_mixed: bool = False) -> list[dict]:
    """Append every landed file that bronze's ingest log does not list yet; return this run's
    ingest-log entries (empty: nothing new, and no table changed).

    No streaming checkpoint: the landing folder and the ingest log (by file name) say what is
    new, so a warehouse can be copied or moved. Each publication is one bronze append carrying
    the Delta transaction id `nyc911-bronze-<batch id>`; the ingest log is appended last. A run
    killed in between is simply run again: the file is still new, its append is skipped by
    Delta, and the log is written. A file whose content was ingested before (the same export
    downloaded twice) is logged as a duplicate and not appended again.
    """
    if params.warehouse is not None:
        params.landing_dir.mkdir(parents=True, exist_ok=True)
    files, logged = _pending_files(spark, params)
    legacy = _legacy_checkpoint(params, "bronze")
    if not files:
        _drop_legacy_checkpoint(params, "bronze")
        return []
    held = landing.holdings(params.landing_dir, {r["source_kind"] for r in logged.values()})
    landing.check_not_mixed(
        held, landing.describe(params.warehouse, params.landing_dir), allow_mixed=allow_mixed
    )
    publications, held = bronze_io.read_publications(spark, params, files)
    seen = {r["source_sha256"]: r["batch_id"] for r in logged.values() if r["status"] == "ingested"}
    now = dt.datetime.now(dt.timezone.utc)
    log = []
    try:
        for pub in publications:
            duplicate_of = seen.get(pub.sha256)
            log.append(
                {
                    "batch_id": pub.batch_id,
                    "source_file": pub.source_file,
                    "source_kind": pub.kind,
                    "source_sha256": pub.sha256,
                    "bytes": pub.bytes,
                    "status": "duplicate" if duplicate_of else "ingested",
                    "duplicate_of": duplicate_of,
                    "ingested_at": now,
                    "rows": 0 if duplicate_of else pub.data_lines,
                }
            )
            if duplicate_of:
                log_.info("bronze: %s has the content of batch %s; not appended", pub.path.name, duplicate_of)
                continue
            seen[pub.sha256] = pub.batch_id
            if legacy and _bronze_has_batch(spark, params, pub.batch_id):
                continue  # appended by an earlier version whose checkpoint was not committed
            txn = (BRONZE_TXN_PREFIX + pub.batch_id, 0)
            storage.write_table(pub.rows(now), params, "bronze", "e2e_raw", mode="append", txn=txn)
            fault_point("bronze.after_append")
    finally:
        for frame in held:
            engine.release(frame)
    storage.write_table(
        spark.createDataFrame(log, schema=INGEST_LOG_SCHEMA), params, "bronze", "ingest_log", mode="append"
    )
    _drop_legacy_checkpoint(params, "bronze")
    return log


def _bronze_has_batch(spark: SparkSession, params: Params, batch_id: str) -> bool:
    if not storage.table_exists(spark, params, "bronze", "e2e_raw"):
        return False
    bronze = storage.read_table(spark, params, "bronze", "e2e_raw")
    return bronze.where(F.col("_batch_id") == batch_id).limit(1).count() > 0


# --- Warehouses of earlier versions: Structured Streaming checkpoints --------------------------
# Runs used to be driven by `availableNow` streams with checkpoints in <warehouse>/_checkpoints.
# Those checkpoints held absolute file paths (a copied warehouse broke). The first run of this
# version upgrades such a warehouse in place: a micro-batch an earlier run left unfinished is
# completed (bronze: a publication already appended is not appended again; silver: rebuilt from
# bronze), then the checkpoint folder is removed.


def _legacy_checkpoint(params: Params, stream: str) -> bool:
    """Whether an earlier version left an unfinished micro-batch of `stream` (an offset written,
    its commit not)."""
    if params.warehouse is None:
        return False
    folder = params.warehouse / LEGACY_CHECKPOINTS / stream

    def batches(sub: str) -> set[int]:
        return {int(p.name) for p in (folder / sub).glob("*") if p.name.isdigit()}

    return bool(batches("offsets") - batches("commits"))


def _drop_legacy_checkpoint(params: Params, stream: str) -> None:
    if params.warehouse is None:
        return
    root = params.warehouse / LEGACY_CHECKPOINTS
    if (root / stream).exists():
        shutil.rmtree(root / stream)
        log_.info("upgrade: removed the %s streaming checkpoint of an earlier version", stream)
    if root.is_dir() and not any(root.iterdir()):
        root.rmdir()


LEGACY_CHECKPOINTS = "_checkpoints"


def _size_shuffles_to_bronze(spark: SparkSession, params: Params) -> int:
    """Silver and gold shuffle rows that all come from bronze: on the spark engine, size the
    shuffles to it (DuckDB sizes its own work); return bronze's size in bytes."""
    size = storage.table_size_bytes(spark, params, "bronze", "e2e_raw")
    if engine.name() == "spark":
        from nyc911lib.spark import size_shuffles  # noqa: PLC0415 - the spark engine only

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


SILVER_OUTPUTS = ("e2e_weekly", "quarantine", "superseded", "dq_metrics", "batch_accounting")


def _silver_batch(
    spark: SparkSession,
    params: Params,
    bronze: DataFrame,
    *,
    txn: storage.Txn,
    run_id: str,
    metadata: dict,
) -> list[dict]:
    """Apply one batch of new bronze rows to silver; return its per-publication accounting.

    Order of the commits, chosen so a crash anywhere loses nothing: superseded rows, quarantine
    and metrics first, then the silver MERGE, and the accounting last: the accounting is the
    record of what silver has processed. Every commit carries the transaction id `txn` (Delta
    skips a replayed one) and `metadata` (the bronze version the batch covers). A replay
    recomputes the outcomes against silver as it was before the batch (pinned to the version
    before its MERGE when that committed), so it writes exactly what the first attempt wrote.
    """
    typed = bronze.transform(
        typed_e2e(params.agency_codes, params.incident_type_fixes, params.unspecified_incident_type)
    )
    # The rules are checked against the columns they will see, on this engine, before they run
    # (a rule the engine would not evaluate as Spark does is refused; nothing is written).
    columns = {f.name: f.dataType.simpleString() for f in typed.schema.fields}
    check_quality_rules(params.quality_rules, engine.name(), columns)
    evaluated = engine.materialize(typed.transform(with_quality_results(params.quality_rules)))
    outcomes = None
    try:
        now = dt.datetime.now(dt.timezone.utc)
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
        # Pinned to a version: Spark re-evaluates these frames after the MERGE (the MERGE
        # invalidates cached plans over silver) and they must still describe silver before it.
        silver_version = _silver_version_before(spark, params, metadata)
        if silver_version is not None:
            current = storage.read_table(spark, params, "silver", "e2e_weekly", silver_version).join(
                valid.select(*NATURAL_KEY).distinct(), list(NATURAL_KEY), "left_semi"
            )
            versions = versions.unionByName(current.withColumn("_origin", F.lit(0)), allowMissingColumns=True)
        outcomes = engine.materialize(versions.transform(restatement_outcomes()))
        moved = F.col("outcome").isin("replaced", "superseded")
        write = partial(
            storage.write_table, params=params, layer="silver", mode="append", txn=txn, metadata=metadata
        )
        write(outcomes.where(moved).drop("_origin", "outcome"), key="superseded")
        write(quarantine_rows(evaluated), key="quarantine")
        write(metrics, key="dq_metrics")
        fault_point("silver.before_merge")
        rows = outcomes.where(F.col("outcome") == "silver").drop(
            "_origin", "outcome", "superseded_by_batch_id", "superseded_by_line_number"
        )
        if storage.table_exists(spark, params, "silver", "e2e_weekly"):
            storage.merge_on_key(
                spark,
                params,
                "silver",
                "e2e_weekly",
                rows,
                on=NATURAL_KEY,
                values=VALUE_COLUMNS,
                txn=txn,
                metadata=metadata,
            )
        else:
            write(rows, key="e2e_weekly", properties=SILVER_PROPERTIES)
        fault_point("silver.after_merge")
        accounting = batch_accounting(evaluated, outcomes).select(*stamp, "*")
        write(accounting, key="batch_accounting")
        return [r.asDict() for r in accounting.orderBy("batch_id").collect()]
    finally:
        engine.release(evaluated)
        if outcomes is not None:
            engine.release(outcomes)


def _silver_version_before(spark: SparkSession, params: Params, metadata: dict) -> int | None:
    """The version of silver.e2e_weekly a batch is applied to: the current one, or, when this
    batch's own MERGE already committed (a replay after a crash), the one before it. None: no
    silver before this batch."""
    last = storage.last_commit(spark, params, "silver", "e2e_weekly")
    if last is None:
        return None
    if (last.metadata or {}).get("bronze") != metadata["bronze"]:
        return last.version
    return last.version - 1 if last.version > 0 else None


# Change Data Feed on silver: every insert, and the before/after image of every restatement.
SILVER_PROPERTIES = {"delta.enableChangeDataFeed": "true"}
SILVER_TXN_PREFIX = "nyc911-silver-"  # + bronze's table id; the version is the bronze version


def _bronze_mark(metadata: dict | None, bronze_id: str) -> int | None:
    """The bronze version a silver commit's metadata records, when it is of this bronze table."""
    table, _, version = str((metadata or {}).get("bronze", "")).rpartition("@")
    return int(version) if table == bronze_id and version.isdigit() else None


def _silver_target(spark: SparkSession, params: Params, bronze_id: str, bronze_version: int) -> int:
    """The bronze version the next silver batch covers: the one a batch interrupted by a crash
    recorded in the silver tables it had committed (it is replayed exactly), else the current."""
    done = _bronze_mark(storage.last_commit_metadata(spark, params, "silver", "batch_accounting"), bronze_id)
    started = [
        _bronze_mark(storage.last_commit_metadata(spark, params, "silver", key), bronze_id)
        for key in SILVER_OUTPUTS
        if key != "batch_accounting"
    ]
    unfinished = [v for v in started if v is not None and (done is None or v > done)]
    return min(unfinished) if unfinished else bronze_version


def _bronze_accounted(spark: SparkSession | None, params: Params) -> str | None:
    """The bronze state (`storage.table_state`) silver last accounted for, from the metadata of
    silver.batch_accounting's latest commit (written last in every batch)."""
    return (storage.last_commit_metadata(spark, params, "silver", "batch_accounting") or {}).get("bronze")


def build_silver(spark: SparkSession, params: Params, run_id: str, full_refresh: bool = False) -> list[dict]:
    """Apply the bronze publications silver has not accounted for yet; return this run's
    accounting rows (empty: nothing new, and no table changed).

    What is new is read from the tables, not from a streaming checkpoint: every publication in
    bronze that `silver.batch_accounting` (written last in each batch) does not list. The rows
    are typed, checked against the quality rules and MERGEd on the natural key: a newer
    publication's different row replaces the current one (the old one moves to superseded), an
    identical row is a no-op. `full_refresh` drops silver and replays all of bronze in one batch,
    which ends where the incremental runs end.
    """
    present = {key: storage.table_exists(spark, params, "silver", key) for key in SILVER_OUTPUTS}
    # The accounting is written last: once it exists, every silver table does. A table missing
    # beside it (removed by hand) means silver no longer describes bronze: rebuild it.
    rebuild = (
        full_refresh
        or _legacy_checkpoint(params, "silver")
        or (present["batch_accounting"] and not all(present.values()))
    )
    if rebuild:
        for key in SILVER_OUTPUTS:
            storage.drop_table(spark, params, "silver", key)
    _drop_legacy_checkpoint(params, "silver")
    state = storage.table_state(spark, params, "bronze", "e2e_raw")
    if state is None:
        return []
    if not rebuild and _bronze_accounted(spark, params) == state:
        log_.info("silver: bronze unchanged (%s) since silver last accounted for it", state)
        return []
    bronze_id, bronze_version = state.rsplit("@", 1)[0], int(state.rsplit("@", 1)[1])
    accounting: list[dict] = []
    while True:
        target = _silver_target(spark, params, bronze_id, bronze_version)
        bronze = storage.read_table(spark, params, "bronze", "e2e_raw", target)
        done = set()
        if storage.table_exists(spark, params, "silver", "batch_accounting"):
            logged = storage.read_table(spark, params, "silver", "batch_accounting")
            done = {r[0] for r in logged.select("batch_id").distinct().collect()}
        batches = sorted({r[0] for r in bronze.select("_batch_id").distinct().collect()} - done)
        if batches:
            _size_shuffles_to_bronze(spark, params)
            txn = (SILVER_TXN_PREFIX + bronze_id, target)
            rows = bronze.where(F.col("_batch_id").isin(batches))
            metadata = {"bronze": f"{bronze_id}@{target}"}
            accounting += _silver_batch(spark, params, rows, txn=txn, run_id=run_id, metadata=metadata)
        if target >= bronze_version:
            return accounting


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


# Written last in every gold build, so its commit records what gold was built from. (Not every
# gold table gets a commit in every build: Delta writes none for an empty table overwritten with
# no rows, e.g. anomalies on a few weeks of data.)
GOLD_STATE_TABLE = "kpi_summary"


def gold_is_current(spark: SparkSession, params: Params) -> bool:
    """Whether gold was last built, in full, from the current inputs: every gold table exists and
    the table written last in a build records the current state."""
    if not all(storage.table_exists(spark, params, "gold", t) for t in GOLD_OUTPUTS):
        return False  # a table missing, or left half-created by a crash
    state = {**gold_state(spark, params), "scope": "all"}
    return _records(storage.last_commit_metadata(spark, params, "gold", GOLD_STATE_TABLE), state)


def _records(metadata: dict | None, state: dict) -> bool:
    """Whether a commit's metadata records `state` (it also names the engine and runner)."""
    return metadata is not None and all(metadata.get(k) == v for k, v in state.items())


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
        scope = DateRange("week_start_date", date_from, date_to)
        storage.write_table(weekly, params, "gold", "kpi_weekly", metadata=state, replace=scope)
    else:
        weekly = silver.transform(kpi_weekly(params.sla_rules))
        storage.write_table(weekly, params, "gold", "kpi_weekly", metadata=state)
    fault_point("gold.after_kpi_weekly")
    weekly = storage.read_table(spark, params, "gold", "kpi_weekly")
    # The derived tables are independent small jobs whose time is mostly Delta commit and job
    # overhead, not CPU: writing them from a few threads at once overlaps that latency. Each write
    # is still its own atomic commit carrying the same state.
    views = gold_views(spark, params, weekly)
    last = views.pop(GOLD_STATE_TABLE)
    fault_point("gold.parallel_writes")
    # On Spark the writes overlap (each is mostly job and commit latency); SQLFrame's session is
    # not thread-safe, and each DuckDB write takes milliseconds: one after the other there.
    writers = GOLD_WRITERS if engine.name() == "spark" else 1
    with ThreadPoolExecutor(max_workers=writers, thread_name_prefix="gold") as pool:
        writes = [
            pool.submit(storage.write_table, frame, params, "gold", table, metadata=state)
            for table, frame in views.items()
        ]
        for write in writes:
            write.result()
    for table in zorder_gold(spark, params, bronze_bytes, state):
        log_.info("gold: %s Z-ordered by %s", table, ", ".join(ZORDER_COLUMNS))
    storage.write_table(last, params, "gold", GOLD_STATE_TABLE, metadata=state)  # gold is complete
    return storage.read_table(spark, params, "gold", GOLD_STATE_TABLE).first().asDict()


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
    allow_mixed: bool = False,
) -> RunOutcome:
    """Bronze, silver and gold in one process (what the notebooks do one layer each)."""
    ingested = ingest_bronze(spark, params, allow_mixed=allow_mixed)
    accounting = build_silver(spark, params, run_id, full_refresh)
    before = storage.table_version(spark, params, "gold", "kpi_summary")
    summary = build_gold(spark, params, date_from, date_to, force=full_refresh)
    rebuilt = storage.table_version(spark, params, "gold", "kpi_summary") != before
    return RunOutcome(ingested, accounting, summary, gold_rebuilt=rebuilt)


def nothing_to_do(params: Params) -> bool:
    """Whether an incremental run would change nothing: every landed file is in bronze's ingest
    log, silver has accounted for bronze's current version, and gold was built in full from the
    current silver and SLA rules. Read from the Delta logs alone, with no engine session (see
    `storage.tables`), so a run with nothing new ends in about a second on either engine. Always
    False for a catalog (Databricks runs its pipeline, which checks the same per layer)."""
    if params.warehouse is None or any(_legacy_checkpoint(params, s) for s in ("bronze", "silver")):
        return False
    landed = {p.name for p in landing.landed_files(params.landing_dir)}
    if landed - storage.ingested_file_names(params):
        return False
    if not all(storage.table_exists(None, params, "silver", key) for key in SILVER_OUTPUTS):
        return False
    bronze = storage.table_state(None, params, "bronze", "e2e_raw")
    return _bronze_accounted(None, params) == bronze and gold_is_current(None, params)


def new_run_id(now: dt.datetime | None = None) -> str:
    """An id for one pipeline run, sortable by time: `run-20261126T200102Z`."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return f"run-{now:%Y%m%dT%H%M%S}Z"
