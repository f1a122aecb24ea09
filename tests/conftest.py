"""Shared fixtures: one Delta-enabled SparkSession for the whole run, params, fixture loading."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from nyc911lib import get_spark, land_source, load_params, run_layers
from nyc911lib.schema import BRONZE_SOURCE_NAMES
from nyc911lib.storage import table_version

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED_DATA = REPO.parent / "shared" / "data"
REAL_2025 = SHARED_DATA / "nyc911_e2e_through_2025-12-22.csv"
REAL_2023 = SHARED_DATA / "nyc911_e2e_through_2023-01-23.csv"


@pytest.fixture(scope="session")
def spark():
    """The one SparkSession of the test run (local[2], Delta, 4 shuffle partitions)."""
    session = get_spark("nyc911-tests")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def params():
    """The project's default params (its warehouse is replaced per test where tables are written)."""
    return load_params()


@pytest.fixture
def warehouse_params(params, tmp_path):
    """Default params writing to a fresh temporary warehouse."""
    return params.with_warehouse(tmp_path / "warehouse")


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
                    override.get("_ingested_at", dt.datetime(2026, 1, 1)),
                    override.get("_line_number", i),
                )
            )
        schema = ", ".join(f"`{c}` string" for c in columns) + ", _ingested_at timestamp, _line_number long"
        return spark.createDataFrame(rows, schema)

    return build


def run_once(spark, params, source=None, run_id="run-1", **options):
    """Land `source` (default: the built-in sample) and run bronze, silver and gold incrementally,
    as `nyc911 run --engine inline` does; returns the RunOutcome."""
    land_source(params, source)
    return run_layers(spark, params, run_id, **options)


def table_versions(spark, params) -> dict[str, int | None]:
    """The latest Delta version of every table of the params (None: not written yet)."""
    return {
        f"{layer}.{key}": table_version(spark, params, layer, key)
        for layer, tables in params.tables.items()
        for key in tables
    }
