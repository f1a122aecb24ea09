"""`make bench`: time the pipeline end to end on both engines and write reports/bench/bench.{md,json}.

Scenarios (each a subprocess, measured by `benchmarks.procmem`: wall time, peak RSS of the whole
process tree, notebook kernels and the Spark driver JVM included). Every pipeline run is
`python -m nyc911lib.run.cli run --engine E --runner R --source FILE --warehouse W` (`nyc911 run`):

  a  full refresh of the real export, notebooks runner, a fresh warehouse per run
  b  the same with the inline runner (duckdb only): what the notebooks runner adds to a
  c  incremental run with nothing new: the same source again on (a copy of) the warehouse of a
  d  incremental run with one new week: the export plus its last week dated 7 days later, on it
  p  papermill alone: four trivial notebooks in one kernel, run by nyc911lib.run.papermill_runner (no engine)
  e  full refresh (inline runner) of the export replicated 10x, 100x, 1,000x (`--scales`); with
     `--engines` including spark also on Spark (`e100-spark`, once: minutes at 100x)
  f  the floor: the same gold KPIs from the same CSV with DuckDB SQL in one process
  w  the weekly workload at each scale of e: a five-week publication (four weeks restated, one
     new: what `nyc911 fetch --api --since` lands) on the warehouse e left (inline runner)

`--engines duckdb,spark`: a, c and d run on each engine (keys `a`, `a-spark`, ...), each engine's c
and d on a copy of its own a's warehouse. Every pipeline run's gold (kpi_summary.json and
gold/kpi_monthly_agency) is compared with the floor's numbers for its source (rtol 1e-9); a
difference fails the bench (exit 1) after the reports are written. Failed or timed-out runs are
reported, not raised.

Budget: one measured run of every case first (duckdb cases, then spark, then the scales; 1,000x
and larger last), then the further repetitions round-robin in the same tiers (duckdb, spark,
scales); a run whose estimate no longer fits the `--budget-min` is dropped (and listed), and a run
is killed when the budget is spent. An untimed Spark + Delta session start warms the page cache
before the first Spark run; per-case warm-up runs (`--warmup`, not for Spark or 1,000x and larger)
happen only when they fit next to the first runs still to come (or cost under 1 % of the budget).
A scale run below 1,000x is killed once it has taken longer than `scale` x b (it grows worse than
linearly), and larger scales are not started after a smaller one did not finish. On SIGTERM or
Ctrl-C the current run is killed and what was measured is reported.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from benchmarks import datagen
from benchmarks.crosscheck import RTOL, check_run
from benchmarks.procmem import Measurement, measure

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = REPO.parent / "shared" / "data" / "nyc911_e2e_through_2025-12-22.csv"
SCENARIOS = "abcdefpw"
ENGINES = ("duckdb", "spark")
SPARK_SCENARIOS = "acd"  # the scenarios also run on the Spark engine (e and w too, per scale)
LARGE_SCALE = 1000  # scales from here on run once, without a warm-up
GIB = 1024**3
# First-guess durations (s) when reports/bench/bench.json has none yet for a case (same key,
# engine and runner); e and f grow with the rows.
GUESS_S = {
    "f": 1.0,
    "a": 12.0,
    "b": 10.0,
    "c": 6.0,
    "d": 12.0,
    "p": 4.0,
    "a-spark": 110.0,
    "c-spark": 45.0,
    "d-spark": 130.0,
    "e_per_row": 1.5e-4,
    "e_spark_per_row": 5e-4,
    "f_per_row": 1.5e-5,
    "w_of_e": 0.5,  # w: this share of its e (the warehouse it runs on)
}
CHEAP_WARMUP = 0.01  # a warm-up estimated under 1 % of the budget runs whenever it fits itself
MIN_FIRST_RUN_S = 20.0  # a first run is not started with less budget left (unless it is cheaper)
# The targets (default engine, notebooks runner, medians), reported and never asserted.
TARGETS_S = {"a": 5.0, "c": 2.0, "d": 3.0}
TARGET_FLOOR_X = {"a": 7.0}  # and at most 7x the floor
VERSIONS = ("sqlframe", "duckdb", "deltalake", "papermill", "pyspark", "delta-spark")
SESSION_PROBE = (
    "from nyc911lib import engine; engine.select('spark'); from nyc911lib.spark import get_spark; "
    "s = get_spark('bench-warmup'); s.range(1).count(); s.stop()"
)
# Environment variables that would send a run elsewhere than the bench's own warehouse or engine.
DROPPED_ENV = ("NYC911_ENGINE", "NYC911_WAREHOUSE", "NYC911_LANDING_DIR")
# Others the runs inherit that change what is measured: recorded (with every NYC911_ one) and shown.
MEASURED_ENV = ("JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS", "SPARK_HOME", "PYSPARK_SUBMIT_ARGS")


@dataclass
class Case:
    """One line of the result table: a scenario on one engine at one scale, and its measured runs."""

    key: str  # a, c-spark, e10, f10, ...
    scenario: str  # one of SCENARIOS
    title: str
    source: Path | None  # None: p (no data)
    rows: int
    new_rows: int
    repeat: int
    engine: str | None = None  # duckdb or spark for a pipeline run; None for f and p
    runner: str | None = None  # notebooks or inline; p runs notebooks
    incremental: bool = False  # runs on (a restored copy of) the warehouse of its engine's a
    starts_from: str | None = None  # w: the key of the case whose warehouse it runs on (a copy)
    expected: Path | None = None  # w: the export whose floor gold must equal (silver's data after it)
    scale: int = 1
    tier: int = 0  # repetition order: 0 duckdb, 1 spark, 2 scales
    runs: list[Measurement] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warmups: int = 0
    phases: list[dict] = field(default_factory=list)  # p: the phases.json of each measured run

    @property
    def ok_runs(self) -> list[Measurement]:
        """The runs that finished with exit status 0."""
        return [m for m in self.runs if m.ok]

    @property
    def pipeline(self) -> bool:
        """Whether this is an `nyc911 run` (checked against the floor)."""
        return self.engine is not None

    @property
    def floor_key(self) -> str:
        """The key of the floor on the same data (its x floor ratio)."""
        return "f" if self.scale == 1 else f"f{self.scale}"


def _fmt_s(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:,.1f}" if seconds >= 10 else f"{seconds:.2f}"


def _fmt_x(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}" if value >= 10 else f"{value:.2f}"


class Bench:
    """Runs the cases within the time budget, cross-checks gold and writes the reports."""

    def __init__(self, args: argparse.Namespace, cases: list[Case], started: float) -> None:
        self.args, self.cases, self.started = args, cases, started
        self.work: Path = args.work_dir
        # engine -> the warehouse of its a (or set-up run) for c and d; e's key -> its warehouse for w
        self.base: dict[str, Path] = {}
        self.no_base: dict[str, str] = {}  # engine -> why it has none
        self.floors: dict[Path, dict] = {}  # source -> floor KPIs
        self.checks: list[dict] = []
        self.dropped: list[str] = []
        self.facts: dict[str, object] = {}
        self.session_warmed = False
        self.previous = self._previous_medians()

    # -- budget ---------------------------------------------------------------------------------
    def remaining_s(self) -> float:
        """Seconds left of the budget."""
        return self.args.budget_min * 60 - (time.perf_counter() - self.started)

    def _previous_medians(self) -> dict[tuple, float]:
        path = self.args.out / "bench.json"
        try:
            cases = json.loads(path.read_text())["cases"]
        except (OSError, ValueError, KeyError):
            return {}
        return {(c["key"], c.get("engine"), c.get("runner")): c["median_s"] for c in cases if c["median_s"]}

    def estimate_s(self, case: Case) -> float:
        """A run's expected wall time: its own last runs, else the previous report (same key,
        engine and runner), else a guess."""
        if case.runs:
            return max(m.wall_s for m in case.runs)
        if (case.key, case.engine, case.runner) in self.previous:
            return self.previous[(case.key, case.engine, case.runner)]
        if case.scenario == "e":
            per_row = GUESS_S["e_per_row" if case.engine == "duckdb" else "e_spark_per_row"]
            return GUESS_S["b"] + case.rows * per_row
        if case.scenario == "f" and case.key != "f":
            return GUESS_S["f"] + case.rows * GUESS_S["f_per_row"]
        if case.scenario == "w":
            e = next(c for c in self.cases if c.key == case.starts_from)
            return GUESS_S["w_of_e"] * self.estimate_s(e)
        return GUESS_S[case.key]

    def warmups_of(self, case: Case) -> int:
        """Warm-up runs planned before a case's first run (none for Spark: see warm_session)."""
        return 0 if case.engine == "spark" or case.scale >= LARGE_SCALE else self.args.warmup

    # -- running --------------------------------------------------------------------------------
    def _env(self, reports: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in DROPPED_ENV}
        return {**env, "NYC911_REPORTS_DIR": str(reports), "PYTHONPATH": str(REPO)}

    def _command(self, case: Case, warehouse: Path, run_dir: Path) -> list[str]:
        if case.scenario == "f":
            return [sys.executable, "-m", "benchmarks.floor", str(case.source), str(run_dir / "floor.json")]
        if case.scenario == "p":
            return [sys.executable, "-m", "benchmarks.papermill_only", str(run_dir / "papermill")]
        return [
            *(sys.executable, "-m", "nyc911lib.run.cli", "run", "--engine", str(case.engine)),
            *("--runner", str(case.runner), "--source", str(case.source), "--warehouse", str(warehouse)),
        ]

    def _ensure_base(self, case: Case) -> Path | None:
        """Restore the snapshot of the warehouse of a on the case's engine; when a has not produced
        one, after an untimed set-up full refresh (a's command), unless a failed or it does not fit."""
        eng = str(case.engine)
        if eng not in self.base and eng not in self.no_base:
            self.no_base[eng] = self._set_up(eng, case)
        if eng not in self.base:
            note = f"not run: {self.no_base[eng]}"
            if note not in case.notes:
                case.notes.append(note)
            return None
        warehouse = self.base[eng]
        shutil.rmtree(warehouse, ignore_errors=True)
        shutil.copytree(self.work / f"base-{eng}" / "warehouse", warehouse)
        return warehouse

    def _set_up(self, eng: str, case: Case) -> str:
        """The untimed set-up full refresh for c and d on `eng`; why there is no warehouse if it
        was not run or did not succeed."""
        setup = Case(f"a-{eng}-setup", "a", "set-up", self.args.source, 0, 0, 1, eng, "notebooks")
        a = next((c for c in self.cases if c.scenario == "a" and c.engine == eng), None)
        if a is not None and a.runs:
            return f"{a.key} did not succeed, so there is no warehouse to start from"
        estimate = self.estimate_s(a) if a else GUESS_S["a" if eng == "duckdb" else f"a-{eng}"]
        if estimate + self.estimate_s(case) > self.remaining_s():
            return f"no time left for a set-up full refresh ({eng}) before it"
        run_dir = self.work / f"setup-{eng}"
        m = self._measure(setup, run_dir / "warehouse", run_dir, timeout_s=max(self.remaining_s(), 1.0))
        print(f"    set-up full refresh ({eng}) for c/d: {_fmt_s(m.wall_s)} s (not in the table), ok={m.ok}")
        if not m.ok:
            return f"the untimed set-up full refresh ({eng}) failed: {self._keep_log(setup, run_dir, m)}"
        self._set_base(eng, run_dir / "warehouse", run_dir / "reports")
        for other in self.cases:
            if other.incremental and other.engine == eng:
                other.notes.append(f"warehouse from an untimed set-up full refresh ({m.wall_s:.0f} s)")
        return ""

    def _set_base(self, eng: str, warehouse: Path, reports: Path) -> None:
        # restored at the same path later: the warehouse records absolute paths (landed files,
        # Spark's streaming checkpoints)
        self.base[eng] = warehouse
        shutil.copytree(warehouse, self.work / f"base-{eng}" / "warehouse")
        # and the report that run wrote: an incremental run finds it as a user's rerun would (a
        # run with nothing new leaves a report built from the current gold as it is)
        shutil.copytree(reports, self.work / f"base-{eng}" / "reports")

    def _measure(self, case: Case, warehouse: Path, run_dir: Path, timeout_s: float) -> Measurement:
        """One measured run; its spill is DuckDB's (`<warehouse>/.duckdb-spill`) or Spark's local
        dirs (shuffle files and spills, pointed at the run's folder with SPARK_LOCAL_DIRS)."""
        cmd = self._command(case, warehouse, run_dir)
        spark_local = run_dir / "spark-local"
        env = {**self._env(run_dir / "reports"), "SPARK_LOCAL_DIRS": str(spark_local)}
        temp = (warehouse / ".duckdb-spill", spark_local)
        m = measure(cmd, env=env, log=run_dir / "output.log", timeout_s=timeout_s, cwd=REPO, temp=temp)
        shutil.rmtree(spark_local, ignore_errors=True)
        return m

    def run_once(self, case: Case, index: int, *, warmup: bool = False) -> None:
        """One run of a case (a warm-up is not recorded); cross-checks its first successful run."""
        label = f"{case.key} warm-up" if warmup else f"{case.key} run {index + 1}/{case.repeat}"
        run_dir = self.work / f"{case.key}-{'w' if warmup else ''}{index + 1}"
        if case.engine == "spark":
            self.warm_session()
        if case.incremental or case.starts_from:
            base = case.starts_from or str(case.engine)
            warehouse = self._restore(case, base) if case.starts_from else self._ensure_base(case)
            if warehouse is None:
                return
            shutil.rmtree(run_dir / "reports", ignore_errors=True)
            shutil.copytree(self.work / f"base-{base}" / "reports", run_dir / "reports")
        else:
            warehouse = run_dir / "warehouse"
        timeout, why = self.remaining_s(), "budget spent"
        capped = case.scenario == "e" and case.engine == "duckdb" and case.scale < LARGE_SCALE
        if capped and self.scale_cap_s(case) < timeout:
            timeout, why = self.scale_cap_s(case), f"over {case.scale}x b = {self.scale_cap_s(case):.0f} s"
        print(f"[{_fmt_s(time.perf_counter() - self.started)} s] {label}: {describe(case)} ...", flush=True)
        m = self._measure(case, warehouse, run_dir, timeout_s=max(timeout, 1.0))
        state = "ok" if m.ok else (f"KILLED ({why})" if m.timed_out else f"FAILED (exit {m.returncode})")
        print(f"    {_fmt_s(m.wall_s)} s, peak {m.peak_rss_bytes / GIB:.2f} GiB, {state}", flush=True)
        self._record(case, m, run_dir, warmup=warmup, why=why)
        if m.ok and case.pipeline and not any(c["case"] == case.key for c in self.checks):
            self._cross_check(case, run_dir / "reports", warehouse)
        if m.ok and case.pipeline and case.scenario == "a" and case.engine not in self.base:
            self._set_base(str(case.engine), warehouse, run_dir / "reports")
        elif m.ok and case.key not in self.base and any(c.starts_from == case.key for c in self.cases):
            self._set_base(case.key, warehouse, run_dir / "reports")  # for w
        if case.pipeline and not case.incremental and not case.starts_from:
            shutil.rmtree(warehouse, ignore_errors=True)  # scale runs leave GBs behind (snapshots kept)

    def _restore(self, case: Case, key: str) -> Path | None:
        """A fresh copy of the warehouse case `key` left (at its own path), or None (noted) when
        that case did not succeed."""
        if key not in self.base:
            note = f"not run: {key} did not leave a warehouse to start from"
            if note not in case.notes:
                case.notes.append(note)
            return None
        shutil.rmtree(self.base[key], ignore_errors=True)
        shutil.copytree(self.work / f"base-{key}" / "warehouse", self.base[key])
        return self.base[key]

    def _record(self, case: Case, m: Measurement, run_dir: Path, *, warmup: bool, why: str) -> None:
        """Keep a measured run (a warm-up is only counted), its log when it failed, p's phases and
        the floor's numbers."""
        if warmup:
            case.warmups += 1
        else:
            case.runs.append(m)
            if not m.ok:
                self._keep_log(case, run_dir, m, why)
            elif case.scenario == "p":
                case.phases.append(json.loads((run_dir / "papermill" / "phases.json").read_text()))
        if m.ok and case.scenario == "f" and case.source not in self.floors:
            self.floors[case.source] = json.loads((run_dir / "floor.json").read_text())

    def scale_cap_s(self, case: Case) -> float:
        """The longest a scale run below LARGE_SCALE may take: `scale` x the median of b (linear)."""
        b = next((c for c in self.cases if c.key == "b"), None)
        guess = self.estimate_s(b) if b else GUESS_S["b"]
        return case.scale * (self.median("b") or guess)

    def _keep_log(self, case: Case, run_dir: Path, m: Measurement, why: str = "budget spent") -> str:
        """Copy a failed run's output to --out/logs; note (and return) its last line, or why it was
        killed, and the log."""
        logs = self.args.out / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        target = logs / (f"{case.key}-run{len(case.runs)}.log" if case.runs else f"{case.key}.log")
        shutil.copyfile(run_dir / "output.log", target)
        shown = target.relative_to(REPO) if target.is_relative_to(REPO) else target
        last = m.output_tail.strip().splitlines()[-1:] or ["(no output)"]
        said = f"killed after {m.wall_s:.0f} s: {why}" if m.timed_out else last[0][:200]
        case.notes.append(f"run {len(case.runs)}: {said} (log: {shown})")
        return f"{said} (log: {shown})"

    def _floor_for(self, source: Path) -> dict:
        if source not in self.floors:  # not measured as a case: compute it untimed
            out = self.work / f"floor-{source.stem}.json"
            subprocess.run(
                [sys.executable, "-m", "benchmarks.floor", str(source), str(out)],
                check=True,
                cwd=REPO,
                stdout=subprocess.DEVNULL,
            )
            self.floors[source] = json.loads(out.read_text())
        return self.floors[source]

    def _cross_check(self, case: Case, reports: Path, warehouse: Path) -> None:
        try:
            floor = self._floor_for(Path(str(case.expected or case.source)))
            problems, what = check_run(reports, warehouse, floor, case.key)
        except (OSError, ValueError, KeyError, subprocess.CalledProcessError) as exc:
            problems, what = [f"{case.key}: cross-check could not run: {exc}"], "n/a"
        self.checks.append({"case": case.key, "engine": case.engine, "compared": what, "problems": problems})
        verdict = "equal" if not problems else f"{len(problems)} DIFFERENCES"
        print(f"    cross-check {case.key} vs DuckDB floor: {verdict}", flush=True)
        for p in problems[:10]:
            print(f"      {p}", flush=True)

    def warm_session(self) -> None:
        """Once, before the first Spark run: an untimed Spark + Delta session start (page cache
        for the jars and pyspark)."""
        if self.session_warmed:
            return
        self.session_warmed = True
        m = measure(
            [sys.executable, "-c", SESSION_PROBE],
            env=self._env(self.work / "warmup"),
            log=self.work / "warmup.log",
            timeout_s=max(self.remaining_s(), 1.0),
            cwd=REPO,
        )
        self.facts["session_start_probe_s"] = round(m.wall_s, 2)
        self.facts["session_start_probe_peak_gib"] = round(m.peak_rss_bytes / GIB, 2)
        print(f"warm-up: Spark + Delta session start and stop {m.wall_s:.1f} s (ok={m.ok})", flush=True)

    def execute(self) -> None:
        """First runs in order (with warm-ups that fit), then repetitions tier by tier while the
        budget lasts."""
        self._first_runs()
        self._repetitions()

    def _first_runs(self) -> None:
        firsts = sorted(self.cases, key=lambda c: c.scale >= LARGE_SCALE)
        for i, case in enumerate(firsts):
            smaller = [c for c in firsts[:i] if c.scenario == "e" and c.engine == case.engine]
            if case.scale > 1 and case.scenario == "e" and any(not c.ok_runs for c in smaller):
                case.notes.append("not started: a smaller scale of e was not run to completion")
                continue
            later = sum(self.estimate_s(c) for c in firsts[i + 1 :])
            estimate = self.estimate_s(case)
            cheap = estimate <= CHEAP_WARMUP * self.args.budget_min * 60
            for w in range(self.warmups_of(case)):
                if 2 * estimate + (0 if cheap else later) <= self.remaining_s():
                    self.run_once(case, w, warmup=True)
                else:
                    self.dropped.append(f"{case.key} warm-up {w + 1}")
            if self.remaining_s() >= min(estimate, MIN_FIRST_RUN_S):
                self.run_once(case, 0)
            else:
                self.dropped.append(f"{case.key} run 1")

    def _repetitions(self) -> None:
        for tier in sorted({c.tier for c in self.cases}):
            group = [c for c in self.cases if c.tier == tier]
            for index in range(1, max(c.repeat for c in group)):
                for case in group:
                    if index >= case.repeat or not case.runs or len(case.ok_runs) < len(case.runs):
                        continue  # never ran, or failed (a failure again costs budget for nothing)
                    if self.estimate_s(case) < self.remaining_s():
                        self.run_once(case, index)
                    else:
                        self.dropped.append(f"{case.key} run {index + 1}")

    # -- reporting ------------------------------------------------------------------------------
    def summary_row(self, case: Case) -> dict:
        """The table row of a case: statistics over its successful runs."""
        walls = [m.wall_s for m in case.ok_runs]
        median = statistics.median(walls) if walls else None
        peak = max((m.peak_rss_bytes for m in case.runs), default=0)
        x_floor, bound = self.ratio(case.key, case.floor_key)
        row = {
            "key": case.key,
            "scenario": case.scenario,
            "title": case.title,
            "source": str(case.source) if case.source else None,
            "engine": case.engine,
            "runner": case.runner,
            "rows": case.rows,
            "new_rows": case.new_rows,
            "runs_ok": len(walls),
            "runs": len(case.runs),
            "warmups": case.warmups,
            "median_s": median,
            "min_s": min(walls) if walls else None,
            "max_s": max(walls) if walls else None,
            "rows_per_s": case.rows / median if median and case.rows else None,
            "at_least_s": self.at_least(case.key),
            "floor": case.floor_key,
            "x_floor": None if x_floor is None else round(x_floor, 3),
            "x_floor_is_lower_bound": bound,
            "peak_rss_gib": round(peak / GIB, 3),
            "peak_temp_gib": round(max((m.peak_temp_bytes for m in case.runs), default=0) / GIB, 3),
            "walls_s": [round(m.wall_s, 3) for m in case.runs],
            "statuses": [
                "ok" if m.ok else "timeout" if m.timed_out else f"exit {m.returncode}" for m in case.runs
            ],
            "target": self.target_text(case),
            "notes": case.notes,
        }
        if case.phases:
            row["phases_median_s"] = median_phases(case.phases)
        return row

    def target_text(self, case: Case) -> str:
        """The issue's target for a case, and whether this run met it (not asserted)."""
        if case.key not in TARGETS_S:
            return ""
        if not case.runs:
            return "not run"
        seconds, limit = self.median(case.key) or self.at_least(case.key), TARGETS_S[case.key]
        verdict = "n/a" if seconds is None else "met" if seconds <= limit else "missed"
        parts = [f"<= {limit:g} s: {verdict}"]
        if case.key in TARGET_FLOOR_X:
            x, bound = self.ratio(case.key, case.floor_key)
            limit = TARGET_FLOOR_X[case.key]
            verdict = "n/a" if x is None else "met" if x <= limit and not bound else "missed"
            parts.append(f"<= {limit:g}x f: {verdict}")
        return "; ".join(parts)

    def median(self, key: str) -> float | None:
        """The median wall time of a case's successful runs."""
        case = next((c for c in self.cases if c.key == key), None)
        walls = [m.wall_s for m in case.ok_runs] if case else []
        return statistics.median(walls) if walls else None

    def at_least(self, key: str) -> float | None:
        """For a case whose runs were all killed (budget or cap): the longest, a lower bound."""
        case = next((c for c in self.cases if c.key == key), None)
        if case is None or case.ok_runs:
            return None
        return max((m.wall_s for m in case.runs if m.timed_out), default=None)

    def ratio(self, top: str, bottom: str) -> tuple[float | None, bool]:
        """(median(top) / median(bottom), whether it is only a lower bound), from this bench run."""
        b = self.median(bottom)
        a = self.median(top)
        if a is None and (a := self.at_least(top)) is not None:
            return (a / b if b else None), True
        return (a / b if a is not None and b else None), False

    def ratios(self) -> dict[str, str]:
        """The comparisons besides x floor: engines, runners, papermill, incremental, scale (ratios
        of medians of this run, `>` a lower bound), and a - p in seconds."""
        pairs = [(f"{s}-spark", s) for s in SPARK_SCENARIOS]  # spark / duckdb
        pairs += [("a", "b"), ("p", "a"), ("c", "a"), ("d", "a")]  # runner, papermill, incremental
        pairs += [("c-spark", "a-spark"), ("d-spark", "a-spark")]
        pairs += [(c.key, "b") for c in self.cases if c.scenario == "e" and c.engine == "duckdb"]
        pairs += [
            (c.key, c.key.removesuffix("-spark"))
            for c in self.cases
            if c.key.endswith("-spark") and c.scenario in "ew"
        ]
        pairs += [(c.key, str(c.starts_from)) for c in self.cases if c.scenario == "w"]  # weekly / full
        out = {}
        for top, bottom in pairs:
            value, bound = self.ratio(top, bottom)
            if value is not None:
                out[f"{top}/{bottom}"] = f"{'> ' if bound else ''}{value:,.2f}"
        a, p = self.median("a"), self.median("p")
        if a is not None and p is not None:
            out["a - p"] = f"{a - p:.2f} s"
        return out

    def write_reports(self, total_s: float) -> tuple[Path, Path]:
        """bench.json and bench.md under --out."""
        rows = [self.summary_row(c) for c in self.cases]
        self.facts["load_average_end"] = os.getloadavg()
        data = {
            "machine": self.facts,
            "config": {
                "scenarios": self.args.scenarios,
                "engines": self.args.engines,
                "repeat": self.args.repeat,
                "spark_repeat": self.args.spark_repeat,
                "warmup": self.args.warmup,
                "scales": self.args.scales,
                "budget_min": self.args.budget_min,
                "source": str(self.args.source),
            },
            "total_wall_s": round(total_s, 1),
            "cases": rows,
            "ratios": self.ratios(),
            "crosscheck": {"rtol": RTOL, "checks": self.checks},
            "dropped_for_budget": self.dropped,
        }
        json_path, md_path = self.args.out / "bench.json", self.args.out / "bench.md"
        json_path.write_text(json.dumps(data, indent=1, default=str) + "\n")
        md_path.write_text(render_markdown(data))
        return md_path, json_path


