"""delta-rs under the duckdb engine (`nyc911lib.io.delta_rs.DeltaRsTables`): every `Tables` operation on
a SQLFrame DuckDB session, and interop with delta-spark.

The unit tests use SQLFrame's DuckDB session directly (`sqlframe.duckdb.DuckDBSession`, which needs
no `activate()`), so they run in any pytest process and import no pyspark. The interop test runs
each engine in its own process (tests/delta_interop_step.py): SQLFrame's `activate()` takes
`pyspark`'s place for a whole process, so the two engines never share one.
"""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pcsv
import pytest
from conftest import ENGINE
from deltalake import CommitProperties, DeltaTable, write_deltalake

from nyc911lib.errors import EngineError
from nyc911lib.io import delta_rs
from nyc911lib.io.delta_rs import DeltaRsTables, conform_type, read_arrow, target_schema
from nyc911lib.io.tables import Commit, DateRange

REPO = Path(__file__).resolve().parents[1]
STEP = Path(__file__).resolve().parent / "delta_interop_step.py"
REAL_2025 = REPO.parent / "shared" / "data" / "nyc911_e2e_through_2025-12-22.csv"
UTC = dt.timezone.utc
_names = itertools.count()


@pytest.fixture(scope="module")
def session():
    """SQLFrame's DuckDB session on a connection of our own, time zone UTC (SQLFrame's session is a
    process singleton: when one exists already, that one, with its connection, is returned)."""
    from sqlframe.duckdb import DuckDBSession  # noqa: PLC0415

    spark = DuckDBSession(conn=duckdb.connect())
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    return spark


@pytest.fixture(scope="module")
def tables(session):
    return DeltaRsTables(session)


def frame(tables: DeltaRsTables, data: pa.Table | dict):
    """A SQLFrame frame over an Arrow table (registered on the session's DuckDB connection)."""
    data = data if isinstance(data, pa.Table) else pa.table(data)
    view = f"test_frame_{next(_names)}"
    tables.connection.register(f"{view}_arrow", data)
    tables.connection.execute(f'CREATE VIEW "{view}" AS SELECT * FROM "{view}_arrow"')
    return tables.session.table(view)


def delta_types(path) -> dict:
    """The table's column types as its Delta log states them (Spark's type names)."""
    fields = json.loads(DeltaTable(str(path)).schema().to_json())["fields"]
    return {f["name"]: f["type"] for f in fields}


def rows(df, key: str = "k") -> list[dict]:
    return sorted(df.toArrow().to_pylist(), key=lambda r: r[key])


def kv(keys, values, dates=None) -> dict:
    """Columns k (bigint), v (string) and d (date), for small tables."""
    data = {"k": pa.array(keys, pa.int64()), "v": pa.array(values, pa.string())}
    if dates is not None:
        data["d"] = pa.array(dates, pa.date32())
    return data


# --- types --------------------------------------------------------------------------------------

TYPED_SQL = """
SELECT DATE '2025-01-06' AS d, TIMESTAMP '2025-01-06 12:34:56.789012' AS ts, CAST(7 AS BIGINT) AS n,
       CAST(1.5 AS DOUBLE) AS x, true AS b, array('a', 'b') AS arr, named_struct('i', 1, 's', 'x') AS st,
       CAST(NULL AS STRING) AS nul, NULL AS void, SUM(CAST(3 AS BIGINT)) OVER () AS total,
       CAST(1.25 AS DECIMAL(5,2)) AS ratio, CAST('2025-01-06 08:00:00' AS TIMESTAMP_NTZ) AS naive
"""


def test_a_sqlframe_frame_is_written_with_the_types_both_engines_keep(tables, tmp_path):
    df = tables.session.sql(TYPED_SQL)
    raw = df.toArrow().schema
    assert str(raw.field("total").type) == "decimal128(38, 0)"  # what SQLFrame gives: conformed below
    assert str(raw.field("naive").type) == "timestamp[us]"
    name = str(tmp_path / "typed")
    assert tables.write(df, name, mode="overwrite") is True
    assert delta_types(name) == {
        **{column: TYPES[column] for column in ("d", "ts", "n", "x", "b", "arr", "st")},
        "nul": "string",
        "void": "string",
        "total": "long",
        "ratio": "double",
        "naive": "timestamp",
    }
    protocol = DeltaTable(name).protocol()
    assert not set(protocol.writer_features or []) & {"timestampNtz", "deletionVectors"}
    assert not set(protocol.reader_features or []) & {"timestampNtz", "deletionVectors"}
    read = tables.read(name)
    assert read.columns == [f.name for f in raw]
    assert read.schema.simpleString() == (
        "struct<d:date, ts:timestamp, n:bigint, x:double, b:boolean, arr:array<string>, "
        "st:struct<i:int, s:string>, nul:string, void:string, total:bigint, ratio:double, naive:timestamp>"
    )
    [row] = read.toArrow().to_pylist()
    assert row == {
        "d": dt.date(2025, 1, 6),
        "ts": dt.datetime(2025, 1, 6, 12, 34, 56, 789012, tzinfo=UTC),
        "n": 7,
        "x": 1.5,
        "b": True,
        "arr": ["a", "b"],
        "st": {"i": 1, "s": "x"},
        "nul": None,
        "void": None,
        "total": 3,
        "ratio": 1.25,
        "naive": dt.datetime(2025, 1, 6, 8, 0, tzinfo=UTC),  # a naive timestamp is taken as UTC
    }


