"""`nyc911 run --runner declarative`: open-source Spark Declarative Pipelines into a warehouse of
the notebooks' layout, so `nyc911 report` and `nyc911 alerts` read its gold as any other.

A run:

1. writes a spec (`pipelines/spark-pipeline.yml`, its configuration pointed at this warehouse and
   run) into a new folder `<warehouse>/_declarative/runs/<run id>/`, and runs `spark-pipelines
   run` there: every registry entry is a materialized view (or temporary view), recomputed from
   all landed publications, in that folder's `spark-warehouse/<table>`;
2. publishes the run in one atomic step: `<warehouse>/<layer>/<table>` are relative symbolic
   links to `_declarative/current/<table>`, and `_declarative/current` is switched to the new
   run's tables with a rename (`os.replace` of a link). A run killed at any moment leaves the
   previous tables in place; the next run removes its leftover folder.

Why not the tables in place: SDP keeps its catalog in memory, so a second run finds the previous
tables' folders and fails to create them (LOCATION_ALREADY_EXISTS), and a materialized view is
recomputed in full anyway.

Why a launcher around `spark-pipelines run` (pyspark 4.2.0):
- the spec's `configuration` is set on every flow as SQL confs, where a static conf fails the
  flow, so Delta's session extension and catalog are passed as `--conf` options instead;
- pyspark 4.2.0 starts the local Spark Connect server with the last chunk of the spark-submit
  settings only (they come in chunks of 10, `PYSPARK_REMOTE_INIT_CONF_<i>`, which overwrite each
  other), and spark-submit adds 6 of its own: so only 3 are passed, the runtime settings live in
  the spec, and the table folder is set by the working directory (Spark's default
  `spark-warehouse/` under it);
- `--jars` does not reach the class loader of that server, so the Delta jars from `.jars/` go on
  the JVM class path through SPARK_DIST_CLASSPATH.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import yaml

from nyc911lib.config import Params
from nyc911lib.engine import small_input
from nyc911lib.errors import Nyc911Error, one_line
from nyc911lib.spark_conf import LOCAL_CONF, QUICK_START_JAVA_OPTIONS, delta_jars

PIPELINES_DIR = Path(os.environ.get("NYC911_PIPELINES", Path(__file__).resolve().parents[2] / "pipelines"))
DECLARATIVE_DIR = "_declarative"  # in a warehouse: the runs of the declarative runner
CURRENT = "current"  # <warehouse>/_declarative/current -> runs/<run id>/spark-warehouse
# The static settings of nyc911lib.spark.LOCAL_CONF a run needs (10 fit, spark-submit adds 6).
STATIC_CONF = ("spark.sql.extensions", "spark.sql.catalog.spark_catalog", "spark.ui.enabled")


class PipelineFailedError(Nyc911Error):
    """`spark-pipelines run` failed: the message carries its last error line."""


def is_declarative(warehouse: Path) -> bool:
    """Whether the declarative runner built this warehouse."""
    return (warehouse / DECLARATIVE_DIR).is_dir()


def incremental_tables(params: Params) -> list[str]:
    """The tables of this warehouse that an incremental runner wrote (real folders, not links)."""
    assert params.warehouse is not None
    found = []
    for layer, key, name in _tables(params):
        path = params.warehouse / layer / name
        if path.exists() and not path.is_symlink():
            found.append(f"{layer}.{key}")
    return found


def _tables(params: Params) -> list[tuple[str, str, str]]:
    """(layer, key, table name) of every table params name (the registry's, tests/test_registry.py)."""
    return [(layer, key, name) for layer, names in params.tables.items() for key, name in names.items()]


def check_runner_fits(params: Params, runner: str) -> None:
    """One warehouse, one kind of runner: the declarative runner rebuilds every table from the
    landed files on each run, the others add to their tables; neither may take over the other's."""
    if params.warehouse is None:
        return
    if runner == "declarative":
        held = incremental_tables(params)
        if held:
            raise Nyc911Error(
                f"warehouse {params.warehouse} holds tables of the incremental runners ({held[0]}, ...); "
                "the declarative runner rebuilds every table on each run and needs a warehouse of its own: "
                "give another --warehouse"
            )
    elif is_declarative(params.warehouse):
        raise Nyc911Error(
            f"warehouse {params.warehouse} was built by the declarative runner (every table rebuilt from "
            "landing on each run): run it with --runner declarative, or give another --warehouse"
        )


def spec(params: Params, run_id: str, run_dir: Path, configuration: dict[str, str]) -> Path:
    """The repo's spec, pointed at this run's folder, warehouse and configuration, in `run_dir`."""
    content = yaml.safe_load((PIPELINES_DIR / "spark-pipeline.yml").read_text(encoding="utf-8"))
    content["storage"] = (run_dir / "storage").as_uri()
    content["configuration"] = {
        **content.get("configuration", {}),
        "nyc911.params": str(params.source_file),
        "nyc911.run_id": run_id,
        # Every Delta commit of the run records its engine and runner, as the other runners' do.
        "spark.databricks.delta.commitInfo.userMetadata": json.dumps(
            {"engine": "spark", "runner": "declarative", "run_id": run_id}
        ),
        **configuration,
    }
    (run_dir / "transformations").symlink_to(PIPELINES_DIR / "transformations", target_is_directory=True)
    path = run_dir / "spark-pipeline.yml"
    path.write_text(yaml.safe_dump(content, sort_keys=False), encoding="utf-8")
    return path


def command(spec_path: Path, *, quick_start: bool = False) -> tuple[list[str], dict[str, str]]:
    """The spark-pipelines command line and its environment; `quick_start`: the driver JVM with
    the options that start it faster (small inputs, as the spark engine's own sessions)."""

    jars = delta_jars()
    if not jars:
        raise Nyc911Error("Delta jars not found in .jars/: run `make venv` (it fetches them with Maven)")
    bin_dir = Path(sys.executable).parent
    args = [str(bin_dir / "spark-pipelines")]
    for key in STATIC_CONF:
        args += ["--conf", f"{key}={LOCAL_CONF[key]}"]
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYSPARK_PYTHON": sys.executable,
        "SPARK_DIST_CLASSPATH": os.pathsep.join(str(jar) for jar in jars),
        "SPARK_DRIVER_MEMORY": LOCAL_CONF["spark.driver.memory"],  # the JVM starts before any conf
    }
    if quick_start:  # measured on the sample: 174 -> 111 CPU-seconds, 93 -> 78 s
        env["SPARK_SUBMIT_OPTS"] = (
            f"{os.environ.get('SPARK_SUBMIT_OPTS', '')} {QUICK_START_JAVA_OPTIONS}".strip()
        )
    return [*args, "run", "--spec", str(spec_path)], env


