"""Helpers of the engine parity tests (tests/test_parity.py) and of the tests that build reference
warehouses on the duckdb engine in a process of their own (tests/test_faults.py,
tests/test_declarative_pipeline.py).

Importable (no engine, no pyspark: only delta-rs, pyarrow and PyYAML, so the test process's own
engine never matters):

- `land_as`: put an export in a warehouse's landing folder under a fixed name, so two warehouses
  that land the same file get the same batch id (the landing stamp comes from the name).
- `start_runs` / `wait_runs`: `nyc911 run --runner inline` several times in ONE new process of
  one engine (one JVM start for the spark engine), each step landing its files first.
- `diff_warehouses` / `diff_tables`: every table of every layer of two warehouses compared with
  delta-rs: Delta types (nullability ignored), row counts, rows (sorted, floats to 1e-9 relative).
- `commits`: every commit of a table with its userMetadata.

Run as a script, it is the subprocess of `start_runs`:

    python tests/engine_runs.py <plan.json>

plan: {"engine": "duckdb"|"spark", "steps": [step, ...]}, a step being {"warehouse": W,
"land": [[source, name], ...], "args": [...], "wait": [file, ...], "kill_at": point, "copy":
[[from, to], ...], "mark": file}. Each step waits until the `wait` files exist (marks of the other
engine's process, whose warehouse it continues), lands its files in W/landing (as `land_as`);
with `kill_at` (a point of nyc911lib.run.faults, `+<seconds>` allowed) it first runs `nyc911 run`
(with `args`) on W in a new process of the same engine (local: never on NYC911_MASTER's cluster, whose cores
this process holds) and kills that process and its JVM at once at that point, as a power cut
would; then it calls
`nyc911lib.run.cli.main(["run", "--engine", engine, "--runner", "inline", "--warehouse", W, *args])`
with its reports in W-reports, copies the `copy` folders and writes its `mark`. The first step
that fails ends the process with its status.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import yaml
from deltalake import DeltaTable
from deltalake.schema import ArrayType, MapType, PrimitiveType, StructType

from nyc911lib.io.delta_rs import read_arrow
from nyc911lib.io.files import copy_atomic

REPO = Path(__file__).resolve().parents[1]
PARAMS_FILE = REPO / "params" / "default.yaml"

# Columns that differ by design between two runs of the same publications: paths (they name the
# warehouse), wall-clock times, run ids. Batch ids are compared: every warehouse lands the same
# file under the same name (`land_as`), so they are equal by construction.
VOLATILE = frozenset(
    {
        "_source_file",
        "source_file",
        "old_source_file",
        "new_source_file",
        "_ingested_at",
        "ingested_at",
        "evaluated_at",
        "run_id",
    }
)
# What depends on the landing time: excluded too when two warehouses landed under other names.
BATCH_IDS = frozenset(
    {"_batch_id", "batch_id", "superseded_by_batch_id", "old_batch_id", "new_batch_id", "duplicate_of"}
)
STEP_TIMES = "step-seconds.txt"  # in a plan's log folder: one line per finished step
REL_TOL = 1e-9
ABS_TOL = 1e-12
EXAMPLES = 3


# --- Landing ----------------------------------------------------------------------------------

# The names the parity and declarative warehouses land the sample and the real exports under
# (UTC stamp, kind, file): the same in every warehouse, so their batch ids are equal.
SAMPLE_NAME = "20260105T000000000000Z__sample__nyc911_sample.csv"
FIRST_NAME = "20260105T000000000000Z__file__nyc911_e2e_through_2023-01-23.csv"
SECOND_STAMP = "20260112T000000000000Z"
SECOND_NAME = f"{SECOND_STAMP}__file__nyc911_e2e_through_2025-12-22.csv"


def reports_dir(warehouse: Path) -> Path:
    """Where a step's run on `warehouse` writes its reports: beside it, `<warehouse>-reports`."""
    return warehouse.parent / f"{warehouse.name}-reports"