def test_conformed_types():
    assert conform_type(pa.decimal128(38, 0)) == pa.int64()
    assert conform_type(pa.decimal128(38, 2)) == pa.float64()
    assert conform_type(pa.decimal128(10, 0)) == pa.float64()
    assert conform_type(pa.timestamp("ns")) == pa.timestamp("us", tz="UTC")
    assert conform_type(pa.timestamp("us", tz="America/New_York")) == pa.timestamp("us", tz="UTC")
    assert conform_type(pa.uint64()) == pa.int64()
    assert conform_type(pa.null()) == pa.string()
    nested = pa.struct([("t", pa.timestamp("us")), ("l", pa.list_(pa.decimal128(38, 0)))])
    assert conform_type(nested) == pa.struct(
        [("t", pa.timestamp("us", tz="UTC")), ("l", pa.list_(pa.int64()))]
    )
    assert conform_type(pa.string()) == pa.string()
    table = pa.schema([("k", pa.int64()), ("v", pa.string())])
    incoming = pa.schema([("new", pa.decimal128(38, 0)), ("k", pa.int32())])
    assert target_schema(incoming, table) == pa.schema(
        [("k", pa.int64()), ("v", pa.string()), ("new", pa.int64())]
    )


def test_a_zoned_timestamp_keeps_its_instant(tables, tmp_path):
    instant = dt.datetime(2025, 3, 9, 12, 0, tzinfo=UTC)
    data = {"k": pa.array([1], pa.int64()), "ts": pa.array([instant], pa.timestamp("us", tz="UTC"))}
    df = frame(tables, data)
    name = str(tmp_path / "zoned")
    tables.session.conf.set("spark.sql.session.timeZone", "America/New_York")
    try:
        assert df.toArrow().schema.field("ts").type == pa.timestamp("us", tz="America/New_York")
        tables.write(df, name, mode="overwrite")
    finally:
        tables.session.conf.set("spark.sql.session.timeZone", "UTC")
    assert delta_types(name)["ts"] == "timestamp"
    assert read_arrow(name).column("ts").type == pa.timestamp("us", tz="UTC")
    assert rows(tables.read(name))[0]["ts"] == instant


def test_reading_a_table_with_an_all_null_column_of_a_void_type(tables, tmp_path):
    name = str(tmp_path / "void")
    write_deltalake(name, pa.table({"k": pa.array([1, 2], pa.int64()), "gone": pa.nulls(2)}))  # not via us
    assert delta_types(name)["gone"] == "void"
    read = tables.read(name)
    assert read.schema.simpleString() == "struct<k:bigint, gone:string>"
    assert rows(read) == [{"k": 1, "gone": None}, {"k": 2, "gone": None}]


# --- the log: exists, version, last commit, id, size --------------------------------------------


def test_a_missing_table_and_a_folder_without_a_commit(tables, tmp_path):
    name = str(tmp_path / "none")
    assert tables.exists(name) is False
    assert tables.version(name) is None
    assert tables.last_commit(name) is None
    assert tables.size_bytes(name) == 0
    (tmp_path / "none" / "_delta_log").mkdir(parents=True)
    (tmp_path / "none" / "part-0.parquet").write_bytes(b"half written")
    assert tables.exists(name) is False
    assert tables.version(name) is None


def test_version_last_commit_table_id_and_size(tables, tmp_path):
    name = str(tmp_path / "t")
    metadata = {"run": "r-1", "inputs": {"bronze": "abc@3"}, "a": [1, 2]}
    assert tables.write(frame(tables, kv([1, 2], ["a", "b"])), name, mode="overwrite", metadata=metadata)
    assert tables.exists(name)
    assert tables.version(name) == 0
    assert tables.last_commit(name) == Commit(0, metadata)
    log = (tmp_path / "t" / "_delta_log" / f"{0:020}.json").read_text()
    commit_info = next(json.loads(line)["commitInfo"] for line in log.splitlines() if "commitInfo" in line)
    assert commit_info["userMetadata"] == json.dumps(metadata, sort_keys=True)
    assert tables.table_id(name) == DeltaTable(name).metadata().id
    files = pa.table(DeltaTable(name).get_add_actions(flatten=True))
    assert tables.size_bytes(name) == sum(files.column("size_bytes").to_pylist()) > 0
    tables.write(frame(tables, kv([3], ["c"])), name, mode="append")
    assert tables.last_commit(name) == Commit(1, None)
    assert tables.size_bytes(name) == sum(p.stat().st_size for p in (tmp_path / "t").glob("*.parquet"))


