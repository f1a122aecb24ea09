"""The registry: every table of the lakehouse, named once, with how it is built and written.

Each entry holds the table's key (its name comes from `params.tables[layer][key]`), its layer,
its inputs (keys of earlier entries), the transform that builds it, its write mode, its quality
enforcement, and its comment and table properties. Every runner executes this list and keeps
none of its own:

- the notebooks and the inline runner (`nyc911lib.run.layers`) build each layer's entries
  incrementally: bronze appends the new publications, silver MERGEs a batch of them on the
  natural key, gold overwrites (or, for a week range, overwrites that range);
- the declarative runners (`nyc911lib.run.declarative`: open-source Spark Declarative Pipelines,
  `nyc911 run --runner declarative`, and Databricks Lakeflow) declare each stored entry as a
  materialized view and each view as a temporary view, rebuilt from all landed publications.

A build is one composition of nyc911lib transforms: no reading, writing or KPI math of its own.
The incremental and the declarative runs agree because both apply the same builds, and because
silver's outcomes (`restatement_outcomes`) are those of applying the publications one at a time
whether they come in one batch (all of bronze) or one per run (tests/test_declarative_pipeline.py
proves the gold tables equal on the sample and the real export).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, SparkSession

from nyc911lib.config import Params
from nyc911lib.errors import ParamsError
from nyc911lib.schema import BRONZE_SOURCE_NAMES, NATURAL_KEY
from nyc911lib.transforms.anomalies import baseline_reach, weekly_anomalies
from nyc911lib.transforms.data_quality import data_quality_batches, data_quality_rules
from nyc911lib.transforms.gold import (
    kpi_monthly_agency,
    kpi_summary,
    kpi_weekly,
    publication_drift,
    restatements,
    within_weeks,
)
from nyc911lib.transforms.quality import (
    quarantine_rows,
    rule_metrics,
    schema_drift_metrics,
    with_quality_results,
)
from nyc911lib.transforms.response_time import kpi_response_time, response_time_reach
from nyc911lib.transforms.silver import (
    EVALUATION_COLUMNS,
    VALUE_COLUMNS,
    batch_accounting,
    restatement_outcomes,
    typed_e2e,
)
from nyc911lib.transforms.sla import SLA_RULES_SCHEMA, sla_alerts, sla_breach_weekly, sla_rules_table
from nyc911lib.transforms.trends import kpi_agency_weekly, kpi_headline, kpi_monthly_priority
from nyc911lib.transforms.week_spans import WeekReach

# The inputs that are not tables, provided by the runner at its edge:
LANDED = "landed"  # the bronze rows of the publications this run ingests (read by the engine's reader)
LANDED_FILES = "landed_files"  # per landed file of the run: identity, status, rows (INGEST_LOG_FILES)
CURRENT_SILVER = "current_silver"  # incremental runs only: silver's rows of the keys a batch touches

INGEST_LOG_FILES = (
    "batch_id STRING, source_file STRING, source_kind STRING, source_sha256 STRING, bytes BIGINT, "
    "status STRING, duplicate_of STRING, ingested_at TIMESTAMP, rows BIGINT"
)

APPEND, MERGE, OVERWRITE, RANGED_OVERWRITE = "append", "merge", "overwrite", "ranged overwrite"
WRITE_MODES = (APPEND, MERGE, OVERWRITE, RANGED_OVERWRITE)
# Change Data Feed on silver: every insert, and the before/after image of every restatement.
SILVER_PROPERTIES = {"delta.enableChangeDataFeed": "true"}


@dataclass(frozen=True)
class RunContext:
    """What a build may use besides its inputs: the params, the session (for a table made from
    params, e.g. the SLA rules), the run's id and start time (stamped on the run logs), and the
    gold scope of a declarative run (None: every week)."""

    params: Params
    spark: SparkSession
    run_id: str
    started_at: dt.datetime
    date_from: dt.date | None = None
    date_to: dt.date | None = None


Build = Callable[[Mapping[str, DataFrame], RunContext], DataFrame]


@dataclass(frozen=True)
class Entry:
    """One table (or, with `stored=False`, one view between tables) of the lakehouse."""

    key: str
    layer: str
    inputs: tuple[str, ...]
    build: Build
    write: str  # one of WRITE_MODES, as the incremental runner writes it
    comment: str
    stored: bool = True
    merge_key: tuple[str, ...] = ()  # MERGE: the key rows are matched on
    merge_values: tuple[str, ...] = ()  # MERGE: a matched row is updated only when one of these differs
    enforces_quality: bool = False  # the quality rules' actions apply to this entry's rows
    table_properties: Mapping[str, str] = field(default_factory=dict)  # Delta properties, on every runner
    # Gold tables of weekly rows: which input weeks an output week reads (see `week_spans`), so an
    # incremental gold build recomputes only the weeks silver's changes reach. None: rebuilt whole.
    reach: Callable[[Params], WeekReach] | None = None
    # Written in this order (files and row groups of narrow ranges): the tables read and rewritten
    # by week ranges (silver's MERGE, the gold weeks an incremental build replaces).
    cluster_by: tuple[str, ...] = ()


def _stamped(frame: DataFrame, run: RunContext) -> DataFrame:
    """A run log's rows with the run that wrote them."""
    return frame.select(F.lit(run.run_id).alias("run_id"), F.lit(run.started_at).alias("evaluated_at"), "*")


