"""The notebooks in JupyterLab as a user opens them (`make lab`): a JupyterLab server started here
(the project's pinned one, localhost only, with a token), headless Chromium opens
`03_gold.ipynb`, runs every cell from the Run menu, and sees the gold summary with no error output.

The server serves a scratch copy of the notebook without its stored outputs (JupyterLab autosaves
what it runs, and the stored outputs nbval compares must not change; every output seen is this
run's) and its own Jupyter config, data and runtime
folders; the kernel is the virtualenv's `python3` (nyc911lib, the default engine), its warehouse
one the sample was run into first (`NYC911_WAREHOUSE`, which the notebooks honour).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from conftest import REPO
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from nyc911lib.report.browser import headless_driver

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

BIN = Path(sys.executable).parent
START_TIMEOUT_S = 120
RUN_TIMEOUT_S = 300


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """(base URL with the token, the served folder, the server's log): a JupyterLab server on
    127.0.0.1 over a scratch copy of notebooks/03_gold.ipynb, its warehouse holding the sample."""
    root = tmp_path_factory.mktemp("lab")
    served, warehouse = root / "notebooks", root / "warehouse"
    served.mkdir()
    notebook = nbformat.read(REPO / "notebooks" / "03_gold.ipynb", as_version=4)
    for cell in notebook.cells:  # no stored output: every output the test sees is this run's
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.write(notebook, served / "03_gold.ipynb")
    env = {k: v for k, v in os.environ.items() if k != "NYC911_ENGINE"}  # the default engine
    env.update(
        NYC911_WAREHOUSE=str(warehouse),
        NYC911_REPORTS_DIR=str(root / "reports"),
        JUPYTER_CONFIG_DIR=str(root / "jupyter-config"),
        JUPYTER_RUNTIME_DIR=str(root / "jupyter-runtime"),
        JUPYTERLAB_WORKSPACES_DIR=str(root / "lab-workspaces"),
    )
    ran = subprocess.run(
        [str(BIN / "nyc911"), "run", "--runner", "inline", "--warehouse", str(warehouse)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=env,
    )
    assert ran.returncode == 0, ran.stderr[-2000:]
    port, token = _free_port(), secrets.token_hex(16)
    log = root / "lab.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [
                str(BIN / "jupyter"),
                "lab",
                "--no-browser",
                "--ip=127.0.0.1",
                f"--port={port}",
                f"--IdentityProvider.token={token}",
                f"--ServerApp.root_dir={served}",
                *(["--allow-root"] if os.geteuid() == 0 else []),  # as `make lab` (CI runs as root)
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert server.poll() is None, log.read_text(errors="replace")[-3000:]
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
            time.sleep(0.5)
        yield base, token, served, log
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, 15)
        server.wait(timeout=30)


def test_the_server_refuses_a_request_without_its_token(lab):
    base, _, _, _ = lab
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{base}/api/contents", timeout=5)
    assert refused.value.code == 403


def test_gold_runs_from_the_run_menu_and_shows_its_summary(lab):
    base, token, _, log = lab
    with headless_driver(offline=False, width=1400, height=1000) as driver:
        driver.get(f"{base}/lab/tree/03_gold.ipynb?token={token}")
        wait = WebDriverWait(driver, START_TIMEOUT_S, poll_frequency=0.2)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell"))
        wait.until(lambda d: "Idle" in _kernel_status(d))  # the venv's python3 kernel is up
        run_menu = next(
            e for e in driver.find_elements(By.CSS_SELECTOR, ".lm-MenuBar-itemLabel") if e.text == "Run"
        )
        run_menu.click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "li[data-command='runmenu:run-all']"))
        driver.find_element(By.CSS_SELECTOR, "li[data-command='runmenu:run-all']").click()
        WebDriverWait(driver, RUN_TIMEOUT_S, poll_frequency=0.5).until(_all_cells_ran)
        outputs = [
            e.get_attribute("textContent")
            for e in driver.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output")
        ]
        errors = driver.find_elements(
            By.CSS_SELECTOR, ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
        )
        error_text = [(e.get_attribute("textContent") or "")[:500] for e in errors]
    text = "\n".join(outputs)
    assert error_text == [], log.read_text(errors="replace")[-2000:]
    assert re.search(r"^total_incidents\s+6036455$", text, re.M), text[:2000]
    assert re.search(r"^source_kinds\s+sample$", text, re.M), text[:2000]
    assert "'kpi_summary': 6036455, 'kpi_weekly': 6036455, 'kpi_monthly_agency': 6036455" in text


def _kernel_status(driver) -> str:
    """The notebook's kernel status as the toolbar shows it (its title names the state)."""
    labels = driver.find_elements(By.CSS_SELECTOR, ".jp-Notebook-ExecutionIndicator")
    return " ".join(e.get_attribute("title") or "" for e in labels) or " ".join(
        e.text for e in driver.find_elements(By.CSS_SELECTOR, ".jp-StatusBar-TextItem")
    )


def _all_cells_ran(driver) -> bool:
    """Every code cell shows an execution count (none `[*]` or empty) and the kernel is idle."""
    prompts = [
        (e.get_attribute("textContent") or "").strip()
        for e in driver.find_elements(By.CSS_SELECTOR, ".jp-CodeCell .jp-InputPrompt")
    ]
    return bool(prompts) and all(re.fullmatch(r"\[\d+\]:", p) for p in prompts)


def test_make_lab_binds_localhost_with_a_token_and_the_pins_agree():
    recipe = subprocess.run(
        ["make", "-n", "-W", "requirements-lock.txt", "lab"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    [command] = [line for line in recipe.splitlines() if "jupyter lab" in line]
    assert " --ip=127.0.0.1 " in command
    assert "token=" not in command and "password" not in command.lower()  # JupyterLab's own token stays
    pins = {
        name: re.findall(r"^\s*-?\s*\"?jupyterlab==([\d.]+)", (REPO / name).read_text(encoding="utf-8"), re.M)
        for name in ("pyproject.toml", "requirements-lock.txt", "environment.yml")
    }
    assert len(pins["pyproject.toml"]) == 1
    assert pins["requirements-lock.txt"] == pins["environment.yml"] == pins["pyproject.toml"]
