"""Gold, incrementally: rebuild the registry's gold entries when silver or the SLA rules changed.

kpi_weekly is written first (in full, or a week range of it); every other gold entry is built
from it and the silver tables and written from a few threads at once; kpi_summary, the registry's
last gold entry, is written last, and its commit records what gold was built from.

When gold was last built whole from the same silver tables and rules, and silver is big enough
for it to pay off (`weeks_pay_off`), only the weeks that the new publications reach are
recomputed: for each table of weekly rows with a `reach` in the registry, every week that reads
a week of the silver rows the publications added or revised (its own week; for anomalies also
the same weeks of the next years, for the response time the weeks whose trailing or year-earlier
periods hold it). Those weeks are replaced in one commit per table (a ranged overwrite); the
other tables (monthly, summaries, the headline, SLA streaks, data quality) are rebuilt whole
from them, as in a full build.

A whole build on the duckdb engine computes each table of weekly rows in pieces of consecutive
weeks once silver outgrows `performance.duckdb_gold_piece_mb` (`whole_pieces`): each piece from
the input weeks its reach reads, one after the other, so DuckDB holds one piece's join at a time.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import math
from concurrent.futures import ThreadPoolExecutor

import pyspark.sql.functions as F
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
from nyc911lib.transforms.week_spans import (
    ALL_DAYS,
    WEEK,
    Span,
    outside_spans,
    pieces,
    spans_of,
    within_spans,
)

log_ = logging.getLogger("nyc911")
GOLD_WRITERS = 4  # gold tables written at once (see build_gold)
ZORDER_COLUMNS = ("agency", "week_start_date")
SILVER_IDS = "silver_ids"  # gold commit metadata: the Delta table ids of the silver tables read


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


def _silver_ids(spark: SparkSession, params: Params) -> dict[str, str]:
    """The Delta table ids of the silver tables an incremental gold build reads its changes from
    (an id tells a table rebuilt from scratch apart from the one gold was built from)."""
    backend = storage.tables(spark)
    return {
        key: backend.table_id(storage.table_name(params, "silver", key))
        for key in ("e2e_weekly", "batch_accounting")
    }


def changed_weeks(spark: SparkSession, params: Params, building: dict) -> tuple[Span, ...] | None:
    """The weeks (as spans) of the silver rows that the batches applied since gold was last built
    whole added or revised (`building`: the metadata of the build about to start), or None when
    gold must be rebuilt whole: no complete build to start from, other SLA rules, other silver
    tables (rebuilt), or the batch list gold was built with no longer readable (that version
    expired from the log).

    A batch's new and revised rows are silver's rows that carry its `_batch_id` (an unchanged row
    keeps its earlier publication's); the batches are those silver.batch_accounting lists now and
    did not list at the version gold recorded. Silver never deletes a row, so nothing else changed.
    """
    built = storage.last_commit_metadata(spark, params, "gold", gold_state_table())
    if built is None or built.get("scope") != "all" or built.get("sla_rules") != building["sla_rules"]:
        return None
    if not all(storage.table_exists(spark, params, "gold", t) for t in table_keys("gold")):
        return None
    accounted = built.get("silver.batch_accounting")
    if not isinstance(accounted, int) or built.get(SILVER_IDS) != building[SILVER_IDS]:
        return None
    try:
        before = storage.read_table(spark, params, "silver", "batch_accounting", accounted)
        known = {r[0] for r in before.select("batch_id").distinct().collect()}
    except Exception as exc:  # any failure to read the old version: rebuild whole
        log_.info("gold: rebuilt whole, the batches it was built with are unreadable (%s)", exc)
        return None
    accounting = storage.read_table(spark, params, "silver", "batch_accounting")
    new = sorted({r[0] for r in accounting.select("batch_id").distinct().collect()} - known)
    if not new:
        return ()
    silver = storage.read_table(spark, params, "silver", "e2e_weekly")
    touched = silver.where(F.col("_batch_id").isin(new)).select(WEEK).distinct()
    return spans_of(r[0] for r in touched.collect())


def weeks_pay_off(spark: SparkSession, params: Params) -> bool:
    """Whether silver is big enough (`performance.weeks_gold_min_mb`) for gold to recompute only
    the weeks a publication reaches; on a smaller silver a whole rebuild is cheaper (planning the
    week ranges of every table costs more than the rows it saves)."""
    limit = params.performance.weeks_gold_min_mb * 2**20
    return limit == 0 or storage.table_size_bytes(spark, params, "silver", "e2e_weekly") >= limit


def whole_pieces(spark: SparkSession, params: Params, weekly: DataFrame) -> tuple[Span, ...]:
    """The consecutive week spans a whole build computes each gold table of weekly rows in, one
    after the other: on the duckdb engine, pieces of `kpi_weekly`'s weeks (`weekly`) of about
    `performance.duckdb_gold_piece_mb` of silver each; else all days at once."""
    piece = params.performance.duckdb_gold_piece_mb * 2**20
    count = math.ceil(storage.table_size_bytes(spark, params, "silver", "e2e_weekly") / piece)
    if engine.name() != "duckdb" or count <= 1:
        return (ALL_DAYS,)
    return pieces({r[0]: r[1] for r in weekly.groupBy(WEEK).count().collect()}, count)


def _ranges(spans: tuple[Span, ...]) -> tuple[DateRange, ...]:
    return tuple(DateRange(WEEK, low, high) for low, high in spans)


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

    Without a range, gold is left untouched when its inputs did not change since gold was built;
    else the weeks new publications reached are recomputed (`changed_weeks`), or all of gold when
    that cannot be told, does not pay off on a small silver (`weeks_pay_off`), or with `force`.
    With `date_from`/`date_to` (a backfill, e.g. after an SLA rule change) only those weeks of
    kpi_weekly are recomputed (Delta replaceWhere); every other gold table is then recomputed
    from the whole of kpi_weekly and silver, so all gold tables always describe the same rows.
    """
    ranged = date_from is not None or date_to is not None
    last = gold_state_table()
    if not ranged and not force and gold_is_current(spark, params):
        log_.info("gold: already computed from the current silver; nothing rewritten")
        return storage.read_table(spark, params, "gold", last).first().asDict()
    state = {**gold_state(spark, params), "scope": "range" if ranged else "all"}
    metadata = {**state, SILVER_IDS: _silver_ids(spark, params)}
    by_weeks = not ranged and not force and weeks_pay_off(spark, params)
    changed = changed_weeks(spark, params, metadata) if by_weeks else None
    metadata["build"] = "whole" if changed is None else "weeks"
    if changed is not None:
        log_.info("gold: recomputing the weeks new publications reach: %s", changed)
    bronze_bytes = size_shuffles_to_bronze(spark, params)
    frames: dict[str, DataFrame] = {
        lay_key[1]: storage.read_table(spark, params, *lay_key) for lay_key in gold_inputs()
    }
    ranged = ranged and storage.table_exists(spark, params, "gold", "kpi_weekly")
    now = dt.datetime.now(dt.timezone.utc)
    scoped = RunContext(params, spark, run_id, now, date_from, date_to) if ranged else None
    run = RunContext(params, spark, run_id, now)
    weeks = _weeks_of("kpi_weekly", params, changed)
    if weeks is None:
        weekly = executor.build("kpi_weekly", frames, scoped or run)
        scope = DateRange(WEEK, date_from, date_to) if ranged else None
        executor.write(spark, params, "kpi_weekly", weekly, metadata=metadata, scope=scope)
    elif weeks:
        weekly = _build_weeks("kpi_weekly", frames, run, weeks)
        executor.write(spark, params, "kpi_weekly", weekly, metadata=metadata, scope=_ranges(weeks))
    fault_point("gold.after_kpi_weekly")
    frames["kpi_weekly"] = storage.read_table(spark, params, "gold", "kpi_weekly")
    # The other entries read kpi_weekly as written and each other's frames (lazy): they are
    # independent small jobs whose time is mostly Delta commit and job overhead, not CPU, so on
    # Spark they are written from a few threads at once (each still its own atomic commit with
    # the same state). SQLFrame's session is not thread-safe, and each DuckDB write takes
    # milliseconds: one after the other there.
    whole = whole_pieces(spark, params, frames["kpi_weekly"]) if changed is None else (ALL_DAYS,)
    writes = _derived(spark, params, frames, run, changed, whole=whole)
    fault_point("gold.parallel_writes")
    writers = GOLD_WRITERS if engine.name() == "spark" else 1
    with ThreadPoolExecutor(max_workers=writers, thread_name_prefix="gold") as pool:
        futures = [
            pool.submit(executor.write, spark, params, key, frame, metadata=metadata, scope=scope)
            for key, frame, scope in writes
            if entry(key).stored
        ]
        for future in futures:
            future.result()
    if changed is None:  # weeks replaced in place add small files; the next whole build re-clusters
        for table in zorder_gold(spark, params, bronze_bytes, metadata):
            log_.info("gold: %s Z-ordered by %s", table, ", ".join(ZORDER_COLUMNS))
    summary = executor.build(last, frames, run)
    executor.write(spark, params, last, summary, metadata=metadata)  # gold is complete
    return storage.read_table(spark, params, "gold", last).first().asDict()


def _weeks_of(key: str, params: Params, changed: tuple[Span, ...] | None) -> tuple[Span, ...] | None:
    """The weeks of entry `key` a build recomputes when silver changed the weeks `changed` (None:
    all of them: a whole build, or an entry without a `reach`)."""
    reach = entry(key).reach
    return None if changed is None or reach is None else reach(params).outputs(changed)


def _derived(
    spark: SparkSession,
    params: Params,
    frames: dict[str, DataFrame],
    run: RunContext,
    changed: tuple[Span, ...] | None,
    *,
    whole: tuple[Span, ...],
) -> list[tuple[str, DataFrame, tuple[DateRange, ...] | None]]:
    """Build the gold entries after kpi_weekly and before the summary (views too: built once,
    read by the entries after them) into `frames`; return what to write: (key, frame, the week
    ranges it replaces or None for the whole table). An entry with a `reach` built whole is
    built in the pieces `whole` (`whole_pieces`), each computed before the next."""
    derived = [e for e in layer_entries("gold") if e.key not in ("kpi_weekly", gold_state_table())]
    read_later = {name for e in layer_entries("gold") for name in e.inputs}
    writes: list[tuple[str, DataFrame, tuple[DateRange, ...] | None]] = []
    for e in derived:
        weeks = _weeks_of(e.key, params, changed)
        if weeks is None:
            if e.reach is not None and len(whole) > 1:
                parts = [engine.materialize(_build_weeks(e.key, frames, run, (p,))) for p in whole]
                frames[e.key] = functools.reduce(DataFrame.unionByName, parts)
            else:
                frames[e.key] = executor.build(e.key, frames, run)
            writes.append((e.key, frames[e.key], None))
            continue
        part = _build_weeks(e.key, frames, run, weeks)
        if weeks:
            writes.append((e.key, part, _ranges(weeks)))
        if e.key in read_later:  # read whole by a later entry: the table as it will be
            head = storage.last_commit(spark, params, "gold", e.key).head  # pinned: rewritten meanwhile
            kept = storage.read_table(spark, params, "gold", e.key, head).transform(
                outside_spans(weeks, WEEK)
            )
            frames[e.key] = kept.unionByName(part)
    return writes


def _build_weeks(
    key: str, frames: dict[str, DataFrame], run: RunContext, weeks: tuple[Span, ...]
) -> DataFrame:
    """Entry `key` (one with a `reach`) for `weeks` only, from the weeks of its inputs they read."""
    e = entry(key)
    needed = e.reach(run.params).inputs(weeks)
    inputs = {name: frames[name].transform(within_spans(needed, WEEK)) for name in e.inputs}
    return executor.build(key, inputs, run).transform(within_spans(weeks, WEEK))
