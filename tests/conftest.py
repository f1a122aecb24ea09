"""Shared fixtures: the engine of this test process and its session, params, fixture loading, and
an engine-neutral comparison of frames.

The engine is fixed per process before any test module imports pyspark: `$NYC911_ENGINE`, else
duckdb. `make test` runs the suite on the default engine, then the tests marked `spark` (the
parity suite and what only Spark does) in a second process with NYC911_ENGINE=spark.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from nyc911lib import engine

ENGINE = engine.select()  # before any test module imports pyspark (SQLFrame's on duckdb)


from nyc911lib import land_source, load_params, run_layers  # noqa: E402
from nyc911lib.io.storage import table_name, table_version  # noqa: E402
from nyc911lib.schema import BRONZE_SOURCE_NAMES  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED_DATA = REPO.parent / "shared" / "data"
REAL_2025 = SHARED_DATA / "nyc911_e2e_through_2025-12-22.csv"
REAL_2023 = SHARED_DATA / "nyc911_e2e_through_2023-01-23.csv"


# Modules that import the spark engine's own code (delta-spark, Spark's readers, Spark Declarative
# Pipelines) when they are imported: the duckdb process does not even collect them.
SPARK_MODULES = (
    "test_bronze.py",
    "test_declarative_pipeline.py",
    "test_delta_spark.py",
    "test_spark.py",
)
collect_ignore = [] if ENGINE == "spark" else list(SPARK_MODULES)


# The default process's longest modules, longest first (seconds alone, 2026-12-01: 200 .. 30).
LONGEST_FIRST = (
    "test_readme.py",
    "test_faults.py",
    "test_pipeline.py",
    "test_report_e2e.py",
    "test_notebook.py",
    "test_real_export.py",
    "test_cli.py",
    "test_notebook_html.py",
    "test_lab.py",
    "test_browser.py",
)


def pytest_collection_modifyitems(config, items):
    """On the default engine, the `spark` tests are deselected: they run in the Spark process
    (`NYC911_ENGINE=spark pytest -m spark`, which `make test` runs too), and the longest modules
    run first. On the Spark engine, the parity and declarative modules run last."""
    if ENGINE == "spark":
        # The modules that wait for the warehouses built in the background run last.
        items.sort(key=lambda item: item.path.name in USERS)
        return
    keep = [item for item in items if "spark" not in item.keywords]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if "spark" in item.keywords])
    # The longest modules first: pytest-xdist hands whole modules (--dist loadfile) to the workers
    # in this order, so none of them starts near the end while the other worker has nothing left.
    keep.sort(
        key=lambda item: (
            LONGEST_FIRST.index(item.path.name) if item.path.name in LONGEST_FIRST else len(LONGEST_FIRST)
        )
    )
    items[:] = keep


@pytest.fixture(scope="session")
def spark():
    """The session of this process's engine (SQLFrame on DuckDB, or local[2] Spark with Delta).

    The tests' data is small: the Spark driver starts as for a small input (C1 compiler only,
    measured on the quality, reader, bronze and pipeline tests: 206 -> 137 CPU-s, same wall time)."""
    if ENGINE == "spark":
        from nyc911lib.spark import get_spark  # noqa: PLC0415 - imports pyspark

        get_spark(quick_start=True)  # engine.session() below then returns it
    session = engine.session()
    yield session
    if ENGINE == "spark":
        session.stop()


@pytest.fixture(scope="session")
def params():
    """The project's default params (its warehouse is replaced per test where tables are written)."""
    return load_params()


@pytest.fixture
def warehouse_params(params, tmp_path):
    """Default params writing to a fresh temporary warehouse."""
    return params.with_warehouse(tmp_path / "warehouse")


def by_weeks(params):
    """`params` whose gold recomputes by weeks however small silver is (the default rebuilds a
    1x silver whole: `performance.weeks_gold_min_mb`), for the tests of that path."""
    return replace(params, performance=replace(params.performance, weeks_gold_min_mb=0))


def fixture_path(name: str) -> Path:
    """A small CSV fixture under tests/fixtures/."""
    return FIXTURES / name


def real_export(path: Path) -> Path:
    """A real export from ../shared/data, or skip the test when the folder is absent."""
    if not path.is_file():
        pytest.skip(f"real export not available: {path}")
    return path


BASE_ROW = {
    "week_start_date": "11/18/2013",
    "agency": "EMS",
    "final_incident_type": "1. Life Threating Med Emergencies",
    "of_incidents_calculated": "100",
    "call_to_first_pickup": "3.18",
    "call_to_agency_dispatch": "193.89",
    "call_to_agency_arrival": "556.80",
    "call_to_first_arrival_multi_agency_incidents": "494.71",
    "median_dispatch": "106",
    "median_travel": "332",
    "average_travel": "6.05",
    "average_dispatch": "1.55",
}


@pytest.fixture
def make_bronze(spark):
    """Build a bronze-shaped frame (every source column as text, plus lineage) from overrides of
    BASE_ROW; `_line_number`, `_batch_id` and `_ingested_at` may be given per row."""

    def build(*overrides: dict):
        columns = [*BRONZE_SOURCE_NAMES, "_corrupt_record", "_source_file", "_source_kind", "_batch_id"]
        rows = []
        for i, override in enumerate(overrides, start=2):
            row = {**dict.fromkeys(BRONZE_SOURCE_NAMES), **BASE_ROW, "_corrupt_record": None}
            row.update(_source_file="t.csv", _source_kind="file", _batch_id="b1")
            row.update({k: v for k, v in override.items() if k not in ("_line_number", "_ingested_at")})
            rows.append(
                (
                    *[row[c] for c in columns],
                    override.get("_ingested_at", dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)),
                    override.get("_line_number", i),
                )
            )
        schema = ", ".join(f"{c} string" for c in columns) + ", _ingested_at timestamp, _line_number long"
        return spark.createDataFrame(rows, schema)

    return build


