"""Crashes, concurrent runs and moved warehouses lose nothing.

A real `nyc911 run` is killed, its whole process tree at once (the CLI, the Jupyter kernel, a JVM:
as a power cut would), then run again; every silver and gold table must then equal a clean run's,
and nothing be left to do:

- at moments nobody picked: the default notebooks runner, killed at a fraction of a measured clean
  run drawn at random in each session (one early, one late, one inside gold's writes; the seed and
  the fraction are in the failure message, NYC911_FAULT_SEED replays them);
- at the named points of nyc911lib.run.faults (the commits of bronze, silver's MERGE, gold's
  parallel writes): the inline runner, which runs the same layer code in one process.

These run on the duckdb engine; the spark engine's crash case (killed in its MERGE, on the real
2025 export, in a warehouse the duckdb engine wrote) is part of tests/test_parity.py.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pyspark.sql.functions as F
import pytest
from conftest import RUN_SPECIFIC, assert_same_rows, delta_frame, run_once
from engine_runs import wait_for_point

from nyc911lib import engine, read_table, run_layers
from nyc911lib.config import Params
from nyc911lib.io.storage import table_exists, warehouse_lock
from nyc911lib.run.cli import main
from nyc911lib.run.faults import POINTS
from nyc911lib.sample import write_sample

pytestmark = pytest.mark.e2e

NYC911 = str(Path(sys.executable).parent / "nyc911")
WEEKS = 4
# Moments of a measured clean run at which a run is killed, drawn at random in each session: a
# fraction of the whole run (early, late), or of gold's part of it (the gold tables are then being
# created, four at a time). Six fixed fractions were tried before: three drawn moments cover more
# moments over the runs of the suite, at half the cost.
MOMENTS = {"run-early": ("run", 0.05, 0.5), "run-late": ("run", 0.5, 0.95), "gold": ("gold", 0.05, 0.95)}
FAULT_SEED = int(os.environ.get("NYC911_FAULT_SEED") or random.SystemRandom().randrange(10**6))


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


def drawn_fraction(moment: str, seed: int = FAULT_SEED) -> float:
    """The fraction at which the `moment` case kills its run, drawn from the session's seed."""
    _, low, high = MOMENTS[moment]
    return round(random.Random(f"{seed}-{moment}").uniform(low, high), 3)


def test_the_drawn_moments_stay_in_their_ranges_and_replay_from_the_seed():
    for moment, (_, low, high) in MOMENTS.items():
        drawn = [drawn_fraction(moment, seed) for seed in range(200)]
        assert all(low <= f <= high for f in drawn), moment
        assert len(set(drawn)) > 150, moment  # drawn, not fixed
        assert drawn_fraction(moment, 7) == drawn_fraction(moment, 7)


def _start(wh, source: Path, *args: str, piped: bool = False, **env: str) -> subprocess.Popen:
    """`nyc911 run` on `wh` in its own session; its output unbuffered to a pipe (`piped`, to be read
    as it comes) or to `run.log` beside the warehouse (nothing can block on a full pipe)."""
    out = subprocess.PIPE if piped else (wh.warehouse.parent / "run.log").open("a")
    return subprocess.Popen(
        [NYC911, "run", "--warehouse", str(wh.warehouse), "--source", str(source), *args],
        stdout=out,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env={
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "NYC911_REPORTS_DIR": str(wh.warehouse.parent / "reports"),
            **env,
        },
    )


def _log(wh) -> str:
    return (wh.warehouse.parent / "run.log").read_text()[-3000:]


def kill_tree(process: subprocess.Popen) -> None:
    """SIGKILL a process and every descendant at once (frozen first, so none outlives the rest).

    The Jupyter kernel runs in a session of its own, so its process group is not the CLI's."""
    root = psutil.Process(process.pid)
    tree = [root, *root.children(recursive=True)]
    for proc in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.suspend()
    for proc in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    process.wait(timeout=60)
    psutil.wait_procs(tree, timeout=60)


def _tables(wh) -> dict[str, object]:
    """Every silver and gold table (read from its Delta files), without the columns that name a
    run or a landing."""
    return {
        f"{layer}.{key}": delta_frame(wh, layer, key, drop=RUN_SPECIFIC)
        for layer in ("silver", "gold")
        for key in wh.tables[layer]
    }


