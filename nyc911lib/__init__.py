"""nyc911lib: NYC 911 End-to-End data as a Bronze -> Silver -> Gold Delta lakehouse.

The public API: notebooks, pipeline sources and the CLI import only from here.
"""

from nyc911lib.alerts import alerts_markdown, alerts_payload, post_webhook, write_alert_files
from nyc911lib.anomalies import weekly_anomalies
from nyc911lib.bronze import (
    bronze_column_names,
    bronze_from_lines,
    lines_of_files,
    parse_csv_lines,
    with_line_number,
)
from nyc911lib.config import Params, QualityRule, SlaRule, load_params
from nyc911lib.data_quality import data_quality_batches, data_quality_rules
from nyc911lib.datasets import DATASETS, Pipeline, layer_datasets, run_config
from nyc911lib.errors import (
    JavaNotFoundError,
    MissingColumnsError,
    MixedSourcesError,
    Nyc911Error,
    ParamsError,
    QualityRuleError,
    SourceError,
)
from nyc911lib.fetch import FetchConfig, FetchError, fetch_api, fetch_csv_export
from nyc911lib.gold import (
    incident_weighted_mean,
    kpi_monthly_agency,
    kpi_summary,
    kpi_weekly,
    publication_drift,
    restatements,
    sla_breach_flag,
    within_weeks,
)
from nyc911lib.notebook import notebook_args
from nyc911lib.pipeline import (
    Landed,
    RunOutcome,
    build_gold,
    build_silver,
    evaluate_bronze,
    gold_tables,
    ingest_bronze,
    land_source,
    new_run_id,
    parse_date,
    parse_flag,
    plan_landing,
    resolve_source,
    run_layers,
    silver_tables,
)
from nyc911lib.quality import quarantine_rows, rule_metrics, with_quality_results
from nyc911lib.report import (
    kpi_tiles,
    monthly_figures,
    render_report_html,
    report_summary_json,
    write_report,
)
from nyc911lib.report_sections import change_text
from nyc911lib.reporting import ReportScope, build_report, read_report_gold
from nyc911lib.sample import write_sample
from nyc911lib.schema import NATURAL_KEY, SOURCE_COLUMNS, SOURCE_HEADERS, sanitize_column_name
from nyc911lib.silver import latest_per_key, restatement_outcomes, typed_e2e
from nyc911lib.sla import sla_alerts, sla_breach_weekly
from nyc911lib.spark import get_spark, require_java
from nyc911lib.storage import read_table, table_name
from nyc911lib.trends import kpi_agency_weekly, kpi_headline, kpi_monthly_priority

__all__ = [
    "DATASETS",
    "NATURAL_KEY",
    "SOURCE_COLUMNS",
    "SOURCE_HEADERS",
    "FetchConfig",
    "FetchError",
    "JavaNotFoundError",
    "Landed",
    "MissingColumnsError",
    "MixedSourcesError",
    "Nyc911Error",
    "Params",
    "ParamsError",
    "Pipeline",
    "QualityRule",
    "QualityRuleError",
    "ReportScope",
    "RunOutcome",
    "SlaRule",
    "SourceError",
    "alerts_markdown",
    "alerts_payload",
    "bronze_column_names",
    "bronze_from_lines",
    "build_gold",
    "build_report",
    "build_silver",
    "change_text",
    "data_quality_batches",
    "data_quality_rules",
    "evaluate_bronze",
    "fetch_api",
    "fetch_csv_export",
    "get_spark",
    "gold_tables",
    "incident_weighted_mean",
    "ingest_bronze",
    "kpi_agency_weekly",
    "kpi_headline",
    "kpi_monthly_agency",
    "kpi_monthly_priority",
    "kpi_summary",
    "kpi_tiles",
    "kpi_weekly",
    "land_source",
    "latest_per_key",
    "layer_datasets",
    "lines_of_files",
    "load_params",
    "monthly_figures",
    "new_run_id",
    "notebook_args",
    "parse_csv_lines",
    "parse_date",
    "parse_flag",
    "plan_landing",
    "post_webhook",
    "publication_drift",
    "quarantine_rows",
    "read_report_gold",
    "read_table",
    "render_report_html",
    "report_summary_json",
    "require_java",
    "resolve_source",
    "restatement_outcomes",
    "restatements",
    "rule_metrics",
    "run_config",
    "run_layers",
    "sanitize_column_name",
    "silver_tables",
    "sla_alerts",
    "sla_breach_flag",
    "sla_breach_weekly",
    "table_name",
    "typed_e2e",
    "weekly_anomalies",
    "with_line_number",
    "with_quality_results",
    "within_weeks",
    "write_alert_files",
    "write_report",
    "write_sample",
]
