"""The report's monitoring sections: SLA breaches (chart, rules, the latest week's alerts),
anomalies and data quality. Pure functions over small pandas frames read from gold, built with
the helpers of `nyc911lib.report.sections` (escaping, formatting, agency filtering)."""

from __future__ import annotations

import datetime as dt
from html import escape
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from nyc911lib.report.sections import (
    ALL_KEY,
    MAX_TABLE_ROWS,
    NA,
    AgencyKey,
    ReportDetails,
    as_list,
    cell,
    fmt_date,
    fmt_number,
    missing,
    name_cell,
    table,
    trace_name,
)

RULE_COLOURS = ("#D55E00", "#0072B2", "#009E73", "#CC79A7", "#E69F00", "#555555")  # Okabe-Ito
SLA_RECENT_WEEKS = 104  # the weekly chart: the last two years of the report (the heatmap has them all)


def sla_figure(breach_weekly: pd.DataFrame, key_of: AgencyKey) -> go.Figure:
    """Weekly SLA breach rate (% of incidents) over the report's last SLA_RECENT_WEEKS weeks:
    small multiples, one panel per agency, one line per rule; a missing week is a gap."""
    data = breach_weekly
    if not data.empty:
        data = data.assign(week=pd.to_datetime(data["week_start_date"]))
        data = data[data["week"] > data["week"].max() - pd.Timedelta(weeks=SLA_RECENT_WEEKS)]
        data = data.sort_values(["agency", "rule", "week"], kind="stable")
    agencies = [] if data.empty else list(dict.fromkeys(data["agency"]))
    titles = [trace_name(a) for a in agencies] or ["No data"]
    fig = make_subplots(
        rows=len(titles), cols=1, shared_xaxes=True, subplot_titles=titles, vertical_spacing=0.08
    )
    shown: set[str] = set()
    rules = [] if data.empty else sorted({str(r) for r in data["rule"]})
    colour = {
        rule: RULE_COLOURS[i % len(RULE_COLOURS)] for i, rule in enumerate(rules)
    }  # same in every panel
    for i, agency in enumerate(agencies, start=1):
        for rule, rows in data[data["agency"] == agency].groupby("rule", sort=False):
            weeks = pd.date_range(rows["week"].min(), rows["week"].max(), freq="7D")
            filled = rows.set_index("week").reindex(weeks)
            fig.add_trace(
                go.Scatter(
                    x=weeks.strftime("%Y-%m-%d"),
                    y=pd.to_numeric(filled["breach_incidents_pct"], errors="coerce"),
                    mode="lines",
                    name=trace_name(rule),
                    legendgroup=str(rule),
                    showlegend=str(rule) not in shown,
                    line={"color": colour[str(rule)]},
                    meta=key_of(agency),
                ),
                row=i,
                col=1,
            )
            shown.add(str(rule))
    fig.update_yaxes(title_text="%")
    fig.update_layout(
        title_text=f"Weekly SLA breach rate by agency and rule, the last {SLA_RECENT_WEEKS} weeks",
        legend_title_text="Rule",
        height=100 + 150 * len(titles),
        margin={"l": 60, "r": 20, "t": 80, "b": 40},
    )
    return fig


def sla_rules_html(rules: pd.DataFrame) -> str:
    """The SLA rules gold applied: metric, threshold and scope."""
    rows = []
    for _, r in rules.iterrows():
        scope = [
            f"{label}: {', '.join(map(str, as_list(r.get(column)))) or 'all'}"
            for column, label in (("agencies", "agencies"), ("incident_types", "incident types"))
        ]
        rows.append(
            (
                ALL_KEY,
                cell(str(r["rule"]))
                + cell(str(r["metric"]))
                + cell(fmt_number(r["threshold_s"], " s"), num=True)
                + cell("; ".join(scope))
                + cell("" if missing(r.get("description")) else str(r["description"])),
            )
        )
    return table(
        ("Rule", "Metric", "Threshold", "Scope", "Description"), rows, "No SLA rules are configured."
    )


def sla_alerts_html(alerts: pd.DataFrame, key_of: AgencyKey) -> str:
    """The latest week's alerts, most incidents first."""
    rows = []
    if not alerts.empty:
        ordered = alerts.sort_values(
            ["incidents_affected", "agency", "incident_type", "rule"],
            ascending=[False, True, True, True],
            kind="stable",
        )
        for _, r in ordered.head(MAX_TABLE_ROWS).iterrows():
            since = f"{fmt_date(r['streak_start_week'])} ({int(r['streak_weeks'])} wk)"
            rows.append(
                (
                    key_of(r["agency"]),
                    cell(str(r["rule"]))
                    + name_cell(r["agency"])
                    + name_cell(r["incident_type"])
                    + cell(fmt_number(r["observed_s"], " s"), num=True)
                    + cell(fmt_number(r["threshold_s"], " s"), num=True)
                    + cell(fmt_number(r["incidents_affected"]), num=True)
                    + cell(since),
                )
            )
    more = len(alerts) - len(rows)
    note = f'<p class="note">{more} more alerts are in gold.sla_alerts.</p>' if more > 0 else ""
    headers = ("Rule", "Agency", "Incident type", "Observed", "Threshold", "Incidents", "Breaching since")
    return table(headers, rows, "No SLA alert in the latest week.") + note


