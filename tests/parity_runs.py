"""The warehouses of the engine parity tests (tests/test_parity.py), built once per test session
by the session fixture `built` (registered in conftest), which tests/test_declarative_pipeline.py
uses too: its declarative warehouses are compared with `sample-duckdb` and `duckdb-2`.

Warehouses (the real exports only when ../shared/data has them). The
spark engine runs twice (a Spark run costs a hundred seconds of a JVM here), each run compared
with the duckdb engine's and continued by it or continuing it:

- `sample-<engine>`: the built-in sample, per engine.
- `duckdb`: the duckdb engine alone: the 2023 export, the 2025 export (which revises 48 of its
  rows), then a third publication that revises every row of the 2025 export's last week
  (`third_publication`); `duckdb-1` and `duckdb-2` are its snapshots after the first two.
- `duckdb-spark`: the 2023 export by duckdb, then the 2025 export (its MERGE of the restated rows,
  every gold table) by spark: equal to `duckdb-2`. That spark run is first killed in its silver
  MERGE (`KILL_AT`: a `nyc911 run --engine spark` of its own, the process and its JVM killed at
  once), then run again: the spark engine's crash case (tests/test_faults.py kills the duckdb
  engine at every point), so equal to `duckdb-2` means a crash in a MERGE loses and duplicates
  nothing, on real data, in a warehouse the other engine wrote.
- `duckdb-spark-duckdb`: that warehouse continued by duckdb with the third publication: equal to
  `duckdb`.

Every run recomputes gold by the weeks a publication reaches (params with
`performance.weeks_gold_min_mb: 0`), as a warehouse of real size does.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import os
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path

import declarative_runs
import psutil
import pytest
from conftest import REAL_2023, REAL_2025
from engine_runs import (
    FIRST_NAME,
    SAMPLE_NAME,
    SECOND_NAME,
    params_copy,
    reports_dir,
    start_runs,
    step_seconds,
    wait_runs,
)
from spark_cluster import Cluster, standalone_cluster

from nyc911lib.sample import write_sample

ENGINES = ("duckdb", "spark")
CROSS_NAMES = ("duckdb-spark", "duckdb-spark-duckdb")
THIRD_STAMP = "20260119T000000000000Z"
THIRD_NAME = f"{THIRD_STAMP}__file__restated_last_week.csv"
SAMPLE_LINES = 1880
SECOND_LINES = 11606
KILL_AT = "silver.before_merge+1.5"  # the kill lands during the MERGE (or just after its commit)
RESTATED_ROWS = 48  # rows of the 2023 export that the 2025 export revises


def third_publication(export: Path, target: Path) -> Path:
    """A publication after `export` that restates its last week: every row of that week with 7 more
    incidents (the city revises recent weeks)."""
    lines = export.read_text(encoding="utf-8").splitlines()
    header, rows = lines[0], list(csv.reader(lines[1:]))
    count = next(csv.reader([header])).index("# of Incidents Calculated")
    last_week = max(rows, key=lambda r: dt.datetime.strptime(r[0], "%m/%d/%Y"))[0]
    revised = [
        [*r[:count], str(int(r[count]) + 7), *r[count + 1 :]]
        for r in rows
        if r[0] == last_week and r[count].isdigit()
    ]
    with target.open("w", encoding="utf-8", newline="") as out:
        out.write(header + "\n")
        csv.writer(out, lineterminator="\n").writerows(revised)
    return target


@dataclass
class Built:
    root: Path
    real: bool
    sample: dict[str, Path]
    duckdb: Path  # the three publications, duckdb alone
    snapshots: dict[int, Path]  # duckdb after the first / the first two publications
    cross: dict[str, Path]  # "duckdb-spark", "duckdb-spark-duckdb"
    third_rows: int = 0
    cluster: Cluster | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    steps: dict[str, list[float]] = field(default_factory=dict)


def planned(root: Path) -> Built:
    """Where `build(root)` puts each warehouse."""
    return Built(
        root=root,
        real=REAL_2023.is_file() and REAL_2025.is_file(),
        sample={e: root / f"sample-{e}" for e in ENGINES},
        duckdb=root / "duckdb",
        snapshots={1: root / "duckdb-1", 2: root / "duckdb-2"},
        cross={name: root / name for name in CROSS_NAMES},
    )


def build(root: Path) -> Built:
    """Every parity warehouse, built by one duckdb and one spark process running side by side (the
    spark one on a standalone cluster); a run that continues the other engine's warehouse waits
    for its mark."""
    root.mkdir(parents=True)
    sample = write_sample(root / "nyc911_sample.csv")
    out = planned(root)
    steps: dict[str, list[dict]] = {e: [] for e in ENGINES}
    # Spark's JVM starts on the sample while duckdb lands the 2023 export.
    for e in ENGINES:
        steps[e].append({"warehouse": out.sample[e], "land": [[sample, SAMPLE_NAME]]})
    if out.real:
        third = third_publication(REAL_2025, root / "restated_last_week.csv")
        out.third_rows = len(third.read_text(encoding="utf-8").splitlines()) - 1
        first_done, second_done = root / "duckdb-first.done", root / "spark-second.done"
        steps["duckdb"] += [
            {
                "warehouse": out.duckdb,
                "land": [[REAL_2023, FIRST_NAME]],
                "copy": [[out.duckdb, out.snapshots[1]], [out.duckdb, out.cross["duckdb-spark"]]],
                "mark": first_done,
            },
            {
                "warehouse": out.duckdb,
                "land": [[REAL_2025, SECOND_NAME]],
                "copy": [
                    [out.duckdb, out.snapshots[2]],
                    [reports_dir(out.duckdb), reports_dir(out.snapshots[2])],
                ],
            },
            {"warehouse": out.duckdb, "land": [[third, THIRD_NAME]]},
            {
                "warehouse": out.cross["duckdb-spark-duckdb"],
                "land": [[third, THIRD_NAME]],
                "wait": [second_done],
            },
        ]
        steps["spark"].append(
            {
                "warehouse": out.cross["duckdb-spark"],
                "land": [[REAL_2025, SECOND_NAME]],
                "wait": [first_done],
                "kill_at": KILL_AT,
                "copy": [[out.cross["duckdb-spark"], out.cross["duckdb-spark-duckdb"]]],
                "mark": second_done,
            }
        )
    # Gold recomputes by weeks however small silver is (the default rebuilds a 1x silver whole):
    # that path is the one a real warehouse takes, and it must be equal across engines too.
    by_weeks = params_copy(root / "params", performance={"weeks_gold_min_mb": 0})
    for step in (s for e in ENGINES for s in steps[e]):
        step["args"] = ["--params", by_weeks]
    with standalone_cluster(root / "cluster") as cluster:
        runs = [
            start_runs("duckdb", _jsonable(steps["duckdb"]), root / "logs-duckdb"),
            start_runs("spark", _jsonable(steps["spark"]), root / "logs-spark", NYC911_MASTER=cluster.url),
        ]
        out.seconds = wait_runs(*runs)
    out.cluster = cluster
    out.steps = {run.engine: step_seconds(run) for run in runs}
    print(f"\nparity runs: seconds per process {out.seconds}, per step {out.steps}")
    return out


class EngineWarehouses:
    """The parity warehouses and the declarative runs compared with them, built in a thread of the
    Spark test process (all their work is in subprocesses) from the start of the session, while
    that process runs its other tests; `parity()` and `declarative()` wait for each part.

    The declarative runs start at once beside the parity runs (they read none of their warehouses;
    only their tests compare them), instead of after them at the end of `make test`."""

    def __init__(self, root: Path):
        self.root = root
        self._parts: dict[str, object] = {}
        self._done = {part: threading.Event() for part in ("parity", "declarative")}
        self._thread = threading.Thread(target=self._build, name="engine-warehouses", daemon=True)

    def start(self) -> EngineWarehouses:
        self._thread.start()
        return self

    def _build(self) -> None:
        parity_root, folder = self.root / "parity", self.root / "declarative"
        try:
            expected = planned(parity_root)
            references = {
                "sample": expected.sample["duckdb"],
                **({"real": expected.snapshots[2]} if expected.real else {}),
            }
            declarative = declarative_runs.start(folder, references)
        except BaseException as exc:
            declarative = exc
        for part, make in (
            ("parity", lambda: build(parity_root)),
            ("declarative", lambda: self._declarative(folder, declarative)),
        ):
            try:
                self._parts[part] = make()
            except BaseException as exc:
                self._parts[part] = exc
            self._done[part].set()

    def _declarative(self, folder: Path, started) -> dict[str, tuple[Path, Path]]:
        if isinstance(started, BaseException):
            raise started
        self.parity()  # its warehouses are the references
        return declarative_runs.wait(folder, started)

    def _wait(self, part: str):
        self._done[part].wait()
        found = self._parts[part]
        if isinstance(found, BaseException):
            raise AssertionError(f"the {part} warehouses could not be built: {found}") from found
        return found

    def running(self) -> bool:
        return self._thread.is_alive()

    def parity(self) -> Built:
        return self._wait("parity")

    def declarative(self) -> dict[str, tuple[Path, Path]]:
        return self._wait("declarative")


# Test modules whose tests use these warehouses: the Spark process runs them last (conftest).
USERS = ("test_parity.py", "test_declarative_pipeline.py")


@pytest.fixture(scope="session")
def engine_warehouses(tmp_path_factory):
    """The parity and declarative warehouses being built (conftest starts them with the session's
    first test in the Spark process). A session that ends before they are built (a failure, ^C)
    stops their processes."""
    warehouses = EngineWarehouses(tmp_path_factory.mktemp("engines")).start()
    yield warehouses
    if warehouses.running():
        for child in psutil.Process().children(recursive=True):
            if any(
                script in " ".join(child.cmdline()) for script in ("engine_runs.py", "declarative_runs.py")
            ):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(child.pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def built(engine_warehouses) -> Built:
    """The parity warehouses (waits for them)."""
    return engine_warehouses.parity()


def _jsonable(value):
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


@pytest.fixture(scope="session")
def warehouses(engine_warehouses) -> dict[str, tuple[Path, Path]]:
    """{"sample" | "real": (declarative warehouse, incremental warehouse)} over the same landed
    files (tests/declarative_runs.py, in a process of its own): the incremental ones are the
    parity warehouses of the duckdb engine (waits for them)."""
    return engine_warehouses.declarative()
