"""The architecture, as import rules: a transform never imports I/O, HTTP, plotly or orchestration.

Every import of a transform module counts, those inside functions too (read from its source with
`ast`, so the test imports nothing). The transforms may use the DataFrame API, sqlglot (quality
rules are parsed as Spark SQL), the standard library's pure parts, each other, and the project's
`schema`, `config`, `errors`, `compat` and `engine` (the engine's names and session, never a file).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "nyc911lib"
TRANSFORMS = ("bronze", "silver", "quality", "gold", "sla", "trends", "anomalies", "data_quality", "compat")
FORBIDDEN = {
    "I/O": (
        "nyc911lib.io",
        "nyc911lib.storage",
        "nyc911lib.tables",
        "nyc911lib.delta_rs",
        "nyc911lib.delta_spark",
        "nyc911lib.bronze_io",
        "nyc911lib.csv_reader",
        "nyc911lib.landing",
        "nyc911lib.fetch",
        "nyc911lib.browser",
        "nyc911lib.spark",
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
    "plotly": ("plotly", "pandas", "selenium"),
    "orchestration": (
        "nyc911lib.pipeline",
        "nyc911lib.runner",
        "nyc911lib.cli",
        "nyc911lib.notebook",
        "nyc911lib.faults",
        "nyc911lib.datasets",
        "nyc911lib.reporting",
        "nyc911lib.report",
        "nyc911lib.report_sections",
        "nyc911lib.alerts",
        "papermill",
    ),
}


def imported_modules(source: str) -> set[str]:
    """Every module a source imports (`from nyc911lib import storage` counts as
    `nyc911lib.storage`), at any depth of the file."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            if node.module == "nyc911lib":
                found.update(f"nyc911lib.{alias.name}" for alias in node.names)
    return found


def breaches(source: str) -> list[str]:
    """`kind: module` for every forbidden import of a source."""
    return sorted(
        f"{kind}: {module}"
        for module in imported_modules(source)
        for kind, prefixes in FORBIDDEN.items()
        if any(module == p or module.startswith(p + ".") for p in prefixes)
    )


@pytest.mark.parametrize("module", TRANSFORMS)
def test_a_transform_imports_no_io_http_plotly_or_orchestration(module):
    assert breaches((PACKAGE / f"{module}.py").read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from nyc911lib import storage, compat", ["I/O: nyc911lib.storage"]),
        ("def f():\n    import plotly.io as pio\n", ["plotly: plotly.io"]),
        ("from urllib.request import urlopen", ["HTTP: urllib.request"]),
        ("from nyc911lib.io.files import write_atomic", ["I/O: nyc911lib.io.files"]),
        ("from nyc911lib.pipeline import run_layers", ["orchestration: nyc911lib.pipeline"]),
        ("import pyspark.sql.functions as F\nfrom nyc911lib.reporting_helpers import x", []),
        ("from nyc911lib.schema import SOURCE_HEADERS\nimport iomodule", []),
    ],
)
def test_the_rule_sees_every_kind_of_forbidden_import(source, expected):
    assert breaches(source) == expected
