"""The lakehouse datasets, declared once: name, layer, inputs, transform, quality, comment, properties.

Three runners execute the same transforms:

- the papermill notebooks, through `nyc911lib.pipeline` (bronze batches appended, Delta folders);
- open-source Spark Declarative Pipelines: `pipelines/spark-pipeline.yml`, `spark-pipelines run`;
- Databricks Lakeflow / DLT: `resources/nyc911_pipeline.yml`, from the same
  `pipelines/transformations/{bronze,silver,gold}.py`, each declaring its layer with `Pipeline`.

Every `build` only composes nyc911lib transforms (no Spark action, no KPI logic of its own). The
quality rules of params are enforced on one dataset (`e2e_valid`): as real expectations where
the engine has them (Databricks), inside its query where it does not (open-source SDP). Either
way the rows failing a `drop` rule are kept by their own dataset, `quarantine`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructType

from nyc911lib import storage
from nyc911lib.bronze import bronze_from_lines
from nyc911lib.config import Params, QualityRule, load_params, parse_date
from nyc911lib.gold import kpi_monthly_agency, kpi_summary, kpi_weekly, within_weeks
from nyc911lib.landing import new_batch_id, resolve_source
from nyc911lib.quality import quarantine_rows
from nyc911lib.silver import evaluate_bronze, latest_per_key, silver_rows

# The one input that is not a dataset: the lines of the CSV export, read at the pipeline's edge.
SOURCE_LINES = "source_lines"
# Pipeline configuration keys (spark.conf), all optional: nyc911.params, nyc911.environment,
# nyc911.catalog, nyc911.source, nyc911.source_kind, nyc911.date_from, nyc911.date_to,
# nyc911.table_format.
CONF_PREFIX = "nyc911."
# Expectation decorators of the Databricks pipelines module, by rule action.
EXPECTATION_DECORATORS = {"warn": "expect_all", "drop": "expect_all_or_drop", "fail": "expect_all_or_fail"}


@dataclass(frozen=True)
class SourceFile:
    """The export bronze reads, resolved at the edge: where, what kind, its header and identity."""

    path: Path
    kind: str
    header: tuple[str, ...]
    sha256: str
    batch_id: str


@dataclass(frozen=True)
class RunConfig:
    """What a declarative run is parameterised by (papermill passes the same values as arguments)."""

    params: Params
    source: SourceFile | None = None
    date_from: dt.date | None = None  # gold scope; None: all weeks
    date_to: dt.date | None = None
    table_format: str | None = None  # open-source SDP: `delta` or `parquet`; None: engine default


Build = Callable[[Mapping[str, DataFrame], RunConfig], DataFrame]


@dataclass(frozen=True)
class Dataset:
    """One dataset of the pipeline.

    `key` is the dataset's key in `params.tables[layer]` (which gives its table name) or, for a
    temporary view (`stored=False`), its name. `inputs` are keys of earlier datasets (or
    SOURCE_LINES). With `enforces_quality`, the runner applies the quality rules to its rows.
    """

    key: str
    layer: str
    inputs: tuple[str, ...]
    build: Build
    comment: str
    stored: bool = True
    enforces_quality: bool = False
    table_properties: Mapping[str, str] = field(default_factory=dict)


def _bronze(inputs: Mapping[str, DataFrame], run: RunConfig) -> DataFrame:
    source = run.source
    if source is None:
        raise ValueError("the bronze dataset needs the source file (nyc911.source)")
    return (
        inputs[SOURCE_LINES]
        .transform(bronze_from_lines(source.header, str(source.path), source.kind, source.batch_id))
        .withColumn("_source_sha256", F.lit(source.sha256))
    )


def _evaluated(inputs: Mapping[str, DataFrame], run: RunConfig) -> DataFrame:
    return inputs["e2e_raw"].transform(evaluate_bronze(run.params))


def _valid(inputs: Mapping[str, DataFrame], run: RunConfig) -> DataFrame:
    return inputs["e2e_evaluated"]  # the runner enforces the rules (enforces_quality=True)


def _silver(inputs: Mapping[str, DataFrame], run: RunConfig) -> DataFrame:
    """`silver_rows(latest_per_key(valid))`, spelled without `DataFrame.drop`.

    A Spark Connect server plans `drop` eagerly: it analyses the input when the flow is defined,
    and in open-source SDP the input (a dataset of the same pipeline) does not exist yet then. So
    the rows silver_rows keeps (`_rank` 1) are selected with the columns silver_rows keeps, found
    by applying it to an empty frame of the same schema.
    """
    valid = inputs["e2e_valid"]
    empty = valid.sparkSession.createDataFrame([], valid.schema)
    columns = silver_rows(latest_per_key(empty)).columns
    return latest_per_key(valid).where(F.col("_rank") == 1).select(*columns)


def _quarantine(inputs: Mapping[str, DataFrame], run: RunConfig) -> DataFrame:
    return quarantine_rows(inputs["e2e_evaluated"])


def _kpi_weekly(inputs: Mapping[str, DataFrame], run: RunConfig) -> DataFrame:
    silver = inputs["e2e_weekly"].transform(within_weeks(run.date_from, run.date_to))
    return silver.transform(kpi_weekly(run.params.sla_rules))


def _kpi_monthly_agency(inputs: Mapping[str, DataFrame], run: RunConfig) -> DataFrame:
    return kpi_monthly_agency(inputs["kpi_weekly"])


def _kpi_summary(inputs: Mapping[str, DataFrame], run: RunConfig) -> DataFrame:
    return inputs["kpi_weekly"].transform(kpi_summary(run.date_from, run.date_to))


def _layer(name: str) -> dict[str, str]:
    return {"quality": name}  # the medallion layer, as Databricks pipelines conventionally tag it


# In dependency order.
DATASETS: tuple[Dataset, ...] = (
    Dataset(
        "e2e_raw",
        "bronze",
        (SOURCE_LINES,),
        _bronze,
        "NYC 911 End-to-End export as received: every line as text, with line number and lineage.",
        table_properties=_layer("bronze"),
    ),
    Dataset(
        "e2e_evaluated",
        "silver",
        ("e2e_raw",),
        _evaluated,
        "Bronze rows typed (durations in seconds) with every quality rule evaluated.",
        stored=False,
    ),
    Dataset(
        "e2e_valid",
        "silver",
        ("e2e_evaluated",),
        _valid,
        "Evaluated rows with the quality rules enforced: drop rules remove, fail rules stop the run.",
        stored=False,
        enforces_quality=True,
    ),
    Dataset(
        "e2e_weekly",
        "silver",
        ("e2e_valid",),
        _silver,
        "One valid row per week x agency x incident type: the latest ingested one.",
        table_properties=_layer("silver"),
    ),
    Dataset(
        "quarantine",
        "silver",
        ("e2e_evaluated",),
        _quarantine,
        "Rows failing a drop rule, as received, with every reason and their lineage.",
        table_properties=_layer("silver"),
    ),
    Dataset(
        "kpi_weekly",
        "gold",
        ("e2e_weekly",),
        _kpi_weekly,
        "Weekly KPIs per agency and incident type, with SLA breach flags.",
        table_properties=_layer("gold"),
    ),
    Dataset(
        "kpi_monthly_agency",
        "gold",
        ("kpi_weekly",),
        _kpi_monthly_agency,
        "Monthly KPIs per agency, incident-weighted.",
        table_properties=_layer("gold"),
    ),
    Dataset(
        "kpi_summary",
        "gold",
        ("kpi_weekly",),
        _kpi_summary,
        "One row for the run scope: weeks covered, totals and weighted headline KPIs.",
        table_properties=_layer("gold"),
    ),
)


def layer_datasets(layer: str) -> tuple[Dataset, ...]:
    """The datasets of one layer, in dependency order."""
    return tuple(d for d in DATASETS if d.layer == layer)


def dataset_name(key: str, params: Params) -> str:
    """The name a pipeline gives a dataset: a view's key, else its table name from params,
    qualified as `catalog.schema.table` when params name a catalog (Databricks)."""
    dataset = next(d for d in DATASETS if d.key == key)
    if not dataset.stored:
        return key
    table = params.tables[dataset.layer][key]
    if params.catalog:
        return f"{params.catalog}.{params.schemas.get(dataset.layer, dataset.layer)}.{table}"
    return table


def expectations(rules: tuple[QualityRule, ...]) -> dict[str, dict[str, str]]:
    """The quality rules as expectations, by action. A NULL condition fails, as in nyc911lib.quality."""
    by_action: dict[str, dict[str, str]] = {action: {} for action in EXPECTATION_DECORATORS}
    for rule in rules:
        by_action[rule.action][rule.name] = f"coalesce(({rule.condition}), false)"
    return by_action


def apply_quality_rules(evaluated: DataFrame) -> DataFrame:
    """The rules' actions inside the query, for engines without expectations.

    Works on the rule results `nyc911lib.quality.with_quality_results` added: a row failing a
    `fail` rule makes the query fail, a row failing a `drop` rule is left out (the quarantine
    dataset keeps it), a failed `warn` rule stays listed in the row's `quality_warnings`.
    """
    stop = F.raise_error(
        F.concat(
            F.lit("quality rules with action 'fail' were violated: "),
            F.array_join("failed_fail_rules", ", "),
            F.lit(" (source line "),
            F.col("_line_number").cast("string"),
            F.lit(")"),
        )
    )
    return evaluated.where(
        F.when(F.size("failed_fail_rules") > 0, stop).otherwise(F.size("quarantine_reasons") == 0)
    )


def run_config(conf: Callable[[str, str | None], str | None]) -> RunConfig:
    """Read the run's parameters from the pipeline configuration (e.g. `spark.conf.get`).

    Defaults: the project's params/default.yaml and, for the source, the built-in sample (written
    on first use where `nyc911 run` puts it). A relative params path is resolved against the
    working directory, which SDP sets to the spec's folder while it loads the sources.
    """

    def get(key: str) -> str | None:
        return conf(CONF_PREFIX + key, None) or None

    environment = get("environment")
    if environment:
        # load_params picks the environment from NYC911_ENVIRONMENT (the job cluster sets it; a
        # serverless pipeline can only pass configuration, so it is set here for this process).
        os.environ["NYC911_ENVIRONMENT"] = environment
    params = load_params(get("params"))
    catalog = get("catalog")
    if catalog:
        params = dataclasses.replace(params, catalog=catalog)
    return RunConfig(
        params=params,
        source=source_file(params, get("source"), get("source_kind")),
        date_from=parse_date(get("date_from"), "date_from"),
        date_to=parse_date(get("date_to"), "date_to"),
        table_format=get("table_format"),
    )


def source_file(params: Params, source: str | None, kind: str | None = None) -> SourceFile:
    """Resolve and check the export (as `nyc911lib.landing.resolve_source`) and identify it."""
    path, resolved_kind = resolve_source(params, source)
    sha = storage.file_sha256(path)
    header = tuple(storage.read_source_header(path))
    return SourceFile(path, kind or resolved_kind, header, sha, new_batch_id(sha))


def _assume_schema(frame: DataFrame, schema: StructType) -> DataFrame:
    """`frame`, answering `.columns` / `.schema` with `schema` instead of asking the server.

    Spark Connect keeps a frame's schema in `_cached_schema` once it has asked for it; setting it
    is the only way to give a frame its schema without a plan node the server analyses (`to()`
    is one, and fails on a table that does not exist yet). A classic DataFrame ignores it.
    """
    frame._cached_schema = schema  # type: ignore[attr-defined]
    return frame


class Pipeline:
    """Declares datasets on a pipelines engine: `dlt` / `pyspark.pipelines` on Databricks, or
    open-source `pyspark.pipelines`. Stored datasets become materialized views, the others
    temporary views.

    With `enforces_quality`, the rules become expect_all / expect_all_or_drop / expect_all_or_fail
    where the engine has expectations, and are applied inside the query where it has not.

    A Spark Connect engine (open-source SDP) refuses any schema analysis inside a query function,
    and some nyc911lib transforms look at their input's columns (parse_csv_lines, typed_e2e,
    quarantine_rows). There, every dataset's frame is built when it is declared (its query
    function returns it; reads stay lazy), and an input read from the pipeline is given its
    schema up front: the schema of the same transforms applied to the source file directly,
    since the input's table may not exist yet. A classic session builds the frame in the query
    function, where the engine resolves the pipeline's datasets.
    """

    def __init__(self, dp: ModuleType, spark: SparkSession, run: RunConfig) -> None:
        self.dp = dp
        self.spark = spark
        self.run = run
        self.has_expectations = hasattr(dp, EXPECTATION_DECORATORS["drop"])
        self.connect = type(spark).__module__.startswith("pyspark.sql.connect")
        self._from_source: dict[str, DataFrame] = {}

    def source_lines(self) -> DataFrame:
        if self.run.source is None:
            raise ValueError("no source file was resolved (nyc911.source)")
        return storage.read_source_lines(self.spark, self.run.source.path)

    def from_source(self, key: str) -> DataFrame:
        """A dataset computed straight from the source file (its upstream tables bypassed)."""
        if key == SOURCE_LINES:
            return self.source_lines()
        if key not in self._from_source:
            dataset = next(d for d in DATASETS if d.key == key)
            inputs = {k: self.from_source(k) for k in dataset.inputs}
            self._from_source[key] = dataset.build(inputs, self.run)
        return self._from_source[key]

    def read(self, key: str) -> DataFrame:
        """An input of a dataset: the source lines, or an upstream dataset of this pipeline."""
        if key == SOURCE_LINES:
            return self.source_lines()
        table = self.spark.read.table(dataset_name(key, self.run.params))
        return _assume_schema(table, self.from_source(key).schema) if self.connect else table

    def frame(self, dataset: Dataset) -> DataFrame:
        """The dataset's query, rules applied here when the engine has no expectations."""
        frame = dataset.build({key: self.read(key) for key in dataset.inputs}, self.run)
        if dataset.enforces_quality and not self.has_expectations:
            frame = apply_quality_rules(frame)
        return frame

    def declare(self, dataset: Dataset) -> None:
        built = self.frame(dataset) if self.connect else None

        def query() -> DataFrame:
            return built if built is not None else self.frame(dataset)

        if dataset.enforces_quality and self.has_expectations:
            for action, rules in expectations(self.run.params.quality_rules).items():
                if rules:
                    query = getattr(self.dp, EXPECTATION_DECORATORS[action])(rules)(query)
        name = dataset_name(dataset.key, self.run.params)
        if not dataset.stored:
            view = getattr(self.dp, "temporary_view", None) or self.dp.view
            view(name=name, comment=dataset.comment)(query)
            return
        options = {"format": self.run.table_format} if self.run.table_format else {}
        materialized_view = getattr(self.dp, "materialized_view", None) or self.dp.table
        materialized_view(
            name=name, comment=dataset.comment, table_properties=dict(dataset.table_properties), **options
        )(query)