def test_user_metadata_that_is_not_a_json_object_reads_as_none(tables, tmp_path):
    name = str(tmp_path / "t")
    write_deltalake(
        name,
        pa.table(kv([1], ["a"])),
        commit_properties=CommitProperties(custom_metadata={"userMetadata": "x"}),
    )
    assert tables.last_commit(name) == Commit(0, None)
    write_deltalake(
        name,
        pa.table(kv([2], ["b"])),
        mode="append",
        commit_properties=CommitProperties(custom_metadata={"userMetadata": "[1, 2]"}),
    )
    assert tables.last_commit(name) == Commit(1, None)


def test_drop_and_create_again_gives_a_new_table_id(tables, tmp_path):
    name = str(tmp_path / "t")
    tables.drop(name)  # nothing there: nothing happens
    tables.write(frame(tables, kv([1], ["old"])), name, mode="overwrite")
    first_id = tables.table_id(name)
    assert rows(tables.read(name)) == [{"k": 1, "v": "old"}]
    tables.drop(name)
    assert not (tmp_path / "t").exists()
    assert tables.exists(name) is False
    tables.write(frame(tables, kv([2], ["new"])), name, mode="overwrite")
    assert tables.version(name) == 0
    assert tables.table_id(name) != first_id
    assert rows(tables.read(name)) == [{"k": 2, "v": "new"}]  # version 0 again, but of the new table


def test_a_catalog_name_is_refused(tables):
    with pytest.raises(EngineError, match="local Delta folders only"):
        tables.read("main.nyc911_silver.e2e_weekly")


# --- read: lazy, versions -----------------------------------------------------------------------


def test_reading_an_old_version_after_new_commits(tables, tmp_path):
    name = str(tmp_path / "t")
    tables.write(frame(tables, kv([1, 2], ["a", "b"])), name, mode="overwrite")
    latest_then = tables.read(name)
    tables.write(frame(tables, kv([3], ["c"])), name, mode="append")
    tables.write(frame(tables, {"other": ["x"]}), name, mode="overwrite")  # data and schema replaced
    assert latest_then.count() == 2  # a frame read before keeps its version
    assert rows(latest_then) == [{"k": 1, "v": "a"}, {"k": 2, "v": "b"}]
    assert rows(tables.read(name, version=1)) == [{"k": 1, "v": "a"}, {"k": 2, "v": "b"}, {"k": 3, "v": "c"}]
    assert tables.read(name, version=0).count() == 2
    assert tables.read(name).toArrow().to_pylist() == [{"other": "x"}]
    assert tables.read(name).columns == ["other"]


def test_read_is_lazy_and_composes(tables, tmp_path):
    name = str(tmp_path / "t")
    tables.write(frame(tables, kv([1, 2, 3], ["a", None, "c"])), name, mode="overwrite")
    df = tables.read(name)
    df.count()
    tables.write(frame(tables, kv([4], ["d"])), name, mode="append")
    assert df.where("v IS NOT NULL").count() == 2  # still version 0
    joined = df.join(tables.read(name), "k")  # versions 0 and 1 side by side
    assert joined.count() == 3
    assert joined.columns == ["k", "v", "v"]


PARTLY_READ_THEN_EXIT = """
import sys, duckdb
from sqlframe.duckdb import DuckDBSession
from nyc911lib.io.delta_rs import DeltaRsTables
rows = DeltaRsTables(DuckDBSession(conn=duckdb.connect())).read(sys.argv[1]).limit(5).collect()
print(sorted(r["k"] for r in rows))
"""


def test_a_process_that_read_part_of_a_table_exits_cleanly(tmp_path):
    """A scan DuckDB stops early (a LIMIT) leaves pyarrow's read-ahead running as the process exits.
    Through delta-rs's default filesystem (Python) those reads then take the GIL during the
    interpreter's shutdown: the process crashed in every run here (20 of 20 with this table: exit
    -11 or -6, "terminate called without an active exception"; a hang with bigger tables);
    pyarrow's local filesystem reads without Python (0 of 20)."""
    name = str(tmp_path / "t")
    for part in range(8):
        write_deltalake(
            name,
            pa.table({"k": pa.array(range(part * 50_000, (part + 1) * 50_000), pa.int64())}),
            mode="append",
        )
    out = subprocess.run(  # one run: the old reads crashed in every run of this table
        [sys.executable, "-c", PARTLY_READ_THEN_EXIT, name],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=120,
        check=False,
    )
    assert (out.returncode, out.stderr[-500:]) == (0, "")
    assert len(json.loads(out.stdout)) == 5


@pytest.mark.parametrize(
    ("columns", "version", "expected"),
    [
        (None, None, {"k": [1, 2, 3], "v": ["a", "b", "c"]}),
        (["v"], None, {"v": ["a", "b", "c"]}),
        (None, 0, {"k": [1, 2], "v": ["a", "b"]}),
    ],
    ids=["latest", "one-column", "version-0"],
)
def test_read_arrow_gives_the_rows_of_one_version(tmp_path, columns, version, expected):
    name = tmp_path / "t"
    write_deltalake(str(name), pa.table({"k": [1, 2], "v": ["a", "b"]}))
    write_deltalake(str(name), pa.table({"k": [3], "v": ["c"]}), mode="append")
    table = read_arrow(name, columns, version=version).sort_by(columns[0] if columns else "k")
    assert table.to_pydict() == expected


