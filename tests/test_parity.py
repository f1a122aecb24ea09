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

The warehouses are built once per test session by `parity_runs.built` (tests/parity_runs.py),
which tests/test_declarative_pipeline.py compares the declarative runner's with too.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pytest
from conftest import REAL_2023, REAL_2025
from deltalake import write_deltalake
from engine_runs import (
    SECOND_STAMP,
    change_feed,
    commits,
    diff_rows,
    diff_tables,
    diff_warehouses,
    report,
    table_paths,
    table_version,
)
from parity_runs import (
    ENGINES,
    KILL_AT,
    RESTATED_ROWS,
    SAMPLE_LINES,
    SECOND_LINES,
    THIRD_STAMP,
    Built,
)
from spark_cluster import ran_on

from nyc911lib.io.delta_rs import read_arrow

pytestmark = [pytest.mark.spark, pytest.mark.timeout(3600)]


def _needs_real(built: Built) -> None:
    if not built.real:
        pytest.skip(f"real exports not available: {REAL_2023}, {REAL_2025}")


def _rows(path: Path) -> list[dict]:
    return read_arrow(path).to_pylist()


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
    write_deltalake(str(fewer), read_arrow(base).slice(0, 2))
    assert "row count 3 vs 2" in "\n".join(diff_tables(base, fewer))


# --- The same source on both engines -----------------------------------------------------------


def test_the_sample_gives_equal_tables_in_every_layer_on_both_engines(built):
    differences = diff_warehouses(built.sample["duckdb"], built.sample["spark"])
    assert not differences, "duckdb vs spark, the sample:\n" + report(differences)
    raw = table_paths(built.sample["spark"])["bronze.e2e_raw"]
    assert read_arrow(raw).num_rows == SAMPLE_LINES


@dataclass(frozen=True)
class Continued:
    """A warehouse one engine continued (`second`) after the other (`first`) wrote it."""

    name: str  # the warehouse: Built.cross[name]
    before: str  # the warehouse it continued, as it was then: "duckdb-1" | "duckdb-spark"
    reference: str  # duckdb alone, same publications: "duckdb-2" | "duckdb"
    first: str
    second: str
    stamp: str  # the landing stamp of the publication `second` ran


CONTINUED = (
    Continued("duckdb-spark", "duckdb-1", "duckdb-2", "duckdb", "spark", SECOND_STAMP),
    Continued("duckdb-spark-duckdb", "duckdb-spark", "duckdb", "spark", "duckdb", THIRD_STAMP),
)


def _warehouse(built: Built, name: str) -> Path:
    snapshots = {f"duckdb-{n}": path for n, path in built.snapshots.items()}
    return {"duckdb": built.duckdb, **snapshots, **built.cross}[name]


def test_the_real_export_gives_equal_tables_in_every_layer_on_both_engines(built):
    """The 2025 export run by spark on the 2023 export's warehouse: every table of every layer (the
    MERGE of the 48 restated rows, every gold table) equals the duckdb engine's; none is empty."""
    _needs_real(built)
    differences = diff_warehouses(built.snapshots[2], built.cross["duckdb-spark"])
    assert not differences, "duckdb vs spark, the 2025 export:\n" + report(differences)
    paths = table_paths(built.cross["duckdb-spark"])
    empty = [n for n, p in paths.items() if read_arrow(p).num_rows == 0]
    assert empty == []
    assert built.third_rows == 18  # the third publication: the 2025 export's last week (2025-12-22)


def test_the_spark_engine_killed_in_its_merge_then_rerun_equals_duckdb_alone(built):
    """The 2025 export's spark run was killed in its silver MERGE, then run again (the equality of
    every table with `duckdb-2` is checked above and below): the kill happened there, the run
    after it replayed the batch, and nothing was appended or logged twice."""
    _needs_real(built)
    logs = built.root / "logs-spark"
    killed = (logs / "killed-duckdb-spark.log").read_text(encoding="utf-8")
    assert (logs / "killed-duckdb-spark.mark").read_text(encoding="utf-8") == KILL_AT.partition("+")[0]
    assert f"a run killed at {KILL_AT}" in (logs / "out.log").read_text(encoding="utf-8")
    assert "report:" not in killed  # it never finished
    paths = table_paths(built.cross["duckdb-spark"])
    assert [r["status"] for r in _rows(paths["bronze.ingest_log"])] == ["ingested", "ingested"]
    first_lines = len(REAL_2023.read_text(encoding="utf-8").splitlines()) - 1
    assert read_arrow(paths["bronze.e2e_raw"]).num_rows == first_lines + SECOND_LINES


