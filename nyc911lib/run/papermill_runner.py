"""Runs the four layer notebooks in order with papermill: the local path of `nyc911 run`.

All four run in one Jupyter kernel, one after the other, so they share one Python process and
one Spark session (one driver JVM) exactly as the layers of `nyc911 run --engine inline` do.
A kernel per notebook would start four JVMs and warm four JITs: measured on the real export,
that alone was 40-60 s of a run. Each notebook still gets its own parameters cell and reads
its inputs from the tables, never from the previous notebook's variables (nbval runs each one in
a fresh kernel, which would catch that).

Each executed notebook is also written as HTML beside its `.ipynb` (nyc911lib.report.notebook_html:
one offline file, charts included), so a batch run reads without Jupyter; a failed notebook too,
with its traceback. The exports run in a thread of this process while the kernel (another
process) executes the next notebook.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import papermill as pm
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync

from nyc911lib.errors import Nyc911Error, one_line
from nyc911lib.report.build import REPORT_NAME, SUMMARY_NAME
from nyc911lib.report.notebook_html import export_notebook_html

NOTEBOOKS = ("01_bronze", "02_silver", "03_gold", "04_kpi_report")
KERNEL_NAME = "python3"
NOTEBOOKS_DIR = Path(os.environ.get("NYC911_NOTEBOOKS", Path(__file__).resolve().parents[2] / "notebooks"))


class NotebookFailedError(Nyc911Error):
    """A layer notebook raised: the message carries the notebook and the original error."""


@dataclass(frozen=True)
class RunResult:
    """Where a run left its outputs, and the gold summary it printed."""

    run_dir: Path
    report_path: Path
    summary: dict


def _start_kernel(run_dir: Path) -> AsyncKernelManager:
    """Start the run's one kernel: local IPC sockets (no TCP port, so ipykernel does not warn about
    unencrypted TCP), its own output (and its JVM's, started in it) to `run_dir/kernel.log`, never
    the terminal. nbclient reuses a kernel that is already running."""
    sockets = Path(tempfile.mkdtemp(prefix="nyc911-kernel-"))
    kernel = AsyncKernelManager(kernel_name=KERNEL_NAME, transport="ipc", ip=str(sockets / "kernel"))
    with (run_dir / "kernel.log").open("ab") as log:
        run_sync(kernel.start_kernel)(stdout=log, stderr=log, cwd=str(NOTEBOOKS_DIR))
    return kernel


def _error_line(exc: pm.PapermillExecutionError) -> str:
    return f"{exc.ename}: {one_line(Exception(exc.evalue))}" if exc.evalue.strip() else exc.ename


def run_notebooks(
    parameters: dict,
    run_dir: Path,
    reports_dir: Path,
    progress: Callable[[str], None] = print,
) -> RunResult:
    """Execute 01..04 with the same parameters in one kernel; executed copies go to `run_dir`.

    Stops at the first failing notebook with its error in one line (the executed copy, with the
    traceback, stays in `run_dir` for inspection).
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    kernel = _start_kernel(run_dir)
    exports: list[Future] = []
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="nyc911-html") as html:
        try:
            for i, name in enumerate(NOTEBOOKS, start=1):
                source = NOTEBOOKS_DIR / f"{name}.ipynb"
                if not source.is_file():
                    raise Nyc911Error(
                        f"notebook not found: {source} (set NYC911_NOTEBOOKS to the notebooks folder)"
                    )
                progress(f"[{i}/{len(NOTEBOOKS)}] {name} ...")
                started = time.monotonic()
                executed = run_dir / f"{name}.ipynb"
                try:
                    pm.execute_notebook(
                        str(source),
                        str(executed),
                        parameters=parameters,
                        cwd=str(NOTEBOOKS_DIR),
                        progress_bar=False,
                        kernel_name=KERNEL_NAME,
                        km=kernel,  # running, and not owned by the notebook's client: it stays up
                    )
                except pm.PapermillExecutionError as exc:
                    exports.append(html.submit(export_notebook_html, executed))  # the traceback, as HTML
                    raise NotebookFailedError(f"{name} failed: {_error_line(exc)}") from None
                exports.append(html.submit(export_notebook_html, executed))
                progress(f"[{i}/{len(NOTEBOOKS)}] {name} done in {time.monotonic() - started:.1f} s")
        finally:
            if kernel.has_kernel:
                run_sync(kernel.shutdown_kernel)(now=True)
            shutil.rmtree(Path(kernel.ip).parent, ignore_errors=True)
    for export in exports:
        export.result()  # an export that failed fails the run
    summary_path = reports_dir / SUMMARY_NAME
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    return RunResult(run_dir, reports_dir / REPORT_NAME, summary)
