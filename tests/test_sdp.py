"""The declarative runner's warehouse: its tables are links switched to a new run in one rename,
a failed or killed run leaves the previous tables, and a warehouse belongs to one kind of runner."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nyc911lib import Nyc911Error, load_params
from nyc911lib.run.sdp import DECLARATIVE_DIR, check_runner_fits, publish, remove_stale_runs


def fake_run(warehouse: Path, run_id: str, params) -> Path:
    """A finished run's folder: every table a folder holding the run id (as SDP would leave it)."""
    run_dir = warehouse / DECLARATIVE_DIR / "runs" / run_id
    for names in params.tables.values():
        for name in names.values():
            (run_dir / "spark-warehouse" / name / "_delta_log").mkdir(parents=True)
            (run_dir / "spark-warehouse" / name / "run.txt").write_text(run_id, encoding="utf-8")
    return run_dir


@pytest.fixture
def params(tmp_path):
    return load_params().with_warehouse(tmp_path / "warehouse")


def test_publish_points_every_table_at_the_new_run_and_removes_the_old(params):
    wh = params.warehouse
    publish(params, fake_run(wh, "run-1", params))
    publish(params, fake_run(wh, "run-2", params))
    for layer, names in params.tables.items():
        for name in names.values():
            link = wh / layer / name
            assert link.is_symlink() and not Path(os.readlink(link)).is_absolute()
            assert (link / "run.txt").read_text(encoding="utf-8") == "run-2"
    assert [p.name for p in (wh / DECLARATIVE_DIR / "runs").iterdir()] == ["run-2"]


def test_a_run_killed_before_publishing_leaves_the_previous_tables_and_is_cleaned_up(params):
    wh = params.warehouse
    publish(params, fake_run(wh, "run-1", params))
    fake_run(wh, "run-2", params)  # killed: its tables written, never published
    (wh / DECLARATIVE_DIR / ".current-run-2").symlink_to("runs/run-2/spark-warehouse")  # killed mid-switch
    assert (wh / "gold" / "kpi_summary" / "run.txt").read_text(encoding="utf-8") == "run-1"
    remove_stale_runs(wh / DECLARATIVE_DIR)  # what the next run does first
    assert [p.name for p in (wh / DECLARATIVE_DIR / "runs").iterdir()] == ["run-1"]
    assert not (wh / DECLARATIVE_DIR / ".current-run-2").is_symlink()
    assert (wh / "gold" / "kpi_summary" / "run.txt").read_text(encoding="utf-8") == "run-1"


def test_a_warehouse_belongs_to_one_kind_of_runner(params):
    wh = params.warehouse
    (wh / "silver" / "e2e_weekly" / "_delta_log").mkdir(parents=True)  # an incremental runner's table
    with pytest.raises(Nyc911Error) as refused:
        check_runner_fits(params, "declarative")
    assert str(refused.value) == (
        f"warehouse {wh} holds tables of the incremental runners (silver.e2e_weekly, ...); the declarative "
        "runner rebuilds every table on each run and needs a warehouse of its own: give another --warehouse"
    )
    check_runner_fits(params, "inline")  # its own warehouse: fine


@pytest.mark.parametrize("runner", ["notebooks", "inline"])
def test_an_incremental_runner_refuses_a_declarative_warehouse(params, runner):
    wh = params.warehouse
    publish(params, fake_run(wh, "run-1", params))
    check_runner_fits(params, "declarative")  # its own links are not an incremental runner's tables
    with pytest.raises(Nyc911Error) as refused:
        check_runner_fits(params, runner)
    assert str(refused.value) == (
        f"warehouse {wh} was built by the declarative runner (every table rebuilt from landing on each "
        "run): run it with --runner declarative, or give another --warehouse"
    )


@pytest.fixture
def port(tmp_path, monkeypatch):
    """A free port and a lock file of this test's own (the real 15002 may be in use by a run)."""
    import socket  # noqa: PLC0415

    from nyc911lib.run import sdp  # noqa: PLC0415

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    monkeypatch.setattr(sdp, "CONNECT_PORT", free)
    monkeypatch.setattr(sdp, "PORT_LOCK", tmp_path / "port.lock")
    return free


def test_a_second_run_waits_for_the_spark_connect_port(port, capsys):
    import threading  # noqa: PLC0415
    import time  # noqa: PLC0415

    from nyc911lib.run.sdp import spark_connect_port  # noqa: PLC0415

    events = []
    first_in = threading.Event()

    def first():
        with spark_connect_port():
            events.append("first in")
            first_in.set()
            time.sleep(0.5)
            events.append("first out")

    thread = threading.Thread(target=first)
    thread.start()
    first_in.wait(5)
    with spark_connect_port():
        events.append("second in")
    thread.join()
    assert events == ["first in", "first out", "second in"]
    assert capsys.readouterr().out == f"waiting for another declarative run (it holds port {port})\n"


def test_a_port_held_by_another_program_stops_the_run_with_one_line(port):
    import socket  # noqa: PLC0415

    from nyc911lib.run.sdp import spark_connect_port  # noqa: PLC0415

    with socket.socket() as server:
        server.bind(("127.0.0.1", port))
        server.listen()
        with pytest.raises(Nyc911Error) as refused, spark_connect_port():
            pass
    assert str(refused.value) == (
        f"port {port}, where the declarative runner starts Spark Connect, is in use by another program: "
        "stop it, then run again"
    )
