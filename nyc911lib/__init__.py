"""nyc911lib: NYC 911 End-to-End data as a Bronze -> Silver -> Gold Delta lakehouse.

The public API: notebooks, pipeline sources and the CLI import only from here.

Importing the package decides nothing: each name's module is imported when the name is first used.
The transforms are PySpark-API code, so the engine (`duckdb`, the default, or `spark`) must be fixed
before they are imported: `session(engine)` does it explicitly, and the first use of a name that
needs an engine selects the default one (`$NYC911_ENGINE`, else duckdb). See `nyc911lib.engine`.
"""

from __future__ import annotations

import importlib
from typing import Any

# Modules that import neither pyspark nor an engine: using their names selects no engine.
_ENGINE_FREE = {
    "nyc911lib.config",
    "nyc911lib.engine",
    "nyc911lib.errors",
    "nyc911lib.io.fetch",
    "nyc911lib.io.fetch_api",
    "nyc911lib.run.landing",
    "nyc911lib.run.notebook",
    "nyc911lib.sample",
    "nyc911lib.schema",
    "nyc911lib.io.storage",
}
# Every public name, by the module that defines it.
_EXPORTS: dict[str, tuple[str, ...]] = {
    "nyc911lib.report.alerts": (
        "alerts_markdown",
        "alerts_payload",
        "write_alert_files",
    ),
    "nyc911lib.report.webhook": ("post_webhook",),
    "nyc911lib.transforms.anomalies": ("weekly_anomalies",),
    "nyc911lib.transforms.bronze": (
        "bronze_column_names",
        "bronze_from_lines",
        "lines_of_files",
        "parse_csv_lines",
        "with_line_number",
    ),
    "nyc911lib.config": (
        "parse_date",
        "parse_flag",
        "load_params",
        "Params",
        "QualityRule",
        "SlaRule",
        "FetchConfig",
    ),
    "nyc911lib.transforms.data_quality": (
        "data_quality_batches",
        "data_quality_rules",
    ),
    "nyc911lib.run.declarative": ("declare_layer",),
    "nyc911lib.run.registry": ("REGISTRY",),
    "nyc911lib.engine": (
        "to_pandas",
        "ENGINES",
        "require_java",
        "session",
    ),
    "nyc911lib.errors": (
        "JavaNotFoundError",
        "MissingColumnsError",
        "MixedSourcesError",
        "Nyc911Error",
        "ParamsError",
        "QualityRuleError",
        "SourceError",
    ),
    "nyc911lib.io.fetch_api": ("fetch_api",),
    "nyc911lib.io.fetch": (
        "fetch_csv_export",
        "FetchError",
    ),
    "nyc911lib.transforms.gold": (
        "incident_weighted_mean",
        "kpi_monthly_agency",
        "kpi_summary",
        "kpi_weekly",
        "publication_drift",
        "restatements",
        "sla_breach_flag",
        "within_weeks",
    ),
    "nyc911lib.run.landing": ("Landed", "land_source", "plan_landing", "resolve_source"),
    "nyc911lib.run.notebook": ("notebook_args", "notebook_setup"),
    "nyc911lib.run.gold_run": ("build_gold",),
    "nyc911lib.run.silver_run": ("build_silver",),
    "nyc911lib.run.ingest": ("ingest_bronze",),
    "nyc911lib.run.layers": ("new_run_id", "run_layers", "RunOutcome"),
    "nyc911lib.transforms.quality": (
        "quarantine_rows",
        "rule_metrics",
        "with_quality_results",
    ),
    "nyc911lib.report.html": (
        "kpi_tiles",
        "monthly_figures",
        "render_report_html",
        "report_summary_json",
        "write_report",
    ),
    "nyc911lib.report.sections": ("change_text", "fmt_duration", "response_time_figure"),
    "nyc911lib.report.build": (
        "build_report",
        "read_report_gold",
        "ReportScope",
    ),
    "nyc911lib.sample": ("write_sample",),
    "nyc911lib.schema": (
        "NATURAL_KEY",
        "sanitize_column_name",
        "SOURCE_COLUMNS",
        "SOURCE_HEADERS",
    ),
    "nyc911lib.transforms.silver": (
        "restatement_outcomes",
        "typed_e2e",
    ),
    "nyc911lib.transforms.response_time": ("kpi_response_time",),
    "nyc911lib.transforms.sla": (
        "sla_alerts",
        "sla_breach_weekly",
    ),
    "nyc911lib.io.storage": (
        "read_table",
        "table_name",
    ),
    "nyc911lib.transforms.trends": (
        "kpi_agency_weekly",
        "kpi_headline",
        "kpi_monthly_priority",
    ),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = [
    "ENGINES",
    "NATURAL_KEY",
    "REGISTRY",
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
    "declare_layer",
    "fetch_api",
    "fetch_csv_export",
    "fmt_duration",
    "incident_weighted_mean",
    "ingest_bronze",
    "kpi_agency_weekly",
    "kpi_headline",
    "kpi_monthly_agency",
    "kpi_monthly_priority",
    "kpi_response_time",
    "kpi_summary",
    "kpi_tiles",
    "kpi_weekly",
    "land_source",
    "lines_of_files",
    "load_params",
    "monthly_figures",
    "new_run_id",
    "notebook_args",
    "notebook_setup",
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
    "response_time_figure",
    "restatement_outcomes",
    "restatements",
    "rule_metrics",
    "run_layers",
    "sanitize_column_name",
    "session",
    "sla_alerts",
    "sla_breach_flag",
    "sla_breach_weekly",
    "table_name",
    "to_pandas",
    "typed_e2e",
    "weekly_anomalies",
    "with_line_number",
    "with_quality_results",
    "within_weeks",
    "write_alert_files",
    "write_report",
    "write_sample",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'nyc911lib' has no attribute '{name}'")
    if module not in _ENGINE_FREE:
        from nyc911lib import engine  # noqa: PLC0415

        engine.select()
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