def assert_equals_clean(spark, wh, clean, publications) -> None:
    """`wh` holds exactly what clean runs of `publications` hold (`clean`), and has nothing left."""
    expected = _tables(clean)
    for name, table in _tables(wh).items():
        assert_same_rows(table, expected[name], label=name)  # floats to 1e-9, as between engines
    bronze = read_table(spark, wh, "bronze", "e2e_raw")
    rows = [len(p.read_text(encoding="utf-8").splitlines()) - 1 for p in publications]
    assert bronze.count() == sum(rows)  # nothing appended twice, nothing lost
    log = read_table(spark, wh, "bronze", "ingest_log")
    assert [r.status for r in log.collect()] == ["ingested"] * len(publications)
    accounting = read_table(spark, wh, "silver", "batch_accounting")
    per_batch = accounting.groupBy("batch_id").agg(F.sum("rows_bronze").alias("rows")).collect()
    assert sorted(r.rows for r in per_batch) == sorted(rows)
    again = run_layers(spark, wh, "run-again")
    assert (again.ingested, again.accounting, again.gold_rebuilt) == ([], [], False)


@pytest.fixture(scope="module")
def publications(tmp_path_factory):
    return _publications(tmp_path_factory.mktemp("publications"))


@pytest.fixture(scope="module")
def references(spark, measured, publications, tmp_path_factory):
    """The clean references: (the first publication alone, both publications): the measured clean
    `nyc911 run` of the first, and a copy of its warehouse that then ran the second."""
    first = measured[1]
    both = first.with_warehouse(tmp_path_factory.mktemp("clean") / "warehouse")
    shutil.copytree(first.warehouse, both.warehouse)
    run_once(spark, both, publications[1], run_id="run-2")
    return first, both


@pytest.fixture(scope="module")
def clean_first(references):
    """A reference: a clean run of the first publication."""
    return references[0]


@pytest.fixture(scope="module")
def clean(references):
    """The reference: both publications, two clean runs."""
    return references[1]


@pytest.fixture(scope="module")
def measured(params, publications, tmp_path_factory) -> tuple[dict[str, float], Params]:
    """A clean `nyc911 run` of the first publication on a new warehouse, timed: seconds from its
    start to its end and to the start and end of its gold notebook; and its warehouse (the clean
    reference of the first publication, never changed)."""
    wh = params.with_warehouse(tmp_path_factory.mktemp("measured") / "warehouse")
    started = time.monotonic()
    run = _start(wh, publications[0], piped=True)
    times, output = {}, []
    for line in run.stdout:
        output.append(line)
        if line.startswith("[3/4] 03_gold ..."):
            times["gold_start"] = time.monotonic() - started
        elif line.startswith("[3/4] 03_gold done"):
            times["gold_end"] = time.monotonic() - started
    assert run.wait(timeout=900) == 0, "".join(output)[-3000:]
    times["total"] = time.monotonic() - started
    return times, wh


def _part_length(part: str, times: dict[str, float]) -> float:
    """Seconds of a run's `part`: "run" the whole run, "gold" its gold notebook."""
    return times["total"] if part == "run" else times["gold_end"] - times["gold_start"]


def _killed_at(wh, source: Path, part: str, seconds: float) -> float | None:
    """Start `nyc911 run` and kill its whole tree `seconds` after its start ("run") or after its
    gold notebook starts ("gold"). None once killed; when the run ended first (a faster machine
    moment), the seconds it ran from that start. A failed run fails the test."""
    run = _start(wh, source, piped=True)
    output = []
    if part == "gold":
        for line in run.stdout:
            output.append(line)
            if line.startswith("[3/4] 03_gold ..."):
                break
    started = time.monotonic()
    while run.poll() is None and time.monotonic() - started < seconds:
        time.sleep(0.02)
    if run.poll() is None:
        kill_tree(run)
        return None
    ran = time.monotonic() - started
    output.append(run.stdout.read())
    assert run.returncode == 0, "".join(output)[-3000:]
    return ran


@pytest.mark.parametrize("moment", MOMENTS)
def test_a_run_killed_at_any_moment_then_rerun_equals_a_clean_run(
    spark, params, publications, clean_first, measured, tmp_path, moment
):
    part, fraction = MOMENTS[moment][0], drawn_fraction(moment)
    case = f"killed at {fraction} of {part} (NYC911_FAULT_SEED={FAULT_SEED} replays it)"
    # The load of the machine moves a run's length (the measured run may have run while the
    # machine was busier): when the run ends before the moment, the same fraction is tried again
    # on a new warehouse, of the length the run just took (for gold, of its share of it).
    times = measured[0]
    length = _part_length(part, times)
    share = 1.0 if part == "run" else length / (times["total"] - times["gold_start"])
    for attempt in range(3):
        wh = params.with_warehouse(tmp_path / f"attempt-{attempt}" / "warehouse")
        ran = _killed_at(wh, publications[0], part, fraction * length)
        if ran is None:
            break
        length = ran * share
    else:
        pytest.fail(f"the run ended before it was {case}, 3 times (each of the last run's length)")
    run_once(spark, wh, publications[0], run_id="run-after-crash")  # the same source again
    try:
        assert_equals_clean(spark, wh, clean_first, publications[:1])
    except AssertionError as exc:
        raise AssertionError(f"{case}: {exc}") from exc


