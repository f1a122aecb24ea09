"""`make bench`: time the pipeline end to end and write reports/bench/bench.{md,json}.

Scenarios (each a subprocess, measured by `benchmarks.procmem`: wall time, peak RSS of the whole
process tree, driver JVM and notebook kernels included):

  a  full refresh of the real export, `nyc911 run --engine inline`, a fresh warehouse per run
  b  the same through the papermill notebooks (`nyc911 run`, default engine)
  c  incremental run with nothing new: the same source again on the warehouse of a
  d  incremental run with one new week: the export plus its last week dated 7 days later
  e  full refresh (inline) of the export replicated 10x, 100x, 1,000x (`--scales`)
  f  the floor: the same gold KPIs from the same CSV with DuckDB in one process (`benchmarks.floor`)

Every pipeline run's gold (its kpi_summary.json and gold/kpi_monthly_agency) is compared with the
floor's numbers for its source (rtol 1e-9); a difference fails the bench (exit 1) after the
reports are written. Failed or timed-out runs are reported, not raised.

Budget: the runs are ordered by priority: one measured run of every case first (the 1,000x run
last), then the further repetitions round-robin; a run whose estimate no longer fits the
`--budget-min` is dropped (and listed), and a run is killed when the budget is spent. Before all
that, one untimed Spark + Delta session start warms the page cache (jars, venv); per-case warm-up
runs (`--warmup`) happen only when they fit next to the first runs still to come (or cost under
1 % of the budget). A scale run below 1,000x is killed at 3x the median of a (it has missed the
100x target by then) and larger scales are not started after a smaller one did not finish. On
SIGTERM or Ctrl-C the current run is killed and what was measured is reported.
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
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

from benchmarks import datagen
from benchmarks.crosscheck import RTOL, check_run
from benchmarks.procmem import Measurement, measure

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = REPO.parent / "shared" / "data" / "nyc911_e2e_through_2025-12-22.csv"
LARGE_SCALE = 1000  # scales from here on run once, without a warm-up
GIB = 1024**3
# First-guess durations (s) when reports/bench/bench.json has none yet: from a profile on the
# quiet 2-core machine (05:35-06:00 UTC, 2026-11-27); e and f grow with the rows.
GUESS_S = {"a": 70.0, "b": 80.0, "c": 25.0, "d": 70.0, "f": 1.0, "e_per_row": 4e-4, "f_per_row": 1.5e-5}
CHEAP_WARMUP = 0.01  # a warm-up estimated under 1 % of the budget runs whenever it fits itself
MIN_FIRST_RUN_S = 20.0  # a first run is not started with less budget left (unless it is cheaper)
SCALE_CAP_X = 3.0  # a scale run (below LARGE_SCALE) is stopped at 3 x a: it missed the 100x target
TARGETS = {"a": 30.0, "b": 60.0, "c": 10.0, "d": 15.0}
SESSION_PROBE = (
    "from nyc911lib.spark import get_spark; s = get_spark('bench-warmup'); s.range(1).count(); s.stop()"
)


@dataclass
class Case:
    """One line of the result table: a scenario at one scale, and its measured runs."""

    key: str
    title: str
    source: Path
    rows: int
    new_rows: int
    repeat: int
    engine: str | None = None  # None: the DuckDB floor
    incremental: bool = False  # runs on (a restored copy of) the warehouse of a
    runs: list[Measurement] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warmups: int = 0

    @property
    def ok_runs(self) -> list[Measurement]:
        """The runs that finished with exit status 0."""
        return [m for m in self.runs if m.ok]


def _scale_of(case: Case) -> int:
    return int(case.key[1:]) if case.key[1:].isdigit() else 1


def _fmt_s(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:,.1f}" if seconds >= 10 else f"{seconds:.2f}"


class Bench:
    """Runs the cases within the time budget, cross-checks gold and writes the reports."""

    def __init__(self, args: argparse.Namespace, cases: list[Case], started: float) -> None:
        self.args, self.cases, self.started = args, cases, started
        self.work: Path = args.work_dir
        self.base_wh: Path | None = None  # the warehouse of a (or of a set-up run) for c and d
        self.setup_failed = False
        self.floors: dict[Path, dict] = {}  # source -> floor KPIs
        self.checks: list[dict] = []
        self.dropped: list[str] = []
        self.facts: dict[str, object] = {}
        self.previous = self._previous_medians()

    # -- budget ---------------------------------------------------------------------------------
    def remaining_s(self) -> float:
        """Seconds left of the budget."""
        return self.args.budget_min * 60 - (time.perf_counter() - self.started)

    def _previous_medians(self) -> dict[str, float]:
        path = self.args.out / "bench.json"
        try:
            cases = json.loads(path.read_text())["cases"]
        except (OSError, ValueError, KeyError):
            return {}
        return {c["key"]: c["median_s"] for c in cases if c.get("median_s")}

    def estimate_s(self, case: Case) -> float:
        """A run's expected wall time: its own last runs, else the previous report, else a guess."""
        if case.runs:
            return max(m.wall_s for m in case.runs)
        if case.key in self.previous:
            return self.previous[case.key]
        if case.key[0] == "e":
            return GUESS_S["a"] + case.rows * GUESS_S["e_per_row"]
        if case.key[0] == "f":
            return GUESS_S["f"] + case.rows * GUESS_S["f_per_row"]
        return GUESS_S[case.key]

    # -- running --------------------------------------------------------------------------------
    def _env(self, reports: Path) -> dict[str, str]:
        return {**os.environ, "NYC911_REPORTS_DIR": str(reports), "PYTHONPATH": str(REPO)}

    def _command(self, case: Case, warehouse: Path, out: Path) -> list[str]:
        if case.engine is None:
            return [sys.executable, "-m", "benchmarks.floor", str(case.source), str(out)]
        nyc911 = Path(sys.executable).with_name("nyc911")
        cmd = [str(nyc911), "run", "--source", str(case.source), "--warehouse", str(warehouse)]
        return [*cmd, "--engine", "inline"] if case.engine == "inline" else cmd

    def _ensure_base(self, case: Case) -> Path | None:
        """Restore the snapshot of a's warehouse for an incremental case (after an untimed set-up
        full refresh when a has not produced one)."""
        if self.base_wh is None and not self.setup_failed:
            setup = Case("setup", "set-up: full refresh for c/d", self.args.source, 0, 0, 1, "inline")
            wh = self.work / "setup" / "warehouse"
            m = self._measure(setup, wh, self.work / "setup", timeout_s=max(self.remaining_s(), 1.0))
            print(f"    set-up full refresh for c/d: {_fmt_s(m.wall_s)} s (not in the table)", flush=True)
            self.setup_failed = not m.ok
            if m.ok:
                self._set_base(wh, self.work / "setup" / "reports")
                case.notes.append(f"warehouse from an untimed set-up full refresh ({m.wall_s:.0f} s)")
        if self.base_wh is None:
            case.notes.append("not run: no warehouse from a full refresh")
            return None
        shutil.rmtree(self.base_wh, ignore_errors=True)
        shutil.copytree(self.work / "base-snapshot", self.base_wh)
        return self.base_wh

    def _set_base(self, warehouse: Path, reports: Path) -> None:
        # restored at the same path later: the streaming checkpoints hold absolute file paths
        self.base_wh = warehouse
        shutil.copytree(warehouse, self.work / "base-snapshot")
        # and the report that run wrote: an incremental run finds it as a user's rerun would (a
        # run with nothing new leaves a report built from the current gold as it is)
        shutil.copytree(reports, self.work / "base-reports")

    def _measure(self, case: Case, warehouse: Path, run_dir: Path, timeout_s: float) -> Measurement:
        out = run_dir / "floor.json"
        cmd = self._command(case, warehouse, out)
        return measure(
            cmd, env=self._env(run_dir / "reports"), log=run_dir / "output.log", timeout_s=timeout_s, cwd=REPO
        )

    def run_once(self, case: Case, index: int, *, warmup: bool = False) -> None:
        """One run of a case (a warm-up is not recorded); cross-checks its first successful run."""
        label = f"{case.key} warm-up" if warmup else f"{case.key} run {index + 1}/{case.repeat}"
        run_dir = self.work / f"{case.key}-{'w' if warmup else ''}{index + 1}"
        if case.incremental:
            warehouse = self._ensure_base(case)
            if warehouse is None:
                return
            shutil.rmtree(run_dir / "reports", ignore_errors=True)
            shutil.copytree(self.work / "base-reports", run_dir / "reports")
        else:
            warehouse = run_dir / "warehouse"
        timeout, why = self.remaining_s(), "budget spent"
        if case.key[0] == "e" and _scale_of(case) < LARGE_SCALE and self.scale_cap_s() < timeout:
            timeout, why = self.scale_cap_s(), f"over {SCALE_CAP_X:g}x a = {self.scale_cap_s():.0f} s"
        print(f"[{_fmt_s(time.perf_counter() - self.started)} s] {label}: {case.title} ...", flush=True)
        m = self._measure(case, warehouse, run_dir, timeout_s=max(timeout, 1.0))
        state = "ok" if m.ok else (f"KILLED ({why})" if m.timed_out else f"FAILED (exit {m.returncode})")
        if m.timed_out and not warmup:
            case.notes.append(f"run {len(case.runs) + 1} killed after {m.wall_s:.0f} s: {why}")
        print(f"    {_fmt_s(m.wall_s)} s, peak {m.peak_rss_bytes / GIB:.2f} GiB, {state}", flush=True)
        if warmup:
            case.warmups += 1
        else:
            case.runs.append(m)
            if not m.ok:
                self._keep_log(case, run_dir, m)
        if m.ok and case.engine is None and case.source not in self.floors:
            self.floors[case.source] = json.loads((run_dir / "floor.json").read_text())
        if m.ok and case.engine and not any(c["case"] == case.key for c in self.checks):
            self._cross_check(case, run_dir / "reports", warehouse)
        if m.ok and case.key == "a" and self.base_wh is None:
            self._set_base(warehouse, run_dir / "reports")
        elif not case.incremental and case.engine:
            shutil.rmtree(warehouse, ignore_errors=True)  # scale runs leave GBs behind

    def scale_cap_s(self) -> float:
        """The longest a scale run below LARGE_SCALE may take: the 100x target, SCALE_CAP_X x a."""
        a = next((c for c in self.cases if c.key == "a"), None)
        return SCALE_CAP_X * (self.median("a") or self.estimate_s(a or Case("a", "", Path(), 0, 0, 1)))

    def _keep_log(self, case: Case, run_dir: Path, m: Measurement) -> None:
        logs = self.args.out / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        target = logs / f"{case.key}-run{len(case.runs)}.log"
        shutil.copyfile(run_dir / "output.log", target)
        shown = target.relative_to(REPO) if target.is_relative_to(REPO) else target
        last = m.output_tail.strip().splitlines()[-1:] or ["(no output)"]
        said = "" if m.timed_out else f"{last[0][:200]} "
        case.notes.append(f"run {len(case.runs)}: {said}(log: {shown})")

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
            problems, what = check_run(reports, warehouse, self._floor_for(case.source), case.key)
        except (OSError, ValueError, KeyError, subprocess.CalledProcessError) as exc:
            problems, what = [f"{case.key}: cross-check could not run: {exc}"], "n/a"
        self.checks.append({"case": case.key, "compared": what, "problems": problems})
        verdict = "equal" if not problems else f"{len(problems)} DIFFERENCES"
        print(f"    cross-check {case.key} vs DuckDB floor: {verdict}", flush=True)
        for p in problems[:10]:
            print(f"      {p}", flush=True)

    def warm_session(self) -> None:
        """One untimed Spark + Delta session start (page cache for jars and venv)."""
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
        """First runs by priority (with warm-ups that fit), then repetitions while the budget lasts."""
        firsts = sorted(self.cases, key=lambda c: _scale_of(c) >= LARGE_SCALE)
        for i, case in enumerate(firsts):
            if _scale_of(case) > 1 and any(c.key[0] == "e" and not c.ok_runs for c in firsts[:i]):
                case.notes.append("not started: a smaller scale of e was not run to completion")
                continue
            later = sum(self.estimate_s(c) for c in firsts[i + 1 :])
            estimate = self.estimate_s(case)
            cheap = estimate <= CHEAP_WARMUP * self.args.budget_min * 60
            for w in range(self.args.warmup if _scale_of(case) < LARGE_SCALE else 0):
                if 2 * estimate + (0 if cheap else later) <= self.remaining_s():
                    self.run_once(case, w, warmup=True)
                else:
                    self.dropped.append(f"{case.key} warm-up {w + 1}")
            if self.remaining_s() >= min(estimate, MIN_FIRST_RUN_S):
                self.run_once(case, 0)
            else:
                self.dropped.append(f"{case.key} run 1")
        for index in range(1, max(c.repeat for c in self.cases)):
            for case in self.cases:
                if index >= case.repeat or not case.runs or len(case.ok_runs) < len(case.runs):
                    continue  # not repeated: never ran, or failed (a failure again costs budget for nothing)
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
        return {
            "key": case.key,
            "title": case.title,
            "source": str(case.source),
            "engine": case.engine or "duckdb",
            "rows": case.rows,
            "new_rows": case.new_rows,
            "runs_ok": len(walls),
            "runs": len(case.runs),
            "warmups": case.warmups,
            "median_s": median,
            "min_s": min(walls) if walls else None,
            "max_s": max(walls) if walls else None,
            "rows_per_s": case.rows / median if median else None,
            "at_least_s": self.at_least(case.key),
            "peak_rss_gib": round(peak / GIB, 3),
            "walls_s": [round(m.wall_s, 3) for m in case.runs],
            "statuses": [
                "ok" if m.ok else "timeout" if m.timed_out else f"exit {m.returncode}" for m in case.runs
            ],
            "target": self.target_text(case),
            "notes": case.notes,
        }

    def target_text(self, case: Case) -> str:
        """The issue's target for a case, and whether this run met it (not asserted)."""
        if not case.runs:
            return "not run"
        seconds = self.median(case.key) or self.at_least(case.key)
        if case.key in TARGETS:
            limit = TARGETS[case.key]
            return f"<= {limit:g} s: " + (
                "n/a" if seconds is None else "met" if seconds <= limit else "missed"
            )
        if case.key == "e100":
            ratio, bound = self.ratio("e100", "a")
            return "<= 3x a: " + ("n/a" if ratio is None else "met" if ratio <= 3 and not bound else "missed")
        if case.key == f"e{LARGE_SCALE}":
            peak = max(m.peak_rss_bytes for m in case.runs) / GIB
            return "completes, peak < 6 GiB: " + ("met" if case.ok_runs and peak < 6 else "missed")
        return ""

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
        """The comparisons the issue asks for: ratios of medians of this run (`>` a lower bound)."""
        pairs = [("a", "f"), ("b", "a"), ("c", "a"), ("d", "a")]
        for case in self.cases:
            if case.key.startswith("e"):
                pairs += [(case.key, "a"), (case.key, "f" + case.key[1:])]
        out = {}
        for top, bottom in pairs:
            value, bound = self.ratio(top, bottom)
            if value is not None:
                out[f"{top}/{bottom}"] = f"{'> ' if bound else ''}{value:,.2f}"
        return out

    def write_reports(self, total_s: float) -> tuple[Path, Path]:
        """bench.json and bench.md under --out."""
        rows = [self.summary_row(c) for c in self.cases]
        self.facts["load_average_end"] = os.getloadavg()
        data = {
            "machine": self.facts,
            "config": {
                "scenarios": self.args.scenarios,
                "repeat": self.args.repeat,
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


def render_markdown(data: dict) -> str:
    """The Markdown report of a bench.json document."""
    m = data["machine"]
    lines = [
        "# nyc911 benchmark",
        "",
        f"{m['date_utc']} - commit `{m['git_commit']}`{' (working tree modified)' if m['git_dirty'] else ''}"
        f" - {m['cpu_model']}, {m['cores']} cores, {m['ram_gib']} GiB RAM - Python {m['python']}, "
        f"Java {m['java']}, Spark {m['spark']}, Delta {m['delta']}, DuckDB {m['duckdb']} - "
        f"load average {m['load_average_start'][0]:.1f} at start, {m['load_average_end'][0]:.1f} at end - "
        f"total {data['total_wall_s'] / 60:.1f} min (budget {data['config']['budget_min']:g} min)",
        "",
        "Wall time per run (s) over the successful runs (`> x`: every run was killed, at x s); peak ="
        " largest summed RSS of the run's whole process tree (driver JVM, kernels); rows = data rows"
        " of the source file; targets are the issue's, not asserted.",
        "",
        "| case | what | rows | new rows | runs | median s | min s | max s | rows/s | peak GiB | target |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for r in data["cases"]:
        runs = f"{r['runs_ok']}/{r['runs']}" + (f" (+{r['warmups']} warm-up)" if r["warmups"] else "")
        rate = "-" if r["rows_per_s"] is None else f"{r['rows_per_s']:,.0f}"
        cells = [r["key"], r["title"], f"{r['rows']:,}", f"{r['new_rows']:,}", runs]
        bound = f"> {_fmt_s(r['at_least_s'])}" if r["at_least_s"] else None
        cells += [bound or _fmt_s(r[k]) for k in ("median_s", "min_s", "max_s")]
        cells += [rate, f"{r['peak_rss_gib']:.2f}", r["target"]]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Ratios of medians, all measured in this run:", ""]
    lines += [f"- {k} = {v}" for k, v in data["ratios"].items()] or ["- (none)"]
    checks = data["crosscheck"]["checks"]
    bad = [p for c in checks for p in c["problems"]]
    lines += [
        "",
        f"Cross-check gold vs DuckDB floor (rtol {data['crosscheck']['rtol']:g}, counts exact): "
        + ("**EQUAL**" if checks and not bad else "**DIFFERENT**" if bad else "not run"),
        "",
    ]
    lines += [
        f"- {c['case']}: {'equal' if not c['problems'] else 'DIFFERENT'}: {c['compared']}" for c in checks
    ]
    lines += [f"  - {p}" for p in bad[:20]]
    notes = [f"- {r['key']}: {n}" for r in data["cases"] for n in r["notes"]]
    if data["dropped_for_budget"]:
        notes.append(f"- dropped to stay within the budget: {', '.join(data['dropped_for_budget'])}")
    if "session_start_probe_s" in m:
        notes.append(
            f"- untimed warm-up, Spark + Delta session start and stop: {m['session_start_probe_s']} s"
        )
    lines += ["", "Notes:", "", *notes, ""]
    return "\n".join(lines)


def _command_output(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=REPO, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return (out.stdout + out.stderr).strip()


def machine_facts() -> dict[str, object]:
    """CPU, cores, RAM, versions, git commit and date of this bench run."""
    cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
    cpu = next(
        (ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if ln.startswith("model name")), ""
    )
    mem_kib = next(
        int(ln.split()[1]) for ln in Path("/proc/meminfo").read_text().splitlines() if "MemTotal" in ln
    )
    java = _command_output(["java", "-version"]).splitlines()
    return {
        "date_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "git_commit": _command_output(["git", "rev-parse", "--short=12", "HEAD"]),
        "git_dirty": bool(_command_output(["git", "status", "--porcelain", "--untracked-files=no"])),
        "cpu_model": cpu or platform.processor() or "unknown",
        "cores": os.cpu_count(),
        "ram_gib": round(mem_kib / 1024**2, 1),
        "python": platform.python_version(),
        "java": java[0].split('"')[1] if java and '"' in java[0] else "unknown",
        "spark": version("pyspark"),
        "delta": version("delta-spark"),
        "duckdb": version("duckdb"),
        "load_average_start": os.getloadavg(),
    }


def build_cases(args: argparse.Namespace) -> list[Case]:
    """The cases of the selected scenarios, generating (or reusing) their inputs."""
    chosen, src = set(args.scenarios), args.source
    rows = datagen.export_rows(src)
    cases = []
    if "f" in chosen:
        cases.append(Case("f", "floor: DuckDB, one process", src, rows, rows, args.repeat))
    if "a" in chosen:
        cases.append(Case("a", "full refresh, inline", src, rows, rows, args.repeat, "inline"))
    if "c" in chosen:
        cases.append(Case("c", "incremental, nothing new", src, rows, 0, args.repeat, "inline", True))
    if "d" in chosen:
        week = datagen.plus_one_week(src, args.cache_dir)
        new = week.rows - rows
        cases.append(
            Case("d", "incremental, one new week", week.path, week.rows, new, args.repeat, "inline", True)
        )
    if "b" in chosen:
        cases.append(Case("b", "full refresh, notebooks", src, rows, rows, args.repeat, "notebooks"))
    for scale in args.scales if "e" in chosen else ():
        started = time.perf_counter()
        data = datagen.scaled(src, scale, args.cache_dir)
        print(f"data {scale}x: {data.path} ({data.rows:,} rows, {time.perf_counter() - started:.1f} s)")
        n, repeat = data.rows, 1 if scale >= LARGE_SCALE else args.repeat
        if "f" in chosen:  # before e: the floor's numbers exist when e is cross-checked
            cases.append(Case(f"f{scale}", f"floor: DuckDB, {scale:,}x", data.path, n, n, repeat))
        cases.append(
            Case(f"e{scale}", f"full refresh, inline, {scale:,}x", data.path, n, n, repeat, "inline")
        )
    return cases


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default="a,b,c,d,e,f", help="comma-separated subset of a,b,c,d,e,f")
    parser.add_argument("--repeat", type=int, default=3, help="measured runs per case (1,000x: 1)")
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
    if not set(args.scenarios) <= set("abcdef") or not args.scenarios:
        parser.error(f"--scenarios: choose from a,b,c,d,e,f (got {args.scenarios})")
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
    args.out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(args.out / "logs", ignore_errors=True)  # logs of failed runs: this run's only
    bench = Bench(args, cases, started)
    bench.facts = facts
    plan = sum(
        bench.estimate_s(c) * (c.repeat + (args.warmup if _scale_of(c) < LARGE_SCALE else 0)) for c in cases
    )
    print(
        f"plan: {', '.join(f'{c.key} x{c.repeat}' for c in cases)} (+{args.warmup} warm-up each but 1,000x);"
        f" estimated {plan / 60:.1f} min against a budget of {args.budget_min:g} min"
        + (": warm-ups and repetitions that do not fit are dropped" if plan > args.budget_min * 60 else ""),
        flush=True,
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("benchmarks: terminated; writing what was measured"))
    try:
        if any(c.engine for c in cases):
            bench.warm_session()
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
