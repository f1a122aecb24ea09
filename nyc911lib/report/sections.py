"""The report's detail sections: latest-week headline and dispatch and travel trends by priority,
and the helpers every section uses (the SLA, anomaly and data-quality sections are
`nyc911lib.report.monitoring`). Pure functions over small pandas frames read
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


SECONDS = " s"


def fmt_duration(seconds: float) -> str:
    """A time as people read it: `m:ss min` from a minute up (1539.0 -> `25:39 min`, rounded to
    the second), else seconds with one decimal (`4.0 s`); a negative one keeps its sign."""
    if abs(round(seconds, 1)) < 60:
        return f"{seconds:,.1f}{SECONDS}"
    minutes, rest = divmod(round(abs(seconds)), 60)
    return f"{'-' if seconds < 0 else ''}{minutes}:{rest:02d} min"


def fmt_number(value: Any, unit: str | None = None, digits: int = 1) -> str:
    """Thousands separators; integers without a unit, times (unit `" s"`) by `fmt_duration`,
    others with `digits` decimals and the unit."""
    if missing(value) or not math.isfinite(float(value)):
        return NA
    if unit is None:
        return f"{round(float(value)):,}"
    if unit == SECONDS:
        return fmt_duration(float(value))
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


def trace_name(*parts: Any) -> str:
    return escape(" ".join(short_name(p) for p in parts if not missing(p)), quote=False)


def with_missing_months(rows: pd.DataFrame, keys: Sequence[str], month: str = "month") -> pd.DataFrame:
    """`rows` of one series (one value of the `keys` columns, e.g. an agency, or an agency x
    priority) with a row of NULL values for every month missing between its first and last, so a
    chart's line stops at a gap instead of running straight across it (plotly.js breaks a line at
    a NULL)."""
    if rows.empty:
        return rows
    months = pd.to_datetime(rows[month])
    every = pd.date_range(months.min(), months.max(), freq="MS")
    if len(every) == months.nunique():
        return rows.assign(**{month: months})
    filled = rows.assign(**{month: months}).set_index(month).reindex(every)
    for key in keys:
        filled[key] = rows[key].iloc[0]
    return filled.rename_axis(month).reset_index()


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
            for (agency, priority), series in data.groupby(["agency", "priority"], dropna=False, sort=False):
                rows = with_missing_months(series, ("agency", "priority"))
                y = pd.to_numeric(rows[column], errors="coerce")
                if y.notna().sum() == 0:
                    continue
                fig.add_trace(
                    go.Scatter(
                        x=rows["month"].dt.strftime("%Y-%m-%d"),
                        y=y,
                        mode="lines",
                        name=trace_name(agency, priority_label(priority)),
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
