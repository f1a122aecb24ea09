"""The runs tests/test_declarative_pipeline.py compares, in a process of their own.

For the sample and for the two real exports: `nyc911 run --runner declarative` on a warehouse
holding the landed files, and the incremental runner (`--runner inline`, duckdb engine, one run per
publication) on the same files under the same names. (Started in the background at the start of
the Spark test process, at a lower priority, they made `make test` no shorter: both test processes
keep the two cores busy.)

Run as a script (the background process):

    python tests/declarative_runs.py <folder>

writes `<folder>/pairs.json` when every run succeeded, else `<folder>/failed.txt` with the end of
the output of the run that failed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from engine_runs import REPO, land_as, run_env, start_runs, wait_runs  # as a script: tests/ is on sys.path

SHARED_DATA = REPO.parent / "shared" / "data"
REAL = (SHARED_DATA / "nyc911_e2e_through_2023-01-23.csv", SHARED_DATA / "nyc911_e2e_through_2025-12-22.csv")
SAMPLE_NAME = "20260105T000000000000Z__sample__nyc911_sample.csv"
REAL_NAMES = (
    "20260105T000000000000Z__file__nyc911_e2e_through_2023-01-23.csv",
    "20260112T000000000000Z__file__nyc911_e2e_through_2025-12-22.csv",
)
RUN_TIMEOUT_S = 900


def nyc911(*args: str, log_dir: Path) -> subprocess.CompletedProcess:
    """`nyc911 ...` in a process of its own, on its default engine (the caller's is cleared)."""
    cmd = [sys.executable, "-m", "nyc911lib.run.cli", *args]
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False, env=run_env(log_dir)
    )


def params_for(warehouse: Path) -> Path:
    """A params file whose reports go beside the warehouse (never into the repository)."""
    text = (REPO / "params" / "default.yaml").read_text(encoding="utf-8")
    folder = warehouse.parent / f"{warehouse.name}-params"
    folder.mkdir(exist_ok=True)
    for name in ("sla_rules.yaml", "quality_rules.yaml"):
        (folder / name).write_text((REPO / "params" / name).read_text(encoding="utf-8"), encoding="utf-8")
    text = text.replace("reports_dir: ../reports", f"reports_dir: {warehouse}-reports")
    path = folder / "default.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def build(root: Path) -> dict[str, list[str]]:
    """Land, run both runners, and return {"sample" | "real": [declarative, incremental]}."""
    from nyc911lib.sample import write_sample  # noqa: PLC0415 - engine-free

    sources = {"sample": [(write_sample(root / "nyc911_sample.csv"), SAMPLE_NAME)]}
    if all(p.is_file() for p in REAL):
        sources["real"] = list(zip(REAL, REAL_NAMES, strict=True))
    steps, pairs = [], {}
    for case, files in sources.items():
        declarative, incremental = root / f"{case}-declarative", root / f"{case}-incremental"
        for source, name in files:
            land_as(source, declarative, name)
            # One incremental run per publication: the second is MERGEd into the first.
            steps.append({"warehouse": str(incremental), "land": [[str(source), name]]})
        pairs[case] = [str(declarative), str(incremental)]
    reference = start_runs("duckdb", steps, root / "logs-incremental")
    for case, (declarative, _) in pairs.items():
        options = ["--warehouse", declarative, "--params", str(params_for(Path(declarative)))]
        done = nyc911("run", "--runner", "declarative", *options, log_dir=root / f"logs-{case}")
        if done.returncode != 0:
            raise AssertionError(
                f"declarative run on the {case} failed:\n{done.stdout[-2000:]}{done.stderr[-4000:]}"
            )
    wait_runs(reference, timeout=RUN_TIMEOUT_S)
    return pairs


def start(root: Path) -> subprocess.Popen:
    """Start `build` in a process of its own."""
    root.mkdir(parents=True, exist_ok=True)
    log = (root / "background.log").open("wb")
    return subprocess.Popen(
        [sys.executable, __file__, str(root)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])},
        start_new_session=True,
    )


def wait(
    root: Path, process: subprocess.Popen, timeout: float = 2 * RUN_TIMEOUT_S
) -> dict[str, tuple[Path, Path]]:
    """The pairs of a started `build`, once it has finished; AssertionError naming its failure."""
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        time.sleep(1)
    if process.poll() is None:
        os.killpg(process.pid, 9)
        raise AssertionError(f"the declarative runs did not finish within {timeout:.0f} s (see {root})")
    failed = root / "failed.txt"
    if failed.is_file() or not (root / "pairs.json").is_file():
        detail = (
            failed.read_text(encoding="utf-8") if failed.is_file() else (root / "background.log").read_text()
        )
        raise AssertionError(f"the declarative runs failed:\n{detail[-6000:]}")
    pairs = json.loads((root / "pairs.json").read_text(encoding="utf-8"))
    return {case: (Path(d), Path(i)) for case, (d, i) in pairs.items()}


if __name__ == "__main__":
    folder = Path(sys.argv[1])
    try:
        result = build(folder)
    except Exception as exc:
        (folder / "failed.txt").write_text(f"{type(exc).__name__}: {exc}\n", encoding="utf-8")
        sys.exit(1)
    (folder / "pairs.json").write_text(json.dumps(result), encoding="utf-8")