@pytest.mark.parametrize("case", CONTINUED, ids=[f"{c.first}-then-{c.second}" for c in CONTINUED])
def test_an_engine_appends_to_and_merges_the_other_engines_warehouse(built, case):
    """A publication run by `second` into the warehouse `first` wrote: every table of every layer
    equals the warehouse that ran the same publications with duckdb alone; the publication
    replaced the rows it restates; each commit records the engine that made it."""
    _needs_real(built)
    warehouse = built.cross[case.name]
    differences = diff_warehouses(_warehouse(built, case.reference), warehouse)
    assert not differences, f"duckdb alone vs {case.first} then {case.second}:\n" + report(differences)

    restated, lines = (RESTATED_ROWS, SECOND_LINES) if case.stamp == SECOND_STAMP else (built.third_rows,) * 2
    paths = table_paths(warehouse)
    accounting = _rows(paths["silver.batch_accounting"])
    [batch] = [r for r in accounting if r["batch_id"].startswith(case.stamp)]
    assert (batch["rows_bronze"], batch["rows_replaced"]) == (lines, restated)
    assert batch["rows_bronze"] == sum(
        batch[c] for c in ("rows_silver", "rows_unchanged", "rows_superseded", "rows_quarantined")
    )
    superseded = RESTATED_ROWS + (built.third_rows if case.stamp == THIRD_STAMP else 0)
    assert len(_rows(paths["silver.e2e_superseded"])) == superseded
    assert len(_rows(paths["gold.restatements"])) == superseded

    before = table_paths(_warehouse(built, case.before))
    # Every table gets a commit of `second`, but the quarantine when the publication has no row
    # to quarantine (an append of nothing commits nothing).
    unwritten = set() if batch["rows_quarantined"] else {"silver.e2e_quarantine"}
    for name, path in paths.items():
        earlier = _engines_of(before[name])
        seen = _engines_of(path)
        assert seen[: len(earlier)] == earlier, f"{name}: history rewritten {seen}"
        written = {e[1:] for e in seen[len(earlier) :]}
        assert written == (set() if name in unwritten else {(case.second, "inline")}), f"{name}: {seen}"
    last_before = table_version(before["silver.e2e_weekly"])
    assert [op for v, op, _ in commits(paths["silver.e2e_weekly"]) if v > last_before] == ["MERGE"]
    # gold recomputed only the weeks the publication reached, on the other engine's gold
    assert commits(paths["gold.kpi_summary"])[-1][2]["build"] == "weeks"


def test_the_change_feed_of_silver_is_the_same_whoever_wrote_it(built):
    """silver.e2e_weekly's Change Data Feed (on for that table): each publication's inserts, and
    one update pre/post image per restated row, equal whichever engine wrote each commit."""
    _needs_real(built)
    for case in CONTINUED:
        columns, feed = change_feed(table_paths(_warehouse(built, case.reference))["silver.e2e_weekly"])
        kinds = [row[columns.index("_change_type")] for row in feed]
        restated = RESTATED_ROWS + (built.third_rows if case.stamp == THIRD_STAMP else 0)
        assert kinds.count("update_preimage") == kinds.count("update_postimage") == restated
        other_columns, other = change_feed(table_paths(built.cross[case.name])["silver.e2e_weekly"])
        assert other_columns == columns
        problems = diff_rows(columns, feed, other)
        assert not problems, f"change feed, duckdb alone vs {case.name}:\n" + "\n".join(problems)


def test_every_commit_records_its_engine_and_runner(built):
    """Each commit's userMetadata names the engine and the runner that made it."""
    warehouses = {built.sample[e]: e for e in ENGINES}
    if built.real:
        warehouses[built.duckdb] = "duckdb"
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
