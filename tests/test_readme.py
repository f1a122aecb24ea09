"""The README's commands are run, in the order the README shows them, as a user would.

Every `bash` block of the sections listed in SECTIONS is executed line by line with bash, in a
scratch folder, with these substitutions only (everything else runs as written):

- `.venv/bin/nyc911` and a bare `nyc911` are this virtualenv's command, and every `nyc911`
  subcommand but `sample` gets `--params` of a copy of the project's params whose portal is a
  loopback server serving the real 2025 export (the tests have no internet), and whose default
  warehouse is the scratch folder's `warehouse/`;
- `/tmp/` is the scratch folder's `tmp/`; `exports/` holds the two real exports (`../shared/data/`,
  where the quick-start block reads them, is the real folder of the real exports);
- a line that is only a comment, or `echo $?`, is skipped.

The sections run as two chains side by side (`CHAINS`: the quick start's warehouse, which the
report and alerts sections read, and the weekly operation's), each in README order.

Each command must exit 0, except those EXIT_CODES names (`nyc911 alerts` exits 3 when alerts fire,
a report asked for other SLA rules than gold's is refused). Then a few results are checked: the
weekly replays end where the real export alone ends, and the rebuilt warehouse equals its source.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import REAL_2023, REAL_2025, REPO, RUN_SPECIFIC, assert_same_rows, delta_frame, real_export
from http_fixture_server import FixtureServer

from nyc911lib import load_params

pytestmark = pytest.mark.e2e

NYC911 = str(Path(sys.executable).parent / "nyc911")
SECTIONS = (
    "## Quick start (two commands)",
    "## The report",
    "## SLA alerts",
    "## Weekly operation: live data and restatements",
)
EXIT_CODES = {
    "nyc911 alerts": (0, 3),  # 3: alerts fired
    "nyc911 report --sla-rules my_sla.yaml": (1,),  # refused: gold was computed with other rules
}
NOT_COMMANDS = ("make ",)  # `make run` / `make test`: what runs this very test


def readme_commands() -> list[tuple[str, str]]:
    """(section, command line) of every line of the bash blocks of SECTIONS, in README order."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    commands = []
    for section in SECTIONS:
        start = text.index(section)
        end = text.find("\n## ", start + len(section))
        body = text[start : end if end > 0 else len(text)]
        for block in re.findall(r"```bash\n(.*?)```", body, re.S):
            for line in block.splitlines():
                command = line.split(" #", 1)[0].strip() if not line.lstrip().startswith("#") else ""
                if command and command != "echo $?" and not command.startswith(NOT_COMMANDS):
                    commands.append((section, command))
    return commands


def _params_copy(folder: Path, base_url: str) -> Path:
    """The project's params with the portal at `base_url`, its default warehouse in `folder`."""
    params = folder / "params"
    shutil.copytree(REPO / "params", params)
    text = (params / "default.yaml").read_text(encoding="utf-8")
    text = text.replace("https://data.cityofnewyork.us", base_url).replace("retries: 5", "retries: 1")
    (params / "default.yaml").write_text(text, encoding="utf-8")
    return params / "default.yaml"


def localized(command: str, params: Path, scratch_tmp: Path) -> str:
    """The command as the test runs it (see the module docstring)."""
    command = command.replace("/tmp/", f"{scratch_tmp}/")
    command = re.sub(r"(^|\s)(\.venv/bin/nyc911|nyc911)(?=\s)", rf"\1{NYC911}", command)
    return re.sub(rf"({re.escape(NYC911)}) (run|fetch|report|alerts)\b", rf"\1 \2 --params {params}", command)


@pytest.fixture(scope="module")
def portal():
    server = FixtureServer(real_export(REAL_2025)).start()
    yield server
    server.stop()


# The README's sections fall in two chains that share nothing: the quick start's warehouse
# (/tmp/wh), which the report and alerts sections read, and the weekly operation's warehouses. Each
# chain runs in order, the two side by side (each in its own reports folder).
CHAINS = {
    "quick-start": ("## Quick start (two commands)", "## The report", "## SLA alerts"),
    "weekly": ("## Weekly operation: live data and restatements",),
}


def _run_chain(
    commands: list[tuple[str, str]], work: Path, params: Path, reports: Path
) -> list[tuple[str, subprocess.CompletedProcess]]:
    """`commands` one after the other, each checked against its expected exit codes."""
    quick_start_wh = work / "tmp" / "wh"
    results = []
    for section, command in commands:
        cwd = REPO if section.startswith("## Quick start") else work
        env = {"NYC911_REPORTS_DIR": str(reports), "PYTHONUNBUFFERED": "1"}
        if section in ("## The report", "## SLA alerts"):  # they read the default warehouse
            env["NYC911_WAREHOUSE"] = str(quick_start_wh)
        else:
            env["NYC911_WAREHOUSE"] = ""  # the params' default warehouse
        run = subprocess.run(
            ["bash", "-c", localized(command, params, work / "tmp")],
            check=False,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=900,
            env={**{k: v for k, v in os.environ.items() if k not in env}, **env},
        )
        results.append((command, run))
        wanted = next((codes for prefix, codes in EXIT_CODES.items() if command.startswith(prefix)), (0,))
        assert run.returncode in wanted, f"`{command}` exited {run.returncode}:\n{run.stderr[-2000:]}"
    return results


