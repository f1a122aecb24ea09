"""Shared fixtures: one Delta-enabled SparkSession for the whole run, params, fixture loading."""

from __future__ import annotations

from pathlib import Path

import pytest

from nyc911lib import get_spark, load_params

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
