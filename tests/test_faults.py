"""Crashes and concurrent runs lose nothing: a run is SIGKILLed at named points of bronze, the
silver MERGE and gold (nyc911lib.faults), run again, and must end exactly where a clean run ends.

Each case runs one real `nyc911 run --engine inline` process on a small warehouse (a 4-week
sample) and kills it; the rerun happens in the test's own Spark session.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyspark.sql.functions as F
import pytest
from conftest import run_once
from pyspark.testing import assertDataFrameEqual

from nyc911lib import read_table, run_layers
from nyc911lib.faults import POINTS
from nyc911lib.sample import write_sample
from nyc911lib.storage import warehouse_lock

pytestmark = pytest.mark.e2e

NYC911 = str(Path(sys.executable).parent / "nyc911")
WEEKS = 4
# Columns that name a run or a landing time: they differ between two warehouses by design.
RUN_SPECIFIC = (
    "_batch_id",
    "_ingested_at",
    "_source_file",
    "superseded_by_batch_id",
    "old_batch_id",
    "new_batch_id",
    "old_source_file",
    "new_source_file",
)
COMPARED = [("silver", "e2e_weekly"), ("silver", "superseded"), ("silver", "quarantine")] + [
    ("gold", k)
    for k in ("kpi_weekly", "kpi_monthly_agency", "kpi_summary", "restatements", "publication_drift")
]


def _publications(folder: Path) -> tuple[Path, Path]:
    """A small first publication and a second one that revises the counts of its last week."""
    first = write_sample(folder / "first.csv", weeks=WEEKS)
    lines = first.read_text(encoding="utf-8").splitlines()
    last_week = lines[-1].split(",")[0]
    revised = [lines[0]]
    for line in lines[1:]:
        fields = line.split(",")
        if fields[0] == last_week and fields[3].isdigit():
            fields[3] = str(int(fields[3]) + 7)
            revised.append(",".join(fields))
    second = folder / "second.csv"
    second.write_text("\n".join(revised) + "\n", encoding="utf-8")
    return first, second


def _cli(wh, source: Path, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [NYC911, "run", "--engine", "inline", "--warehouse", str(wh.warehouse), "--source", str(source)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "NYC911_REPORTS_DIR": str(wh.warehouse.parent / "reports"), **env},
    )


def _table(spark, wh, layer, key):
    df = read_table(spark, wh, layer, key)
    return df.drop(*[c for c in RUN_SPECIFIC if c in df.columns])


@pytest.fixture(scope="module")
def publications(tmp_path_factory):
    return _publications(tmp_path_factory.mktemp("publications"))


@pytest.fixture(scope="module")
def clean(spark, params, publications, tmp_path_factory):
    """The reference: both publications, two clean runs."""
    wh = params.with_warehouse(tmp_path_factory.mktemp("clean") / "warehouse")
    run_once(spark, wh, publications[0])
    run_once(spark, wh, publications[1], run_id="run-2")
    return wh


@pytest.fixture(scope="module")
def first_published(spark, params, publications, tmp_path_factory):
    """A warehouse that has processed the first publication, and a saved copy of it. Every case
    restores the copy to the same path (checkpoints record absolute paths), then crashes a run."""
    folder = tmp_path_factory.mktemp("first_published")
    wh = params.with_warehouse(folder / "warehouse")
    run_once(spark, wh, publications[0])
    shutil.copytree(wh.warehouse, folder / "saved")
    return wh, folder / "saved"


@pytest.mark.parametrize(
    "kill_at",
    [
        "bronze.after_append",  # bronze committed, its checkpoint not
        "silver.before_merge",  # superseded/quarantine/metrics committed, the MERGE not
        "silver.before_merge+1.5",  # the kill lands during the MERGE (or just after its commit)
        "gold.after_kpi_weekly",  # one gold table rewritten, the others not
    ],
)
def test_a_killed_run_then_rerun_equals_a_clean_run(spark, first_published, publications, clean, kill_at):
    assert kill_at.partition("+")[0] in POINTS
    wh, saved = first_published
    shutil.rmtree(wh.warehouse)
    shutil.copytree(saved, wh.warehouse)
    killed = _cli(wh, publications[1], NYC911_KILL_AT=kill_at)
    output, _ = killed.communicate(timeout=600)
    assert killed.returncode == -signal.SIGKILL, output[-3000:]
    rerun = run_layers(spark, wh, "run-after-crash")
    expected_total = read_table(spark, clean, "gold", "kpi_summary").first()["total_incidents"]
    assert rerun.summary["total_incidents"] == expected_total
    for layer, key in COMPARED:
        assertDataFrameEqual(_table(spark, wh, layer, key), _table(spark, clean, layer, key))
    bronze = read_table(spark, wh, "bronze", "e2e_raw")
    rows = [len(p.read_text(encoding="utf-8").splitlines()) - 1 for p in publications]
    assert bronze.count() == sum(rows)  # nothing appended twice, nothing lost
    log = read_table(spark, wh, "bronze", "ingest_log")
    assert sorted(r.status for r in log.collect()) == ["ingested", "ingested"]
    accounting = read_table(spark, wh, "silver", "batch_accounting")
    per_batch = accounting.groupBy("batch_id").agg(F.sum("rows_bronze").alias("rows")).collect()
    assert sorted(r.rows for r in per_batch) == sorted(rows)
    again = run_layers(spark, wh, "run-3")  # and the checkpoints agree: nothing left to do
    assert (again.ingested, again.accounting) == ([], [])


def test_a_second_run_on_a_busy_warehouse_fails_clearly_and_the_first_is_unharmed(
    spark, params, publications, tmp_path
):
    wh = params.with_warehouse(tmp_path / "warehouse")
    first = _cli(wh, publications[0])
    lock = wh.warehouse / ".nyc911.lock"
    deadline = time.monotonic() + 120
    while not (lock.is_file() and lock.read_text().startswith("pid")):
        assert first.poll() is None and time.monotonic() < deadline, "the first run never took the lock"
        time.sleep(0.2)
    second = _cli(wh, publications[1])
    output, _ = second.communicate(timeout=120)
    assert second.returncode == 1
    assert output.strip().splitlines()[-1] == (
        f"nyc911: error: another nyc911 run is using the warehouse {wh.warehouse} "
        f"(pid {first.pid} since {lock.read_text().split(' since ')[1]}); nothing was done: "
        "run again when it has finished"
    )
    first_output, _ = first.communicate(timeout=600)
    assert first.returncode == 0, first_output[-3000:]
    assert read_table(spark, wh, "bronze", "e2e_raw").count() == (
        len(publications[0].read_text(encoding="utf-8").splitlines()) - 1
    )
    assert sorted(p.name.split("__")[-1] for p in wh.landing_dir.glob("*.csv")) == ["first.csv"]


def test_a_killed_run_leaves_no_stale_lock(params, tmp_path):
    wh = params.with_warehouse(tmp_path / "warehouse")
    code = (
        "import sys, time\n"
        "from nyc911lib import load_params\n"
        "from nyc911lib.storage import warehouse_lock\n"
        f"with warehouse_lock(load_params().with_warehouse({str(wh.warehouse)!r})):\n"
        "    print('locked', flush=True)\n"
        "    time.sleep(600)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(Exception, match="another nyc911 run is using the warehouse"), warehouse_lock(wh):
        pass
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    with warehouse_lock(wh):
        assert (wh.warehouse / ".nyc911.lock").read_text().startswith(f"pid {os.getpid()} since ")
