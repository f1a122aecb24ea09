"""The spark engine on a standalone cluster: a master and one worker on 127.0.0.1, started with
pyspark's own `bin/spark-class` (the pip package has no start scripts), and `nyc911 run --engine
spark` pointed at it with NYC911_MASTER.

The run's tables are compared, every layer, with the same publication run by the duckdb engine
(tests/test_parity.py shows duckdb equals Spark's local mode), and the master's and worker's logs
and the worker's folder prove the work ran in an executor of the worker: the driver shipped the
Delta jars of `spark.jars` to it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from engine_runs import REPO, diff_warehouses, report, run_env, start_runs, tail, wait_runs

pytestmark = [pytest.mark.spark, pytest.mark.timeout(2400)]

HOST = "127.0.0.1"
START_TIMEOUT_S = 180
RUN_TIMEOUT_S = 1800
RUN_ARGS = ("--engine", "spark", "--runner", "inline", "--source", "sample")


def spark_home() -> Path:
    """pyspark's folder, which is SPARK_HOME for a pip install (found without importing it)."""
    spec = importlib.util.find_spec("pyspark")
    assert spec and spec.submodule_search_locations, "pyspark is not installed"
    return Path(next(iter(spec.submodule_search_locations)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@dataclass
class Cluster:
    url: str
    master_log: Path
    worker_log: Path
    work_dir: Path


def _start(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(spark_home() / "bin" / "spark-class"), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its own process group: the worker's executors too
        )


def _stop(process: subprocess.Popen) -> None:
    """End a daemon's process group: politely, then for sure."""
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 20)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=wait)
            return


def _wait_for(pattern: str, log: Path, processes: list[subprocess.Popen], what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not re.search(pattern, log.read_text(errors="replace") if log.is_file() else ""):
        dead = [p.args[1] for p in processes if p.poll() is not None]
        if dead or time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen ({dead or 'timeout'}):\n{tail(log)}")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    """A standalone master and one worker (1 core, 1 GB) on 127.0.0.1, until the module ends."""
    root = tmp_path_factory.mktemp("cluster")
    port = free_port()
    env = {**os.environ, "SPARK_HOME": str(spark_home()), "PYSPARK_PYTHON": sys.executable}
    out = Cluster(f"spark://{HOST}:{port}", root / "master.log", root / "worker.log", root / "work")
    master_args = ("--host", HOST, "--port", str(port), "--webui-port", str(free_port()))
    master = _start(
        ["org.apache.spark.deploy.master.Master", *master_args],
        out.master_log,
        env,
    )
    daemons = [master]
    try:
        _wait_for(r"Starting Spark master at spark://", out.master_log, daemons, "the master's start")
        worker_args = ("--host", HOST, "--cores", "1", "--memory", "1g", "--webui-port", str(free_port()))
        worker = _start(
            ["org.apache.spark.deploy.worker.Worker", out.url, *worker_args, "--work-dir", str(out.work_dir)],
            out.worker_log,
            env,
        )
        daemons.append(worker)
        _wait_for(
            r"Registering worker 127\.0\.0\.1:\d+ with 1 cores", out.master_log, daemons, "registration"
        )
        _wait_for(r"Successfully registered with master", out.worker_log, daemons, "registration")
        yield out
    finally:
        for daemon in reversed(daemons):
            _stop(daemon)


def test_the_pipeline_runs_on_a_standalone_cluster(cluster, tmp_path):
    """`nyc911 run --engine spark --source sample` with NYC911_MASTER=spark://127.0.0.1:<port>
    succeeds, writes every table equal to the duckdb engine's, and its tasks ran in an executor
    of the worker, which received the Delta jars from the driver."""
    warehouse = tmp_path / "cluster"
    env = run_env(tmp_path, NYC911_MASTER=cluster.url, NYC911_REPORTS_DIR=str(tmp_path / "reports"))
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "nyc911lib.cli", "run", *RUN_ARGS, "--warehouse", str(warehouse)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    seconds = time.monotonic() - started
    assert result.returncode == 0, (
        f"{result.stdout}\n{result.stderr}\n{tail(tmp_path / 'spark-driver.log')}"
        f"{tail(cluster.master_log)}{tail(cluster.worker_log)}"
    )
    print(f"\ncluster run: {seconds:.1f} s")

    # The very publication, landed under the same name, on the duckdb engine.
    [landed] = sorted((warehouse / "landing").glob("*__sample__*.csv"))
    reference = tmp_path / "duckdb"
    runs = start_runs(
        "duckdb", [{"warehouse": str(reference), "land": [[str(landed), landed.name]]}], tmp_path / "ref"
    )
    wait_runs(runs, timeout=600)
    differences = diff_warehouses(reference, warehouse)
    assert not differences, "duckdb vs the cluster:\n" + report(differences)

    # The application ran on the cluster, its tasks in the worker's executor.
    master_log = cluster.master_log.read_text(errors="replace")
    apps = re.findall(r"Registered app nyc911 with ID (app-[\w-]+)", master_log)
    assert len(apps) == 1, tail(cluster.master_log)
    [app] = apps
    worker_log = cluster.worker_log.read_text(errors="replace")
    assert re.search(rf"Asked to launch executor {app}/\d+ for nyc911", worker_log), tail(cluster.worker_log)
    executors = sorted(p for p in (cluster.work_dir / app).iterdir() if p.is_dir())
    assert executors, f"no executor folder under {cluster.work_dir / app}"
    stderr = "".join((p / "stderr").read_text(errors="replace") for p in executors)
    finished = len(re.findall(r"Finished task [\d.]+ in stage", stderr))
    assert finished > 0, f"the executor ran no task:\n{stderr[-3000:]}"
    shipped = sorted(j.name for p in executors for j in p.glob("*.jar"))
    assert any(name.startswith("delta-spark_") for name in shipped), (shipped, stderr[-3000:])
    assert any(name.startswith("delta-storage-") for name in shipped), shipped
    print(f"cluster app {app}: {finished} tasks finished in the worker's executor; jars shipped: {shipped}")
