"""The architecture, as import rules: a transform never imports I/O, HTTP, plotly or orchestration.

Every import of a transform module counts, those inside functions too (read from its source with
`ast`, so the test imports nothing). The transforms may use the DataFrame API, sqlglot (quality
rules are parsed as Spark SQL), the standard library's pure parts, each other, and the project's
`schema`, `config`, `errors` and `engine` (the engine's names and session, never a file).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "nyc911lib"
TRANSFORMS = sorted(p.stem for p in (PACKAGE / "transforms").glob("*.py") if p.stem != "__init__")
FORBIDDEN = {
    "I/O": (
        "nyc911lib.io",
        "nyc911lib.spark",
        "nyc911lib.sample",
        "deltalake",
        "duckdb",
        "os",
        "io",
        "shutil",
        "tempfile",
        "subprocess",
        "pathlib",
        "socket",
    ),
    "HTTP": ("urllib", "http", "ssl", "requests", "urllib3"),
    "plotly": ("plotly", "pandas", "selenium", "nyc911lib.report"),
    "orchestration": ("nyc911lib.run", "papermill"),
}
# The project modules a transform may import besides the other transforms: types and the engine's
# names (never its files). Anything else of the project is a breach, named as such.
ALLOWED_PROJECT = (
    "nyc911lib.transforms",
    "nyc911lib.schema",
    "nyc911lib.config",
    "nyc911lib.errors",
    "nyc911lib.engine",
)


def imported_modules(source: str) -> set[str]:
    """Every module a source imports (`from nyc911lib import storage` counts as
    `nyc911lib.storage`; `from nyc911lib.io import files`, both `nyc911lib.io` and
    `nyc911lib.io.files`), at any depth of the file."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            if node.module.split(".")[0] == "nyc911lib":
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _under(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def breaches(source: str) -> list[str]:
    """`kind: module` for every forbidden import of a source."""
    found = set()
    for module in imported_modules(source):
        kinds = [kind for kind, prefixes in FORBIDDEN.items() if _under(module, prefixes)]
        if not kinds and module.startswith("nyc911lib.") and not _under(module, ALLOWED_PROJECT):
            kinds = ["not a transform's dependency"]
        found.update(f"{kind}: {module}" for kind in kinds)
    return sorted(found)


@pytest.mark.parametrize("module", TRANSFORMS)
def test_a_transform_imports_no_io_http_plotly_or_orchestration(module):
    assert breaches((PACKAGE / "transforms" / f"{module}.py").read_text(encoding="utf-8")) == []


def test_the_transforms_folder_holds_the_transforms():
    assert TRANSFORMS == [
        "anomalies",
        "bronze",
        "compat",
        "data_quality",
        "gold",
        "quality",
        "response_time",
        "silver",
        "sla",
        "trends",
        "week_spans",
    ]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from nyc911lib.io import storage", ["I/O: nyc911lib.io", "I/O: nyc911lib.io.storage"]),
        ("from nyc911lib import compat", ["not a transform's dependency: nyc911lib.compat"]),
        ("def f():\n    import plotly.io as pio\n", ["plotly: plotly.io"]),
        ("from urllib.request import urlopen", ["HTTP: urllib.request"]),
        (
            "from nyc911lib.io.files import write_atomic",
            ["I/O: nyc911lib.io.files", "I/O: nyc911lib.io.files.write_atomic"],
        ),
        (
            "from nyc911lib.run.layers import run_layers",
            ["orchestration: nyc911lib.run.layers", "orchestration: nyc911lib.run.layers.run_layers"],
        ),
        ("from nyc911lib.report import html", ["plotly: nyc911lib.report", "plotly: nyc911lib.report.html"]),
        (
            "from nyc911lib.faults import x",
            [
                "not a transform's dependency: nyc911lib.faults",
                "not a transform's dependency: nyc911lib.faults.x",
            ],
        ),
        ("from nyc911lib.transforms.gold import kpi_weekly\nfrom nyc911lib import schema", []),
        ("import pyspark.sql.functions as F\nfrom nyc911lib.engine import name", []),
        ("from nyc911lib.schema import SOURCE_HEADERS\nimport iomodule", []),
    ],
)
def test_the_rule_sees_every_kind_of_forbidden_import(source, expected):
    assert breaches(source) == expected