def params_copy(folder: Path, **changes) -> Path:
    """A copy of the project's params in `folder` (the rule files beside it) with `changes`: a
    value replaces the top-level setting, a dict updates that section (e.g. performance={...});
    returns its default.yaml."""
    folder.mkdir(parents=True, exist_ok=True)
    values = yaml.safe_load(PARAMS_FILE.read_text(encoding="utf-8"))
    for key, value in changes.items():
        values[key] = {**values[key], **value} if isinstance(value, dict) else value
    for name in (values["sla_rules_file"], values["quality_rules_file"]):
        shutil.copyfile(PARAMS_FILE.parent / name, folder / name)
    path = folder / PARAMS_FILE.name
    path.write_text(yaml.safe_dump(values, sort_keys=False), encoding="utf-8")
    return path


def land_as(source: Path, warehouse: Path, name: str) -> Path:
    """Copy `source` into `warehouse`/landing as `name`, atomically as the library lands a file.
    `name` is `<UTC stamp>__<kind>__<file>`, e.g. `20260105T000000000000Z__file__export.csv`."""
    return copy_atomic(source, warehouse / "landing" / name)


# --- Runs in a subprocess per engine ----------------------------------------------------------


# Settings of the caller's environment that would send a run elsewhere than the test says.
CLEARED_ENV = (
    "NYC911_ENGINE",
    "NYC911_WAREHOUSE",
    "NYC911_LANDING_DIR",
    "NYC911_REPORTS_DIR",
    "NYC911_ENVIRONMENT",
    "NYC911_CATALOG",
    "NYC911_MASTER",
    "NYC911_DEBUG",
)


def run_env(log_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a run's process: this repository first on PYTHONPATH, the Spark driver's
    log in `log_dir`, Python workers on this interpreter; `extra` on top."""
    env = dict(os.environ)
    for key in CLEARED_ENV:
        env.pop(key, None)
    env.update(
        PYTHONPATH=os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]),
        NYC911_SPARK_LOG=str(log_dir / "spark-driver.log"),
        PYSPARK_PYTHON=sys.executable,
    )
    env.update(extra)
    return env


class Runs:
    """A started subprocess running a plan; `wait_runs` checks it."""

    def __init__(self, engine: str, steps: list[dict], log_dir: Path, env: dict[str, str]):
        self.engine = engine
        self.log_dir = log_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        plan = log_dir / "plan.json"
        plan.write_text(json.dumps({"engine": engine, "steps": steps}, indent=1), encoding="utf-8")
        self.out = log_dir / "out.log"
        self.started = time.monotonic()
        with self.out.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), str(plan)],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.seconds: float | None = None


def start_runs(engine: str, steps: list[dict], log_dir: Path, **extra_env: str) -> Runs:
    """Start one process of `engine` that runs `steps` (see the module docstring) in order."""
    return Runs(engine, steps, log_dir, run_env(log_dir, **extra_env))


def wait_runs(*runs: Runs, timeout: float = 2400) -> dict[str, float]:
    """Wait for every started plan; when one fails, stop the others (they may be waiting for its
    marks) and fail with the end of its output and of its Spark log. Returns the seconds each took."""
    pending, failures = list(runs), []
    deadline = time.monotonic() + timeout
    try:
        while pending:
            for run in list(pending):
                code = run.process.poll()
                if code is None and time.monotonic() > deadline:
                    _stop(run)
                    code = "timeout"
                if code is None:
                    continue
                pending.remove(run)
                run.seconds = time.monotonic() - run.started
                if code != 0:
                    failures.append(
                        f"{run.engine} runs ended with {code}:\n{tail(run.out)}"
                        f"{tail(run.log_dir / 'spark-driver.log')}"
                    )
                    for other in pending:
                        _stop(other)
            time.sleep(0.5)
    finally:  # interrupted (a test timeout, Ctrl-C): leave no JVM behind
        for run in pending:
            _stop(run)
    if failures:
        raise AssertionError("\n".join(failures))
    return {run.engine: round(run.seconds or 0.0, 1) for run in runs}


def _stop(run: Runs) -> None:
    """End a plan's process group (its own session: the process, its JVM, Spark's Python workers)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(run.process.pid, signal.SIGKILL)
    run.process.wait()


