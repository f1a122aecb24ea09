"""The KPI report notebook and the dashboards read gold tables only (no Spark, nothing executed).

References are found statically:
- notebook code cells: calls of the nyc911lib table helpers (`read_table(spark, params, "gold",
  ...)` - the layer argument), SQL `FROM`/`JOIN <name>` in string literals, and string literals
  that are table names (`spark.table("nyc911.gold.kpi_weekly")`); `%%sql` cells are SQL;
- dashboards: `FROM`/`JOIN <name>` in every dataset query.
A layer that cannot be read statically (a variable) counts as a violation: gold-only must be
provable. A missing report notebook fails; nothing is skipped.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
GOLD_NOTEBOOKS = [REPO / "notebooks" / name for name in ("04_kpi_report.ipynb", "05_explore.ipynb")]
DASHBOARDS = sorted((REPO / "dashboards").glob("*.lvdash.json"))
PARAMS = yaml.safe_load((REPO / "params" / "default.yaml").read_text(encoding="utf-8"))

# nyc911lib.io.storage helpers and the position of their `layer` argument.
LAYER_ARGUMENT = {"read_table": 2, "table_exists": 2, "write_table": 2, "table_name": 1}
FROM_JOIN = re.compile(r"\b(?:FROM|JOIN)\s+([`\w][`\w.]*)", re.IGNORECASE)
DOTTED_NAME = re.compile(r"^`?\w+`?(?:\.`?\w+`?){1,2}$")
UNKNOWN = "<not a literal>"


class Ref(NamedTuple):
    where: str
    layer: str
    text: str


def schema_layers() -> dict[str, str]:
    """Schema name (and the layer name itself) -> layer."""
    schemas = PARAMS["environments"]["databricks"]["schemas"]
    return {**{layer: layer for layer in schemas}, **{schema: layer for layer, schema in schemas.items()}}


def table_layers() -> dict[str, str]:
    """Physical table name -> layer, from params' tables."""
    return {table: layer for layer, tables in PARAMS["tables"].items() for table in tables.values()}


def layer_of(name: str) -> str | None:
    """The layer a table name refers to: `cat.schema.t`, `schema.t` or a bare table name."""
    parts = name.replace("`", "").split(".")
    if len(parts) in (2, 3):
        return schema_layers().get(parts[-2])
    return table_layers().get(parts[0])


def sql_refs(sql: str, where: str) -> list[Ref]:
    refs = []
    for name in FROM_JOIN.findall(sql):
        layer = layer_of(name)
        if layer:
            refs.append(Ref(where, layer, name))
    return refs


def _call_name(node: ast.Call) -> str | None:
    func = node.func
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else None


def _layer_argument(node: ast.Call, position: int) -> ast.expr | None:
    for keyword in node.keywords:
        if keyword.arg == "layer":
            return keyword.value
    return node.args[position] if len(node.args) > position else None


def python_refs(code: str, where: str) -> list[Ref]:
    """Table references of one Python code cell (IPython `%`/`!` lines are ignored)."""
    lines = ["" if line.lstrip().startswith(("%", "!")) else line for line in code.splitlines()]
    tree = ast.parse("\n".join(lines))
    refs = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _call_name(node) in LAYER_ARGUMENT:
            arg = _layer_argument(node, LAYER_ARGUMENT[_call_name(node)])
            layer = arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else UNKNOWN
            refs.append(Ref(f"{where}:{node.lineno}", layer, ast.unparse(node)))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value.strip()
            refs.extend(sql_refs(text, f"{where}:{node.lineno}"))
            if DOTTED_NAME.match(text) and (layer := layer_of(text)):
                refs.append(Ref(f"{where}:{node.lineno}", layer, text))
    return refs


def notebook_refs(notebook: dict[str, Any], name: str) -> list[Ref]:
    refs = []
    for index, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        where = f"{name}[cell {index}]"
        if source.lstrip().startswith("%%sql"):
            refs.extend(sql_refs(source, where))
        else:
            refs.extend(python_refs(source, where))
    return refs


