"""Storage edges: source checks with exact messages, table naming per environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from nyc911lib import SourceError, load_params, table_name
from nyc911lib.io.storage import has_commit, read_source_header
from nyc911lib.run.landing import land_file


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "source file {path} is empty"),
        (b"  \n\n", "source file {path} is empty"),
        (b"Week Start Date,Agency\n", "source file {path} has a header but no data rows"),
        (
            b"<!DOCTYPE html><html><body>503 Service Unavailable</body></html>\n",
            "source file {path} is an HTML/XML page, not a CSV export",
        ),
    ],
)
def test_unusable_source_files_are_refused_with_the_problem_named(tmp_path, content, message):
    path = tmp_path / "export.csv"
    path.write_bytes(content)
    with pytest.raises(SourceError) as err:
        read_source_header(path)
    assert str(err.value) == message.format(path=path)


def test_missing_source_and_folder_source(tmp_path):
    with pytest.raises(SourceError) as err:
        read_source_header(tmp_path / "missing.csv")
    assert str(err.value) == f"source file not found: {tmp_path / 'missing.csv'}"
    with pytest.raises(SourceError) as err:
        read_source_header(tmp_path)
    assert str(err.value) == f"source is not a file: {tmp_path}"


def test_header_is_read_with_bom_and_quotes(tmp_path):
    path = tmp_path / "export.csv"
    path.write_bytes('\ufeffWeek Start Date,"Agency",# of Incidents Calculated\r\n1,2,3\r\n'.encode())
    assert read_source_header(path) == ["Week Start Date", "Agency", "# of Incidents Calculated"]


def test_table_names_local_and_unity_catalog(params, monkeypatch):
    local = params.with_warehouse("/lake")
    assert table_name(local, "gold", "kpi_weekly") == str(Path("/lake/gold/kpi_weekly"))
    assert table_name(local, "silver", "quarantine") == str(Path("/lake/silver/e2e_quarantine"))
    monkeypatch.setenv("NYC911_ENVIRONMENT", "databricks")
    uc = load_params()
    assert table_name(uc, "gold", "kpi_weekly") == "nyc911.gold.kpi_weekly"
    assert table_name(uc, "bronze", "e2e_raw") == "nyc911.bronze.e2e_raw"


def test_land_file_copies_once_per_content(tmp_path):
    source = tmp_path / "export.csv"
    source.write_text("Week Start Date\n01/02/2023\n", encoding="utf-8")
    landing = tmp_path / "landing"
    first, new = land_file(source, landing, "file")
    assert new
    assert first.name.endswith("__file__export.csv")
    assert first.read_bytes() == source.read_bytes()
    assert land_file(source, landing, "file") == (first, False)
    assert sorted(p.name for p in landing.iterdir()) == [first.name]  # no .part file left behind


@pytest.mark.parametrize(
    ("files", "committed"),
    [
        ((), False),  # a write killed before anything: the folder only
        (("_staged_commits/",), False),
        (("part-0000.parquet",), False),  # data written, no commit: not a table
        (("00000000000000000000.json",), True),
        (("00000000000000000010.checkpoint.parquet", "_last_checkpoint"), True),
    ],
)
def test_a_delta_folder_is_a_table_only_once_committed(tmp_path, files, committed):
    log = tmp_path / "table" / "_delta_log"
    log.mkdir(parents=True)
    for name in files:
        (log / name).mkdir() if name.endswith("/") else (log / name).write_text("{}")
    assert has_commit(tmp_path / "table") is committed
    assert has_commit(tmp_path / "no_table") is False