def step_seconds(run: Runs) -> list[float]:
    """The seconds each step of a finished plan took."""
    times = run.log_dir / STEP_TIMES
    return [float(line) for line in times.read_text(encoding="utf-8").split()] if times.is_file() else []


def tail(path: Path, lines: int = 40) -> str:
    if not path.is_file():
        return ""
    text = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    return f"--- {path}\n" + "\n".join(text) + "\n"


def copy_warehouse(source: Path, target: Path) -> Path:
    """A copy of a warehouse folder (a snapshot to compare later, or a branch to continue)."""
    shutil.copytree(source, target)
    return target


# --- Reading and comparing warehouses with delta-rs -------------------------------------------


def table_paths(warehouse: Path) -> dict[str, Path]:
    """`layer.table` -> folder, for every table of params/default.yaml."""
    tables = yaml.safe_load(PARAMS_FILE.read_text(encoding="utf-8"))["tables"]
    return {
        f"{layer}.{name}": warehouse / layer / name
        for layer, names in tables.items()
        for name in names.values()
    }


def type_name(data_type) -> str:
    """A Delta type as text, without nullability (`long`, `array<string>`, `struct<a:int>`)."""
    if isinstance(data_type, PrimitiveType):
        return data_type.type
    if isinstance(data_type, ArrayType):
        return f"array<{type_name(data_type.element_type)}>"
    if isinstance(data_type, MapType):
        return f"map<{type_name(data_type.key_type)},{type_name(data_type.value_type)}>"
    if isinstance(data_type, StructType):
        return "struct<" + ",".join(f"{f.name}:{type_name(f.type)}" for f in data_type.fields) + ">"
    return repr(data_type)


def delta_schema(path: Path) -> list[tuple[str, str]]:
    """(column, Delta type) of a table, in order."""
    return [(f.name, type_name(f.type)) for f in DeltaTable(str(path)).schema().fields]


def _plain(value):
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, list):
        return tuple(_plain(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _plain(v)) for k, v in value.items()))
    return value


def _sort_key(value):
    if value is None:
        return (0, "")
    if isinstance(value, float):
        return (1, f"{value:.8e}")  # rounded: two engines' last bits never reorder rows
    if isinstance(value, tuple):
        return (2, tuple(_sort_key(v) for v in value))
    return (3, repr(value))