CONNECT_PORT = 15002  # the local Spark Connect server's port: spark-pipelines takes no other
PORT_LOCK = Path(tempfile.gettempdir()) / f"nyc911-spark-connect-{CONNECT_PORT}.lock"


@contextlib.contextmanager
def spark_connect_port() -> Iterator[None]:
    """Hold the local Spark Connect port for one run. `spark-pipelines run` starts its server on
    port 15002 and its client connects there (pyspark 4.2 picks another port only in Spark's own
    tests), so two declarative runs at once, on any warehouses, would fail the second with a
    BindException: a run waits for the one before it, saying so; a port held by another program
    stops it with one line."""
    PORT_LOCK.touch(exist_ok=True)
    with PORT_LOCK.open("r") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for another declarative run (it holds port {CONNECT_PORT})", flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            if probe.connect_ex(("127.0.0.1", CONNECT_PORT)) == 0:
                raise Nyc911Error(
                    f"port {CONNECT_PORT}, where the declarative runner starts Spark Connect, is in use "
                    "by another program: stop it, then run again"
                )
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _last_error(output: str) -> str:
    """The line of `spark-pipelines run`'s output that names what failed."""
    lines = [line for line in output.splitlines() if line.strip() and not line.startswith(("\tat ", " "))]
    for line in reversed(lines):
        if "Error" in line or "Exception" in line:
            return one_line(Exception(line))
    return lines[-1] if lines else "no output"


def _current_run(root: Path) -> Path | None:
    current = root / CURRENT
    return current.resolve().parent if current.is_symlink() else None


def remove_stale_runs(root: Path) -> None:
    """Remove every run folder but the published one (a failed or killed run's leftovers)."""
    keep = _current_run(root)
    for run_dir in sorted((root / "runs").glob("*")):
        if run_dir.resolve() != keep:
            shutil.rmtree(run_dir, ignore_errors=True)
    for staged in root.glob(f".{CURRENT}-*"):
        staged.unlink(missing_ok=True)


def publish(params: Params, run_dir: Path) -> None:
    """Make the run's tables the warehouse's, in one atomic rename (see the module docstring)."""
    assert params.warehouse is not None
    root = params.warehouse / DECLARATIVE_DIR
    for layer, _, name in _tables(params):
        link = params.warehouse / layer / name
        target = Path(os.path.relpath(root / CURRENT / name, link.parent))
        if link.is_symlink() and Path(os.readlink(link)) == target:
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        link.unlink(missing_ok=True)
        link.symlink_to(target, target_is_directory=True)
    staged = root / f".{CURRENT}-{run_dir.name}"
    staged.unlink(missing_ok=True)
    staged.symlink_to(Path(os.path.relpath(run_dir / "spark-warehouse", root)), target_is_directory=True)
    os.replace(staged, root / CURRENT)  # the one step that switches every table at once
    remove_stale_runs(root)


def run_declarative(
    params: Params,
    run_id: str,
    configuration: dict[str, str] | None = None,
) -> Path:
    """Run the declarative pipeline on the warehouse's landed files and publish its tables;
    return the run's folder (its spec and `spark-pipelines.log`). `configuration`: more
    `nyc911.*` settings (the gold scope: nyc911.date_from, nyc911.date_to)."""
    if params.warehouse is None:
        raise Nyc911Error("the declarative runner writes a local warehouse; on Databricks run the pipeline")
    warehouse = params.warehouse.resolve()
    root = warehouse / DECLARATIVE_DIR
    (root / "runs").mkdir(parents=True, exist_ok=True)
    remove_stale_runs(root)
    run_dir = root / "runs" / run_id
    run_dir.mkdir()
    spec_path = spec(params, run_id, run_dir, {"nyc911.warehouse": str(warehouse), **(configuration or {})})
    cmd, env = command(spec_path, quick_start=small_input(params))
    log = run_dir / "spark-pipelines.log"
    with spark_connect_port(), log.open("wb") as out:
        done = subprocess.run(cmd, cwd=run_dir, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        output = log.read_text(encoding="utf-8", errors="replace")
        raise PipelineFailedError(f"spark-pipelines run failed: {_last_error(output)} (log: {log})")
    publish(params.with_warehouse(warehouse), run_dir)
    return run_dir
