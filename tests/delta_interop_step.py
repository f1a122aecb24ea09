"""One step of the Delta interop test (tests/test_delta_rs.py), run in its own process per engine:
SQLFrame's `activate()` takes `pyspark`'s place for the whole process, so the duckdb engine
(SQLFrame + delta-rs) and the spark engine (PySpark + delta-spark) never share one.

    python tests/delta_interop_step.py <duckdb|spark> <step> <folder>

Tables: `<folder>/rs` is created by delta-rs, `<folder>/spark` by delta-spark; each engine reads,
appends to (with a new column) and merges the other's. The step prints one JSON line of what it
saw (rows, Arrow types, commit metadata, change feed) for the test to check.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path


def frame(session, *rows: tuple):
    """A frame of rows (k, date, timestamp text (UTC), n, x, b, arr, v) with every column type the
    interop checks; `st` and the all-NULL `nul` are derived."""
    data = [
        (
            k,
            dt.date.fromisoformat(d),
            dt.datetime.fromisoformat(ts).replace(tzinfo=dt.timezone.utc),
            n,
            x,
            b,
            list(arr),
            (k, f"x{k}"),
            v,
            None,
        )
        for k, d, ts, n, x, b, arr, v in rows
    ]
    from pyspark.sql import types as T  # noqa: PLC0415 - the engine's (SQLFrame's or Spark's)

    schema = T.StructType(
        [
            T.StructField("k", T.LongType()),
            T.StructField("d", T.DateType()),
            T.StructField("ts", T.TimestampType()),
            T.StructField("n", T.LongType()),
            T.StructField("x", T.DoubleType()),
            T.StructField("b", T.BooleanType()),
            T.StructField("arr", T.ArrayType(T.StringType())),
            T.StructField(
                "st", T.StructType([T.StructField("i", T.IntegerType()), T.StructField("s", T.StringType())])
            ),
            T.StructField("v", T.StringType()),
            T.StructField("nul", T.StringType()),
        ]
    )
    return session.createDataFrame(data, schema)


FIRST = (
    (1, "2025-01-06", "2025-01-06 12:00:00", 10, 1.5, True, ("a", "b"), "one"),
    (2, "2025-01-13", "2025-01-13 23:59:59.123456", 20, 2.5, False, ("c",), None),
    (3, "2025-01-20", "2025-01-20 00:00:00", 30, 3.5, True, ("z",), "three"),
)


def with_literal(df, column: str, value, type_name: str):
    from pyspark.sql import functions as F  # noqa: PLC0415 - the engine's (SQLFrame's or Spark's)

    return df.withColumn(column, F.lit(value).cast(type_name))


def jsonable(value):
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).isoformat() if value.tzinfo else value.isoformat() + " naive"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def seen(arrow) -> dict:
    """Rows (sorted by `k`, then `_change_type`) and Arrow types of a frame's Arrow result."""
    rows = sorted(arrow.to_pylist(), key=lambda r: (r.get("k"), str(r.get("_change_type"))))
    return {"types": {f.name: str(f.type) for f in arrow.schema}, "rows": jsonable(rows)}


# --- duckdb engine: SQLFrame + delta-rs ----------------------------------------------------------


def duckdb_tables():
    import duckdb  # noqa: PLC0415
    import sqlframe  # noqa: PLC0415

    con = duckdb.connect()
    sqlframe.activate(engine="duckdb", conn=con)
    from pyspark.sql import SparkSession  # noqa: PLC0415 - SQLFrame's, after activate()

    session = SparkSession.builder.getOrCreate()
    session.conf.set("spark.sql.session.timeZone", "UTC")
    from nyc911lib.io.delta_rs import DeltaRsTables  # noqa: PLC0415

    return session, DeltaRsTables(session)


