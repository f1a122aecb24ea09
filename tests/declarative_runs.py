"""The runs tests/test_declarative_pipeline.py compares, in a process of their own.

For the sample and for the two real exports: `nyc911 run --runner declarative` on a warehouse
holding the landed files. The incremental warehouses it is compared with are the parity tests'
duckdb ones (`parity_runs.built`: `sample-duckdb`, and `duckdb-2`, the real exports in two runs so
silver MERGEd the second publication into the first), which landed the same files under the same
names.

Run as a script (the background process):

    python tests/declarative_runs.py <folder> <references.json>

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

from engine_runs import (  # as a script: tests/ is on sys.path
    FIRST_NAME,
    REPO,
    SAMPLE_NAME,
    SECOND_NAME,
    land_as,
    params_copy,
    run_env,
)

SHARED_DATA = REPO.parent / "shared" / "data"
REAL = (SHARED_DATA / "nyc911_e2e_through_2023-01-23.csv", SHARED_DATA / "nyc911_e2e_through_2025-12-22.csv")
REAL_NAMES = (FIRST_NAME, SECOND_NAME)
RUN_TIMEOUT_S = 900


def nyc911(*args: str, log_dir: Path) -> subprocess.CompletedProcess:
    """`nyc911 ...` in a process of its own, on its default engine (the caller's is cleared)."""
    cmd = [sys.executable, "-m", "nyc911lib.run.cli", *args]
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False, env=run_env(log_dir)
    )


def params_for(warehouse: Path) -> Path:
    """A params file whose reports go beside the warehouse (never into the repository)."""
    return params_copy(warehouse.parent / f"{warehouse.name}-params", reports_dir=f"{warehouse}-reports")


def build(root: Path, references: dict[str, str]) -> dict[str, list[str]]:
    """Land and run the declarative runner for each case of `references` ({"sample" | "real":
    incremental warehouse}); return {case: [declarative, incremental]}."""
    from nyc911lib.sample import write_sample  # noqa: PLC0415 - engine-free

    sources = {"sample": [(write_sample(root / "nyc911_sample.csv"), SAMPLE_NAME)]}
    if "real" in references:
        sources["real"] = list(zip(REAL, REAL_NAMES, strict=True))
    pairs = {}
    for case, files in sources.items():
        declarative = root / f"{case}-declarative"
        for source, name in files:
            land_as(source, declarative, name)
        options = ["--warehouse", str(declarative), "--params", str(params_for(declarative))]
        done = nyc911("run", "--runner", "declarative", *options, log_dir=root / f"logs-{case}")
        if done.returncode != 0:
            raise AssertionError(
                f"declarative run on the {case} failed:\n{done.stdout[-2000:]}{done.stderr[-4000:]}"
            )
        pairs[case] = [str(declarative), references[case]]
    return pairs


def start(root: Path, references: dict[str, Path]) -> subprocess.Popen:
    """Start `build` in a process of its own."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "references.json").write_text(json.dumps({k: str(v) for k, v in references.items()}))
    log = (root / "background.log").open("wb")
    return subprocess.Popen(
        [sys.executable, __file__, str(root), str(root / "references.json")],
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
        result = build(folder, json.loads(Path(sys.argv[2]).read_text(encoding="utf-8")))
    except Exception as exc:
        (folder / "failed.txt").write_text(f"{type(exc).__name__}: {exc}\n", encoding="utf-8")
        sys.exit(1)
    (folder / "pairs.json").write_text(json.dumps(result), encoding="utf-8")