def _bronze(inputs: Mapping[str, DataFrame], run: RunContext) -> DataFrame:
    return inputs[LANDED]  # as received: the engine's reader parsed each line, nothing more


def _ingest_log(inputs: Mapping[str, DataFrame], run: RunContext) -> DataFrame:
    """The landed files of the run as the runner identified them: content hash, status (a copy of
    an earlier publication is a `duplicate` and adds no rows) and the data lines each added."""
    return inputs[LANDED_FILES]


def _typed(inputs: Mapping[str, DataFrame], run: RunContext) -> DataFrame:
    params = run.params
    typed = typed_e2e(params.agency_codes, params.incident_type_fixes, params.unspecified_incident_type)
    return inputs["e2e_raw"].transform(typed)


def _evaluated(inputs: Mapping[str, DataFrame], run: RunContext) -> DataFrame:
    return inputs["e2e_typed"].transform(with_quality_results(run.params.quality_rules))


def _valid(inputs: Mapping[str, DataFrame], run: RunContext) -> DataFrame:
    return inputs["e2e_evaluated"]  # the runner enforces the rules (enforces_quality=True)


def _outcomes(inputs: Mapping[str, DataFrame], run: RunContext) -> DataFrame:
    """Each valid row's outcome against silver (`restatement_outcomes`): the valid rows of the
    publications (`_origin` 1) and, in an incremental run, silver's current rows of their keys
    (`_origin` 0; a declarative run rebuilds from all of bronze and has none).

    Columns are selected by name, never dropped: a Spark Connect server analyses a `drop` while
    the declarative pipeline is still declaring its tables (the inputs' schemas are known then).
    """
    valid = inputs["e2e_valid"]
    columns = [*_without(valid, EVALUATION_COLUMNS), "_origin"]
    versions = valid.select(*columns[:-1], F.lit(1).alias("_origin"))
    current = inputs.get(CURRENT_SILVER)
    if current is not None:
        versions = versions.unionByName(current.withColumn("_origin", F.lit(0)), allowMissingColumns=True)
    return versions.transform(restatement_outcomes(columns=columns))


def _without(frame: DataFrame, names: tuple[str, ...]) -> list[str]:
    """An input's columns but `names`."""
    return [c for c in frame.columns if c not in names]


def _silver(inputs: Mapping[str, DataFrame], run: RunContext) -> DataFrame:
    outcomes = inputs["e2e_outcomes"]
    helpers = ("_origin", "outcome", "superseded_by_batch_id", "superseded_by_line_number")
    return outcomes.where(F.col("outcome") == "silver").select(*_without(outcomes, helpers))


def _superseded(inputs: Mapping[str, DataFrame], run: RunContext) -> DataFrame:
    outcomes = inputs["e2e_outcomes"]
    moved = F.col("outcome").isin("replaced", "superseded")
    return outcomes.where(moved).select(*_without(outcomes, ("_origin", "outcome")))


def _quarantine(inputs: Mapping[str, DataFrame], run: RunContext) -> DataFrame:
    return quarantine_rows(inputs["e2e_evaluated"])


def _dq_metrics(inputs: Mapping[str, DataFrame], run: RunContext) -> DataFrame:
    metrics = (
        inputs["e2e_evaluated"]
        .transform(rule_metrics(run.params.quality_rules))
        .unionByName(inputs["e2e_raw"].transform(schema_drift_metrics(BRONZE_SOURCE_NAMES)))
    )
    return _stamped(metrics, run)


def _batch_accounting(inputs: Mapping[str, DataFrame], run: RunContext) -> DataFrame:
    return _stamped(batch_accounting(inputs["e2e_evaluated"], inputs["e2e_outcomes"]), run)


def _kpi_weekly(inputs: Mapping[str, DataFrame], run: RunContext) -> DataFrame:
    silver = inputs["e2e_weekly"].transform(within_weeks(run.date_from, run.date_to))
    return silver.transform(kpi_weekly(run.params.sla_rules))


def _versions(inputs: Mapping[str, DataFrame], run: RunContext) -> DataFrame:
    """Every valid version of every key: silver's current rows and the superseded ones."""
    return inputs["e2e_weekly"].unionByName(inputs["superseded"], allowMissingColumns=True)


