"""Scenario p: what the notebooks runner costs by itself, without the pipeline.

`python -m benchmarks.papermill_only OUT_DIR` writes four trivial notebooks, named as the layer
notebooks and each holding a `parameters` cell (the layer notebooks' parameters) and one code cell
that prints a line, and runs them with `run.papermill_runner.run_notebooks` itself: one kernel started
by `runner._start_kernel`, `papermill.execute_notebook` with `km=` and the parameters `nyc911 run`
passes, then the kernel shut down. As `nyc911 run` does, it fixes the default engine (duckdb)
before importing the runner (whose module imports the reporting module, hence the engine).

Writes OUT_DIR/phases.json: seconds spent importing (engine, runner, papermill), in each notebook
(between the runner's progress lines) and in the rest of the runner (kernel start and
shutdown).
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

import nbformat

NOTEBOOKS = ("01_bronze", "02_silver", "03_gold", "04_kpi_report")
PARAMETERS = {  # the names and kinds of values `nyc911 run` passes to the layer notebooks
    "params_file": None,
    "engine": "duckdb",
    "source": None,
    "allow_mixed_sources": False,
    "warehouse": None,
    "reports_dir": None,
    "date_from": None,
    "date_to": None,
    "full_refresh": False,
    "run_id": "run-bench-papermill",
}
STEP = re.compile(r"^\[\d+/\d+\] (\S+) (\.\.\.|done)")  # the runner's progress lines


def write_notebooks(folder: Path) -> None:
    """The four trivial notebooks: a parameters cell (papermill injects after it) and one code cell."""
    folder.mkdir(parents=True, exist_ok=True)
    defaults = "\n".join(f"{name} = None" for name in PARAMETERS)
    for name in NOTEBOOKS:
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
        nb.cells = [
            nbformat.v4.new_code_cell(defaults, metadata={"tags": ["parameters"]}),
            nbformat.v4.new_code_cell(f"print(f'{name}: {{run_id}} on {{engine}}')"),
        ]
        nbformat.write(nb, folder / f"{name}.ipynb")


def main(out_dir: Path) -> int:
    """Run the four trivial notebooks as `nyc911 run` runs the layer notebooks; write phases.json."""
    started = time.perf_counter()
    notebooks, reports = out_dir / "notebooks", out_dir / "reports"
    write_notebooks(notebooks)
    reports.mkdir(parents=True, exist_ok=True)
    # run_notebooks ends by reading the summary the report notebook writes: an empty one stands in
    (reports / "kpi_summary.json").write_text("{}\n")
    os.environ["NYC911_NOTEBOOKS"] = str(notebooks)  # read by nyc911lib.run.papermill_runner at import
    from nyc911lib import engine  # noqa: PLC0415 - after NYC911_NOTEBOOKS is set

    engine.select("duckdb")
    from nyc911lib.run.papermill_runner import run_notebooks  # noqa: PLC0415 - after the engine, as in nyc911 run

    imported = time.perf_counter()
    per_notebook: dict[str, float] = {}

    def progress(line: str) -> None:
        now = time.perf_counter()
        print(line, flush=True)
        if step := STEP.match(line):  # a notebook's start, then its end: its seconds in between
            name, state = step.groups()
            per_notebook[name] = now if state == "..." else now - per_notebook[name]

    parameters = {**PARAMETERS, "reports_dir": str(reports)}
    run_notebooks(parameters, run_dir=out_dir / "runs", reports_dir=reports, progress=progress)
    finished = time.perf_counter()
    phases = {
        "setup_and_imports_s": imported - started,
        "notebooks_s": per_notebook,
        "kernel_start_and_shutdown_s": finished - imported - sum(per_notebook.values()),
        "total_s": finished - started,
    }
    (out_dir / "phases.json").write_text(json.dumps(phases, indent=1) + "\n")
    print(f"papermill only: {len(per_notebook)} notebooks in one kernel, {finished - started:.2f} s in all")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m benchmarks.papermill_only OUT_DIR")
    sys.exit(main(Path(sys.argv[1])))
