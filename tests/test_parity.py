"""Engine parity: the duckdb and spark engines build equal warehouses, and each one reads, appends
to and merges a warehouse the other wrote; the spark engine's runs use a standalone cluster.

Every run is `nyc911 run --runner inline` in a process of its own engine (`engine_runs`: one
process per engine runs its steps in order, so the spark engine starts one driver for the module).
The spark engine's process is the driver of an application on a standalone Spark cluster (a master
and one worker on 127.0.0.1, `spark_cluster`, NYC911_MASTER): its tables are built by the worker's
executor, and the cluster's logs prove it (`test_the_spark_engine_ran_on_a_standalone_cluster`);
the tables are read here with delta-rs, which neither engine uses to compute: the process running
these tests never starts an engine. Every warehouse lands the same files under the same names, so
batch ids are equal by construction and compared; paths, wall-clock times and run ids are not
(`engine_runs.VOLATILE`).

Warehouses (module fixture `built`; the real exports only when ../shared/data has them):

- `sample-<engine>`: the built-in sample, per engine.
- `first-<engine>`: the 2023 export, per engine (a snapshot: nothing runs on it afterwards).
- `duckdb-duckdb`: the 2023 export, then the 2025 export (which revises 48 of its rows), duckdb.
- `duckdb-spark` / `spark-duckdb`: the 2023 export by one engine, the 2025 export by the other.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pytest
from conftest import REAL_2023, REAL_2025
from deltalake import DeltaTable, write_deltalake
from engine_runs import (
    change_feed,
    commits,
    diff_rows,
    diff_tables,
    diff_warehouses,
    report,
    start_runs,
    step_seconds,
    table_paths,
    table_version,
    wait_runs,
)
from spark_cluster import Cluster, ran_on, standalone_cluster

from nyc911lib.sample import write_sample

pytestmark = [pytest.mark.spark, pytest.mark.timeout(3600)]

ENGINES = ("duckdb", "spark")
CROSS = (("duckdb", "spark"), ("spark", "duckdb"))
# Landed names (UTC stamp, kind, file): the same in every warehouse, the 2025 export landed later.
SAMPLE_NAME = "20260105T000000000000Z__sample__nyc911_sample.csv"
FIRST_NAME = "20260105T000000000000Z__file__nyc911_e2e_through_2023-01-23.csv"
SECOND_STAMP = "20260112T000000000000Z"
SECOND_NAME = f"{SECOND_STAMP}__file__nyc911_e2e_through_2025-12-22.csv"
SAMPLE_LINES = 1880
SECOND_LINES = 11606
RESTATED_ROWS = 48  # rows of the 2023 export that the 2025 export revises


@dataclass
class Built:
    root: Path
    real: bool
    sample: dict[str, Path]
    first: dict[str, Path]
    both: Path
    cross: dict[tuple[str, str], Path]
    cluster: Cluster | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    steps: dict[str, list[float]] = field(default_factory=dict)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Built:
    """Every warehouse of the module, built by one duckdb and one spark process running side by
    side (the spark one on a standalone cluster); a run that continues the other engine's
    warehouse waits for its mark."""
    root = tmp_path_factory.mktemp("parity")
    sample = write_sample(root / "nyc911_sample.csv")
    out = Built(
        root=root,
        real=REAL_2023.is_file() and REAL_2025.is_file(),
        sample={e: root / f"sample-{e}" for e in ENGINES},
        first={e: root / f"first-{e}" for e in ENGINES},
        both=root / "duckdb-duckdb",
        cross={pair: root / "-".join(pair) for pair in CROSS},
    )
    mark = {e: root / f"{e}-first.done" for e in ENGINES}
    steps: dict[str, list[dict]] = {e: [] for e in ENGINES}
    if out.real:
        # The 2023 export first: the other engine's second run waits for it.
        steps["duckdb"].append(
            {
                "warehouse": out.both,
                "land": [[REAL_2023, FIRST_NAME]],
                "copy": [[out.both, out.first["duckdb"]], [out.both, out.cross["duckdb", "spark"]]],
                "mark": mark["duckdb"],
            }
        )
        steps["spark"].append(
            {
                "warehouse": out.first["spark"],
                "land": [[REAL_2023, FIRST_NAME]],
                "copy": [[out.first["spark"], out.cross["spark", "duckdb"]]],
                "mark": mark["spark"],
            }
        )
    for e in ENGINES:
        steps[e].append({"warehouse": out.sample[e], "land": [[sample, SAMPLE_NAME]]})
    if out.real:
        steps["duckdb"].append({"warehouse": out.both, "land": [[REAL_2025, SECOND_NAME]]})
        for first, second in CROSS:
            steps[second].append(
                {
                    "warehouse": out.cross[first, second],
                    "land": [[REAL_2025, SECOND_NAME]],
                    "wait": [mark[first]],
                }
            )
    with standalone_cluster(root / "cluster") as cluster:
        runs = [
            start_runs("duckdb", _jsonable(steps["duckdb"]), root / "logs-duckdb"),
            start_runs("spark", _jsonable(steps["spark"]), root / "logs-spark", NYC911_MASTER=cluster.url),
        ]
        out.seconds = wait_runs(*runs)
    out.cluster = cluster
    out.steps = {run.engine: step_seconds(run) for run in runs}
    print(f"\nparity runs: seconds per process {out.seconds}, per step {out.steps}")
    return out


def _jsonable(value):
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def _needs_real(built: Built) -> None:
    if not built.real:
        pytest.skip(f"real exports not available: {REAL_2023}, {REAL_2025}")


def _rows(path: Path) -> list[dict]:
    return DeltaTable(str(path)).to_pyarrow_table().to_pylist()


def _engines_of(path: Path) -> list[tuple[int, str | None, str | None]]:
    return [(v, (m or {}).get("engine"), (m or {}).get("runner")) for v, _, m in commits(path)]


# --- The comparison itself ---------------------------------------------------------------------


def test_the_comparison_finds_every_kind_of_difference(tmp_path):
    """`diff_tables` (used by every test here) passes equal tables whose floats differ in the last
    bits and whose volatile columns differ, and names each kind of real difference."""
    when = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)

    def table(name: str, **changes) -> Path:
        columns = {
            "k": pa.array([1, 2, 3], pa.int64()),
            "d": pa.array([dt.date(2024, 1, 1), dt.date(2024, 1, 8), None], pa.date32()),
            "x": pa.array([1.0, 2.5, None], pa.float64()),
            "s": pa.array(["a", "b", None], pa.string()),
            "arr": pa.array([["p"], [], None], pa.list_(pa.string())),
            "_ingested_at": pa.array([when] * 3, pa.timestamp("us", tz="UTC")),
        }
        columns.update(changes)
        path = tmp_path / name
        write_deltalake(str(path), pa.table(columns))
        return path

    base = table("base")
    assert diff_tables(base, table("base2")) == []
    close = table("close", x=pa.array([1.0 * (1 + 1e-12), 2.5, None]))
    later_stamps = pa.array([when + dt.timedelta(days=1)] * 3, pa.timestamp("us", tz="UTC"))
    later = table("later", _ingested_at=later_stamps)
    assert diff_tables(base, close) == []
    assert diff_tables(base, later) == []

    names = itertools.count()

    def problems(**changes) -> str:
        return "\n".join(diff_tables(base, table(f"changed-{next(names)}", **changes)))

    assert "column x: 1 of 3" in problems(x=pa.array([1.0 + 1e-6, 2.5, None]))
    assert "column x: 1 of 3" in problems(x=pa.array([1.0, 2.5, 0.0]))  # NULL vs a value
    assert "column s" in problems(s=pa.array(["a", "B", None]))
    assert "column d" in problems(d=pa.array([dt.date(2024, 1, 1), dt.date(2024, 1, 9), None]))
    assert "column arr" in problems(arr=pa.array([["p"], ["q"], None], pa.list_(pa.string())))
    assert "types ['k: long vs integer']" in problems(k=pa.array([1, 2, 3], pa.int32()))
    assert "types ['d: date vs timestamp_ntz']" in problems(
        d=pa.array([dt.datetime(2024, 1, 1)] * 3, pa.timestamp("us"))
    )
    fewer = tmp_path / "fewer"
    write_deltalake(str(fewer), DeltaTable(str(base)).to_pyarrow_table().slice(0, 2))
    assert "row count 3 vs 2" in "\n".join(diff_tables(base, fewer))


# --- The same source on both engines -----------------------------------------------------------


def test_the_sample_gives_equal_tables_in_every_layer_on_both_engines(built):
    differences = diff_warehouses(built.sample["duckdb"], built.sample["spark"])
    assert not differences, "duckdb vs spark, the sample:\n" + report(differences)
    raw = table_paths(built.sample["spark"])["bronze.e2e_raw"]
    assert DeltaTable(str(raw)).to_pyarrow_table().num_rows == SAMPLE_LINES


def test_the_real_export_gives_equal_tables_in_every_layer_on_both_engines(built):
    _needs_real(built)
    differences = diff_warehouses(built.first["duckdb"], built.first["spark"])
    assert not differences, "duckdb vs spark, the 2023 export:\n" + report(differences)
    paths = table_paths(built.first["spark"])
    empty = [n for n, p in paths.items() if DeltaTable(str(p)).to_pyarrow_table().num_rows == 0]
    # A first publication restates nothing; every other table has rows to compare.
    assert sorted(empty) == ["gold.restatements", "silver.e2e_superseded"]


# --- One engine continues the other's warehouse -------------------------------------------------


@pytest.mark.parametrize("first, second", CROSS, ids=[f"{a}-then-{b}" for a, b in CROSS])
def test_an_engine_appends_to_and_merges_the_other_engines_warehouse(built, first, second):
    """The 2023 export by `first`, the 2025 export by `second` into the same warehouse: every
    table of every layer equals the warehouse that ran both with duckdb; the 2025 publication
    replaced the 48 restated rows; each commit records the engine that made it."""
    _needs_real(built)
    warehouse = built.cross[first, second]
    differences = diff_warehouses(built.both, warehouse)
    assert not differences, f"duckdb for both vs {first} then {second}:\n" + report(differences)

    paths = table_paths(warehouse)
    accounting = _rows(paths["silver.batch_accounting"])
    [second_batch] = [r for r in accounting if r["batch_id"].startswith(SECOND_STAMP)]
    assert second_batch["rows_replaced"] == RESTATED_ROWS
    assert second_batch["rows_bronze"] == SECOND_LINES
    assert second_batch["rows_bronze"] == sum(
        second_batch[c] for c in ("rows_silver", "rows_unchanged", "rows_superseded", "rows_quarantined")
    )
    assert len(_rows(paths["silver.e2e_superseded"])) == RESTATED_ROWS
    assert len(_rows(paths["gold.restatements"])) == RESTATED_ROWS

    before = table_paths(built.first[first])
    for name, path in paths.items():
        last_first = table_version(before[name])
        seen = _engines_of(path)
        expected = [(v, first if v <= last_first else second, "inline") for v, _, _ in seen]
        assert seen == expected, f"{name}: commits (version, engine, runner) {seen}"
        assert seen[-1][0] > last_first, f"{name}: {second} did not write it ({seen})"
    last_first = table_version(before["silver.e2e_weekly"])
    assert [op for v, op, _ in commits(paths["silver.e2e_weekly"]) if v > last_first] == ["MERGE"]


def test_the_change_feed_of_silver_is_the_same_whoever_wrote_it(built):
    """silver.e2e_weekly's Change Data Feed (on for that table): the first publication's inserts,
    then the second's inserts and one update pre/post image per restated row, equal whichever
    engine wrote each commit."""
    _needs_real(built)
    columns, feed = change_feed(table_paths(built.both)["silver.e2e_weekly"])
    kinds = [row[columns.index("_change_type")] for row in feed]
    assert kinds.count("update_preimage") == kinds.count("update_postimage") == RESTATED_ROWS
    for pair, warehouse in built.cross.items():
        other_columns, other = change_feed(table_paths(warehouse)["silver.e2e_weekly"])
        assert other_columns == columns
        problems = diff_rows(columns, feed, other)
        assert not problems, f"change feed, duckdb vs {pair}:\n" + "\n".join(problems)


def test_every_commit_records_its_engine_and_runner(built):
    """Each commit's userMetadata names the engine and the runner that made it."""
    warehouses = {built.sample[e]: e for e in ENGINES}
    if built.real:
        warehouses.update({built.first[e]: e for e in ENGINES})
        warehouses[built.both] = "duckdb"
    for warehouse, engine in warehouses.items():
        for name, path in table_paths(warehouse).items():
            seen = _engines_of(path)
            assert seen, f"{warehouse.name} {name}: no commit"
            assert all(e == engine and r == "inline" for _, e, r in seen), f"{warehouse.name} {name}: {seen}"


def test_the_spark_engine_ran_on_a_standalone_cluster(built):
    """The spark engine's process was one application of the standalone cluster: the worker's
    executor ran its tasks and received the Delta jars from the driver (the tables it wrote are
    the ones the tests above compare)."""
    print(ran_on(built.cluster))