# --- write ----------------------------------------------------------------------------------------


def test_a_write_carrying_a_committed_txn_is_skipped(tables, tmp_path):
    name = str(tmp_path / "t")
    assert tables.write(frame(tables, kv([1], ["a"])), name, mode="append", txn=("ingest", 2))
    assert DeltaTable(name).transaction_version("ingest") == 2
    assert tables.write(frame(tables, kv([1], ["a"])), name, mode="append", txn=("ingest", 2)) is False
    assert tables.write(frame(tables, kv([1], ["a"])), name, mode="overwrite", txn=("ingest", 1)) is False
    assert tables.version(name) == 0
    assert tables.write(frame(tables, kv([2], ["b"])), name, mode="append", txn=("other-app", 1))
    assert tables.write(frame(tables, kv([3], ["c"])), name, mode="append", txn=("ingest", 3))
    assert tables.version(name) == 2
    assert tables.read(name).count() == 3


def test_an_empty_append_writes_no_commit_but_an_empty_frame_creates_a_table(tables, tmp_path):
    name = str(tmp_path / "t")
    empty = frame(tables, kv([1], ["a"], [dt.date(2025, 1, 6)])).where("k > 5")
    assert tables.write(empty, name, mode="append", metadata={"run": 1}) is True  # a new table: created
    assert tables.version(name) == 0
    assert delta_types(name) == {"k": "long", "v": "string", "d": "date"}
    assert tables.read(name).count() == 0
    assert tables.write(frame(tables, kv([1], ["a"], [dt.date(2025, 1, 6)])), name, mode="append")
    assert tables.write(empty, name, mode="append", txn=("x", 1), metadata={"run": 2}) is False
    assert tables.version(name) == 1
    assert DeltaTable(name).transaction_version("x") is None
    assert tables.write(empty, name, mode="overwrite") is True  # an empty overwrite empties the table
    assert tables.read(name).count() == 0


def test_an_overwrite_replaces_data_and_schema_and_keeps_the_table(tables, tmp_path):
    name = str(tmp_path / "t")
    properties = {"delta.enableChangeDataFeed": "true"}
    tables.write(frame(tables, kv([1, 2], ["a", "b"])), name, mode="overwrite", properties=properties)
    table_id = tables.table_id(name)
    tables.write(frame(tables, {"k": ["text now"], "w": [1.5]}), name, mode="overwrite")
    assert delta_types(name) == {"k": "string", "w": "double"}
    assert rows(tables.read(name)) == [{"k": "text now", "w": 1.5}]
    assert tables.table_id(name) == table_id
    assert DeltaTable(name).metadata().configuration == properties


def test_an_append_adds_new_columns_and_keeps_the_table_types(tables, tmp_path):
    name = str(tmp_path / "t")
    tables.write(frame(tables, kv([1], ["a"], [dt.date(2025, 1, 6)])), name, mode="overwrite")
    more = tables.session.sql(
        "SELECT 'b' AS v, CAST(2 AS INT) AS k, SUM(CAST(5 AS BIGINT)) OVER () AS added,"
        " CAST('2025-01-07 00:00:00' AS TIMESTAMP_NTZ) AS seen_at"
    )  # reordered, an int for the bigint key, no `d`, two new columns of types to conform
    assert tables.write(more, name, mode="append")
    assert delta_types(name) == {
        "k": "long",
        "v": "string",
        "d": "date",
        "added": "long",
        "seen_at": "timestamp",
    }
    assert rows(tables.read(name)) == [
        {"k": 1, "v": "a", "d": dt.date(2025, 1, 6), "added": None, "seen_at": None},
        {"k": 2, "v": "b", "d": None, "added": 5, "seen_at": dt.datetime(2025, 1, 7, tzinfo=UTC)},
    ]


def test_a_value_that_does_not_fit_the_table_type_is_refused(tables, tmp_path):
    name = str(tmp_path / "t")
    tables.write(frame(tables, kv([1], ["a"])), name, mode="overwrite")
    with pytest.raises(pa.ArrowInvalid):
        tables.write(frame(tables, {"k": ["not a number"], "v": ["b"]}), name, mode="append")
    assert tables.version(name) == 0


