"""One registry, every runner: the declarative runner builds every table the incremental runners
build, with the same rows.

End to end: `nyc911 run --runner declarative` (open-source Spark Declarative Pipelines, every table
a materialized view rebuilt from the landed files) on the built-in sample and on the two real
exports (two publications: the later restates the earlier), and the incremental path (`nyc911 run
--runner inline`, the layer functions the notebooks call) on the same landed files: the parity
tests' duckdb warehouses (tests/parity_runs.py; tests/test_parity.py proves their tables equal the
spark engine's), the real exports in two runs so silver MERGEd the second publication into the
first. Every table
of every layer must be equal (tests/engine_runs.py `diff_tables`: types, row counts, rows, floats to
1e-9 relative; paths, wall-clock times and run ids aside), and `nyc911 report` / `nyc911 alerts`
read the declarative warehouse as any other. Nothing is skipped: an engine that cannot run here
fails the test (the real exports are skipped only when ../shared/data is absent).

Without a pipelines engine: on an engine with expectations (Databricks) the rules are declared as
expectations with the same meaning; without (open source) they act inside the query.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pyspark.sql.functions as F
import pytest
from conftest import REAL_2025, real_export
from declarative_runs import nyc911, params_for
from engine_runs import diff_tables, table_paths

from nyc911lib import QualityRule, load_params, write_sample
from nyc911lib.run.declarative import (
    EXPECTATION_DECORATORS,
    Pipeline,
    RunConfig,
    apply_quality_rules,
    landed,
)
from nyc911lib.run.registry import REGISTRY, entry

pytestmark = [pytest.mark.spark, pytest.mark.e2e, pytest.mark.timeout(3600)]

REPO = Path(__file__).resolve().parents[1]
TABLES = sorted(table_paths(REPO))  # `layer.table` of every table params name


CASES = ["sample", "real"]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("table", TABLES)
def test_every_table_equals_the_incremental_runners(warehouses, case, table):
    if case not in warehouses:
        real_export(REAL_2025)  # skips, naming the missing folder
    declarative, incremental = warehouses[case]
    assert set(table_paths(declarative)) == set(table_paths(incremental)) == set(TABLES)
    assert diff_tables(table_paths(declarative)[table], table_paths(incremental)[table]) == []


@pytest.mark.parametrize("case", CASES)
def test_the_declarative_tables_are_published_links_of_one_run(warehouses, case):
    if case not in warehouses:
        real_export(REAL_2025)
    declarative, _ = warehouses[case]
    current = (declarative / "_declarative" / "current").resolve()
    assert [p.name for p in (declarative / "_declarative" / "runs").iterdir()] == [current.parent.name]
    for name, path in table_paths(declarative).items():
        assert path.is_symlink() and path.resolve().parent == current, name


def test_report_and_alerts_read_the_declarative_warehouse(warehouses, tmp_path):
    declarative, incremental = warehouses["real" if "real" in warehouses else "sample"]
    out = tmp_path / "report"
    done = nyc911(
        "report",
        "--warehouse",
        str(declarative),
        "--params",
        str(params_for(declarative)),
        "--out",
        str(out),
        log_dir=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    built = json.loads((out / "kpi_summary.json").read_text(encoding="utf-8"))
    expected = json.loads((Path(f"{incremental}-reports") / "kpi_summary.json").read_text(encoding="utf-8"))
    for key in ("total_incidents", "first_week", "last_week", "rows", "agencies", "source_kinds"):
        assert built[key] == expected[key], key
    for key in ("avg_call_to_first_pickup_s", "sla_breach_incidents_pct", "sla_breach_rows_pct"):
        assert built[key] == pytest.approx(expected[key], rel=1e-9), key
    assert "Gold computed by the spark engine (declarative runner)" in (out / "kpi_report.html").read_text(
        encoding="utf-8"
    )
    alerts, reference = (
        alerts_of(warehouse, tmp_path / name) for warehouse, name in ((declarative, "a"), (incremental, "r"))
    )
    assert alerts.returncode == reference.returncode
    assert alerts.stdout.splitlines()[:2] == reference.stdout.splitlines()[:2]


def alerts_of(warehouse: Path, out: Path) -> subprocess.CompletedProcess:
    """`nyc911 alerts` on a warehouse (no webhook), its files in `out`."""
    options = ["--warehouse", str(warehouse), "--params", str(params_for(warehouse))]
    return nyc911("alerts", *options, "--no-post", "--out", str(out), log_dir=out.parent)


def delta_metadata(table: Path) -> dict:
    """The table's latest `metaData` action, read from its Delta log."""
    actions = [
        json.loads(line)
        for commit in sorted((table / "_delta_log").glob("*.json"))
        for line in commit.read_text(encoding="utf-8").splitlines()
    ]
    return [a["metaData"] for a in actions if "metaData" in a][-1]