def anomalies_html(anomalies: pd.DataFrame, key_of: AgencyKey) -> str:
    """The anomalies in scope, newest week first, then the strongest."""
    rows = []
    if not anomalies.empty:
        data = anomalies.assign(_abs=pd.to_numeric(anomalies["robust_z"], errors="coerce").abs())
        data = data.sort_values(["week_start_date", "_abs"], ascending=[False, False], kind="stable")
        for _, r in data.head(MAX_TABLE_ROWS).iterrows():
            unit = None if r["metric"] == "incidents" else " s"
            arrow = "▲ high" if r["direction"] == "high" else "▼ low"
            rows.append(
                (
                    key_of(r["agency"]),
                    cell(fmt_date(r["week_start_date"]))
                    + name_cell(r["agency"])
                    + name_cell(r["incident_type"])
                    + cell(str(r["metric"]))
                    + cell(fmt_number(r["observed"], unit), num=True)
                    + cell(fmt_number(r["baseline_median"], unit), num=True)
                    + cell(fmt_number(r["robust_z"], "", digits=1), num=True)
                    + cell(arrow, css="neutral"),
                )
            )
    more = len(anomalies) - len(rows)
    note = f'<p class="note">{more} older or weaker anomalies are in gold.anomalies.</p>' if more > 0 else ""
    headers = (
        "Week",
        "Agency",
        "Incident type",
        "Metric",
        "Observed",
        "Seasonal baseline",
        "Score",
        "Direction",
    )
    return table(headers, rows, "No anomaly in the date range.") + note


RULE_OUTCOMES = {"drop": "quarantined", "warn": "kept, flagged", "fail": "run stopped"}


def data_quality_html(details: ReportDetails, last_week: Any) -> str:
    """Freshness, one row per landed file with where its rows went, and the rows failing each rule."""
    batches, rules = details.dq_batches, details.dq_rules
    parts = []
    last_ingest = None if batches.empty else pd.to_datetime(batches["ingested_at"]).max()
    fresh = f"Latest week in the data: {fmt_date(last_week)}. Last file ingested: " + (
        NA if missing(last_ingest) else f"{last_ingest:%Y-%m-%d %H:%M} UTC"
    )
    if details.generated_at is not None and not missing(last_week):
        week_end = pd.Timestamp(last_week).date() + dt.timedelta(days=6)
        age = (details.generated_at.date() - week_end).days
        fresh += f". The latest week ended {age} days before this report was generated"
    parts.append(f"<p>{escape(fresh)}.</p>")
    rows = []
    if not batches.empty:
        for _, r in batches.sort_values("ingested_at", kind="stable").iterrows():
            accounted = NA if missing(r["rows_accounted"]) else ("yes" if bool(r["rows_accounted"]) else "no")
            rows.append(
                (
                    ALL_KEY,
                    name_cell(str(r["source_file"]).rsplit("/", 1)[-1])
                    + cell(str(r["status"]))
                    + cell(fmt_date(r["ingested_at"]))
                    + "".join(
                        cell(fmt_number(r[c]), num=True)
                        for c in (
                            "rows_landed",
                            "rows_silver",
                            "rows_unchanged",
                            "rows_superseded",
                            "rows_quarantined",
                            "rows_replaced",
                        )
                    )
                    + cell(accounted),
                )
            )
    headers = (
        "File",
        "Status",
        "Ingested",
        "Rows",
        "New or revised",
        "Unchanged",
        "Superseded",
        "Quarantined",
        "Replaced in silver",
        "All rows accounted",
    )
    parts.append(table(headers, rows, "No file has been ingested."))
    failing = rules[pd.to_numeric(rules["rows_failed"], errors="coerce") > 0] if not rules.empty else rules
    rule_rows = []
    names = {} if batches.empty else dict(zip(batches["batch_id"], batches["source_file"], strict=False))
    for _, r in failing.iterrows():
        file_name = str(names.get(r["batch_id"], r["batch_id"])).rsplit("/", 1)[-1]
        outcome = RULE_OUTCOMES.get(r["action"], r["action"])
        rule_rows.append(
            (
                ALL_KEY,
                name_cell(file_name)
                + cell(str(r["rule"]))
                + cell(str(outcome))
                + cell(fmt_number(r["rows_failed"]), num=True),
            )
        )
    parts.append(
        table(("File", "Rule", "Rows are", "Rows failing"), rule_rows, "Every row passed every rule.")
    )
    return "".join(parts)