@pytest.fixture(scope="module")
def executed(portal, tmp_path_factory) -> tuple[Path, list[tuple[str, subprocess.CompletedProcess]]]:
    """Every README command, run in order within its chain (`CHAINS`), in one scratch folder."""
    work = tmp_path_factory.mktemp("readme")
    (work / "exports").mkdir()
    for export in (real_export(REAL_2023), REAL_2025):
        (work / "exports" / export.name).symlink_to(export)
    (work / "my_sla.yaml").write_text(
        "sla_rules:\n  - name: pickup_over_9s\n    metric: avg_call_to_first_pickup_s\n    threshold_s: 9\n"
    )
    params = _params_copy(work, portal.base_url)
    (work / "tmp").mkdir()
    commands = readme_commands()
    with ThreadPoolExecutor(max_workers=len(CHAINS)) as pool:
        chains = [
            pool.submit(
                _run_chain,
                [c for c in commands if c[0] in sections],
                work,
                params,
                work / ("reports" if name == "quick-start" else f"reports-{name}"),
            )
            for name, sections in CHAINS.items()
        ]
        by_command = dict(result for chain in chains for result in chain.result())
    return work, [(command, by_command[command]) for _, command in commands]


def test_the_readme_sections_are_the_chains_this_test_runs():
    assert sorted(section for sections in CHAINS.values() for section in sections) == sorted(SECTIONS)


def test_the_readme_shows_the_commands_this_test_runs():
    commands = [c for _, c in readme_commands()]
    assert ".venv/bin/nyc911 run --source live" in commands
    assert ".venv/bin/nyc911 run" in commands  # the weekly run without a source
    assert sum(c.startswith(".venv/bin/nyc911 run --source exports/") for c in commands) == 2
    assert any("--engine spark" in c for c in commands)


def test_every_command_of_the_readme_runs_as_documented(executed):
    work, results = executed
    outputs = {command: run for command, run in results}
    assert "nothing to land" in outputs[".venv/bin/nyc911 run"].stdout  # the weekly run lands nothing
    refused = outputs["nyc911 report --sla-rules my_sla.yaml"]
    assert refused.stderr.startswith("nyc911: error: gold was computed with the SLA rules pickup_over_5s")
    assert (work / "reports" / "kpi_report.pdf").is_file()
    shot = (work / "reports" / "screenshots" / "kpi_report_real_export.png").read_bytes()
    assert shot[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(shot[20:24], "big") > 3000  # the whole page


def test_the_weekly_replays_end_where_the_real_export_alone_ends(executed):
    work, _ = executed
    params = load_params(work / "params" / "default.yaml")
    replayed, alone = params.with_warehouse(work / "wh"), params.with_warehouse(work / "tmp" / "wh")
    for table in ("kpi_weekly", "kpi_monthly_agency", "kpi_summary"):
        assert_same_rows(
            delta_frame(replayed, "gold", table, drop=RUN_SPECIFIC),
            delta_frame(alone, "gold", table, drop=RUN_SPECIFIC),
            label=table,
        )
    summary = delta_frame(replayed, "gold", "kpi_summary").iloc[0]
    assert (summary.total_incidents, round(summary.sla_breach_incidents_pct, 2)) == (36_259_560, 10.40)


def test_the_rebuild_recipe_gives_the_same_warehouse(executed):
    work, _ = executed
    params = load_params(work / "params" / "default.yaml")
    source, rebuilt = params.with_warehouse(work / "wh"), params.with_warehouse(work / "wh_rebuilt")
    for layer, key in (("silver", "e2e_weekly"), ("silver", "superseded"), ("gold", "kpi_summary")):
        assert_same_rows(
            delta_frame(rebuilt, layer, key, drop=RUN_SPECIFIC),
            delta_frame(source, layer, key, drop=RUN_SPECIFIC),
            label=key,
        )


def test_the_layout_table_names_every_module_of_the_library():
    """The README's Layout row of `nyc911lib/` names each module (`io/files` for a subpackage's)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if line.startswith("| `nyc911lib/` |"))
    package = REPO / "nyc911lib"
    modules = sorted(
        str(p.relative_to(package).with_suffix("")) for p in package.rglob("*.py") if p.name != "__init__.py"
    )
    assert modules, package
    assert [m for m in modules if f"`{m}`" not in row] == []
