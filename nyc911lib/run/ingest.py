"""Bronze, incrementally: append every landed file bronze's ingest log does not list yet.

The tables are the registry's `e2e_raw` and `ingest_log`; the files are read at the edge by the
engine's reader (`nyc911lib.io.bronze_io`).
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

import pyspark.sql.functions as F
from pyspark.sql import SparkSession

from nyc911lib import engine
from nyc911lib.config import Params
from nyc911lib.io import bronze_io, storage
from nyc911lib.run import executor, landing
from nyc911lib.run.faults import fault_point
from nyc911lib.run.registry import INGEST_LOG_FILES, LANDED, LANDED_FILES, RunContext

log_ = logging.getLogger("nyc911")
BRONZE_TXN_PREFIX = "nyc911-bronze-"  # + batch id: the idempotent append of one publication


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


def landed_file_rows(
    publications: Sequence[bronze_io.Publication | bronze_io.LandedFile],
    seen: dict[str, str],
    now: dt.datetime,
) -> list[dict]:
    """One ingest-log row per publication, in publication order: `duplicate` when its content was
    ingested before (`seen`: sha256 -> batch id, updated here; it adds no rows), else `ingested`
    with its data lines, each one bronze row."""
    rows = []
    for pub in publications:
        duplicate_of = seen.get(pub.sha256)
        if not duplicate_of:
            seen[pub.sha256] = pub.batch_id
        rows.append(
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
    return rows


def ingest_bronze(
    spark: SparkSession, params: Params, *, allow_mixed: bool = False, run_id: str = "ingest"
) -> list[dict]:
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
    legacy = legacy_checkpoint(params, "bronze")
    if not files:
        drop_legacy_checkpoint(params, "bronze")
        return []
    held = landing.holdings(params.landing_dir, {r["source_kind"] for r in logged.values()})
    landing.check_not_mixed(
        held, landing.describe(params.warehouse, params.landing_dir), allow_mixed=allow_mixed
    )
    publications, held = bronze_io.read_publications(spark, params, files)
    seen = {r["source_sha256"]: r["batch_id"] for r in logged.values() if r["status"] == "ingested"}
    now = dt.datetime.now(dt.timezone.utc)
    run = RunContext(params, spark, run_id, now)
    entries = landed_file_rows(publications, seen, now)
    try:
        for pub, file in zip(publications, entries, strict=True):
            if file["status"] == "duplicate":
                log_.info(
                    "bronze: %s has the content of batch %s; not appended",
                    pub.path.name,
                    file["duplicate_of"],
                )
                continue
            if legacy and _bronze_has_batch(spark, params, pub.batch_id):
                continue  # appended by an earlier version whose checkpoint was not committed
            rows = executor.build("e2e_raw", {LANDED: pub.rows(now)}, run)
            executor.write(spark, params, "e2e_raw", rows, txn=(BRONZE_TXN_PREFIX + pub.batch_id, 0))
            fault_point("bronze.after_append")
    finally:
        for frame in held:
            engine.release(frame)
    files = spark.createDataFrame(entries, schema=INGEST_LOG_FILES)
    executor.write(spark, params, "ingest_log", executor.build("ingest_log", {LANDED_FILES: files}, run))
    drop_legacy_checkpoint(params, "bronze")
    return entries


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
LEGACY_CHECKPOINTS = "_checkpoints"


def legacy_checkpoint(params: Params, stream: str) -> bool:
    """Whether an earlier version left an unfinished micro-batch of `stream` (an offset written,
    its commit not)."""
    if params.warehouse is None:
        return False
    folder = params.warehouse / LEGACY_CHECKPOINTS / stream

    def batches(sub: str) -> set[int]:
        return {int(p.name) for p in (folder / sub).glob("*") if p.name.isdigit()}

    return bool(batches("offsets") - batches("commits"))


def drop_legacy_checkpoint(params: Params, stream: str) -> None:
    if params.warehouse is None:
        return
    root = params.warehouse / LEGACY_CHECKPOINTS
    if (root / stream).exists():
        shutil.rmtree(root / stream)
        log_.info("upgrade: removed the %s streaming checkpoint of an earlier version", stream)
    if root.is_dir() and not any(root.iterdir()):
        root.rmdir()