def median_phases(phases: list[dict]) -> dict:
    """Per phase of p (nested per notebook), the median over its runs."""
    out: dict = {}
    for key, value in phases[0].items():
        if isinstance(value, dict):
            out[key] = {k: round(statistics.median(p[key][k] for p in phases), 3) for k in value}
        else:
            out[key] = round(statistics.median(p[key] for p in phases), 3)
    return out


def describe(case: Case) -> str:
    """The case's title with its engine and runner, for the progress lines."""
    how = ", ".join(x for x in (case.engine, case.runner and f"{case.runner} runner") if x)
    return f"{case.title} ({how})" if how else case.title


def _phases_note(phases: dict) -> str:
    books = phases["notebooks_s"]
    return (
        f"p, median phases: start-up and imports (engine, runner, papermill) "
        f"{phases['setup_and_imports_s']:.2f} s; notebooks "
        + " + ".join(f"{v:.2f}" for v in books.values())
        + f" s (the first includes waiting for the new kernel); the runner's kernel start and"
        f" shutdown {phases['kernel_start_and_shutdown_s']:.2f} s"
    )


def _versions_text(m: dict) -> str:
    versions = m.get("versions", {})
    return ", ".join(f"{name} {versions[name]}" for name in VERSIONS if name in versions)


def render_markdown(data: dict) -> str:
    """The Markdown report of a bench.json document."""
    m = data["machine"]
    config = data["config"]
    spark_runs = f", on Spark {config['spark_repeat']}" if "spark" in config["engines"] else ""
    env = ", ".join(f"`{k}={v}`" for k, v in m.get("environment", {}).items() if k not in DROPPED_ENV)
    lines = [
        "# nyc911 benchmark",
        "",
        f"{m['date_utc']} - commit `{m['git_commit']}`{' (working tree modified)' if m['git_dirty'] else ''}"
        f" - {m['cpu_model']}, {m['cores']} cores, {m['ram_gib']} GiB RAM - Python {m['python']}, "
        f"Java {m['java']} - {_versions_text(m)} - "
        f"load average {m['load_average_start'][0]:.1f} at start, {m['load_average_end'][0]:.1f} at end - "
        f"total {data['total_wall_s'] / 60:.1f} min (budget {config['budget_min']:g} min; runs per case"
        f" {config['repeat']}{spark_runs}, as the budget allowed)",
        "",
        "Wall time per run (s) over the successful runs (`> x`: every run was killed, at x s); x floor ="
        " median / median of the DuckDB floor on the same data (f; f10 for e10); peak = largest summed"
        " RSS of the run's whole process tree (kernels, driver JVM); spill = largest size on disk of"
        " DuckDB's spill folder or Spark's local dirs (shuffle files and spills), read every 0.5 s;"
        " rows = data rows of the source file;"
        " targets are the issue's (default engine, notebooks runner, medians), not asserted.",
        "",
        *([f"Environment of the runs: {env}", ""] if env else []),
        "| case | engine | runner | what | rows | new rows | runs | median s | min s | max s | x floor"
        " | rows/s | peak GiB | spill GiB | target |",
        "|---|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for r in data["cases"]:
        runs = f"{r['runs_ok']}/{r['runs']}" + (f" (+{r['warmups']} warm-up)" if r["warmups"] else "")
        rate = "-" if r["rows_per_s"] is None else f"{r['rows_per_s']:,.0f}"
        x_floor = "-" if r["x_floor"] is None else _fmt_x(r["x_floor"])
        x_floor = f"> {x_floor}" if r["x_floor_is_lower_bound"] else x_floor
        cells = [r["key"], r["engine"] or "-", r["runner"] or "-", r["title"]]
        cells += [f"{r[k]:,}" if r["source"] else "-" for k in ("rows", "new_rows")] + [runs]
        bound = f"> {_fmt_s(r['at_least_s'])}" if r["at_least_s"] else None
        cells += [bound or _fmt_s(r[k]) for k in ("median_s", "min_s", "max_s")]
        cells += [x_floor, rate, f"{r['peak_rss_gib']:.2f}", f"{r.get('peak_temp_gib', 0):.2f}", r["target"]]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Ratios of medians, all measured in this run (x-spark/x: Spark over DuckDB; a/b: the notebooks"
        " runner over the inline one; p/a and a - p: papermill's share of a and the rest):",
        "",
    ]
    lines += [f"- {k} = {v}" for k, v in data["ratios"].items()] or ["- (none)"]
    checks = data["crosscheck"]["checks"]
    bad = [p for c in checks for p in c["problems"]]
    lines += [
        "",
        f"Cross-check gold vs DuckDB floor (rtol {data['crosscheck']['rtol']:g}, counts exact; gold read"
        " with delta-rs): " + ("**EQUAL**" if checks and not bad else "**DIFFERENT**" if bad else "not run"),
        "",
    ]
    lines += [
        f"- {c['case']} ({c['engine']}): {'equal' if not c['problems'] else 'DIFFERENT'}: {c['compared']}"
        for c in checks
    ]
    lines += [f"  - {p}" for p in bad[:20]]
    notes = [f"- {r['key']}: {n}" for r in data["cases"] for n in r["notes"]]
    notes += [f"- {_phases_note(r['phases_median_s'])}" for r in data["cases"] if "phases_median_s" in r]
    if data["dropped_for_budget"]:
        notes.append(f"- dropped to stay within the budget: {', '.join(data['dropped_for_budget'])}")
    if "session_start_probe_s" in m:
        notes.append(
            f"- untimed warm-up before the first Spark run, Spark + Delta session start and stop:"
            f" {m['session_start_probe_s']} s"
        )
    lines += ["", "Notes:", "", *(notes or ["- (none)"]), ""]
    return "\n".join(lines)


def _command_output(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=REPO, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return (out.stdout + out.stderr).strip()


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def machine_facts() -> dict[str, object]:
    """CPU, cores, RAM, Java and engine versions, git commit and date of this bench run."""
    cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
    cpu = next(
        (ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if ln.startswith("model name")), ""
    )
    mem_kib = next(
        int(ln.split()[1]) for ln in Path("/proc/meminfo").read_text().splitlines() if "MemTotal" in ln
    )
    java = [ln for ln in _command_output(["java", "-version"]).splitlines() if ' version "' in ln]
    return {
        "date_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "git_commit": _command_output(["git", "rev-parse", "--short=12", "HEAD"]),
        "git_dirty": bool(_command_output(["git", "status", "--porcelain", "--untracked-files=no"])),
        "cpu_model": cpu or platform.processor() or "unknown",
        "cores": os.cpu_count(),
        "ram_gib": round(mem_kib / 1024**2, 1),
        "python": platform.python_version(),
        "java": java[0].split('"')[1] if java and '"' in java[0] else "unknown",
        "versions": {name: _version(name) for name in VERSIONS},
        "environment": {k: v for k, v in os.environ.items() if k in MEASURED_ENV or k.startswith("NYC911_")},
        "load_average_start": os.getloadavg(),
    }


def build_cases(args: argparse.Namespace) -> list[Case]:
    """The cases of the selected scenarios and engines in first-run order, generating (or reusing)
    their inputs."""
    chosen, src, engines = set(args.scenarios), args.source, args.engines
    rows = datagen.export_rows(src)
    week = datagen.plus_one_week(src, args.cache_dir) if "d" in chosen else None
    cases = []
    if "f" in chosen:
        cases.append(Case("f", "f", "floor: DuckDB SQL, one process", src, rows, rows, args.repeat))
    for eng in engines:
        suffix, run = ("", {"repeat": args.repeat, "tier": 0}) if eng == "duckdb" else (f"-{eng}", {})
        run = {"engine": eng, "runner": "notebooks", "repeat": args.spark_repeat, "tier": 1, **run}
        if "a" in chosen:
            cases.append(Case(f"a{suffix}", "a", "full refresh of the real export", src, rows, rows, **run))
        if "c" in chosen:
            title = "incremental, nothing new"
            cases.append(Case(f"c{suffix}", "c", title, src, rows, 0, incremental=True, **run))
        if week is not None:
            title, new = "incremental, one new week", week.rows - rows
            cases.append(Case(f"d{suffix}", "d", title, week.path, week.rows, new, incremental=True, **run))
        if eng == "duckdb" and "p" in chosen:
            title = "papermill alone: 4 trivial notebooks, one kernel"
            cases.append(Case("p", "p", title, None, 0, 0, args.repeat, runner="notebooks"))
        if eng == "duckdb" and "b" in chosen:
            title = "full refresh, a without papermill"
            cases.append(Case("b", "b", title, src, rows, rows, args.repeat, "duckdb", "inline"))
    for scale in args.scales if "e" in chosen else ():
        started = time.perf_counter()
        data = datagen.scaled(src, scale, args.cache_dir)
        print(f"data {scale}x: {data.path} ({data.rows:,} rows, {time.perf_counter() - started:.1f} s)")
        n, repeat = data.rows, 1 if scale >= LARGE_SCALE else args.repeat
        at = {"repeat": repeat, "scale": scale, "tier": 2}
        if "f" in chosen:  # before e: the floor's numbers exist when e is cross-checked
            cases.append(Case(f"f{scale}", "f", f"floor, {scale:,}x", data.path, n, n, **at))
        title = f"full refresh, {scale:,}x"
        for eng in engines:  # Spark once: at 100x it takes minutes, at 1,000x far longer
            key = f"e{scale}" if eng == "duckdb" else f"e{scale}-{eng}"
            runs = {**at, "repeat": repeat if eng == "duckdb" else 1}
            cases.append(Case(key, "e", title, data.path, n, n, engine=eng, runner="inline", **runs))
        if "w" in chosen and "e" in chosen:
            cases += _weekly_cases(args, scale, at, repeat)
    return cases


def _weekly_cases(args: argparse.Namespace, scale: int, at: dict, repeat: int) -> list[Case]:
    """w at one scale, per engine: the weekly publication landed on the warehouse of e at that
    scale; gold is checked against the floor of the data silver then holds."""
    week = datagen.weekly_publication(args.source, scale, args.cache_dir)
    after = datagen.after_weekly_publication(args.source, scale, args.cache_dir)
    title = f"weekly workload, {scale:,}x: 5 weeks (4 restated, 1 new) on e's warehouse"
    cases = []
    for eng in args.engines:
        suffix = "" if eng == "duckdb" else f"-{eng}"
        runs = {**at, "repeat": repeat if eng == "duckdb" else 1, "starts_from": f"e{scale}{suffix}"}
        case = Case(f"w{scale}{suffix}", "w", title, week.path, after.rows, week.rows, **runs)
        cases.append(replace(case, engine=eng, runner="inline", expected=after.path))
    return cases


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default="a,b,c,d,e,f,p,w", help="a subset of a,b,c,d,e,f,p,w")
    parser.add_argument("--engines", default="duckdb,spark", help="duckdb, spark or both (spark: a, c, d)")
    parser.add_argument("--repeat", type=int, default=5, help="measured runs per case (1,000x: 1)")
    parser.add_argument("--spark-repeat", type=int, default=2, help="measured runs per Spark case")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs before a case, when they fit")
    parser.add_argument("--scales", default="10,100,1000", help="scenario e scales (x the export's rows)")
    parser.add_argument("--budget-min", type=float, default=14.0, help="stop starting runs after this")
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="the real export CSV")
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "nyc911-bench-cache")
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "bench")
    parser.add_argument("--work-dir", type=Path, help="scratch folder (default: a new temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (warehouses, logs)")
    args = parser.parse_args(argv)
    args.scenarios = sorted({s.strip() for s in args.scenarios.split(",") if s.strip()})
    if not set(args.scenarios) <= set(SCENARIOS) or not args.scenarios:
        parser.error(f"--scenarios: choose from {','.join(SCENARIOS)} (got {args.scenarios})")
    args.engines = [e for e in ENGINES if e in {s.strip() for s in args.engines.split(",")}]
    if not args.engines:
        parser.error(f"--engines: choose from {','.join(ENGINES)}")
    spark_cases = "spark" in args.engines and set(args.scenarios) & set(SPARK_SCENARIOS)
    if spark_cases and _version("pyspark") == "not installed":
        parser.error("--engines spark needs pyspark and delta-spark (make bench installs them)")
    args.scales = [int(s) for s in args.scales.split(",") if s.strip()]
    args.source, args.out = args.source.resolve(), args.out.resolve()
    if not args.source.is_file():
        parser.error(f"--source: {args.source} not found")
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point: plan, run, cross-check, report."""
    started = time.perf_counter()
    args = parse_args(argv)
    args.work_dir = (args.work_dir or Path(tempfile.mkdtemp(prefix="nyc911-bench-"))).resolve()
    facts = machine_facts()
    cases = build_cases(args)
    if not cases:
        sys.exit("benchmarks: no case for these scenarios and engines (b and p run on duckdb only)")
    args.out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(args.out / "logs", ignore_errors=True)  # logs of failed runs: this run's only
    bench = Bench(args, cases, started)
    bench.facts = facts
    plan = sum(bench.estimate_s(c) * (c.repeat + bench.warmups_of(c)) for c in cases)
    print(
        f"plan: {', '.join(f'{c.key} x{c.repeat}' for c in cases)} (+{args.warmup} warm-up each but Spark"
        f" and 1,000x); estimated {plan / 60:.1f} min against a budget of {args.budget_min:g} min"
        + (": warm-ups and repetitions that do not fit are dropped" if plan > args.budget_min * 60 else ""),
        flush=True,
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("benchmarks: terminated; writing what was measured"))
    try:
        bench.execute()
    finally:
        md, js = bench.write_reports(time.perf_counter() - started)
        if not args.keep:
            shutil.rmtree(args.work_dir, ignore_errors=True)
    print(md.read_text())
    print(f"wrote {md} and {js} in {(time.perf_counter() - started) / 60:.1f} min")
    problems = [p for c in bench.checks for p in c["problems"]]
    if problems:
        print(
            f"BENCH FAILED: gold differs from the DuckDB floor ({len(problems)} differences)", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
