"""Executing registry entries incrementally: build an entry from its inputs, write it by its mode.

The incremental runners (notebooks, inline) call these two functions for every table; what is
written when, and with which transaction id, is decided by the layer runs (`ingest`,
`silver_run`, `gold_run`).
"""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql import DataFrame, SparkSession

from nyc911lib.config import Params
from nyc911lib.io import storage
from nyc911lib.io.tables import DateRange
from nyc911lib.run.registry import APPEND, MERGE, RANGED_OVERWRITE, RunContext, entry
from nyc911lib.transforms.week_spans import WEEK, spans_of


def build(key: str, inputs: Mapping[str, DataFrame], run: RunContext) -> DataFrame:
    """The frame of entry `key`: its build applied to `inputs` (every input it names must be there)."""
    e = entry(key)
    missing = [name for name in e.inputs if name not in inputs]
    if missing:
        raise ValueError(f"{key} needs its inputs {', '.join(missing)}")
    return e.build(inputs, run)


def write(
    spark: SparkSession,
    params: Params,
    key: str,
    frame: DataFrame,
    *,
    txn: storage.Txn | None = None,
    metadata: dict | None = None,
    scope: DateRange | None = None,
) -> None:
    """Write `frame` to entry `key`'s table by the entry's write mode: append; MERGE on its key
    (the first write creates the table with the entry's properties; a key with the week reads
    only the files of the weeks `frame` holds); overwrite; or, with `scope`, overwrite of that
    date range only (ranged overwrite)."""
    e = entry(key)
    if not e.stored:
        raise ValueError(f"{key} is a view, not a table")
    if e.write == MERGE and storage.table_exists(spark, params, e.layer, key):
        within = None
        if WEEK in e.merge_key:
            weeks = spans_of(r[0] for r in frame.select(WEEK).distinct().collect() if r[0] is not None)
            within = tuple(DateRange(WEEK, low, high) for low, high in weeks)
        storage.merge_on_key(
            spark,
            params,
            e.layer,
            key,
            frame,
            on=e.merge_key,
            values=e.merge_values,
            txn=txn,
            metadata=metadata,
            within=within,
        )
    elif e.write in (APPEND, MERGE):
        properties = dict(e.table_properties) or None
        storage.write_table(
            frame,
            params,
            e.layer,
            key,
            mode="append",
            txn=txn,
            metadata=metadata,
            properties=properties,
            cluster_by=e.cluster_by,
        )
    else:
        replace = scope if e.write == RANGED_OVERWRITE else None
        storage.write_table(
            frame, params, e.layer, key, txn=txn, metadata=metadata, replace=replace, cluster_by=e.cluster_by
        )