@pytest.fixture(scope="module")
def first_published(clean_first):
    """A saved warehouse that has processed the first publication (the clean reference run, never
    changed). Each case restores a copy of it to a path of its own: a warehouse may be copied or
    moved."""
    return clean_first.warehouse


def _restored(params, saved: Path, folder: Path):
    shutil.copytree(saved, folder / "warehouse")
    return params.with_warehouse(folder / "warehouse")


@pytest.mark.parametrize(
    "kill_at",
    [
        "bronze.after_append",  # bronze committed, the ingest log not
        "silver.before_merge",  # superseded/quarantine/metrics committed, the MERGE not
        "silver.before_merge+1.5",  # the kill lands during the MERGE (or just after its commit)
        "silver.after_merge",  # the MERGE committed, the accounting not
        "gold.parallel_writes+0.5",  # gold tables being rewritten, four at a time
    ],
)
def test_a_run_killed_at_a_named_point_then_rerun_equals_a_clean_run(
    spark, params, first_published, publications, clean, tmp_path, kill_at
):
    assert kill_at.partition("+")[0] in POINTS
    wh = _restored(params, first_published, tmp_path)
    mark = tmp_path / "fault.mark"
    inline = ("--runner", "inline")
    run = _start(wh, publications[1], *inline, NYC911_KILL_AT=kill_at, NYC911_FAULT_MARK=str(mark))
    wait_for_point(run, mark, kill_at, detail=lambda: f": {_log(wh)}")
    kill_tree(run)
    run_once(spark, wh, publications[1], run_id="run-after-crash")
    assert_equals_clean(spark, wh, clean, publications)


def test_a_copied_warehouse_runs_at_its_new_path(
    spark, params, first_published, publications, clean, tmp_path, capsys, monkeypatch
):
    wh = _restored(params, first_published, tmp_path)  # `cp -r wh wh2`
    monkeypatch.setenv("NYC911_REPORTS_DIR", str(tmp_path / "reports"))
    assert main(["run", "--runner", "inline", "--warehouse", str(wh.warehouse)]) == 0
    assert (
        f"nothing to land: processing what is landed in {wh.landing_dir} and not processed yet"
        in capsys.readouterr().out
    )
    run_once(spark, wh, publications[1], run_id="run-2")  # and the next publication
    assert_equals_clean(spark, wh, clean, publications)


def test_a_gold_table_left_half_created_is_rebuilt(spark, params, first_published, tmp_path):
    wh = _restored(params, first_published, tmp_path)
    anomalies = wh.warehouse / "gold" / wh.tables["gold"]["anomalies"]
    expected = engine.to_pandas(read_table(spark, wh, "gold", "anomalies"))
    shutil.rmtree(anomalies)
    (anomalies / "_delta_log").mkdir(parents=True)  # a folder without a commit, as a kill leaves it
    assert not table_exists(spark, wh, "gold", "anomalies")
    assert run_layers(spark, wh, "run-after-crash").gold_rebuilt
    assert_same_rows(read_table(spark, wh, "gold", "anomalies"), expected)


def test_a_second_run_on_a_busy_warehouse_fails_clearly_and_the_first_is_unharmed(
    spark, params, publications, tmp_path
):
    wh = params.with_warehouse(tmp_path / "warehouse")
    first = _start(wh, publications[0], "--runner", "inline")
    lock = wh.warehouse / ".nyc911.lock"
    deadline = time.monotonic() + 120
    while not (lock.is_file() and lock.read_text().startswith("pid")):
        assert first.poll() is None and time.monotonic() < deadline, "the first run never took the lock"
        time.sleep(0.2)
    second = _start(wh, publications[1], "--runner", "inline", piped=True)
    output, _ = second.communicate(timeout=120)
    assert second.returncode == 1
    assert output.strip().splitlines()[-1] == (
        f"nyc911: error: another nyc911 run is using the warehouse {wh.warehouse} "
        f"(pid {first.pid} since {lock.read_text().split(' since ')[1]}); nothing was done: "
        "run again when it has finished"
    )
    assert first.wait(timeout=600) == 0, _log(wh)
    assert read_table(spark, wh, "bronze", "e2e_raw").count() == (
        len(publications[0].read_text(encoding="utf-8").splitlines()) - 1
    )
    assert sorted(p.name.split("__")[-1] for p in wh.landing_dir.glob("*.csv")) == ["first.csv"]


def test_a_killed_run_leaves_no_stale_lock(params, tmp_path):
    wh = params.with_warehouse(tmp_path / "warehouse")
    code = (
        "import sys, time\n"
        "from nyc911lib import load_params\n"
        "from nyc911lib.io.storage import warehouse_lock\n"
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
