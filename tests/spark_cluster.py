"""A Spark standalone cluster for the tests: a master and one worker on 127.0.0.1, started with
pyspark's own `bin/spark-class` (the pip package has no start scripts), and what its logs prove.

tests/test_parity.py points its spark engine process at one (NYC911_MASTER): the parity
warehouses of the spark engine are built there, and `ran_on` checks from the master's and the
worker's logs and the worker's folder that the work ran in an executor of the worker, which the
driver shipped the Delta jars of `spark.jars` to.
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
from engine_runs import tail

from nyc911lib.spark_conf import QUICK_START_JAVA_OPTIONS

HOST = "127.0.0.1"
START_TIMEOUT_S = 180


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


@contextlib.contextmanager
def standalone_cluster(root: Path, cores: int = 2, memory: str = "2g") -> Iterator[Cluster]:
    """A standalone master and one worker (`cores`, `memory`) on 127.0.0.1, their logs and the
    worker's folder under `root`, until the block ends."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {
        **os.environ,
        "SPARK_HOME": str(spark_home()),
        "PYSPARK_PYTHON": sys.executable,
        # The master and the worker live for one test module: the JVM's quick start (the C1
        # compiler only) spares the CPU the make test's other process needs.
        "SPARK_DAEMON_JAVA_OPTS": QUICK_START_JAVA_OPTIONS,
    }
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
        worker_args = (
            "--host",
            HOST,
            "--cores",
            str(cores),
            "--memory",
            memory,
            "--webui-port",
            str(free_port()),
        )
        worker = _start(
            ["org.apache.spark.deploy.worker.Worker", out.url, *worker_args, "--work-dir", str(out.work_dir)],
            out.worker_log,
            env,
        )
        daemons.append(worker)
        _wait_for(
            rf"Registering worker 127\.0\.0\.1:\d+ with {cores} cores",
            out.master_log,
            daemons,
            "registration",
        )
        _wait_for(r"Successfully registered with master", out.worker_log, daemons, "registration")
        yield out
    finally:
        for daemon in reversed(daemons):
            _stop(daemon)


def ran_on(cluster: Cluster) -> str:
    """Assert that exactly one application ran on `cluster`, its tasks in an executor of the
    worker, which received the Delta jars from the driver; a line saying so."""
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
    return f"cluster app {app}: {finished} tasks finished in the worker's executor; jars shipped: {shipped}"
