"""Gold, incrementally: rebuild the registry's gold entries when silver or the SLA rules changed.

kpi_weekly is written first (in full, or a week range of it); every other gold entry is built
from it and the silver tables and written from a few threads at once; kpi_summary, the registry's
last gold entry, is written last, and its commit records what gold was built from.
"""

from __future__ import annotations

import datetime as dt
import logging
from concurrent.futures import ThreadPoolExecutor

from pyspark.sql import DataFrame, SparkSession

from nyc911lib import engine
from nyc911lib.config import Params
from nyc911lib.io import storage
from nyc911lib.io.tables import DateRange
from nyc911lib.run import executor
from nyc911lib.run.faults import fault_point
from nyc911lib.run.registry import RunContext, entry, layer_entries, table_keys
from nyc911lib.run.silver_run import size_shuffles_to_bronze
from nyc911lib.transforms.sla import sla_rules_table

log_ = logging.getLogger("nyc911")
GOLD_WRITERS = 4  # gold tables written at once (see build_gold)
ZORDER_COLUMNS = ("agency", "week_start_date")


def gold_inputs() -> tuple[tuple[str, str], ...]:
    """What gold is computed from (layer, key): the tables of other layers its entries read. A
    change to any of them makes gold stale."""
    gold = {e.key for e in layer_entries("gold")}
    keys = {key for e in layer_entries("gold") for key in e.inputs if key not in gold}
    return tuple(sorted((entry(key).layer, key) for key in keys))


def gold_state(spark: SparkSession | None, params: Params) -> dict:
    """The versions of gold's inputs (stored in every gold commit's userMetadata) and the SLA
    rules applied (a rule change makes gold stale too)."""
    state = {f"{lay}.{tab}": storage.table_version(spark, params, lay, tab) for lay, tab in gold_inputs()}
    state["sla_rules"] = sla_rules_table(params.sla_rules)
    return state


def gold_state_table() -> str:
    """The gold table written last in every build: its commit records what gold was built from.
    (Not every gold table gets a commit in every build: Delta writes none for an empty table
    overwritten with no rows, e.g. anomalies on a few weeks of data.)"""
    return table_keys("gold")[-1]


def gold_is_current(spark: SparkSession | None, params: Params) -> bool:
    """Whether gold was last built, in full, from the current inputs: every gold table exists and
    the table written last in a build records the current state."""
    if not all(storage.table_exists(spark, params, "gold", t) for t in table_keys("gold")):
        return False  # a table missing, or left half-created by a crash
    state = {**gold_state(spark, params), "scope": "all"}
    return _records(storage.last_commit_metadata(spark, params, "gold", gold_state_table()), state)


def _records(metadata: dict | None, state: dict) -> bool:
    """Whether a commit's metadata records `state` (it also names the engine and runner)."""
    return metadata is not None and all(metadata.get(k) == v for k, v in state.items())


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
    for table in table_keys("gold"):
        if storage.table_size_bytes(spark, params, "gold", table) < limit:
            continue
        columns = storage.read_table(spark, params, "gold", table).columns
        zorder_by = [c for c in ZORDER_COLUMNS if c in columns]
        if zorder_by:
            storage.zorder_table(spark, params, "gold", table, columns=zorder_by, metadata=metadata)
            done.append(table)
    return done


def build_gold(
    spark: SparkSession,
    params: Params,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    *,
    force: bool = False,
    run_id: str = "gold",
) -> dict:
    """Bring gold up to date with silver and return the summary row as a dict.

    Without a range, gold is rewritten in full when its inputs changed since gold was built (or
    `force`), and left untouched otherwise. With `date_from`/`date_to` (a backfill, e.g. after an
    SLA rule change) only those weeks of kpi_weekly are recomputed (Delta replaceWhere); every
    other gold table is then recomputed from the whole of kpi_weekly and silver, so all gold
    tables always describe the same rows.
    """
    ranged = date_from is not None or date_to is not None
    last = gold_state_table()
    if not ranged and not force and gold_is_current(spark, params):
        log_.info("gold: already computed from the current silver; nothing rewritten")
        return storage.read_table(spark, params, "gold", last).first().asDict()
    state = {**gold_state(spark, params), "scope": "range" if ranged else "all"}
    bronze_bytes = size_shuffles_to_bronze(spark, params)
    frames: dict[str, DataFrame] = {
        lay_key[1]: storage.read_table(spark, params, *lay_key) for lay_key in gold_inputs()
    }
    ranged = ranged and storage.table_exists(spark, params, "gold", "kpi_weekly")
    now = dt.datetime.now(dt.timezone.utc)
    scoped = RunContext(params, spark, run_id, now, date_from, date_to) if ranged else None
    run = RunContext(params, spark, run_id, now)
    weekly = executor.build("kpi_weekly", frames, scoped or run)
    scope = DateRange("week_start_date", date_from, date_to) if ranged else None
    executor.write(spark, params, "kpi_weekly", weekly, metadata=state, scope=scope)
    fault_point("gold.after_kpi_weekly")
    frames["kpi_weekly"] = storage.read_table(spark, params, "gold", "kpi_weekly")
    # The other entries read kpi_weekly as written and each other's frames (lazy): they are
    # independent small jobs whose time is mostly Delta commit and job overhead, not CPU, so on
    # Spark they are written from a few threads at once (each still its own atomic commit with
    # the same state). SQLFrame's session is not thread-safe, and each DuckDB write takes
    # milliseconds: one after the other there.
    derived = [e for e in layer_entries("gold") if e.key not in ("kpi_weekly", last)]
    for e in derived:  # views too (built once, read by the tables after them)
        frames[e.key] = executor.build(e.key, frames, run)
    fault_point("gold.parallel_writes")
    writers = GOLD_WRITERS if engine.name() == "spark" else 1
    with ThreadPoolExecutor(max_workers=writers, thread_name_prefix="gold") as pool:
        writes = [
            pool.submit(executor.write, spark, params, e.key, frames[e.key], metadata=state)
            for e in derived
            if e.stored
        ]
        for write in writes:
            write.result()
    for table in zorder_gold(spark, params, bronze_bytes, state):
        log_.info("gold: %s Z-ordered by %s", table, ", ".join(ZORDER_COLUMNS))
    executor.write(spark, params, last, executor.build(last, frames, run), metadata=state)  # gold is complete
    return storage.read_table(spark, params, "gold", last).first().asDict()
