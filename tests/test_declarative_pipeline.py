"""One definition, two local runners, the same gold; and the quality rules on both kinds of engine.

End to end: the declarative pipeline (open-source Spark Declarative Pipelines: `spark-pipelines
run` through pipelines/run_local.py, on a copy of pipelines/spark-pipeline.yml pointing at
temporary folders) and the papermill path (nyc911lib.pipeline: ingest_bronze, build_silver,
build_gold) run on the same built-in sample (the papermill path on the duckdb engine, in a process of its own,
beside the declarative run); every gold table must be equal row for row (floats to a relative 1e-9,
as between the engines: they add the same numbers in another order), and the silver rows and the
quarantine exactly. Nothing is skipped:
an engine that cannot run here fails the test.

Without a pipelines engine: on an engine with expectations (Databricks) the rules are declared as
expectations with the same meaning; without (open source) they act inside the query.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pyspark.sql.functions as F
import pytest
import yaml
from engine_runs import start_runs, wait_runs
from pyspark.testing import assertDataFrameEqual

from nyc911lib import (
    QualityRule,
    read_table,
    write_sample,
)
from nyc911lib.datasets import (
    DATASETS,
    EXPECTATION_DECORATORS,
    Pipeline,
    RunConfig,
    apply_quality_rules,
    dataset_name,
    source_file,
)

pytestmark = [pytest.mark.spark, pytest.mark.e2e]

REPO = Path(__file__).resolve().parents[1]
PIPELINES = REPO / "pipelines"
RUN_LOCAL = PIPELINES / "run_local.py"
SDP_TIMEOUT_S = 600
# Lineage that names the run, not the data: a new batch id and ingestion time on every run.
PER_RUN_COLUMNS = ("_batch_id", "_ingested_at", "_source_file")  # the papermill path reads its landed copy
GOLD = [d.key for d in DATASETS if d.layer == "gold"]


def spec_for(spec_dir: Path, params_file: Path, source: Path, storage: Path) -> Path:
    """A copy of the repo's spec, with its transformations, for this run's source and folders."""
    spec = yaml.safe_load((PIPELINES / "spark-pipeline.yml").read_text(encoding="utf-8"))
    spec["storage"] = storage.as_uri()
    spec["configuration"].update(
        {"nyc911.params": str(params_file), "nyc911.source": str(source), "nyc911.source_kind": "sample"}
    )
    spec_dir.mkdir(parents=True)
    (spec_dir / "transformations").symlink_to(PIPELINES / "transformations", target_is_directory=True)
    path = spec_dir / "spark-pipeline.yml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def run_declarative(spec: Path, warehouse: Path) -> Path:
    """`spark-pipelines run` on the spec; the folder holding the tables it wrote."""
    cmd = [sys.executable, str(RUN_LOCAL), "--spec", str(spec), "--warehouse", str(warehouse)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=SDP_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"spark-pipelines run did not finish within {SDP_TIMEOUT_S} s: {' '.join(cmd)}")
    if done.returncode != 0:
        output = "\n".join(
            line for line in (done.stdout + done.stderr).splitlines() if not line.startswith("\tat ")
        )
        pytest.fail(f"spark-pipelines run failed (exit {done.returncode}):\n{output[-4000:]}")
    return warehouse / "spark-warehouse"


@pytest.fixture(scope="module")
def runs(params, tmp_path_factory):
    """Both runners on the same sample: (params of the incremental pipeline's warehouse, folder
    of the declarative tables). The incremental pipeline (`nyc911 run --runner inline`) runs on
    the duckdb engine in a process of its own, beside `spark-pipelines run`: tests/test_parity.py
    proves its tables equal the spark engine's, and it costs this process no Spark run."""
    tmp = tmp_path_factory.mktemp("declarative")
    sample = write_sample(tmp / "landing" / "nyc911_sample.csv")
    papermill = params.with_warehouse(tmp / "papermill")
    landed = [[str(sample), f"20260105T000000000000Z__sample__{sample.name}"]]
    incremental = start_runs(
        "duckdb", [{"warehouse": str(papermill.warehouse), "land": landed}], tmp / "logs"
    )
    spec = spec_for(tmp / "spec", params.source_file, sample, tmp / "sdp_storage")
    sdp_tables = run_declarative(spec, tmp / "sdp")
    wait_runs(incremental, timeout=600)
    return papermill, sdp_tables