@pytest.mark.parametrize("key", [e.key for e in REGISTRY if e.stored])
def test_declarative_tables_have_the_registry_comment_and_properties(warehouses, key):
    e = entry(key)
    path = table_paths(warehouses["sample"][0])[f"{e.layer}.{load_params().tables[e.layer][key]}"]
    metadata = delta_metadata(path)
    assert metadata["description"] == e.comment
    assert {"quality": e.layer, **e.table_properties}.items() <= metadata["configuration"].items()


# --------------------------------------------------------------------------- quality rules, no engine

NO_FDNY = QualityRule("no_fdny", "agency <> 'FDNY'", "fail")


@pytest.fixture
def evaluated(spark, params, tmp_path):
    """A small sample through bronze and the rule evaluation, with a `fail` rule that FDNY rows fail."""
    params = dataclasses.replace(params, quality_rules=(*params.quality_rules, NO_FDNY))
    sample = write_sample(tmp_path / "sample.csv", weeks=4)
    run = RunConfig(params, landed([sample], "sample"))
    rows = Pipeline(SimpleNamespace(), spark, run).from_source("e2e_evaluated").cache()
    yield run, rows
    rows.unpersist()


def test_with_expectations_the_rules_are_declared_as_expectations(spark, evaluated):
    """What Databricks gets: every rule as an expectation of its action, meaning what it means in
    nyc911lib.transforms.quality (NULL fails), and a query that leaves the dropping to the engine."""
    run, rows = evaluated
    declared: dict = {"expectations": {}}

    def expectation(decorator):
        return lambda rules: lambda query: declared["expectations"].update({decorator: rules}) or query

    def dataset(**options):
        return lambda query: declared.update(options, query=query)

    engine = SimpleNamespace(
        **{name: expectation(name) for name in EXPECTATION_DECORATORS.values()},
        temporary_view=dataset,
        materialized_view=dataset,
    )
    rows.createOrReplaceTempView("e2e_evaluated")
    try:
        Pipeline(engine, spark, run).declare(entry("e2e_valid"))
        assert declared["name"] == "e2e_valid"
        assert declared["query"]().count() == rows.count()
    finally:
        spark.catalog.dropTempView("e2e_evaluated")
    rules = run.params.quality_rules
    for action, decorator in EXPECTATION_DECORATORS.items():
        expected = {r.name for r in rules if r.action == action}
        assert set(declared["expectations"].get(decorator, {})) == expected, decorator
    conditions = {n: c for by_name in declared["expectations"].values() for n, c in by_name.items()}
    counts = rows.agg(
        *[F.sum((~F.expr(c)).cast("int")).alias(f"{n}_expectation") for n, c in conditions.items()],
        *[F.sum(F.array_contains("failed_rules", n).cast("int")).alias(f"{n}_rule") for n in conditions],
    ).first()
    for name in conditions:
        assert counts[f"{name}_expectation"] == counts[f"{name}_rule"], name


def test_without_expectations_the_rules_act_inside_the_query(evaluated):
    """What open-source SDP gets: drop rules filter, a fail rule fails the query."""
    _, rows = evaluated
    without_fail = rows.withColumn("failed_fail_rules", F.array().cast("array<string>"))
    assert apply_quality_rules(without_fail).count() == rows.where(F.size("quarantine_reasons") == 0).count()
    with pytest.raises(Exception, match="quality rules with action 'fail' were violated: no_fdny"):
        apply_quality_rules(rows).count()
