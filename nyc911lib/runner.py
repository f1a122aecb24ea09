"""Runs the four layer notebooks in order with papermill: the local path of `nyc911 run`."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import papermill as pm

from nyc911lib.errors import Nyc911Error
from nyc911lib.reporting import REPORT_NAME, SUMMARY_NAME

NOTEBOOKS = ("01_bronze", "02_silver", "03_gold", "04_kpi_report")
NOTEBOOKS_DIR = Path(os.environ.get("NYC911_NOTEBOOKS", Path(__file__).resolve().parent.parent / "notebooks"))


class NotebookFailedError(Nyc911Error):
    """A layer notebook raised: the message carries the notebook and the original error."""


@dataclass(frozen=True)
class RunResult:
    """Where a run left its outputs, and the gold summary it printed."""

    run_dir: Path
    report_path: Path
    summary: dict


def _error_line(exc: pm.PapermillExecutionError) -> str:
    return f"{exc.ename}: {exc.evalue}".strip()


def run_notebooks(
    parameters: dict,
    run_dir: Path,
    reports_dir: Path,
    progress: Callable[[str], None] = print,
) -> RunResult:
    """Execute 01..04 with the same parameters; executed copies go to `run_dir`.

    Stops at the first failing notebook with its error in one line (the executed copy, with the
    traceback, stays in `run_dir` for inspection).
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(NOTEBOOKS, start=1):
        source = NOTEBOOKS_DIR / f"{name}.ipynb"
        if not source.is_file():
            raise Nyc911Error(f"notebook not found: {source} (set NYC911_NOTEBOOKS to the notebooks folder)")
        progress(f"[{i}/{len(NOTEBOOKS)}] {name} ...")
        started = time.monotonic()
        try:
            pm.execute_notebook(
                str(source),
                str(run_dir / f"{name}.ipynb"),
                parameters=parameters,
                cwd=str(NOTEBOOKS_DIR),
                progress_bar=False,
                kernel_name="python3",
            )
        except pm.PapermillExecutionError as exc:
            raise NotebookFailedError(f"{name} failed: {_error_line(exc)}") from None
        progress(f"[{i}/{len(NOTEBOOKS)}] {name} done in {time.monotonic() - started:.1f} s")
    summary_path = reports_dir / SUMMARY_NAME
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    return RunResult(run_dir, reports_dir / REPORT_NAME, summary)