def declarative_table(spark, runs, key):
    papermill, sdp_tables = runs
    path = sdp_tables / dataset_name(key, papermill)
    assert (path / "_delta_log").is_dir(), f"no Delta table at {path}"
    return spark.read.format("delta").load(str(path))


@pytest.mark.e2e
@pytest.mark.parametrize("key", GOLD)
def test_gold_table_equals_the_papermill_one(spark, runs, key):
    expected = read_table(spark, runs[0], "gold", key)
    assert expected.count() > 0
    assertDataFrameEqual(declarative_table(spark, runs, key), expected, rtol=1e-9, atol=0)


@pytest.mark.e2e
def test_silver_rows_equal_the_papermill_ones(spark, runs):
    expected = read_table(spark, runs[0], "silver", "e2e_weekly").drop(*PER_RUN_COLUMNS)
    actual = declarative_table(spark, runs, "e2e_weekly").drop(*PER_RUN_COLUMNS)
    assertDataFrameEqual(actual, expected, rtol=0, atol=0)


@pytest.mark.e2e
def test_quarantine_equals_the_papermill_one(spark, runs):
    expected = read_table(spark, runs[0], "silver", "quarantine")
    actual = declarative_table(spark, runs, "quarantine")
    assert actual.count() == expected.count() > 0
    reasons = ["_line_number", F.array_join("quarantine_reasons", ",").alias("reasons")]
    assertDataFrameEqual(actual.select(reasons), expected.select(reasons))
    assertDataFrameEqual(actual.drop(*PER_RUN_COLUMNS), expected.drop(*PER_RUN_COLUMNS), rtol=0, atol=0)


def delta_metadata(table: Path) -> dict:
    """The table's latest `metaData` action, read from its Delta log."""
    actions = [
        json.loads(line)
        for commit in sorted((table / "_delta_log").glob("*.json"))
        for line in commit.read_text(encoding="utf-8").splitlines()
    ]
    return [a["metaData"] for a in actions if "metaData" in a][-1]


@pytest.mark.e2e
@pytest.mark.parametrize("dataset", [d for d in DATASETS if d.stored], ids=lambda d: d.key)
def test_declarative_tables_are_delta_with_comment_and_properties(runs, dataset):
    metadata = delta_metadata(runs[1] / dataset_name(dataset.key, runs[0]))
    assert metadata["description"] == dataset.comment
    assert dict(dataset.table_properties).items() <= metadata["configuration"].items()


# --------------------------------------------------------------------------- quality rules, no engine

NO_FDNY = QualityRule("no_fdny", "agency <> 'FDNY'", "fail")


@pytest.fixture
def evaluated(spark, params, tmp_path):
    """A small sample through bronze and the rule evaluation, with a `fail` rule that FDNY rows fail."""
    params = dataclasses.replace(params, quality_rules=(*params.quality_rules, NO_FDNY))
    sample = write_sample(tmp_path / "sample.csv", weeks=4)
    run = RunConfig(params, source_file(params, str(sample)))
    rows = Pipeline(SimpleNamespace(), spark, run).from_source("e2e_evaluated").cache()
    yield run, rows
    rows.unpersist()


def test_with_expectations_the_rules_are_declared_as_expectations(spark, evaluated):
    """What Databricks gets: every rule as an expectation of its action, meaning what it means in
    nyc911lib.quality (NULL fails), and a query that leaves the dropping to the engine."""
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
        Pipeline(engine, spark, run).declare(next(d for d in DATASETS if d.key == "e2e_valid"))
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