def run_once(spark, params, source=None, run_id="run-1", **options):
    """Land `source` (default: the built-in sample in a new warehouse, nothing in one that holds
    publications) and run bronze, silver and gold incrementally, as `nyc911 run --runner inline`
    does; returns the RunOutcome."""
    land_source(params, source)
    return run_layers(spark, params, run_id, **options)


def table_versions(spark, params) -> dict[str, int | None]:
    """The latest Delta version of every table of the params (None: not written yet)."""
    return {
        f"{layer}.{key}": table_version(spark, params, layer, key)
        for layer, tables in params.tables.items()
        for key in tables
    }


# Columns that name a run, a landing time or a file: two warehouses differ in them by design.
RUN_SPECIFIC = (
    "_batch_id",
    "_ingested_at",
    "_source_file",
    "superseded_by_batch_id",
    "old_batch_id",
    "new_batch_id",
    "old_source_file",
    "new_source_file",
    "batch_id",
    "source_file",
    "ingested_at",
    "duplicate_of",
    "run_id",
    "evaluated_at",
)


def delta_frame(params, layer: str, key: str, drop: tuple[str, ...] = ()) -> pd.DataFrame:
    """A local table read straight from its Delta files by delta-rs, as pandas (fast, and the same
    whichever engine wrote it); `drop` names columns to leave out where the table has them."""
    from nyc911lib.io.delta_rs import read_arrow  # noqa: PLC0415

    frame = read_arrow(table_name(params, layer, key)).to_pandas(date_as_object=True)
    return frame.drop(columns=[c for c in drop if c in frame.columns])


def dtypes_of(frame) -> dict[str, str]:
    """Column name -> Spark SQL type name (`bigint`, `date`, `array<string>`), on both engines
    (SQLFrame has no `DataFrame.dtypes`)."""
    return {f.name: f.dataType.simpleString() for f in frame.schema.fields}


def rows_of(frame) -> list[tuple]:
    """A DataFrame (or a pandas frame) as a sorted list of row tuples of plain Python values."""
    pdf = frame if isinstance(frame, pd.DataFrame) else engine.to_pandas(frame)
    rows = [tuple(_plain(v) for v in row) for row in pdf.itertuples(index=False, name=None)]
    return sorted(rows, key=lambda row: [(v is None, repr(v)) for v in row])


def _plain(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return tuple(_plain(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _plain(v)) for k, v in value.items()))
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value


def assert_same_rows(actual, expected, rtol: float = 1e-9, label: str = "") -> None:
    """Two frames hold the same rows in any order: the same columns, exact values, floats equal
    to `rtol` (relative). Either side may be a DataFrame of the engine or a pandas frame."""
    columns, other = list(actual.columns), list(expected.columns)
    assert columns == other, f"{label}: columns differ: {columns} != {other}"
    got, want = rows_of(actual), rows_of(expected)
    assert len(got) == len(want), f"{label}: {len(got)} rows, expected {len(want)}"
    for a, b in zip(got, want, strict=True):
        assert _close(a, b, rtol), f"{label}: row differs:\n  {dict(zip(columns, a, strict=True))}\n  != {b}"


def assert_same_summary(actual: dict, expected: dict, rtol: float = 1e-9) -> None:
    """Two gold summaries agree: the same keys, exact values, floats equal to `rtol` (relative).
    A float sum's last bits depend on the order Spark adds partitions in, so they are not compared."""
    assert sorted(actual) == sorted(expected)
    differing = {k: (actual[k], expected[k]) for k in expected if not _close(actual[k], expected[k], rtol)}
    assert not differing, f"summaries differ (actual, expected): {differing}"


def _close(a, b, rtol: float) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=rtol, abs_tol=1e-12)
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_close(x, y, rtol) for x, y in zip(a, b, strict=True))
    return a == b


def agency_summary(rows: list[tuple]) -> pd.DataFrame:
    """Rows of gold's `kpi_summary` per agency, as a report receives them: (agency,
    total_incidents, sla_breach_incidents_pct, avg_call_to_first_pickup_s) each."""
    columns = ["agency", "total_incidents", "sla_breach_incidents_pct", "avg_call_to_first_pickup_s"]
    return pd.DataFrame(rows, columns=columns)


# The parity and declarative warehouses (session fixtures: tests/test_parity.py and
# tests/test_declarative_pipeline.py compare them). Imported last: parity_runs imports this
# module's paths.
from parity_runs import USERS, built, engine_warehouses, warehouses  # noqa: E402, F401


@pytest.fixture(scope="session", autouse=True)
def _engine_warehouses_from_the_start(request):
    """In the Spark process, the parity and declarative warehouses are built in the background from
    the first test on (all subprocesses: a standalone cluster, engine runs, SDP runs), while this
    process runs its other tests; their modules run last (`pytest_collection_modifyitems`)."""
    if ENGINE == "spark" and any(item.path.name in USERS for item in request.session.items):
        request.getfixturevalue("engine_warehouses")