def _sla_rules(inputs: Mapping[str, DataFrame], run: RunContext) -> DataFrame:
    return run.spark.createDataFrame(sla_rules_table(run.params.sla_rules), SLA_RULES_SCHEMA)


def _of(transform: Callable[[DataFrame], DataFrame], key: str = "kpi_weekly") -> Build:
    """A build applying one transform to one input."""
    return lambda inputs, run: transform(inputs[key])


def _gold(
    key: str,
    inputs: tuple[str, ...],
    build: Build,
    comment: str,
    *,
    write: str = OVERWRITE,
    reach: Callable[[Params], WeekReach] | None = None,
) -> Entry:
    cluster_by = ("week_start_date",) if reach is not None else ()
    return Entry(key, "gold", inputs, build, write, comment, reach=reach, cluster_by=cluster_by)


# In dependency order: every input of an entry is an earlier entry or a runner-provided input.
REGISTRY: tuple[Entry, ...] = (
    Entry(
        "e2e_raw",
        "bronze",
        (LANDED,),
        _bronze,
        APPEND,
        "NYC 911 End-to-End export as received: every line as text, with line number and lineage.",
    ),
    Entry(
        "ingest_log",
        "bronze",
        (LANDED_FILES,),
        _ingest_log,
        APPEND,
        "Every landed file: its identity, whether it was ingested or a duplicate, and its bronze rows.",
    ),
    Entry(
        "e2e_typed",
        "silver",
        ("e2e_raw",),
        _typed,
        APPEND,
        "Bronze rows typed: canonical agency and incident type, every duration in seconds.",
        stored=False,
    ),
    Entry(
        "e2e_evaluated",
        "silver",
        ("e2e_typed",),
        _evaluated,
        APPEND,
        "Typed rows with every quality rule evaluated (nothing removed yet).",
        stored=False,
    ),
    Entry(
        "e2e_valid",
        "silver",
        ("e2e_evaluated",),
        _valid,
        APPEND,
        "Evaluated rows with the quality rules enforced: drop rules remove, fail rules stop the run.",
        stored=False,
        enforces_quality=True,
    ),
    Entry(
        "e2e_outcomes",
        "silver",
        ("e2e_valid",),
        _outcomes,
        APPEND,
        "Each valid row's outcome when the publications are applied in order: new, unchanged or superseded.",
        stored=False,
    ),
    Entry(
        "superseded",
        "silver",
        ("e2e_outcomes",),
        _superseded,
        APPEND,
        "Earlier versions of a key that a later publication restated, with the version that replaced them.",
    ),
    Entry(
        "quarantine",
        "silver",
        ("e2e_evaluated",),
        _quarantine,
        APPEND,
        "Rows failing a drop rule, as received, with every reason and their lineage.",
    ),
    Entry(
        "dq_metrics",
        "silver",
        ("e2e_evaluated", "e2e_raw"),
        _dq_metrics,
        APPEND,
        "Run log: per publication and quality rule, rows evaluated, passed and failed.",
    ),
    Entry(
        "e2e_weekly",
        "silver",
        ("e2e_outcomes",),
        _silver,
        MERGE,
        "One valid row per week x agency x incident type: its latest published version.",
        merge_key=NATURAL_KEY,
        merge_values=VALUE_COLUMNS,
        table_properties=SILVER_PROPERTIES,
        cluster_by=("week_start_date",),
    ),
    Entry(
        "batch_accounting",
        "silver",
        ("e2e_evaluated", "e2e_outcomes"),
        _batch_accounting,
        APPEND,
        "Run log: where every row of each publication went (written last in each silver batch).",
    ),
    _gold(
        "kpi_weekly",
        ("e2e_weekly",),
        _kpi_weekly,
        "Weekly KPIs per agency and incident type, with SLA breach flags.",
        write=RANGED_OVERWRITE,
        reach=lambda params: WeekReach(),
    ),
    _gold(
        "kpi_monthly_agency",
        ("kpi_weekly",),
        _of(kpi_monthly_agency),
        "Monthly KPIs per agency, incident-weighted.",
    ),
    Entry(
        "e2e_versions",
        "gold",
        ("e2e_weekly", "superseded"),
        _versions,
        OVERWRITE,
        "Every valid version of every key: silver's current rows and the ones later publications restated.",
        stored=False,
    ),
    _gold(
        "restatements",
        ("e2e_versions",),
        _of(restatements, "e2e_versions"),
        "Every revision of a published weekly value, with its change.",
        write=RANGED_OVERWRITE,
        reach=lambda params: WeekReach(),
    ),
    _gold(
        "publication_drift",
        ("e2e_versions",),
        _of(publication_drift, "e2e_versions"),
        "Per week and agency: the KPIs as first published next to the KPIs as currently restated.",
        write=RANGED_OVERWRITE,
        reach=lambda params: WeekReach(),
    ),
    _gold(
        "kpi_agency_weekly",
        ("kpi_weekly",),
        _of(kpi_agency_weekly),
        "Weekly KPIs per agency and for all agencies.",
        write=RANGED_OVERWRITE,
        reach=lambda params: WeekReach(),
    ),
    _gold(
        "kpi_headline",
        ("kpi_agency_weekly",),
        _of(kpi_headline, "kpi_agency_weekly"),
        "Latest week against the trailing weeks and the same week a year before, per agency.",
    ),
    _gold(
        "kpi_response_time",
        ("kpi_weekly",),
        lambda inputs, run: inputs["kpi_weekly"].transform(
            kpi_response_time(run.params.response_time.most_urgent, run.params.response_time.trailing_weeks)
        ),
        "End-to-end response time (call to arrival) of each agency's most urgent incidents and its "
        "segments, per week: the week, the trailing weeks ending with it, the same weeks a year earlier.",
        write=RANGED_OVERWRITE,
        reach=lambda params: response_time_reach(params.response_time.trailing_weeks),
    ),
    _gold(
        "kpi_monthly_priority",
        ("kpi_weekly",),
        _of(kpi_monthly_priority),
        "Monthly KPIs per agency and incident priority, incident-weighted.",
    ),
    _gold(
        "sla_alerts",
        ("kpi_weekly",),
        lambda inputs, run: inputs["kpi_weekly"].transform(sla_alerts(run.params.sla_rules)),
        "Every week x agency x incident type over an SLA threshold, with its breach streak.",
    ),
    _gold(
        "sla_breach_weekly",
        ("kpi_weekly",),
        lambda inputs, run: inputs["kpi_weekly"].transform(sla_breach_weekly(run.params.sla_rules)),
        "Per week and SLA rule: incidents in breach, incident-weighted.",
        write=RANGED_OVERWRITE,
        reach=lambda params: WeekReach(),
    ),
    _gold("sla_rules", (), _sla_rules, "The SLA rules gold was computed with."),
    _gold(
        "anomalies",
        ("kpi_weekly",),
        lambda inputs, run: inputs["kpi_weekly"].transform(weekly_anomalies(**run.params.anomalies)),
        "Weeks far from the same weeks of earlier years (robust z-score).",
        write=RANGED_OVERWRITE,
        reach=lambda params: baseline_reach(params.anomalies),
    ),
    _gold(
        "data_quality_batches",
        ("ingest_log", "batch_accounting"),
        lambda inputs, run: data_quality_batches(inputs["ingest_log"], inputs["batch_accounting"]),
        "Per landed file: where it came from, when, and where each of its rows went.",
    ),
    _gold(
        "data_quality_rules",
        ("dq_metrics",),
        lambda inputs, run: data_quality_rules(inputs["dq_metrics"]),
        "Per publication and quality rule: the rule's action and the rows that failed it.",
    ),
    # Last: the incremental runner writes it last in every gold build (its commit records what gold
    # was built from), so its presence says gold is complete.
    _gold(
        "kpi_summary",
        ("kpi_weekly",),
        lambda inputs, run: inputs["kpi_weekly"].transform(kpi_summary()),
        "One row for the weeks gold holds: weeks covered, totals and weighted headline KPIs.",
    ),
)

