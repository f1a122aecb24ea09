"""Executed notebooks as offline HTML (nyc911lib.report.notebook_html): Plotly outputs get an HTML
rendering with plotly.js inline once, the page loads nothing from the network, and a real
`nyc911 run` leaves an .html beside each executed .ipynb whose charts draw in headless Chromium
with the network cut, and which holds no secret of the run's environment."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from selenium.webdriver.support.ui import WebDriverWait
from test_no_secrets import scan_file

from nyc911lib.report.browser import headless_driver
from nyc911lib.report.notebook_html import PLOTLY_MIME, export_notebook_html, notebook_html, with_plotly_html
from nyc911lib.run.papermill_runner import NOTEBOOKS

NYC911 = str(Path(sys.executable).parent / "nyc911")
PLOTLY_JS_BANNER = re.compile(r"plotly\.js v\d+\.\d+\.\d+")
EXTERNAL = re.compile(r"<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)=[\"']?(?:https?:)?//", re.I)


def _figure(title: str) -> dict:
    return {
        "data": [{"type": "bar", "x": ["EMS", "FDNY"], "y": [3, 5]}],
        "layout": {"title": {"text": title}},
    }


def _notebook(*figures: str, error: bool = False) -> nbformat.NotebookNode:
    cells = [new_markdown_cell("# A run"), new_code_cell("print('total incidents 6,036,455')")]
    cells[1].outputs = [new_output("stream", name="stdout", text="total incidents 6,036,455\n")]
    for title in figures:
        cell = new_code_cell("figure.show()")
        cell.outputs = [
            new_output("display_data", data={PLOTLY_MIME: _figure(title), "text/plain": "Figure"})
        ]
        cells.append(cell)
    if error:
        cell = new_code_cell("1 / 0")
        cell.outputs = [
            new_output(
                "error",
                ename="ZeroDivisionError",
                evalue="division by zero",
                traceback=["Traceback (most recent call last)", "ZeroDivisionError: division by zero"],
            )
        ]
        cells.append(cell)
    return new_notebook(cells=cells)


def test_each_plotly_output_gets_html_and_plotly_js_is_inline_once():
    notebook = _notebook("first chart", "second chart")
    rendered = with_plotly_html(notebook)
    first, second = (cell.outputs[0].data for cell in rendered.cells[2:])
    assert [len(PLOTLY_JS_BANNER.findall(d["text/html"])) for d in (first, second)] == [1, 0]
    assert "first chart" in first["text/html"] and "second chart" in second["text/html"]
    assert (first[PLOTLY_MIME], second[PLOTLY_MIME]) == (_figure("first chart"), _figure("second chart"))
    assert "text/html" not in notebook.cells[2].outputs[0].data  # the notebook given is unchanged


def test_a_notebook_without_charts_is_rendered_as_it_is():
    notebook = _notebook()
    assert with_plotly_html(notebook) == notebook
    assert not PLOTLY_JS_BANNER.search(notebook_html(notebook))


def test_the_page_loads_nothing_from_the_network():
    page = notebook_html(_notebook("a chart"))
    assert EXTERNAL.findall(page) == []
    assert len(PLOTLY_JS_BANNER.findall(page)) == 1
    assert "total incidents 6,036,455" in page


def test_a_failed_notebook_shows_its_error(tmp_path):
    path = tmp_path / "02_silver.ipynb"
    nbformat.write(_notebook(error=True), path)
    html = export_notebook_html(path)
    assert html == tmp_path / "02_silver.html"
    page = html.read_text(encoding="utf-8")
    assert "ZeroDivisionError" in page and "division by zero" in page


# --- A real run ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """The executed notebooks of one `nyc911 run` (notebooks runner) on the sample, run with an app
    token in its environment (the secret scan below looks for it in the outputs)."""
    root = tmp_path_factory.mktemp("notebook-html")
    token = "Zq" * 12 + "x9"  # assembled here: this file holds no token-shaped literal
    env = {**os.environ, "NYC911_REPORTS_DIR": str(root / "reports"), "NYC911_APP_TOKEN": token}
    env.pop("NYC911_ENGINE", None)
    done = subprocess.run(
        [NYC911, "run", "--warehouse", str(root / "warehouse")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    [folder] = (root / "reports" / "runs").iterdir()
    assert f"executed notebooks: {folder} (.ipynb, and .html to read without Jupyter)" in done.stdout
    (folder / "token.txt").write_text(token, encoding="utf-8")
    return folder


@pytest.mark.e2e
def test_a_run_writes_an_html_beside_each_executed_notebook(run_dir):
    assert sorted(p.name for p in run_dir.glob("*.html")) == sorted(f"{n}.html" for n in NOTEBOOKS)
    gold = (run_dir / "03_gold.html").read_text(encoding="utf-8")
    summary = json.loads((run_dir.parent.parent / "kpi_summary.json").read_text(encoding="utf-8"))
    total = f"total_incidents              {summary['total_incidents']}"
    assert total in gold  # the gold summary the notebook printed


@pytest.mark.e2e
def test_the_run_outputs_hold_no_secret(run_dir):
    token = (run_dir / "token.txt").read_text(encoding="utf-8")
    outputs = [*run_dir.glob("*.ipynb"), *run_dir.glob("*.html")]
    assert len(outputs) == 2 * len(NOTEBOOKS)
    assert [str(f) for p in outputs for f in scan_file(p, root=run_dir)] == []
    assert [p.name for p in outputs if token in p.read_text(encoding="utf-8")] == []


@pytest.mark.e2e
@pytest.mark.browser
def test_the_report_notebook_draws_its_charts_offline(run_dir):
    executed = nbformat.read(run_dir / "04_kpi_report.ipynb", as_version=4)
    charts = sum(PLOTLY_MIME in o.get("data", {}) for c in executed.cells for o in c.get("outputs", []))
    assert charts == 4  # the sample's response-time headline and its 3 monthly figures
    with headless_driver(offline=True) as driver:
        driver.get((run_dir / "04_kpi_report.html").as_uri())
        drawn = WebDriverWait(driver, 30).until(
            lambda d: d.execute_script(
                "const divs = [...document.querySelectorAll('.plotly-graph-div')];"
                "const drawn = divs.filter(div => div.querySelector('svg.main-svg')).length;"
                f"return drawn >= {charts} ? [divs.length, drawn] : false;"
            )
        )
        errors = [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    assert (drawn, errors) == ([charts, charts], [])