def test_a_ranged_overwrite_replaces_only_that_range(tables, tmp_path):
    name = str(tmp_path / "t")
    days = [dt.date(2025, 1, 6), dt.date(2025, 1, 13), dt.date(2025, 1, 20), dt.date(2025, 1, 27)]
    tables.write(frame(tables, kv([1, 2, 3, 4], ["a", "b", "c", "d"], days)), name, mode="overwrite")
    week = DateRange("d", dt.date(2025, 1, 13), dt.date(2025, 1, 20))
    new = frame(tables, kv([20, 30], ["B", "C"], [dt.date(2025, 1, 13), dt.date(2025, 1, 14)]))
    assert tables.write(new, name, mode="overwrite", replace=week, metadata={"weeks": "2-3"})
    assert [(r["k"], r["v"]) for r in rows(tables.read(name))] == [(1, "a"), (4, "d"), (20, "B"), (30, "C")]
    assert tables.last_commit(name).metadata == {"weeks": "2-3"}
    from_jan_27 = DateRange("d", low=dt.date(2025, 1, 27))
    tables.write(
        frame(tables, kv([40], ["D"], [dt.date(2025, 2, 3)])), name, mode="overwrite", replace=from_jan_27
    )
    assert [r["k"] for r in rows(tables.read(name))] == [1, 20, 30, 40]
    outside = frame(tables, kv([9], ["x"], [dt.date(2024, 1, 1)]))
    with pytest.raises(Exception, match="failed validation"):  # as Spark's replaceWhere refuses it
        tables.write(outside, name, mode="overwrite", replace=week)
    assert [r["k"] for r in rows(tables.read(name))] == [1, 20, 30, 40]


def test_a_ranged_overwrite_of_a_quoted_column(tables, tmp_path):
    name = str(tmp_path / "t")
    data = {
        "k": pa.array([1, 2], pa.int64()),
        "week start": pa.array([dt.date(2025, 1, 6), dt.date(2025, 1, 13)]),
    }
    tables.write(frame(tables, data), name, mode="overwrite")
    new = {"k": pa.array([3], pa.int64()), "week start": pa.array([dt.date(2025, 1, 13)])}
    tables.write(
        frame(tables, new), name, mode="overwrite", replace=DateRange("week start", high=dt.date(2025, 1, 13))
    )
    assert [r["k"] for r in rows(tables.read(name))] == [3]


def test_table_properties_on_create(tables, tmp_path):
    name = str(tmp_path / "t")
    properties = {"delta.enableChangeDataFeed": "true"}
    tables.write(frame(tables, kv([1], ["a"])), name, mode="append", properties=properties)
    assert DeltaTable(name).metadata().configuration == properties
    tables.write(frame(tables, kv([2], ["b"])), name, mode="append", properties={"delta.appendOnly": "true"})
    assert DeltaTable(name).metadata().configuration == properties  # set on create only


def test_a_big_frame_is_written_in_batches(tables, tmp_path, monkeypatch):
    monkeypatch.setattr(delta_rs, "BATCH_ROWS", 1000)
    name = str(tmp_path / "t")
    df = frame(tables, kv(range(12345), [str(k) for k in range(12345)]))
    assert df.toArrow(batch_size=1000).read_next_batch().num_rows == 1000
    assert tables.write(df, name, mode="overwrite")
    assert tables.read(name).count() == 12345
    assert tables.write(df.where("k < 0"), name, mode="append") is False


# --- merge ----------------------------------------------------------------------------------------


def test_merge_inserts_updates_and_leaves_identical_rows_alone(tables, tmp_path):
    name = str(tmp_path / "t")
    start = {"k": pa.array([1, 2, 3], pa.int64()), "v": ["a", None, "c"], "x": pa.array([1.0, None, None])}
    tables.write(
        frame(tables, start), name, mode="overwrite", properties={"delta.enableChangeDataFeed": "true"}
    )
    # identical rows, NULLs included: no commit at all (delta-rs commits nothing when no row changes)
    tables.merge(name, frame(tables, start), on=("k",), values=("v", "x"), txn=("silver", 1))
    assert tables.version(name) == 0
    changed = {"k": pa.array([2, 3, 4], pa.int64()), "v": ["b", "c", "d"], "x": pa.array([None, None, 4.0])}
    tables.merge(
        name, frame(tables, changed), on=("k",), values=("v", "x"), txn=("silver", 2), metadata={"m": 1}
    )
    assert tables.last_commit(name) == Commit(1, {"m": 1})
    assert DeltaTable(name).history(1)[0]["operation"] == "MERGE"
    log = (tmp_path / "t" / "_delta_log" / f"{1:020}.json").read_text()
    assert '"cdc":' in log  # Change Data Feed files written by the MERGE
    assert rows(tables.read(name)) == [
        {"k": 1, "v": "a", "x": 1.0},
        {"k": 2, "v": "b", "x": None},
        {"k": 3, "v": "c", "x": None},
        {"k": 4, "v": "d", "x": 4.0},
    ]
    feed = rows(tables.changes(name, 1).select("k", "v", "_change_type", "_commit_version"))
    assert sorted((r["k"], r["_change_type"], r["v"], r["_commit_version"]) for r in feed) == [
        (2, "update_postimage", "b", 1),
        (2, "update_preimage", None, 1),
        (4, "insert", "d", 1),
    ]
    assert tables.changes(name, 0).count() == 6
    assert (
        tables.changes(name, 0)
        .schema.simpleString()
        .endswith("_change_type:string, _commit_version:bigint, _commit_timestamp:timestamp>")
    )


