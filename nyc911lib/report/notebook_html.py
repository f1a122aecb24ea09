"""An executed notebook as one HTML file that opens anywhere, offline: the batch runs' notebooks
are readable without Jupyter (`nyc911 run` writes `<notebook>.html` beside each `.ipynb`).

nbconvert renders the notebook with JupyterLab's own export template, minus the scripts that
template loads from CDNs (`templates/nyc911_offline`). A Plotly chart is stored in a notebook as
its JSON only (`application/vnd.plotly.v1+json`), which JupyterLab draws and nbconvert does not:
each one gets an HTML rendering too, plotly.js inline once per file (before the first chart), so
the charts draw with no network.
"""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat
import plotly.io as pio
from nbconvert import HTMLExporter

from nyc911lib.io.files import write_atomic

PLOTLY_MIME = "application/vnd.plotly.v1+json"
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
TEMPLATE = "nyc911_offline"
# plotly.js is a UMD bundle: with an AMD loader on the page it would register as a module instead
# of `window.Plotly`. Hide any loader while the bundle runs (the template loads none; a viewer that
# injects one gets the same charts).
_HIDE_AMD = "<script>window.__nyc911_define = window.define; window.define = undefined;</script>"
_RESTORE_AMD = "<script>window.define = window.__nyc911_define;</script>"


def with_plotly_html(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of `notebook` in which every Plotly output also has an HTML rendering (plotly.js
    inline in the first one); the stored JSON is kept."""
    out = copy.deepcopy(notebook)
    first = True
    for cell in out.cells:
        for output in cell.get("outputs", []):
            figure = output.get("data", {}).get(PLOTLY_MIME)
            if figure is None or "text/html" in output["data"]:
                continue
            html = pio.to_html(
                dict(figure),
                include_plotlyjs=first,
                full_html=False,
                validate=False,
                config={"displaylogo": False, "responsive": True},
            )
            output["data"]["text/html"] = f"{_HIDE_AMD}{html}{_RESTORE_AMD}" if first else html
            first = False
    return out


def notebook_html(notebook: nbformat.NotebookNode) -> str:
    """The notebook as one self-contained HTML page (inputs, outputs, charts)."""
    exporter = HTMLExporter(template_name=TEMPLATE, extra_template_basedirs=[str(TEMPLATES_DIR)])
    body, _ = exporter.from_notebook_node(with_plotly_html(notebook))
    return body


def export_notebook_html(path: Path) -> Path:
    """Write `path` (an executed .ipynb) as HTML beside it (`<name>.html`, atomically); its path."""
    notebook = nbformat.read(path, as_version=4)
    return write_atomic(path.with_suffix(".html"), notebook_html(notebook))
