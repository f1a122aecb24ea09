"""Silver, incrementally: apply the bronze publications silver has not accounted for yet.

Each batch builds the registry's silver entries (`e2e_evaluated` -> `e2e_valid` ->
`e2e_outcomes` -> superseded, quarantine, dq_metrics, e2e_weekly, batch_accounting) and writes
them by their modes, in an order chosen so a crash anywhere loses nothing.
"""

from __future__ import annotations

import datetime as dt
import logging

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, SparkSession

from nyc911lib import engine
from nyc911lib.config import Params
from nyc911lib.errors import QualityRuleError
from nyc911lib.io import storage
from nyc911lib.rules.check import check_quality_rules
from nyc911lib.run import executor
from nyc911lib.run.faults import fault_point
from nyc911lib.run.ingest import drop_legacy_checkpoint, legacy_checkpoint
from nyc911lib.run.registry import CURRENT_SILVER, RunContext, table_keys
from nyc911lib.schema import NATURAL_KEY
from nyc911lib.transforms.quality import is_quarantined
from nyc911lib.transforms.week_spans import WEEK, spans_of, within_spans

log_ = logging.getLogger("nyc911")
SILVER_TXN_PREFIX = "nyc911-silver-"  # + bronze's table id; the version is the bronze version


def size_shuffles_to_bronze(spark: SparkSession, params: Params) -> int:
    """Silver and gold shuffle rows that all come from bronze: on the spark engine, size the
    shuffles to it (DuckDB sizes its own work); return bronze's size in bytes."""
    size = storage.table_size_bytes(spark, params, "bronze", "e2e_raw")
    if engine.name() == "spark":
        from nyc911lib.spark import size_shuffles  # noqa: PLC0415 - the spark engine only

        partitions = size_shuffles(spark, size, params.performance)
        log_.info("bronze is %.1f MB: %d shuffle partitions", size / 2**20, partitions)
    return size


def _silver_batch(
    spark: SparkSession,
    params: Params,
    bronze: DataFrame,
    *,
    txn: storage.Txn,
    run: RunContext,
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
    # The rules are checked against the columns they will see, on this engine, before they run
    # (a rule the engine would not evaluate as Spark does is refused; nothing is written).
    typed = executor.build("e2e_typed", {"e2e_raw": bronze}, run)
    columns = {f.name: f.dataType.simpleString() for f in typed.schema.fields}
    check_quality_rules(params.quality_rules, engine.name(), columns)
    evaluated = engine.materialize(executor.build("e2e_evaluated", {"e2e_typed": typed}, run))
    outcomes = None
    try:
        frames: dict[str, DataFrame] = {"e2e_raw": bronze, "e2e_evaluated": evaluated}
        frames["dq_metrics"] = executor.build("dq_metrics", frames, run)
        failing = {
            r["rule"]: r["rows_failed"]
            for r in frames["dq_metrics"]
            .where((F.col("action") == "fail") & (F.col("rows_failed") > 0))
            .collect()
        }
        if failing:
            raise QualityRuleError(
                "quality rules with action 'fail' were violated, nothing was written: "
                + ", ".join(f"{rule} ({n} rows)" for rule, n in sorted(failing.items()))
            )
        # The enforcement of this runner: the fail rules were checked above, drop rules remove.
        valid = executor.build("e2e_valid", frames, run)
        frames["e2e_valid"] = valid.where(~is_quarantined(valid))
        # Pinned to a version: Spark re-evaluates these frames after the MERGE (the MERGE
        # invalidates cached plans over silver) and they must still describe silver before it.
        silver_version = _silver_version_before(spark, params, metadata)
        if silver_version is not None:
            # Silver's rows of the batch's keys, read from the files of the batch's weeks only.
            touched = frames["e2e_valid"].select(*NATURAL_KEY).distinct()
            weeks = spans_of(r[0] for r in touched.select(WEEK).distinct().collect() if r[0] is not None)
            silver = storage.read_table(spark, params, "silver", "e2e_weekly", silver_version)
            silver = silver.transform(within_spans(weeks, WEEK))
            frames[CURRENT_SILVER] = silver.join(touched, list(NATURAL_KEY), "left_semi")
        outcomes = engine.materialize(executor.build("e2e_outcomes", frames, run))
        frames["e2e_outcomes"] = outcomes

        def write(key: str) -> None:
            frame = frames[key] if key in frames else executor.build(key, frames, run)
            executor.write(spark, params, key, frame, txn=txn, metadata=metadata)

        for key in ("superseded", "quarantine", "dq_metrics"):
            write(key)
        fault_point("silver.before_merge")
        write("e2e_weekly")
        fault_point("silver.after_merge")
        accounting = executor.build("batch_accounting", frames, run)
        executor.write(spark, params, "batch_accounting", accounting, txn=txn, metadata=metadata)
        return [r.asDict() for r in accounting.orderBy("batch_id").collect()]
    finally:
        engine.release(evaluated)
        if outcomes is not None:
            engine.release(outcomes)


def _silver_version_before(spark: SparkSession, params: Params, metadata: dict) -> int | None:
    """The version of silver.e2e_weekly a batch is applied to: the current one (the latest, a
    maintenance commit's when one came last: its log then starts there), or, when this batch's
    own MERGE already committed (a replay after a crash), the one before it. None: no silver
    before this batch."""
    last = storage.last_commit(spark, params, "silver", "e2e_weekly")
    if last is None:
        return None
    if (last.metadata or {}).get("bronze") != metadata["bronze"]:
        return last.head
    return last.version - 1 if last.version > 0 else None


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
        for key in table_keys("silver")
        if key != "batch_accounting"
    ]
    unfinished = [v for v in started if v is not None and (done is None or v > done)]
    return min(unfinished) if unfinished else bronze_version


def bronze_accounted(spark: SparkSession | None, params: Params) -> str | None:
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
    keys = table_keys("silver")
    present = {key: storage.table_exists(spark, params, "silver", key) for key in keys}
    # The accounting is written last: once it exists, every silver table does. A table missing
    # beside it (removed by hand) means silver no longer describes bronze: rebuild it.
    rebuild = (
        full_refresh
        or legacy_checkpoint(params, "silver")
        or (present["batch_accounting"] and not all(present.values()))
    )
    if rebuild:
        for key in keys:
            storage.drop_table(spark, params, "silver", key)
    drop_legacy_checkpoint(params, "silver")
    state = storage.table_state(spark, params, "bronze", "e2e_raw")
    if state is None:
        return []
    if not rebuild and bronze_accounted(spark, params) == state:
        log_.info("silver: bronze unchanged (%s) since silver last accounted for it", state)
        return []
    bronze_id, bronze_version = state.rsplit("@", 1)[0], int(state.rsplit("@", 1)[1])
    run = RunContext(params, spark, run_id, dt.datetime.now(dt.timezone.utc))
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
            size_shuffles_to_bronze(spark, params)
            txn = (SILVER_TXN_PREFIX + bronze_id, target)
            rows = bronze.where(F.col("_batch_id").isin(batches))
            metadata = {"bronze": f"{bronze_id}@{target}"}
            accounting += _silver_batch(spark, params, rows, txn=txn, run=run, metadata=metadata)
        if target >= bronze_version:
            return accounting