def _close(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def sorted_rows(table, columns: list[str]) -> list[tuple]:
    """The rows of an Arrow table (those columns), as sorted tuples of plain Python values."""
    rows = [tuple(_plain(row[c]) for c in columns) for row in table.select(columns).to_pylist()]
    return sorted(rows, key=lambda row: [_sort_key(v) for v in row])


def _show(row: dict) -> str:
    def short(value):
        if isinstance(value, dt.date):
            return value.isoformat()
        text = repr(value)
        return text if len(text) <= 80 else text[:77] + "..."

    return "{" + ", ".join(f"{k}: {short(v)}" for k, v in row.items() if v is not None) + "}"


def diff_rows(columns: list[str], left: list[tuple], right: list[tuple]) -> list[str]:
    """What differs between two sorted row lists (empty: equal): the count, with examples of rows
    only one side has; else each column whose values differ (floats to 1e-9 relative)."""

    def shown(row):
        return _show(dict(zip(columns, row, strict=True)))

    if len(left) != len(right):

        def key(row):
            return [_sort_key(v) for v in row]

        only_left = sorted(set(left) - set(right), key=key)[:EXAMPLES]
        only_right = sorted(set(right) - set(left), key=key)[:EXAMPLES]
        return [
            f"row count {len(left)} vs {len(right)}",
            *(f"  only left: {shown(r)}" for r in only_left),
            *(f"  only right: {shown(r)}" for r in only_right),
        ]
    by_column: dict[str, list[tuple]] = {}
    for row_a, row_b in zip(left, right, strict=True):
        for column, x, y in zip(columns, row_a, row_b, strict=True):
            if not _close(x, y):
                by_column.setdefault(column, []).append((x, y, row_a, row_b))
    problems = []
    for column, examples in by_column.items():
        problems.append(f"column {column}: {len(examples)} of {len(left)} rows differ, e.g.")
        for x, y, row_a, row_b in examples[:EXAMPLES]:
            problems.append(f"  {x!r} vs {y!r}\n    left  {shown(row_a)}\n    right {shown(row_b)}")
    return problems


def diff_tables(left: Path, right: Path, exclude: frozenset[str] = VOLATILE) -> list[str]:
    """What differs between two Delta tables (empty: equal): columns and Delta types (nullability
    ignored), then, over the columns both have except `exclude`, the row count and the rows in
    sorted order (floats to 1e-9 relative), with examples."""
    if not (left / "_delta_log").is_dir() or not (right / "_delta_log").is_dir():
        return [f"table missing: {left} exists={left.is_dir()}, {right} exists={right.is_dir()}"]
    problems = []
    ls, rs = delta_schema(left), delta_schema(right)
    if ls != rs:
        lt, rt = dict(ls), dict(rs)
        only_left = [c for c in lt if c not in rt]
        only_right = [c for c in rt if c not in lt]
        types = [f"{c}: {lt[c]} vs {rt[c]}" for c in lt if c in rt and lt[c] != rt[c]]
        order = [c for c, _ in ls if c in rt] != [c for c, _ in rs if c in lt]
        problems.append(
            f"schema differs: only left {only_left}, only right {only_right}, types {types}, "
            f"column order differs: {order}"
        )
    right_types = dict(rs)
    columns = [c for c, t in ls if c not in exclude and right_types.get(c) == t]
    rows = [sorted_rows(read_arrow(p, columns), columns) for p in (left, right)]
    return problems + diff_rows(columns, *rows)


def change_feed(path: Path, exclude: frozenset[str] = VOLATILE) -> tuple[list[str], list[tuple]]:
    """The whole Change Data Feed of a table (its columns but `exclude` and the commit time, with
    `_change_type` and `_commit_version`) as sorted rows."""
    feed = pa.RecordBatchReader.from_stream(DeltaTable(str(path)).load_cdf(starting_version=0)).read_all()
    columns = [c for c in feed.column_names if c not in exclude and c != "_commit_timestamp"]
    return columns, sorted_rows(feed, columns)


def diff_warehouses(
    left: Path, right: Path, exclude: frozenset[str] = VOLATILE, layers: tuple[str, ...] = ()
) -> dict[str, list[str]]:
    """`layer.table` -> what differs, for every table of params/default.yaml (of `layers`, or all)
    that differs between two warehouses."""
    out = {}
    right_paths = table_paths(right)
    for name, path in table_paths(left).items():
        if layers and name.split(".")[0] not in layers:
            continue
        problems = diff_tables(path, right_paths[name], exclude)
        if problems:
            out[name] = problems
    return out


def report(differences: dict[str, list[str]]) -> str:
    return "\n".join(f"{name}:\n  " + "\n  ".join(lines) for name, lines in differences.items())


def commits(path: Path) -> list[tuple[int, str, dict | None]]:
    """(version, operation, userMetadata as JSON or None) of every commit of a table, oldest first."""
    out = []
    for entry in DeltaTable(str(path)).history():
        text = entry.get("userMetadata")
        try:
            metadata = json.loads(text) if text else None
        except ValueError:
            metadata = {"unparsable": text}
        out.append((entry.get("version"), entry.get("operation"), metadata))
    return sorted(out, key=lambda c: c[0])


def table_version(path: Path) -> int:
    return DeltaTable(str(path)).version()


# --- The subprocess ---------------------------------------------------------------------------


def _wait_for(files: list[str], timeout: float = 1800) -> None:
    deadline = time.monotonic() + timeout
    while not all(Path(f).exists() for f in files):
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:.0f} s for {files}")
        time.sleep(0.5)


