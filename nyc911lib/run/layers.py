"""The incremental run of all three layers in one process (what the notebooks do one layer each),
and the check that a run would change nothing."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pyspark.sql import SparkSession

from nyc911lib.config import Params
from nyc911lib.io import storage
from nyc911lib.run import landing
from nyc911lib.run.gold_run import build_gold, gold_is_current, gold_state_table
from nyc911lib.run.ingest import ingest_bronze, legacy_checkpoint
from nyc911lib.run.registry import table_keys
from nyc911lib.run.silver_run import bronze_accounted, build_silver


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
    ingested = ingest_bronze(spark, params, allow_mixed=allow_mixed, run_id=run_id)
    accounting = build_silver(spark, params, run_id, full_refresh)
    before = storage.table_version(spark, params, "gold", gold_state_table())
    summary = build_gold(spark, params, date_from, date_to, force=full_refresh, run_id=run_id)
    rebuilt = storage.table_version(spark, params, "gold", gold_state_table()) != before
    return RunOutcome(ingested, accounting, summary, gold_rebuilt=rebuilt)


def nothing_to_do(params: Params) -> bool:
    """Whether an incremental run would change nothing: every landed file is in bronze's ingest
    log, silver has accounted for bronze's current version, and gold was built in full from the
    current silver and SLA rules. Read from the Delta logs alone, with no engine session (see
    `storage.tables`), so a run with nothing new ends in about a second on either engine. Always
    False for a catalog (Databricks runs its pipeline, which checks the same per layer)."""
    if params.warehouse is None or any(legacy_checkpoint(params, s) for s in ("bronze", "silver")):
        return False
    landed = {p.name for p in landing.landed_files(params.landing_dir)}
    if landed - storage.ingested_file_names(params):
        return False
    if not all(storage.table_exists(None, params, "silver", key) for key in table_keys("silver")):
        return False
    bronze = storage.table_state(None, params, "bronze", "e2e_raw")
    return bronze_accounted(None, params) == bronze and gold_is_current(None, params)


def new_run_id(now: dt.datetime | None = None) -> str:
    """An id for one pipeline run, sortable by time: `run-20261126T200102Z`."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return f"run-{now:%Y%m%dT%H%M%S}Z"