def duckdb_create(root: Path) -> dict:
    """delta-rs creates `rs` (Change Data Feed on) and MERGEs into it: 2 updated, 3 identical
    (NULLs included), 4 new."""
    session, tables = duckdb_tables()
    rs = str(root / "rs")
    created = tables.write(
        frame(session, *FIRST),
        rs,
        mode="overwrite",
        txn=("rs-create", 1),
        metadata={"step": "rs-create", "engine": "duckdb"},
        properties={"delta.enableChangeDataFeed": "true"},
    )
    changed = (
        (2, "2025-01-13", "2025-01-13 23:59:59.123456", 21, 2.5, False, ("c",), "two"),
        FIRST[2],
        (4, "2025-01-27", "2025-01-27 06:30:00", 40, 4.5, False, ("d", "e"), "four"),
    )
    tables.merge(
        rs,
        frame(session, *changed),
        on=("k",),
        values=("n", "x", "b", "arr", "v"),
        txn=("rs-merge", 1),
        metadata={"step": "rs-merge"},
    )
    return {"created": created, "version": tables.version(rs), "read": seen(tables.read(rs).toArrow())}


def duckdb_extend(root: Path) -> dict:
    """delta-rs reads `rs` after Spark's append and MERGE (and Spark's change feed), then appends
    to, MERGEs into and Z-orders Spark's `spark` table."""
    session, tables = duckdb_tables()
    rs, sp = str(root / "rs"), str(root / "spark")
    out = {
        "rs_read": seen(tables.read(rs).toArrow()),
        "rs_last_commit": tables.last_commit(rs).__dict__,
        "rs_changes_spark_merge": seen(tables.changes(rs, tables.version(rs)).toArrow()),
        "spark_read": seen(tables.read(sp).toArrow()),
        "spark_version_before": tables.version(sp),
    }
    appended = frame(session, (5, "2025-02-03", "2025-02-03 08:00:00", 50, 5.5, True, ("f",), "five"))
    appended = with_literal(appended, "extra_rs", 0.25, "double")
    out["appended"] = tables.write(
        appended, sp, mode="append", txn=("rs-append", 1), metadata={"step": "rs-append"}
    )
    out["append_replayed"] = tables.write(appended, sp, mode="append", txn=("rs-append", 1))
    identical = tables.read(sp).where("k = 2")
    before = tables.version(sp)
    tables.merge(sp, identical, on=("k",), values=("n", "x", "b", "arr", "v"), txn=("rs-noop", 1))
    out["noop_merge_commits"] = tables.version(sp) - before
    changed = frame(
        session,
        (1, "2025-01-06", "2025-01-06 12:00:00", 11, 1.5, True, ("a", "b"), "uno"),
        (6, "2025-02-10", "2025-02-10 10:10:10", 60, 6.5, False, ("g",), None),
    )
    changed = with_literal(changed, "extra_rs", None, "double")
    tables.merge(
        sp,
        changed,
        on=("k",),
        values=("n", "x", "b", "arr", "v"),
        txn=("rs-merge", 1),
        metadata={"step": "rs-merge-spark-table"},
    )
    out["spark_version_after"] = tables.version(sp)
    tables.zorder(sp, ["d", "k"], metadata={"step": "rs-zorder"})
    out["spark_read_after"] = seen(tables.read(sp).toArrow())
    return out


# --- spark engine: PySpark + delta-spark ---------------------------------------------------------


def spark_session():
    from nyc911lib.spark import get_spark  # noqa: PLC0415 - the real pyspark, in this process only

    return get_spark("nyc911-delta-interop")


def spark_arrow(df):
    return df.toArrow()


def history_metadata(spark, path: str) -> list:
    from delta.tables import DeltaTable  # noqa: PLC0415

    rows = DeltaTable.forPath(spark, path).history().select("version", "operation", "userMetadata").collect()
    return sorted([r["version"], r["operation"], r["userMetadata"]] for r in rows)