def test_a_merge_whose_txn_was_committed_is_skipped(tables, tmp_path):
    name = str(tmp_path / "t")
    tables.write(frame(tables, kv([1], ["a"])), name, mode="overwrite")
    tables.merge(name, frame(tables, kv([1], ["b"])), on=("k",), values=("v",), txn=("silver", 5))
    assert DeltaTable(name).transaction_version("silver") == 5
    tables.merge(name, frame(tables, kv([1], ["c"])), on=("k",), values=("v",), txn=("silver", 5))
    tables.merge(name, frame(tables, kv([2], ["c"])), on=("k",), values=("v",), txn=("silver", 4))
    assert tables.version(name) == 1
    assert rows(tables.read(name)) == [{"k": 1, "v": "b"}]


def test_merge_rows_are_cast_to_the_table_types_and_extra_columns_ignored(tables, tmp_path):
    name = str(tmp_path / "t")
    tables.write(
        frame(tables, {"k": pa.array([1], pa.int64()), "n": pa.array([5], pa.int64())}),
        name,
        mode="overwrite",
    )
    source = tables.session.sql(
        "SELECT CAST(1 AS INT) AS k, SUM(CAST(5 AS BIGINT)) OVER () AS n, 'ignored' AS extra"
    )  # decimal(38,0) 5 equals bigint 5: no change
    tables.merge(name, source, on=("k",), values=("n",), txn=("m", 1))
    assert tables.version(name) == 0
    assert delta_types(name) == {"k": "long", "n": "long"}
    with pytest.raises(ValueError, match=r"lack the table's columns \['n'\]"):
        tables.merge(
            name, frame(tables, {"k": pa.array([1], pa.int64())}), on=("k",), values=(), txn=("m", 2)
        )


def test_an_empty_merge_commits_nothing(tables, tmp_path):
    name = str(tmp_path / "t")
    tables.write(frame(tables, kv([1], ["a"])), name, mode="overwrite")
    tables.merge(name, frame(tables, kv([1], ["a"])).where("k > 1"), on=("k",), values=("v",), txn=("m", 1))
    assert tables.version(name) == 0


# --- zorder, changes ------------------------------------------------------------------------------


def test_zorder_is_one_commit_carrying_the_metadata(tables, tmp_path):
    name = str(tmp_path / "t")
    for k in range(3):
        tables.write(
            frame(tables, kv([k, k + 10], ["a", "b"], [dt.date(2025, 1, 6)] * 2)), name, mode="append"
        )
    before = rows(tables.read(name))
    tables.zorder(name, ["d", "k"], metadata={"inputs": "x@3"})
    assert tables.last_commit(name) == Commit(3, {"inputs": "x@3"})
    assert DeltaTable(name).history(1)[0]["operation"] == "OPTIMIZE"
    assert len(DeltaTable(name).file_uris()) == 1
    assert rows(tables.read(name)) == before
    assert delta_types(name) == {"k": "long", "v": "string", "d": "date"}


# --- the duckdb engine as it runs: SQLFrame activated in a process of its own ----------------------


