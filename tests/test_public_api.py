"""The one public API: every name of `nyc911lib.__all__` resolves, and importing the package
chooses no engine (a notebook chooses it before importing pyspark)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import nyc911lib


def test_all_lists_every_exported_name_once():
    assert len(set(nyc911lib.__all__)) == len(nyc911lib.__all__)
    assert set(nyc911lib.__all__) == set(nyc911lib._MODULE_OF)


def test_every_public_name_resolves():
    missing = [name for name in nyc911lib.__all__ if getattr(nyc911lib, name, None) is None]
    assert missing == []


def test_importing_the_package_and_loading_params_choose_no_engine():
    code = (
        "import sys, nyc911lib as n9\n"
        "n9.load_params(); n9.notebook_args(a=1); n9.write_sample\n"
        "from nyc911lib import engine\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in ('pyspark', 'sqlframe')]\n"
        "print(engine._state.selected, sorted(loaded))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "None []"


REFUSED = (
    "nyc911lib.errors.EngineError: pyspark was imported before nyc911lib chose the duckdb engine: import "
    "nyc911lib and choose the engine (nyc911lib.session(engine)) before importing pyspark"
)


@pytest.mark.parametrize(
    ("code", "env", "expected"),
    [
        ("import nyc911lib as n9; n9.kpi_weekly", {}, "duckdb"),
        ("import nyc911lib as n9; n9.kpi_weekly", {"NYC911_ENGINE": "spark"}, "spark"),
        # A Spark program (spark-pipelines running pipelines/, a spark-submit job) that imported
        # pyspark first and asks for no engine gets its own: spark.
        ("import pyspark.sql; import nyc911lib as n9; n9.kpi_weekly", {}, "spark"),
        ("import pyspark.sql; import nyc911lib as n9; n9.kpi_weekly", {"NYC911_ENGINE": "duckdb"}, REFUSED),
    ],
    ids=["default", "env", "inside a spark program", "duckdb asked after pyspark"],
)
def test_the_engine_a_process_gets(code, env, expected):
    environ = {k: v for k, v in os.environ.items() if k != "NYC911_ENGINE"}
    script = f"{code}\nfrom nyc911lib import engine\nprint(engine.name())"
    command = [sys.executable, "-c", script]
    out = subprocess.run(command, capture_output=True, text=True, env={**environ, **env}, check=False)
    assert (out.stdout.strip() or out.stderr.strip().splitlines()[-1]) == expected


def test_a_duckdb_session_made_before_the_engines_is_the_one_its_frames_use():
    """SQLFrame's session is a process singleton: when code built a DuckDBSession on a connection
    of its own first (tests/test_delta_rs.py does), the engine's session is that one, and the
    frames it materializes are registered on that session's connection, so it sees their columns
    (they were registered on another connection and read as `SELECT FROM view`, which DuckDB
    refuses, when test_delta_rs ran first in a pytest worker)."""
    code = (
        "import duckdb, nyc911lib as n9\n"
        "from nyc911lib import engine\n"
        "engine.select('duckdb')\n"
        "from sqlframe.duckdb import DuckDBSession\n"
        "first = DuckDBSession(conn=duckdb.connect())\n"
        "spark = engine.session()\n"
        "frame = engine.materialize(spark.createDataFrame([(1, 'a')], 'n long, s string'))\n"
        "print(spark is first, engine.connection() is first._conn, frame.columns, frame.collect()[0].s)\n"
    )
    environ = {k: v for k, v in os.environ.items() if k != "NYC911_ENGINE"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environ, check=False
    )
    assert out.stdout.strip() == "True True ['n', 's'] a", out.stderr[-2000:]
