"""The report's detail sections: latest-week headline, dispatch and travel trends by priority, SLA
breaches and alerts, anomalies and data quality. Pure functions over small pandas frames read
from gold; every string from the data is escaped here, every number formatted here.

Agency filtering works on indexes, never on names: a table row carries `data-agency-row="<i>"`
(shown for "All agencies" and for agency i), a per-agency view `data-agency-view="<i>|all"`
(only the selected one is shown) and a chart trace `meta = "<i>"`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

import pandas as pd
import plotly.graph_objects as go

NA = "n/a"
ALL_KEY = "all"
MAX_NAME_CHARS = 60  # longer agency / incident-type names are cut in charts and tables (full in title)
MAX_TABLE_ROWS = 50
# Okabe-Ito colours (safe for the common colour-vision deficiencies); arrows and words carry the
# meaning too, so nothing depends on colour alone.
BETTER_COLOUR, WORSE_COLOUR, NEUTRAL_COLOUR = "#0072B2", "#D55E00", "#555555"
HEADLINE_METRICS = {
    "incidents": ("Incidents", None),
    "avg_call_to_first_pickup_s": ("Avg call to first pickup", " s"),
    "avg_dispatch_s": ("Avg dispatch", " s"),
    "avg_travel_s": ("Avg travel", " s"),
}
SECTION_CSS = """.better{color:#0072B2}.worse{color:#D55E00}.neutral{color:#555}
table.data{border-collapse:collapse;margin:8px 0;font-size:.92em}
table.data th,table.data td{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}
table.data td.num{text-align:right;font-variant-numeric:tabular-nums}
.cut{display:inline-block;max-width:28em;overflow-wrap:anywhere}"""


def empty_frame(columns: Sequence[str] = ()) -> pd.DataFrame:
    """An empty frame with `columns` (a section without data)."""
    return pd.DataFrame(columns=list(columns))


@dataclass(frozen=True)
class ReportDetails:
    """The gold frames behind the detail sections (already limited to the report's date range
    and agencies) and the time the report is generated (for the data's freshness)."""

    headline: pd.DataFrame = field(default_factory=empty_frame)
    monthly_priority: pd.DataFrame = field(default_factory=empty_frame)
    sla_rules: pd.DataFrame = field(default_factory=empty_frame)
    sla_breach_weekly: pd.DataFrame = field(default_factory=empty_frame)
    sla_alerts: pd.DataFrame = field(default_factory=empty_frame)
    anomalies: pd.DataFrame = field(default_factory=empty_frame)
    dq_batches: pd.DataFrame = field(default_factory=empty_frame)
    dq_rules: pd.DataFrame = field(default_factory=empty_frame)
    generated_at: dt.datetime | None = None


def missing(value: Any) -> bool:
    """True for None, NaN and NaT."""
    try:
        return value is None or bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def as_list(value: Any) -> list:
    """A list from an array cell (list, numpy array, None)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    return list(value)


def short_name(name: Any, limit: int = MAX_NAME_CHARS) -> str:
    """A display name of at most `limit` characters (cut with an ellipsis)."""
    text = "" if missing(name) else str(name)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fmt_number(value: Any, unit: str | None = None, digits: int = 1) -> str:
    """Thousands separators; integers without a unit, others with `digits` decimals and the unit."""
    if missing(value) or not math.isfinite(float(value)):
        return NA
    if unit is None:
        return f"{round(float(value)):,}"
    return f"{float(value):,.{digits}f}{unit}"


def fmt_date(value: Any) -> str:
    """An ISO date, or n/a."""
    if missing(value):
        return NA
    if isinstance(value, str):
        return value
    return (value.date() if isinstance(value, dt.datetime) else value).isoformat()


def change_text(change_pct: Any, lower_is_better: Any) -> tuple[str, str]:
    """(text, css class) of a change: an arrow, the percentage and, when a direction is good or
    bad, the word "better" or "worse" (so the meaning never rests on colour alone)."""
    if missing(change_pct):
        return "n/a (no comparison)", "neutral"
    value = float(change_pct)
    if abs(value) < 0.05:
        return "= 0.0 %", "neutral"
    arrow, word = ("▲", "higher") if value > 0 else ("▼", "lower")
    text = f"{arrow} {abs(value):.1f} % {word}"
    if missing(lower_is_better):
        return text, "neutral"
    better = (value < 0) == bool(lower_is_better)
    return f"{text} ({'better' if better else 'worse'})", "better" if better else "worse"


def cell(text: str, *, num: bool = False, title: str | None = None, css: str | None = None) -> str:
    """One escaped table cell."""
    classes = " ".join(c for c in ("num" if num else "", css or "") if c)
    attrs = (f' class="{classes}"' if classes else "") + (f' title="{escape(title)}"' if title else "")
    return f"<td{attrs}>{escape(text)}</td>"


def name_cell(name: Any) -> str:
    """A cell for a name from the data: cut for display, the full (escaped) name as its title."""
    full = "" if missing(name) else str(name)
    title = f' title="{escape(full)}"' if len(full) > MAX_NAME_CHARS else ""
    return f'<td><span class="cut"{title}>{escape(short_name(full))}</span></td>'


def table(headers: Sequence[str], rows: Sequence[tuple[str, str]], empty: str) -> str:
    """An HTML table of pre-rendered rows: (agency key of the row, its cells)."""
    if not rows:
        return f'<p class="note">{escape(empty)}</p>'
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(f'<tr data-agency-row="{key}">{cells}</tr>' for key, cells in rows)
    return f'<table class="data"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


AgencyKey = Callable[[Any], str]


def agency_key_of(agencies: Sequence[str]) -> AgencyKey:
    """Agency name -> its filter key (its index in the report's agency list; `all` otherwise)."""
    index = {a: str(i) for i, a in enumerate(agencies)}
    return lambda name: index.get("" if missing(name) else str(name), ALL_KEY)


def headline_html(headline: pd.DataFrame, key_of: AgencyKey, all_label: str) -> str:
    """One table per agency (and all agencies): the latest week's value of each headline metric
    against the same week a year earlier and the median of the 12 weeks before."""
    if headline.empty:
        return '<p class="note">No data for a latest week.</p>'
    views = []
    for agency, rows in headline.groupby("agency", sort=True):
        key = ALL_KEY if agency == all_label else key_of(agency)
        by_metric = {r["metric"]: r for _, r in rows.iterrows()}
        lines = []
        for metric, (label, unit) in HEADLINE_METRICS.items():
            r = by_metric.get(metric)
            if r is None:
                continue
            year_text, year_css = change_text(r["change_vs_last_year_pct"], r["lower_is_better"])
            median_text, median_css = change_text(r["change_vs_trailing_median_pct"], r["lower_is_better"])
            lines.append(
                "<tr>"
                + cell(label)
                + cell(fmt_number(r["value"], unit), num=True)
                + cell(fmt_number(r["last_year_value"], unit), num=True)
                + cell(year_text, css=year_css)
                + cell(fmt_number(r["trailing_12w_median"], unit), num=True)
                + cell(median_text, css=median_css)
                + "</tr>"
            )
        week = fmt_date(rows["week_start_date"].iloc[0])
        last_year = fmt_date(rows["last_year_week"].iloc[0])
        head = "".join(
            f"<th>{escape(h)}</th>"
            for h in (
                "Metric",
                f"Week of {week}",
                f"Same week last year ({last_year})",
                "Change vs last year",
                "Median of the 12 weeks before",
                "Change vs 12-week median",
            )
        )
        hidden = "" if key == ALL_KEY else " hidden"
        views.append(
            f'<div data-agency-view="{key}"{hidden}><h3>{escape(short_name(agency))}</h3>'
            f'<table class="data"><thead><tr>{head}</tr></thead><tbody>{"".join(lines)}</tbody></table></div>'
        )
    return "".join(views)


def _trace_name(*parts: Any) -> str:
    return escape(" ".join(short_name(p) for p in parts if not missing(p)), quote=False)


def priority_label(priority: Any) -> str:
    """`P1`.. for a priority, `no priority` for types without one (NYPD non-CIP)."""
    return "no priority" if missing(priority) else f"P{int(priority)}"


def priority_figures(monthly_priority: pd.DataFrame, key_of: AgencyKey) -> list[go.Figure]:
    """Monthly dispatch and travel time, one line per agency x priority."""
    figures = []
    for column, title in (
        ("avg_dispatch_s", "Average dispatch time"),
        ("avg_travel_s", "Average travel time"),
    ):
        fig = go.Figure()
        if not monthly_priority.empty:
            data = monthly_priority.assign(month=pd.to_datetime(monthly_priority["month"]))
            data = data.sort_values(["agency", "priority", "month"], na_position="last", kind="stable")
            for (agency, priority), rows in data.groupby(["agency", "priority"], dropna=False, sort=False):
                y = pd.to_numeric(rows[column], errors="coerce")
                if y.notna().sum() == 0:
                    continue
                fig.add_trace(
                    go.Scatter(
                        x=rows["month"].dt.strftime("%Y-%m-%d"),
                        y=y,
                        mode="lines",
                        name=_trace_name(agency, priority_label(priority)),
                        legendgroup=key_of(agency),
                        meta=key_of(agency),
                    )
                )
        fig.update_layout(
            title_text=f"{title} by agency and priority",
            xaxis_title_text="Month",
            yaxis_title_text="Seconds",
            legend_title_text="Agency, priority",
            height=380,
            margin={"l": 60, "r": 20, "t": 50, "b": 50},
        )
        figures.append(fig)
    return figures


def sla_figure(breach_weekly: pd.DataFrame, key_of: AgencyKey) -> go.Figure:
    """Weekly SLA breach rate (% of incidents), one line per rule x agency."""
    fig = go.Figure()
    if not breach_weekly.empty:
        data = breach_weekly.assign(week=pd.to_datetime(breach_weekly["week_start_date"]))
        data = data.sort_values(["rule", "agency", "week"], kind="stable")
        for (rule, agency), rows in data.groupby(["rule", "agency"], sort=False):
            fig.add_trace(
                go.Scatter(
                    x=rows["week"].dt.strftime("%Y-%m-%d"),
                    y=pd.to_numeric(rows["breach_incidents_pct"], errors="coerce"),
                    mode="lines",
                    name=_trace_name(agency, f"({rule})"),
                    meta=key_of(agency),
                )
            )
    fig.update_layout(
        title_text="Weekly SLA breach rate by rule and agency",
        xaxis_title_text="Week",
        yaxis_title_text="% of incidents",
        legend_title_text="Agency (rule)",
        height=380,
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
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