def run_step(engine: str, step: str, folder: Path) -> dict:
    """One step of tests/delta_interop_step.py: in this process when it runs that engine (the
    Spark test process's own JVM), else in a process of its own."""
    if engine == ENGINE:
        import delta_interop_step  # noqa: PLC0415 - imports the engine's pyspark

        return json.loads(json.dumps(delta_interop_step.STEPS[engine, step](folder), default=str))
    env = {**os.environ, "PYTHONPATH": str(REPO), "TZ": "UTC"}
    out = subprocess.run(
        [sys.executable, str(STEP), engine, step, str(folder)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=False,
    )
    result = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    assert out.returncode == 0 and result, (
        f"{engine} {step} failed:\n{out.stdout[-3000:]}\n{out.stderr[-5000:]}"
    )
    return json.loads(result[-1].removeprefix("RESULT "))


TYPES = {
    "k": "long",
    "d": "date",
    "ts": "timestamp",
    "n": "long",
    "x": "double",
    "b": "boolean",
    "arr": {"type": "array", "elementType": "string", "containsNull": True},
    "st": {
        "type": "struct",
        "fields": [
            {"name": "i", "type": "integer", "nullable": True, "metadata": {}},
            {"name": "s", "type": "string", "nullable": True, "metadata": {}},
        ],
    },
    "v": "string",
    "nul": "string",
}
ARROW_TYPES = {  # as Arrow: the same in both engines (list item names aside)
    "k": "int64",
    "d": "date32[day]",
    "ts": "timestamp[us, tz=UTC]",
    "n": "int64",
    "x": "double",
    "b": "bool",
    "st": "struct<i: int32, s: string>",
    "v": "string",
    "nul": "string",
}


def arrow_types(seen: dict) -> dict:
    return {k: v for k, v in seen["types"].items() if k != "arr"}


def keyed(seen: dict, *fields: str) -> list:
    return [tuple(r[f] for f in ("k", *fields)) for r in seen["rows"]]


def test_delta_rs_under_an_activated_sqlframe(tmp_path):
    """The duckdb engine's real set-up (`sqlframe.activate` before pyspark is imported), in its own
    process: create with Change Data Feed, then a MERGE (one update, one identical row, one insert)."""
    created = run_step("duckdb", "create", tmp_path)
    assert created["created"] is True
    assert created["version"] == 1
    assert {k: v for k, v in created["read"]["types"].items() if k != "arr"} == ARROW_TYPES
    assert keyed(created["read"], "n", "v", "ts") == [
        (1, 10, "one", "2025-01-06T12:00:00+00:00"),
        (2, 21, "two", "2025-01-13T23:59:59.123456+00:00"),
        (3, 30, "three", "2025-01-20T00:00:00+00:00"),
        (4, 40, "four", "2025-01-27T06:30:00+00:00"),
    ]
    assert delta_types(tmp_path / "rs") == TYPES


def java_available() -> bool:
    home = os.environ.get("JAVA_HOME")
    return bool(shutil.which("java") or (home and Path(home, "bin", "java").exists()))


@pytest.mark.spark
@pytest.mark.skipif(not java_available(), reason="the spark engine needs Java 17")
def test_delta_spark_and_delta_rs_read_append_and_merge_each_others_tables(tmp_path):
    """delta-rs creates and merges `rs`; Spark reads it (rows, types, history, change feed),
    appends a new column and merges; Spark creates `spark`, which delta-rs reads, appends a new
    column to and merges; Spark reads the result. One Spark JVM at a time."""
    run_step("duckdb", "create", tmp_path)

    spark = run_step("spark", "extend", tmp_path)
    assert spark["rs_schema"] == (
        "struct<k:bigint,d:date,ts:timestamp,n:bigint,x:double,b:boolean,arr:array<string>,"
        "st:struct<i:int,s:string>,v:string,nul:string>"
    )
    assert arrow_types(spark["rs_read"]) == ARROW_TYPES
    assert keyed(spark["rs_read"], "n", "v", "ts", "d", "arr") == [
        (1, 10, "one", "2025-01-06T12:00:00+00:00", "2025-01-06", ["a", "b"]),
        (2, 21, "two", "2025-01-13T23:59:59.123456+00:00", "2025-01-13", ["c"]),
        (3, 30, "three", "2025-01-20T00:00:00+00:00", "2025-01-20", ["z"]),
        (4, 40, "four", "2025-01-27T06:30:00+00:00", "2025-01-27", ["d", "e"]),
    ]
    assert spark["rs_history"] == [
        [0, "WRITE", json.dumps({"engine": "duckdb", "step": "rs-create"})],
        [1, "MERGE", json.dumps({"step": "rs-merge"})],
    ]
    assert keyed(spark["rs_changes"], "_change_type", "n", "v", "_commit_version") == [
        (2, "update_postimage", 21, "two", 1),
        (2, "update_preimage", 20, None, 1),
        (4, "insert", 40, "four", 1),
    ]  # k=3 was identical: no change
    detail = spark["spark_detail"]
    assert "deletionVectors" not in detail["tableFeatures"]
    assert "timestampNtz" not in detail["tableFeatures"]

    rs = run_step("duckdb", "extend", tmp_path)
    assert delta_types(tmp_path / "rs") == {**TYPES, "extra_spark": "string"}
    assert keyed(rs["rs_read"], "v", "extra_spark") == [
        (1, "one", None),
        (2, "two", None),
        (3, "three", None),
        (4, "FOUR", None),
        (5, "five", "new"),
    ]
    assert rs["rs_last_commit"] == {"version": 3, "metadata": {"step": "spark-merge"}, "head": 3}
    assert keyed(rs["rs_changes_spark_merge"], "_change_type", "v") == [
        (4, "update_postimage", "FOUR"),
        (4, "update_preimage", "four"),
    ]
    assert arrow_types(rs["spark_read"]) == ARROW_TYPES
    assert keyed(rs["spark_read"], "n", "v", "ts") == [
        (1, 10, "one", "2025-01-06T12:00:00+00:00"),
        (2, 20, None, "2025-01-13T23:59:59.123456+00:00"),
        (3, 30, "three", "2025-01-20T00:00:00+00:00"),
    ]
    assert (rs["appended"], rs["append_replayed"], rs["noop_merge_commits"]) == (True, False, 0)
    assert (rs["spark_version_before"], rs["spark_version_after"]) == (0, 2)

    verified = run_step("spark", "verify", tmp_path)
    assert verified["schema"] == (
        "struct<k:bigint,d:date,ts:timestamp,n:bigint,x:double,b:boolean,arr:array<string>,"
        "st:struct<i:int,s:string>,v:string,nul:string,extra_rs:double>"
    )
    assert delta_types(tmp_path / "spark") == {**TYPES, "extra_rs": "double"}
    assert keyed(verified["read"], "n", "v", "extra_rs", "ts") == [
        (1, 11, "uno", None, "2025-01-06T12:00:00+00:00"),
        (2, 20, None, None, "2025-01-13T23:59:59.123456+00:00"),
        (3, 30, "three", None, "2025-01-20T00:00:00+00:00"),
        (5, 50, "five", 0.25, "2025-02-03T08:00:00+00:00"),
        (6, 60, None, None, "2025-02-10T10:10:10+00:00"),
    ]
    assert verified["history"] == [
        [0, "WRITE", json.dumps({"step": "spark-create"})],
        [1, "WRITE", json.dumps({"step": "rs-append"})],
        [2, "MERGE", json.dumps({"step": "rs-merge-spark-table"})],
        [3, "OPTIMIZE", json.dumps({"step": "rs-zorder"})],
    ]
    assert verified["count_after_append"] == 6
    assert keyed(verified["changes"], "_change_type", "n", "v", "_commit_version") == [
        (1, "update_postimage", 11, "uno", 2),
        (1, "update_preimage", 10, "one", 2),
        (6, "insert", 60, None, 2),
    ]
    for table in ("rs", "spark"):
        protocol = DeltaTable(str(tmp_path / table)).protocol()
        features = set(protocol.writer_features or []) | set(protocol.reader_features or [])
        assert not features & {"deletionVectors", "timestampNtz"}, (table, features)


# --- timings on the real export -------------------------------------------------------------------


def export_table() -> pa.Table:
    """The real 2025 export (~12k rows) as all strings, plus 10 typed columns: about 40 columns."""
    if not REAL_2025.is_file():
        pytest.skip(f"real export not available: {REAL_2025}")
    with REAL_2025.open(newline="", encoding="utf-8") as fh:
        header = next(csv.reader(fh))
    raw = pcsv.read_csv(
        REAL_2025, convert_options=pcsv.ConvertOptions(column_types=dict.fromkeys(header, pa.string()))
    )
    data = raw.rename_columns([f"c{i:02d}" for i in range(raw.num_columns)])  # Delta refuses spaces in names
    n = data.num_rows
    start = dt.datetime(2026, 1, 1, tzinfo=UTC)
    typed = {
        "k": pa.array(range(n), pa.int64()),
        "line": pa.array(range(2, n + 2), pa.int64()),
        "week": pa.array([dt.date(2025, 1, 6) + dt.timedelta(days=7 * (i % 52)) for i in range(n)]),
        "ingested_at": pa.array(
            [start + dt.timedelta(seconds=i) for i in range(n)], pa.timestamp("us", tz="UTC")
        ),
        "ratio": pa.array([i / 7 for i in range(n)]),
        "flag": pa.array([i % 3 == 0 for i in range(n)]),
        "tags": pa.array([["a", str(i % 5)] for i in range(n)], pa.list_(pa.string())),
        "batch": pa.array(["b1"] * n),
        "source": pa.array(["export.csv"] * n),
        "corrupt": pa.nulls(n, pa.string()),
    }
    for column, values in typed.items():
        data = data.append_column(column, values)
    return data


def test_timings_on_the_real_export(tables, tmp_path):
    data = export_table()
    name = str(tmp_path / "export")
    source = frame(tables, data)
    times = {}

    def timed(label, action):
        started = time.perf_counter()
        result = action()
        times[label] = time.perf_counter() - started
        return result

    timed(
        "write (overwrite, new table)",
        lambda: tables.write(source, name, mode="overwrite", metadata={"r": 1}),
    )
    timed("read (lazy frame)", lambda: tables.read(name))
    arrow = timed("read + toArrow (all rows)", lambda: tables.read(name).toArrow())
    assert arrow.num_rows == data.num_rows
    assert arrow.num_columns == data.num_columns >= 40
    timed("read + count", lambda: tables.read(name).count())
    tenth = arrow.filter(pa.array([k % 10 == 0 for k in arrow.column("k").to_pylist()]))
    tenth = tenth.set_column(
        tenth.schema.get_field_index("c01"), "c01", pa.array(["CHANGED"] * tenth.num_rows)
    )
    changed = frame(tables, tenth)
    values = tuple(c for c in data.column_names if c != "k")
    timed(
        "merge (10% of rows updated)",
        lambda: tables.merge(name, changed, on=("k",), values=values, txn=("t", 1)),
    )
    assert tables.version(name) == 1
    assert tables.read(name).where("c01 = 'CHANGED'").count() == tenth.num_rows
    everything = tables.read(name)
    timed(
        "merge (all rows identical: no commit)",
        lambda: tables.merge(name, everything, on=("k",), values=values, txn=("t", 2)),
    )
    assert tables.version(name) == 1
    timed("append (10% of rows)", lambda: tables.write(changed, name, mode="append"))
    assert tables.read(name).count() == data.num_rows + tenth.num_rows
    print(f"{data.num_rows} rows x {data.num_columns} columns:")  # shown with -s
    for label, seconds in times.items():
        print(f"  {label}: {seconds:.3f} s")