def dashboard_refs(dashboard: dict[str, Any], name: str) -> list[Ref]:
    refs = []
    for dataset in dashboard["datasets"]:
        sql = "".join(dataset["queryLines"]) if "queryLines" in dataset else dataset["query"]
        refs.extend(sql_refs(sql, f"{name}[{dataset['name']}]"))
    return refs


def violations(refs: list[Ref]) -> list[Ref]:
    return [ref for ref in refs if ref.layer != "gold"]


# --------------------------------------------------------------------------- the real files


@pytest.mark.parametrize("path", GOLD_NOTEBOOKS, ids=lambda p: p.name)
def test_report_and_explore_notebooks_read_gold_only(path):
    assert path.is_file(), f"{path.relative_to(REPO)} is missing"
    notebook = json.loads(path.read_text(encoding="utf-8"))
    refs = notebook_refs(notebook, path.name)
    assert refs, f"{path.name} reads no table at all"
    assert violations(refs) == []


def test_there_is_a_dashboard():
    assert [p.name for p in DASHBOARDS] == ["nyc911_kpis.lvdash.json"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_reads_gold_only(path):
    refs = dashboard_refs(json.loads(path.read_text(encoding="utf-8")), path.name)
    assert refs, f"{path.name} queries no table"
    assert violations(refs) == []


# --------------------------------------------------------------------------- the parser itself


def _notebook(*cells: str) -> dict[str, Any]:
    return {"cells": [{"cell_type": "code", "source": cell.splitlines(keepends=True)} for cell in cells]}


@pytest.mark.parametrize(
    ("code", "layer", "text"),
    [
        ('df = read_table(spark, params, "silver", "e2e_weekly")', "silver", "e2e_weekly"),
        ('df = n9.read_table(spark, params, layer="bronze", key="e2e_raw")', "bronze", "e2e_raw"),
        ("name = table_name(params, 'silver', 'quarantine')", "silver", "quarantine"),
        ('spark.sql("SELECT * FROM nyc911.silver.e2e_weekly")', "silver", "nyc911.silver.e2e_weekly"),
        (
            'spark.sql("SELECT k.* FROM nyc911.gold.kpi_weekly k JOIN silver.dq_metrics d ON 1=1")',
            "silver",
            "silver.dq_metrics",
        ),
        ('q = """select *\nfrom e2e_superseded"""', "silver", "e2e_superseded"),
        ('raw = spark.table("nyc911.bronze.e2e_raw")', "bronze", "nyc911.bronze.e2e_raw"),
        ("%%sql\nSELECT * FROM `nyc911`.`silver`.`batch_accounting`", "silver", "`batch_accounting`"),
        ('layer = "silver"\ndf = read_table(spark, params, layer, "e2e_weekly")', UNKNOWN, "layer"),
    ],
)
def test_parser_flags_a_planted_non_gold_reference(code, layer, text):
    [ref] = violations(notebook_refs(_notebook(code), "planted.ipynb"))
    assert ref.layer == layer
    assert text in ref.text


def test_parser_accepts_gold_reads():
    notebook = _notebook(
        "%pip install nothing\nimport nyc911lib as n9",
        'summary = n9.read_table(spark, params, "gold", "kpi_summary")',
        'spark.sql("SELECT month, agency FROM nyc911.gold.kpi_monthly_agency")',
        'weekly = spark.table("gold.kpi_weekly")',
        'conf = spark.conf.get("nyc911.params")  # a dotted name that is no table',
        "# reading from silver is forbidden here (a comment, not code)",
    )
    refs = notebook_refs(notebook, "planted.ipynb")
    assert [r.layer for r in refs] == ["gold", "gold", "gold"]
    assert violations(refs) == []


def test_parser_flags_a_planted_silver_dashboard_dataset():
    dashboard = {
        "datasets": [
            {"name": "ok", "queryLines": ["SELECT * ", "FROM nyc911.gold.kpi_weekly"]},
            {
                "name": "bad",
                "query": "SELECT w.* FROM nyc911.gold.kpi_weekly w\n"
                "JOIN nyc911.silver.e2e_weekly s USING (agency)",
            },
        ]
    }
    assert violations(dashboard_refs(dashboard, "planted.lvdash.json")) == [
        Ref("planted.lvdash.json[bad]", "silver", "nyc911.silver.e2e_weekly")
    ]
