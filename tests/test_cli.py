"""The `nyc911` command: help, sample, bad input (fast, before any Spark work) and one full run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REAL_2025, real_export, table_versions
from http_fixture_server import FixtureServer

from nyc911lib import read_table
from nyc911lib.engine import JAVA_HELP, MIN_JAVA
from nyc911lib.sample import write_sample

NYC911 = str(Path(sys.executable).parent / "nyc911")


def nyc911(*args: str, env: dict | None = None, timeout: int = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [NYC911, *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--help"], "{run,fetch,report,alerts,sample}"),
        (["report", "--help"], "--format {html,pdf}"),
        (["alerts", "--help"], "--no-post"),
        (["fetch", "--help"], "--since YYYY-MM-DD"),
        (["run", "--help"], "--source SOURCE"),
        (["run", "--help"], "--from YYYY-MM-DD"),
        (["sample", "--help"], "--out OUT"),
    ],
)
def test_help(args, expected):
    result = nyc911(*args)
    assert result.returncode == 0
    assert expected in result.stdout


def test_sample_writes_the_built_in_sample(tmp_path):
    result = nyc911("sample", "--out", str(tmp_path / "s.csv"))
    assert result.returncode == 0
    assert result.stdout == f"wrote the synthetic sample to {tmp_path / 's.csv'}\n"
    assert (tmp_path / "s.csv").read_bytes() == write_sample(tmp_path / "ref.csv").read_bytes()


def test_sample_with_bad_weeks_is_refused(tmp_path):
    result = nyc911("sample", "--out", str(tmp_path / "s.csv"), "--weeks", "1")
    assert result.returncode == 1
    assert result.stderr.startswith("nyc911: error: ")
    assert not (tmp_path / "s.csv").exists()


def _empty(tmp_path: Path) -> Path:
    (tmp_path / "empty.csv").write_bytes(b"")
    return tmp_path / "empty.csv"


def _no_agency(tmp_path: Path) -> Path:
    path = tmp_path / "no_agency.csv"
    path.write_text("Week Start Date,Final Incident Type\n11/18/2013,Dispute\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("make_source", "message"),
    [
        (lambda d: d / "missing.csv", "source file not found: {src}"),
        (_empty, "source file {src} is empty"),
        (_no_agency, "{src}: missing required columns ['agency', 'of_incidents_calculated'"),
    ],
)
def test_bad_source_fails_fast_and_writes_nothing(tmp_path, make_source, message):
    src = make_source(tmp_path)
    result = nyc911("run", "--source", str(src), "--warehouse", str(tmp_path / "wh"))
    assert result.returncode == 1
    assert result.stderr.startswith("nyc911: error: " + message.format(src=src.resolve()))
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "wh").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2024-13-01"], "nyc911: error: --from must be a date as YYYY-MM-DD, got '2024-13-01'\n"),
        (
            ["--from", "2024-02-01", "--to", "2024-01-01"],
            "nyc911: error: --from 2024-02-01 is after --to 2024-01-01\n",
        ),
        (["--params", "/nonexistent/p.yaml"], "nyc911: error: params file not found: /nonexistent/p.yaml\n"),
    ],
)
def test_bad_arguments_are_named(tmp_path, args, message):
    result = nyc911("run", "--warehouse", str(tmp_path / "wh"), *args)
    assert (result.returncode, result.stderr) == (1, message)
    assert not (tmp_path / "wh").exists()


def test_the_spark_engine_without_java_stops_at_once_with_install_help(tmp_path):
    env = {"PATH": str(Path(NYC911).parent), "JAVA_HOME": ""}
    result = nyc911("run", "--engine", "spark", "--warehouse", str(tmp_path / "wh"), env=env)
    assert result.returncode == 1
    expected = JAVA_HELP.format(min=MIN_JAVA, found="no `java` was found")
    assert result.stderr == f"nyc911: error: {expected}\n"
    assert not (tmp_path / "wh").exists()


@pytest.mark.e2e
def test_run_on_the_sample_writes_gold_report_and_executed_notebooks(spark, params, tmp_path):
    reports = tmp_path / "reports"
    result = nyc911(
        "run", "--warehouse", str(tmp_path / "wh"), env={"NYC911_REPORTS_DIR": str(reports)}, timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for i, name in enumerate(("01_bronze", "02_silver", "03_gold", "04_kpi_report"), start=1):
        assert f"[{i}/4] {name} done in" in result.stdout
        assert len(list((reports / "runs").glob(f"*/{name}.ipynb"))) == 1
    assert f"report: {reports / 'kpi_report.html'}" in result.stdout
    html = (reports / "kpi_report.html").read_text(encoding="utf-8")
    assert "Synthetic sample data" in html
    summary = json.loads((reports / "kpi_summary.json").read_text())
    gold = read_table(spark, params.with_warehouse(tmp_path / "wh"), "gold", "kpi_summary").first()
    assert summary["total_incidents"] == gold.total_incidents
    assert f"total incidents            {gold.total_incidents:,}" in result.stdout
    assert summary["avg_call_to_first_pickup_s"] == pytest.approx(gold.avg_call_to_first_pickup_s)

    # Again with nothing new: read from the Delta logs, no notebook run, nothing written.
    versions = table_versions(spark, params.with_warehouse(tmp_path / "wh"))
    report_bytes = (reports / "kpi_report.html").read_bytes()
    again = nyc911("run", "--warehouse", str(tmp_path / "wh"), env={"NYC911_REPORTS_DIR": str(reports)})
    assert again.returncode == 0, again.stderr[-3000:]
    current = "nothing new: bronze, silver, gold and the report are current; nothing run or committed"
    assert f"\n{current}\n" in again.stdout
    assert f"total incidents            {gold.total_incidents:,}" in again.stdout
    assert len(list((reports / "runs").iterdir())) == 1
    assert table_versions(spark, params.with_warehouse(tmp_path / "wh")) == versions
    assert (reports / "kpi_report.html").read_bytes() == report_bytes

    # Retention due (at every run): every table is maintained, and the warehouse is still current.
    every_run = _params_copy(
        tmp_path, "https://data.cityofnewyork.us", "vacuum_every_days: 7", "vacuum_every_days: 0"
    )
    third = nyc911(
        "run",
        "--params",
        str(every_run),
        "--warehouse",
        str(tmp_path / "wh"),
        env={"NYC911_REPORTS_DIR": str(reports)},
    )
    assert third.returncode == 0, third.stderr[-3000:]
    assert f"\n{current}\n" in third.stdout
    tables = sum(len(t) for t in params.tables.values())
    kept = "versions of the last 30 days stay readable"
    assert (
        f"\nretention: {tables} tables vacuumed and their logs trimmed (0 old files removed); {kept}\n"
        in third.stdout
    )
    assert table_versions(spark, params.with_warehouse(tmp_path / "wh")) == versions
    assert (tmp_path / "wh" / ".nyc911-retention.json").is_file()


def _params_copy(tmp_path: Path, base_url: str, *replaced: str) -> Path:
    """The project's params, copied, with fetch.base_url set to `base_url`, one retry, and each
    pair of `replaced` (old text, new text) replaced."""
    folder = tmp_path / "params"
    shutil.copytree(Path(__file__).resolve().parents[1] / "params", folder)
    text = (folder / "default.yaml").read_text().replace("https://data.cityofnewyork.us", base_url)
    text = text.replace("retries: 5", "retries: 1")
    for old, new in zip(replaced[::2], replaced[1::2], strict=True):
        assert old in text
        text = text.replace(old, new)
    (folder / "default.yaml").write_text(text)
    return folder / "default.yaml"


@pytest.fixture
def portal_params(tmp_path):
    """A params folder whose fetch.base_url points at a loopback portal serving the real export."""

    server = FixtureServer(real_export(REAL_2025)).start()
    yield _params_copy(tmp_path, server.base_url)
    server.stop()


def test_fetch_lands_the_export_in_the_warehouse_landing_folder(tmp_path, portal_params):
    result = nyc911("fetch", "--params", str(portal_params), "--warehouse", str(tmp_path / "wh"))
    assert result.returncode == 0, result.stderr
    (landed,) = (tmp_path / "wh" / "landing").iterdir()
    assert result.stdout == f"landed {landed}\n"
    assert landed.name.startswith("nyc911_e2e_")
    assert landed.read_bytes() == REAL_2025.read_bytes()


def test_fetch_since_needs_the_api(tmp_path, portal_params):
    result = nyc911("fetch", "--params", str(portal_params), "--since", "2025-01-06")
    assert (result.returncode, result.stderr) == (
        1,
        "nyc911: error: --since needs --api (the CSV export has no filter)\n",
    )


def _warehouse_holding(tmp_path: Path, *names: str) -> Path:
    """A warehouse whose landing folder holds a (tiny, valid) publication under each name."""
    landing = tmp_path / "wh" / "landing"
    landing.mkdir(parents=True)
    source = write_sample(tmp_path / "export.csv", weeks=4)
    for name in names:
        shutil.copyfile(source, landing / name)
    return tmp_path / "wh"


REAL_LANDED = "20260101T000000000000Z__file__export.csv"
SAMPLE_LANDED = "20260101T000000000000Z__sample__nyc911_sample.csv"


@pytest.mark.parametrize(
    ("landed", "args", "message"),
    [
        (
            [REAL_LANDED],
            ["run", "--source", "sample"],
            "the warehouse {wh} holds real publications; the built-in synthetic sample is not landed in it "
            "(run without --source to process what is landed, or pass --allow-mixed-sources to add the "
            "sample anyway)",
        ),
        (
            [SAMPLE_LANDED],
            ["run", "--source", "{export}"],
            "the warehouse {wh} holds the built-in synthetic sample; a real export is not landed in it "
            "(use another --warehouse for real data, or pass --allow-mixed-sources to mix them)",
        ),
        (
            [SAMPLE_LANDED],
            ["fetch"],  # refused before any download: the portal URL here is unreachable
            "the warehouse {wh} holds the built-in synthetic sample; a real export is not landed in it "
            "(use another --warehouse for real data, or pass --allow-mixed-sources to mix them)",
        ),
        (
            [SAMPLE_LANDED, REAL_LANDED],
            ["run"],
            "the warehouse {wh} mixes the built-in synthetic sample with real publications, so its KPIs "
            "blend both: rebuild it from the real exports (README, Weekly operation), or pass "
            "--allow-mixed-sources to process it as it is",
        ),
    ],
    ids=["sample-into-real", "real-into-sample", "fetch-into-sample", "already-mixed"],
)
def test_sample_and_real_publications_never_mix_by_accident(tmp_path, landed, args, message):
    wh = _warehouse_holding(tmp_path, *landed)
    before = sorted(p.name for p in (wh / "landing").iterdir())
    args = [a.format(export=tmp_path / "export.csv") for a in args]
    offline = _params_copy(tmp_path, "http://127.0.0.1:9")  # a download would fail at once
    result = nyc911(*args, "--params", str(offline), "--warehouse", str(wh))
    assert (result.returncode, result.stderr) == (1, f"nyc911: error: {message.format(wh=wh)}\n")
    assert sorted(p.name for p in (wh / "landing").iterdir()) == before  # nothing landed
    assert sorted(p.name for p in wh.iterdir()) == ["landing"]  # nothing written