def spark_extend(root: Path) -> dict:
    """Spark reads delta-rs' `rs` (its history and change feed), appends a row with a new column
    and MERGEs into it; then creates its own `spark` table."""
    from delta.tables import DeltaTable  # noqa: PLC0415

    spark = spark_session()
    rs, sp = str(root / "rs"), str(root / "spark")
    table = spark.read.format("delta").load(rs)
    out = {
        "rs_schema": table.schema.simpleString(),
        "rs_read": seen(spark_arrow(table)),
        "rs_history": history_metadata(spark, rs),
        "rs_changes": seen(
            spark_arrow(
                spark.read.format("delta")
                .option("readChangeFeed", "true")
                .option("startingVersion", 1)
                .load(rs)
                .drop("_commit_timestamp")
            )
        ),
    }
    appended = frame(spark, (5, "2025-02-03", "2025-02-03 08:00:00", 50, 5.5, True, ("f",), "five"))
    (
        with_literal(appended, "extra_spark", "new", "string")
        .write.format("delta")
        .mode("append")
        .option("mergeSchema", "true")
        .option("txnAppId", "spark-append")
        .option("txnVersion", "1")
        .option("userMetadata", json.dumps({"step": "spark-append"}, sort_keys=True))
        .save(rs)
    )
    spark.conf.set("spark.databricks.delta.commitInfo.userMetadata", json.dumps({"step": "spark-merge"}))
    changed = frame(spark, (4, "2025-01-27", "2025-01-27 06:30:00", 40, 4.5, False, ("d", "e"), "FOUR"))
    changed = with_literal(changed, "extra_spark", None, "string")
    (
        DeltaTable.forPath(spark, rs)
        .alias("t")
        .merge(changed.alias("s"), "t.k = s.k")
        .whenMatchedUpdateAll(condition="NOT (t.v <=> s.v)")
        .whenNotMatchedInsertAll()
        .execute()
    )
    spark.conf.unset("spark.databricks.delta.commitInfo.userMetadata")
    (
        frame(spark, *FIRST)
        .write.format("delta")
        .mode("overwrite")
        .option("delta.enableChangeDataFeed", "true")
        .option("userMetadata", json.dumps({"step": "spark-create"}, sort_keys=True))
        .save(sp)
    )
    out["spark_detail"] = {
        k: v
        for k, v in DeltaTable.forPath(spark, sp).detail().first().asDict().items()
        if k in ("minReaderVersion", "minWriterVersion", "tableFeatures", "properties")
    }
    return out


def spark_verify(root: Path) -> dict:
    """Spark reads its `spark` table after delta-rs' append, MERGE and Z-order: types, rows, history,
    change feed; then appends to it once more."""
    spark = spark_session()
    sp = str(root / "spark")
    table = spark.read.format("delta").load(sp)
    history = history_metadata(spark, sp)
    merge_version = max(v for v, op, _ in history if op == "MERGE")
    feed = (
        spark.read.format("delta")
        .option("readChangeFeed", "true")
        .option("startingVersion", merge_version)
        .load(sp)
        .drop("_commit_timestamp")
    )
    out = {
        "schema": table.schema.simpleString(),
        "read": seen(spark_arrow(table)),
        "history": history,
        "changes": seen(spark_arrow(feed)),
    }
    frame(spark, (7, "2025-02-17", "2025-02-17 17:17:17", 70, 7.5, True, ("h",), "seven")).write.format(
        "delta"
    ).mode("append").save(sp)
    out["count_after_append"] = spark.read.format("delta").load(sp).count()
    return out


STEPS = {
    ("duckdb", "create"): duckdb_create,
    ("duckdb", "extend"): duckdb_extend,
    ("spark", "extend"): spark_extend,
    ("spark", "verify"): spark_verify,
}


def main(argv: list[str]) -> None:
    engine, step, folder = argv
    result = STEPS[engine, step](Path(folder))
    print("RESULT " + json.dumps(result, default=str))


if __name__ == "__main__":
    main(sys.argv[1:])
