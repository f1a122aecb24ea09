"""Retention maintenance: when it is due, what it does to a table, and that a maintained table
keeps its data version (nyc911lib.run.retention, nyc911lib.io.delta_rs.maintain)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace

import pyarrow as pa
import pytest
from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake.exceptions import TableNotFoundError

from nyc911lib.config import RetentionSettings
from nyc911lib.io.delta_rs import DeltaRsTables, Maintained, commit_times, maintain, read_arrow
from nyc911lib.io.tables import Commit, latest_data_commit
from nyc911lib.run.retention import (
    STATE_FILE,
    is_due,
    last_maintained,
    maintain_warehouse,
    retention_properties,
)

T0 = dt.datetime(2026, 1, 5, 12, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize(
    ("since", "every_days", "now", "due"),
    [
        (T0, 7, T0 + dt.timedelta(days=7), True),
        (T0, 7, T0 + dt.timedelta(days=6, hours=23), False),
        (T0, 0, T0, True),  # 0: at every run
        (T0, None, T0 + dt.timedelta(days=999), False),  # null: never
        (None, 0, T0, False),  # no warehouse yet
    ],
)
def test_maintenance_is_due_every_so_many_days(since, every_days, now, due):
    assert is_due(since, every_days, now) is due


def test_retention_properties_keep_the_log_and_the_files_as_long():
    assert retention_properties(30) == {
        "delta.logRetentionDuration": "interval 30 days",
        "delta.deletedFileRetentionDuration": "interval 30 days",
    }


@pytest.mark.parametrize(
    ("history", "expected"),
    [
        ([{"version": 4, "operation": "MERGE", "userMetadata": '{"a": 1}'}], Commit(4, {"a": 1}, 4)),
        (
            [
                {"version": 6, "operation": "VACUUM END", "userMetadata": '{"a": 1, "data_version": 4}'},
                {"version": 5, "operation": "VACUUM START", "userMetadata": '{"a": 1, "data_version": 4}'},
            ],
            Commit(4, {"a": 1}, 6),
        ),
        (
            [
                {"version": 6, "operation": "VACUUM END", "userMetadata": None},  # a user's own VACUUM
                {"version": 5, "operation": "VACUUM START", "userMetadata": None},
                {"version": 4, "operation": "WRITE", "userMetadata": None},
            ],
            Commit(4, None, 6),
        ),
        ([{"version": 6, "operation": "VACUUM END", "userMetadata": None}], None),
    ],
    ids=["data", "this-project's-maintenance", "another-tool's-maintenance", "maintenance-only"],
)
def test_the_latest_data_commit_skips_maintenance(history, expected):
    assert latest_data_commit(history) == expected


def _two_versions(path) -> None:
    """Version 0 with rows 1, 2; version 1 overwrites them with 3 (the file of 0 is removed)."""
    for run, rows, mode in ((1, [1, 2], "error"), (2, [3], "overwrite")):
        metadata = CommitProperties(custom_metadata={"userMetadata": json.dumps({"run": run})})
        write_deltalake(str(path), pa.table({"k": rows}), mode=mode, commit_properties=metadata)


def test_maintain_removes_what_no_kept_version_reads_and_keeps_the_data_version(tmp_path):
    path = tmp_path / "t"
    _two_versions(path)
    assert maintain(path, retention_properties(0), retain_hours=0) == Maintained(True, 1)
    tables = DeltaRsTables(session=None)
    assert tables.last_commit(str(path)) == Commit(1, {"run": 2}, 4)  # 2: properties, 3-4: VACUUM
    assert DeltaTable(str(path)).metadata().configuration == retention_properties(0)
    assert read_arrow(path).to_pydict() == {"k": [3]}
    assert not (path / "_delta_log" / "00000000000000000001.json").exists()  # the log starts at 4
    with pytest.raises(TableNotFoundError, match="No files in log segment"):
        read_arrow(path, version=0)
    assert maintain(path, retention_properties(0), retain_hours=0) == Maintained(False, 0)
    assert tables.last_commit(str(path)).version == 1


def test_maintain_keeps_the_versions_within_the_retention(tmp_path):
    path = tmp_path / "t"
    _two_versions(path)
    assert maintain(path, retention_properties(30), retain_hours=30 * 24) == Maintained(True, 0)
    assert read_arrow(path, version=0).to_pydict() == {"k": [1, 2]}  # time travel still works
    # A VACUUM that deletes nothing commits nothing (so the warehouse records its own schedule).
    assert [op for op, _ in commit_times(path)] == ["SET TBLPROPERTIES", "WRITE", "WRITE"]


def test_the_warehouse_is_maintained_on_its_schedule_and_records_it(warehouse_params):
    wh = replace(warehouse_params, retention=RetentionSettings(keep_days=0, vacuum_every_days=7))
    assert last_maintained(wh) is None and maintain_warehouse(wh, now=T0) == []  # no table yet
    _two_versions(wh.warehouse / "bronze" / "e2e_raw")
    _two_versions(wh.warehouse / "gold" / "kpi_weekly")
    created = last_maintained(wh)
    assert created is not None and created > T0  # the first ingest, as bronze's log tells
    done = maintain_warehouse(wh, now=created + dt.timedelta(days=7))
    assert [(t.table, t.files_removed) for t in done] == [("bronze.e2e_raw", 1), ("gold.kpi_weekly", 1)]
    state = json.loads((wh.warehouse / STATE_FILE).read_text())
    assert state == {
        "maintained_at": (created + dt.timedelta(days=7)).isoformat(),
        "keep_days": 0,
        "files_removed": {"bronze.e2e_raw": 1, "gold.kpi_weekly": 1},
    }
    assert last_maintained(wh) == created + dt.timedelta(days=7)
    assert maintain_warehouse(wh, now=created + dt.timedelta(days=13)) == []
    never = replace(wh, retention=RetentionSettings(keep_days=0, vacuum_every_days=None))
    assert maintain_warehouse(never, now=created + dt.timedelta(days=999)) == []
