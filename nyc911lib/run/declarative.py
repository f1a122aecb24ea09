"""The registry declared on a pipelines engine: every table a materialized view, every view a
temporary view, rebuilt from all landed publications on each run.

Two engines import the same `pipelines/transformations/{bronze,silver,gold}.py`:

- Databricks Lakeflow / DLT (`resources/nyc911_pipeline.yml`): the quality rules of params are
  expectations on `e2e_valid` (`expect_all`, `expect_all_or_drop`, `expect_all_or_fail`);
- open-source Spark Declarative Pipelines (`nyc911 run --runner declarative`, which runs
  `spark-pipelines run` through `nyc911lib.run.sdp`): no expectations API, so the same rules act
  inside `e2e_valid`'s query.

Either way the rows failing a `drop` rule are kept by `quarantine`. Nothing needs a table's own
previous state (a pipeline is a graph without cycles): bronze keeps every publication, so silver's
current and superseded rows (`restatement_outcomes` over all of bronze), the run logs and every
gold table are functions of bronze; tests/test_declarative_pipeline.py proves them equal to the
incremental runners'.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import reduce
from pathlib import Path
from types import ModuleType

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructType

from nyc911lib.config import Params, QualityRule, load_params, parse_date
from nyc911lib.io.bronze_io import LandedFile, identify
from nyc911lib.run import landing
from nyc911lib.run.ingest import landed_file_rows
from nyc911lib.run.registry import (
    INGEST_LOG_FILES,
    LANDED,
    LANDED_FILES,
    REGISTRY,
    Entry,
    RunContext,
    check_params_tables,
    entry,
)
from nyc911lib.transforms.bronze import bronze_from_numbered_lines, lines_of_files

# Pipeline configuration keys (spark.conf), all optional: nyc911.params, nyc911.environment,
# nyc911.catalog, nyc911.warehouse, nyc911.landing_dir, nyc911.source, nyc911.source_kind, nyc911.date_from,
# nyc911.date_to, nyc911.run_id, nyc911.table_format.
CONF_PREFIX = "nyc911."
# Expectation decorators of the Databricks pipelines module, by rule action.
EXPECTATION_DECORATORS = {"warn": "expect_all", "drop": "expect_all_or_drop", "fail": "expect_all_or_fail"}


@dataclass(frozen=True)
class RunConfig:
    """What a declarative run is parameterised by: the params, the landed publications it builds
    bronze from, the gold scope (None: every week), its id and start, and the table format."""

    params: Params
    files: tuple[LandedFile, ...] = ()
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    run_id: str = "declarative"
    started_at: dt.datetime = dataclasses.field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))
    table_format: str | None = None  # open-source SDP: `delta` or `parquet`; None: engine default

    def context(self, spark: SparkSession) -> RunContext:
        return RunContext(self.params, spark, self.run_id, self.started_at, self.date_from, self.date_to)


def landed(paths: list[Path], kind: str | None = None) -> tuple[LandedFile, ...]:
    """Identify landed files (header checked, content hashed) in publication order."""
    return tuple(sorted((identify(path, kind) for path in paths), key=lambda f: f.batch_id))


def dataset_name(key: str, params: Params) -> str:
    """The name a pipeline gives an entry: a view's key, else its table name from params,
    qualified as `catalog.schema.table` when params name a catalog (Databricks)."""
    e = entry(key)
    if not e.stored:
        return key
    table = params.tables[e.layer][key]
    if params.catalog:
        return f"{params.catalog}.{params.schemas.get(e.layer, e.layer)}.{table}"
    return table


def expectations(rules: tuple[QualityRule, ...]) -> dict[str, dict[str, str]]:
    """The quality rules as expectations, by action. A NULL condition fails, as in transforms.quality."""
    by_action: dict[str, dict[str, str]] = {action: {} for action in EXPECTATION_DECORATORS}
    for rule in rules:
        by_action[rule.action][rule.name] = f"coalesce(({rule.condition}), false)"
    return by_action


def apply_quality_rules(evaluated: DataFrame) -> DataFrame:
    """The rules' actions inside the query, for engines without expectations.

    Works on the rule results `nyc911lib.transforms.quality.with_quality_results` added: a row
    failing a `fail` rule makes the query fail, a row failing a `drop` rule is left out (the
    quarantine table keeps it), a failed `warn` rule stays listed in the row's `quality_warnings`.
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

    Bronze is built from `nyc911.source` when given (one export), else from every file in the
    landing folder (`nyc911.landing_dir`, else the params', with `nyc911.warehouse` that
    warehouse's), else from the
    built-in sample, written on first use where `nyc911 run` puts it. A relative params path is
    resolved against the working directory, which SDP sets to the spec's folder.
    """

    def get(key: str) -> str | None:
        return conf(CONF_PREFIX + key, None) or None

    environment = get("environment")
    if environment:
        # load_params picks the environment from NYC911_ENVIRONMENT (the job cluster sets it; a
        # serverless pipeline can only pass configuration, so it is set here for this process).
        os.environ["NYC911_ENVIRONMENT"] = environment
    params = load_params(get("params"))
    if get("warehouse"):
        params = params.with_warehouse(Path(get("warehouse")))
    if get("catalog"):
        params = dataclasses.replace(params, catalog=get("catalog"))
    if get("landing_dir"):
        params = dataclasses.replace(params, landing=Path(get("landing_dir")))
    check_params_tables(params)
    source = get("source")
    paths = landing.landed_files(params.landing_dir) if source is None else []
    if source is not None or not paths:
        path, kind = landing.resolve_source(params, source)
        files = landed([path], get("source_kind") or kind)
    else:
        files = landed(paths)
    started = dt.datetime.now(dt.timezone.utc)
    return RunConfig(
        params=params,
        files=files,
        date_from=parse_date(get("date_from"), "date_from"),
        date_to=parse_date(get("date_to"), "date_to"),
        run_id=get("run_id") or f"declarative-{started:%Y%m%dT%H%M%S}Z",
        started_at=started,
        table_format=get("table_format"),
    )


def _assume_schema(frame: DataFrame, schema: StructType) -> DataFrame:
    """`frame`, answering `.columns` / `.schema` with `schema` instead of asking the server.

    Spark Connect keeps a frame's schema in `_cached_schema` once it has asked for it; setting it
    is the only way to give a frame its schema without a plan node the server analyses (`to()`
    is one, and fails on a table that does not exist yet). A classic DataFrame ignores it.
    """
    frame._cached_schema = schema  # type: ignore[attr-defined]
    return frame


class Pipeline:
    """Declares registry entries on a pipelines engine: `dlt` / `pyspark.pipelines` on Databricks,
    or open-source `pyspark.pipelines`. Stored entries become materialized views, the others
    temporary views.

    With `enforces_quality`, the rules become expect_all / expect_all_or_drop / expect_all_or_fail
    where the engine has expectations, and are applied inside the query where it has not.

    A Spark Connect engine (open-source SDP) refuses any schema analysis inside a query function,
    and some nyc911lib transforms look at their input's columns (typed_e2e, quarantine_rows).
    There, every entry's frame is built when it is declared (its query function returns it; reads
    stay lazy), and an input read from the pipeline is given its schema up front: the schema of
    the same builds applied to the landed files directly, since the input's table may not exist
    yet. A classic session builds the frame in the query function, where the engine resolves the
    pipeline's datasets.
    """

    def __init__(self, dp: ModuleType, spark: SparkSession, run: RunConfig) -> None:
        self.dp = dp
        self.spark = spark
        self.run = run
        self.context = run.context(spark)
        self.has_expectations = hasattr(dp, EXPECTATION_DECORATORS["drop"])
        self.connect = type(spark).__module__.startswith("pyspark.sql.connect")
        self._from_source: dict[str, DataFrame] = {}
        # The ingest log's rows of the landed files (status, rows), worked out once for the run.
        self.file_rows = landed_file_rows(list(run.files), {}, run.started_at)

    def landed_rows(self) -> DataFrame:
        """Bronze rows of every landed publication but the copies of an earlier one, read as the
        incremental spark engine reads a file (whole, its lines numbered and hashed in Spark)."""
        rows = zip(self.run.files, self.file_rows, strict=True)
        ingested = [f for f, e in rows if e["status"] == "ingested"]
        if not ingested:
            raise ValueError("no landed publication to build bronze from")
        frames = [
            lines_of_files(self.spark.read.format("binaryFile").load(self._location(f.path)))
            .drop("path")
            .transform(
                bronze_from_numbered_lines(
                    f.header, f.source_file, f.kind, f.batch_id, F.lit(self.run.started_at)
                )
            )
            for f in ingested
        ]
        return reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), frames)

    def _location(self, path: Path) -> str:
        """A file's location for Spark: a `file:` URI locally; the path itself in a catalog's
        workspace (a Unity Catalog volume, `/Volumes/...`)."""
        return str(path) if self.run.params.catalog else path.resolve().as_uri()

    def landed_files(self) -> DataFrame:
        return self.spark.createDataFrame(self.file_rows, INGEST_LOG_FILES)

    def edge(self, key: str) -> DataFrame | None:
        """A runner-provided input (the landed publications), or None for a registry entry."""
        if key == LANDED:
            return self.landed_rows()
        if key == LANDED_FILES:
            return self.landed_files()
        return None

    def from_source(self, key: str) -> DataFrame:
        """An entry computed straight from the landed files (its upstream tables bypassed)."""
        found = self.edge(key)
        if found is not None:
            return found
        if key not in self._from_source:
            e = entry(key)
            inputs = {k: self.from_source(k) for k in e.inputs}
            frame = e.build(inputs, self.context)
            self._from_source[key] = apply_quality_rules(frame) if e.enforces_quality else frame
        return self._from_source[key]

    def read(self, key: str) -> DataFrame:
        """An input of an entry: the landed publications, or an upstream entry of this pipeline."""
        found = self.edge(key)
        if found is not None:
            return found
        table = self.spark.read.table(dataset_name(key, self.run.params))
        return _assume_schema(table, self.from_source(key).schema) if self.connect else table

    def frame(self, e: Entry) -> DataFrame:
        """The entry's query, rules applied here when the engine has no expectations."""
        frame = e.build({key: self.read(key) for key in e.inputs}, self.context)
        if e.enforces_quality and not self.has_expectations:
            frame = apply_quality_rules(frame)
        return frame

    def declare(self, e: Entry) -> None:
        built = self.frame(e) if self.connect else None

        def query() -> DataFrame:
            return built if built is not None else self.frame(e)

        if e.enforces_quality and self.has_expectations:
            for action, rules in expectations(self.run.params.quality_rules).items():
                if rules:
                    query = getattr(self.dp, EXPECTATION_DECORATORS[action])(rules)(query)
        name = dataset_name(e.key, self.run.params)
        if not e.stored:
            view = getattr(self.dp, "temporary_view", None) or self.dp.view
            view(name=name, comment=e.comment)(query)
            return
        options = {"format": self.run.table_format} if self.run.table_format else {}
        materialized_view = getattr(self.dp, "materialized_view", None) or self.dp.table
        # `quality`: the medallion layer, as Databricks pipelines conventionally tag a table.
        properties = {"quality": e.layer, **e.table_properties}
        materialized_view(name=name, comment=e.comment, table_properties=properties, **options)(query)


def declare_layer(dp: ModuleType, spark: SparkSession, layer: str) -> Pipeline:
    """Declare every registry entry of `layer` (what each pipeline source file does)."""
    pipeline = Pipeline(dp, spark, run_config(spark.conf.get))
    for e in REGISTRY:
        if e.layer == layer:
            pipeline.declare(e)
    return pipeline