RUNNER_INPUTS = (LANDED, LANDED_FILES, CURRENT_SILVER)


def entry(key: str) -> Entry:
    """The registry entry of `key`."""
    for e in REGISTRY:
        if e.key == key:
            return e
    raise KeyError(f"no table or view '{key}' in the registry")


def layer_entries(layer: str, *, stored: bool | None = None) -> tuple[Entry, ...]:
    """The entries of one layer in dependency order (only the tables, or only the views, if asked)."""
    return tuple(e for e in REGISTRY if e.layer == layer and (stored is None or e.stored == stored))


def table_keys(layer: str) -> tuple[str, ...]:
    """The keys of a layer's stored tables, in the order they are built."""
    return tuple(e.key for e in layer_entries(layer, stored=True))


def check_params_tables(params: Params) -> None:
    """Raise ParamsError when the tables params name and the registry's differ (either way):
    params may rename a table, never add or leave one out."""
    for layer in ("bronze", "silver", "gold"):
        named, built = set(params.tables.get(layer, {})), set(table_keys(layer))
        if named != built:
            missing, unknown = sorted(built - named), sorted(named - built)
            raise ParamsError(
                f"params tables.{layer} disagree with the registry: "
                + "; ".join(
                    part
                    for part in (
                        f"not named in params: {', '.join(missing)}" if missing else "",
                        f"not in the registry: {', '.join(unknown)}" if unknown else "",
                    )
                    if part
                )
            )