KILL_TIMEOUT_S = 600


def _killed_at(engine: str, warehouse: Path, point: str, log_dir: Path, args: list[str]) -> None:
    """`nyc911 run` on `warehouse` in a new process group, killed (SIGKILL to the group: the CLI and
    its JVM) at `point`; AssertionError when the run ends or fails before it."""
    mark = log_dir / f"killed-{warehouse.name}.mark"
    env = {k: v for k, v in os.environ.items() if k != "NYC911_MASTER"}
    env.update(
        NYC911_KILL_AT=point, NYC911_FAULT_MARK=str(mark), NYC911_SPARK_LOG=str(log_dir / "killed-driver.log")
    )
    argv = ["run", "--engine", engine, "--runner", "inline", "--warehouse", str(warehouse), *args]
    with (log_dir / f"killed-{warehouse.name}.log").open("wb") as out:
        run = subprocess.Popen(
            [sys.executable, "-m", "nyc911lib.run.cli", *argv],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        wait_for_point(run, mark, point)
    finally:  # at the point, or the run ended or never reached it
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.pid, signal.SIGKILL)
        run.wait()


def wait_for_point(run: subprocess.Popen, mark: Path, point: str, detail=lambda: "") -> None:
    """Return once `run` (started with NYC911_KILL_AT=`point`, NYC911_FAULT_MARK=`mark`) reached the
    fault point (nyc911lib.run.faults writes `mark` there) and the point's `+<seconds>` passed;
    AssertionError when the run ends first or the point never comes (`detail()` appended)."""
    deadline = time.monotonic() + KILL_TIMEOUT_S
    while not mark.exists():
        if run.poll() is not None:
            raise AssertionError(f"the run ended before {point} (exit {run.poll()}){detail()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{point} was never reached{detail()}")
        time.sleep(0.05)
    time.sleep(float(point.partition("+")[2] or 0))


def _main(plan_file: str) -> int:
    plan = json.loads(Path(plan_file).read_text(encoding="utf-8"))
    from nyc911lib.run import cli  # noqa: PLC0415 - this process's engine is chosen by the first run

    for number, step in enumerate(plan["steps"], start=1):
        _wait_for(step.get("wait", []))
        warehouse = Path(step["warehouse"])
        for source, name in step.get("land", []):
            land_as(Path(source), warehouse, name)
        os.environ["NYC911_REPORTS_DIR"] = str(reports_dir(warehouse))
        if step.get("kill_at"):
            args = step.get("args", [])
            _killed_at(plan["engine"], warehouse, step["kill_at"], Path(plan_file).parent, args)
            print(f"=== step {number}: a run killed at {step['kill_at']}", flush=True)
        argv = ["run", "--engine", plan["engine"], "--runner", "inline", "--warehouse", str(warehouse)]
        argv += step.get("args", [])
        started = time.monotonic()
        print(f"=== step {number}: {' '.join(argv)}", flush=True)
        code = cli.main(argv)
        sys.stdout.flush()
        if code:
            print(f"=== step {number}: exit {code}", flush=True)
            return code
        seconds = time.monotonic() - started
        print(f"=== step {number}: exit 0 in {seconds:.1f} s", flush=True)
        with (Path(plan_file).parent / STEP_TIMES).open("a", encoding="utf-8") as times:
            times.write(f"{seconds:.1f}\n")
        for source, target in step.get("copy", []):
            copy_warehouse(Path(source), Path(target))
        if step.get("mark"):
            Path(step["mark"]).write_text("done\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1]))
