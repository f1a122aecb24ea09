"""The report's edge: read the gold tables a report draws (limited to its scope) and write the
HTML report and its summary JSON. Rendering is pure: report/html.py, sections.py, monitoring.py.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyspark.sql.functions as F
from pyspark.sql import DataFrame, SparkSession

from nyc911lib import engine
from nyc911lib.config import Params
from nyc911lib.errors import ParamsError
from nyc911lib.io import storage
from nyc911lib.report.html import render_report_html, report_summary_json, write_report
from nyc911lib.report.sections import ReportDetails
from nyc911lib.transforms.gold import kpi_summary
from nyc911lib.transforms.sla import sla_rules_table
from nyc911lib.transforms.trends import ALL_AGENCIES

REPORT_NAME = "kpi_report.html"
SUMMARY_NAME = "kpi_summary.json"
PDF_NAME = "kpi_report.pdf"


@dataclass(frozen=True)
class ReportScope:
    """What a report shows: weeks in [date_from, date_to] and the listed agencies (None: all)."""

    date_from: dt.date | None = None
    date_to: dt.date | None = None
    agencies: tuple[str, ...] | None = None

    def weeks(self, column: str = "week_start_date") -> F.Column:
        """TRUE for the rows of `column` (a week, or a month's first day) inside the scope."""
        cond = F.lit(True)
        if self.date_from is not None:
            unit = "month" if column == "month" else "week"
            cond = cond & (F.col(column) >= F.trunc(F.lit(self.date_from), unit))
        if self.date_to is not None:
            cond = cond & (F.col(column) <= F.lit(self.date_to))
        return cond

    def of_agencies(self, column: str = "agency") -> F.Column:
        """TRUE for the rows of the scope's agencies."""
        return F.lit(True) if self.agencies is None else F.col(column).isin(list(self.agencies))

    @property
    def narrowed(self) -> bool:
        """Whether the scope is narrower than all of gold."""
        return (self.date_from, self.date_to, self.agencies) != (None, None, None)


def check_sla_rules(spark: SparkSession, params: Params) -> None:
    """Fail when gold was computed with other SLA rules than `params` names (a report must never
    label figures with rules they were not computed with)."""
    rows = storage.read_table(spark, params, "gold", "sla_rules").orderBy("rule").collect()
    stored = [r.asDict() for r in rows]
    wanted = sorted(sla_rules_table(params.sla_rules), key=lambda r: r["rule"])
    if stored != wanted:

        def text(rules: list[dict]) -> str:
            return ", ".join(f"{r['rule']} ({r['metric']} > {r['threshold_s']:g} s)" for r in rules) or "none"

        raise ParamsError(
            f"gold was computed with the SLA rules {text(stored)}, but the SLA rules file asks for "
            f"{text(wanted)}: rebuild gold with them first (name the file as sla_rules_file in the "
            "params, then nyc911 run --full-refresh)"
        )


def read_report_gold(
    spark: SparkSession, params: Params, scope: ReportScope, generated_at: dt.datetime
) -> tuple[pd.DataFrame, pd.DataFrame, ReportDetails, pd.DataFrame]:
    """The small gold frames a report draws, limited to `scope` (toPandas on gold results only):
    the summary, the agency-months, the detail sections' frames and the summary per agency."""

    def gold(table: str) -> DataFrame:
        return storage.read_table(spark, params, "gold", table)

    pandas = engine.to_pandas
    weekly_scope = scope.weeks() & scope.of_agencies()
    monthly_scope = scope.weeks("month") & scope.of_agencies()
    monthly = gold("kpi_monthly_agency").where(monthly_scope)
    # Gold's own summary function over gold's weeks of the scope, overall and per agency: no
    # KPI math here.
    weeks = gold("kpi_weekly").where(weekly_scope)
    scoped = weeks.transform(kpi_summary(scope.date_from, scope.date_to))
    summary_pdf = pandas(scoped if scope.narrowed else gold("kpi_summary"))
    agency_summary = pandas(weeks.transform(kpi_summary(scope.date_from, scope.date_to, by=("agency",))))
    latest_week = summary_pdf["last_week"].iloc[0] if len(summary_pdf) else None
    shown_agencies = F.col("agency").isin(ALL_AGENCIES) | scope.of_agencies()
    latest_alerts_scope = weekly_scope & (F.col("week_start_date") == F.lit(latest_week))
    named = agency_display_names(params.agency_names)
    details = ReportDetails(
        headline=named(pandas(gold("kpi_headline").where(scope.weeks() & shown_agencies))),
        response_time=named(
            pandas(
                gold("kpi_response_time")
                .where(scope.of_agencies() & (F.col("week_start_date") == F.lit(latest_week)))
                .orderBy("agency", "incident_type", "period")
            )
        ),
        monthly_priority=named(pandas(gold("kpi_monthly_priority").where(monthly_scope))),
        sla_rules=pandas(gold("sla_rules")),
        sla_breach_weekly=named(pandas(gold("sla_breach_weekly").where(weekly_scope))),
        sla_alerts=named(pandas(gold("sla_alerts").where(latest_alerts_scope))),
        anomalies=named(pandas(gold("anomalies").where(weekly_scope))),
        dq_batches=pandas(gold("data_quality_batches")),
        dq_rules=pandas(gold("data_quality_rules")),
        generated_at=generated_at,
    )
    return summary_pdf, named(pandas(monthly.orderBy("month", "agency"))), details, named(agency_summary)


def agency_display_names(names: Mapping[str, str]) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """A report frame with its `agency` codes shown by name (`params.agency_names`: `NYPD (Non-CIP)`,
    not `NYPD_NON_CIP`); a code params do not name, and the all-agencies row, stay as they are.
    Applied to the pandas frames a report draws, after gold and the scope (which use codes)."""

    def named(frame: pd.DataFrame) -> pd.DataFrame:
        if "agency" not in frame.columns:
            return frame
        shown = frame["agency"].map(lambda a: names.get(a, a) if isinstance(a, str) else a)
        return frame.assign(agency=shown)

    return named


def build_report(
    spark: SparkSession,
    params: Params,
    out_dir: Path,
    scope: ReportScope | None = None,
    *,
    generated_at: dt.datetime | None = None,
) -> Path:
    """Write the HTML KPI report and its summary JSON from the gold tables; return the report.

    `scope` limits it to a date range and agencies; the SLA rules of `params` must be those gold
    was computed with.
    """
    scope = scope or ReportScope()
    generated_at = generated_at or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    check_sla_rules(spark, params)
    summary, monthly, details, agency_summary = read_report_gold(spark, params, scope, generated_at)
    note = "SLA rules: " + "; ".join(f"{r.name} ({r.metric} > {r.threshold_s:g} s)" for r in params.sla_rules)
    if scope.agencies is not None:
        note += ". Agencies: " + ", ".join(scope.agencies)
    note += ". " + computed_with(spark, params)
    html = render_report_html(
        summary, monthly, params_note=note, details=details, agency_summary=agency_summary
    )
    path = write_report(out_dir / REPORT_NAME, html)
    built_from = report_stamp(spark, params, scope)
    stamped = {**report_summary_json(summary), "built_from": built_from}
    write_report(out_dir / SUMMARY_NAME, json.dumps(stamped, indent=2))
    return path


def computed_with(spark: SparkSession, params: Params) -> str:
    """Which engine and runner computed gold, as its last build's commit records them."""
    found = storage.last_commit_metadata(spark, params, "gold", "kpi_summary") or {}
    engine_name, runner = found.get("engine", "unknown"), found.get("runner", "unknown")
    return f"Gold computed by the {engine_name} engine ({runner} runner)"


def report_stamp(spark: SparkSession, params: Params, scope: ReportScope) -> dict:
    """What a report was built from: the gold build (the version of gold.kpi_summary, which every
    gold build rewrites last-but-not-least with the others) and the scope and rules it shows."""
    return {
        "gold_kpi_summary_version": storage.table_version(spark, params, "gold", "kpi_summary"),
        "date_from": scope.date_from.isoformat() if scope.date_from else None,
        "date_to": scope.date_to.isoformat() if scope.date_to else None,
        "agencies": list(scope.agencies) if scope.agencies is not None else None,
        "sla_rules": sla_rules_table(params.sla_rules),
    }


def report_is_current(
    spark: SparkSession, params: Params, out_dir: Path, scope: ReportScope | None = None
) -> bool:
    """Whether `out_dir` holds a report built from the current gold with this scope and these rules
    (a run that changed nothing then leaves it as it is; `nyc911 report` always rebuilds it)."""
    report, summary = out_dir / REPORT_NAME, out_dir / SUMMARY_NAME
    if not (report.is_file() and summary.is_file()):
        return False
    try:
        built_from = json.loads(summary.read_text(encoding="utf-8")).get("built_from")
    except ValueError:
        return False
    return built_from == report_stamp(spark, params, scope or ReportScope())


def latest_alerts(spark: SparkSession, params: Params) -> tuple[dt.date | None, list[dict]]:
    """The latest week of the data and its rows of gold.sla_alerts (a small gold result)."""
    latest = storage.read_table(spark, params, "gold", "kpi_summary").first()
    week = latest["last_week"] if latest else None
    alerts = storage.read_table(spark, params, "gold", "sla_alerts").where(
        F.col("week_start_date") == F.lit(week)
    )
    return week, [r.asDict() for r in alerts.collect()]
