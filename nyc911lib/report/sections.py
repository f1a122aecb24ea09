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
from plotly.subplots import make_subplots

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
    response_time: pd.DataFrame = field(default_factory=empty_frame)
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


def fmt_duration(seconds: float | None) -> str:
    """A time as people read it: `m:ss min` from a minute up (1539.0 -> `25:39 min`, rounded to
    the second), else seconds with one decimal (`4.0 s`); a negative one keeps its sign; an
    unknown one (None, NaN) `n/a`."""
    if missing(seconds) or not math.isfinite(float(seconds)):
        return NA
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


DEFECT_NOTE = "negative (defective rows): not drawn"


def drawn_times(values: pd.Series) -> pd.Series:
    """A time series as a chart draws it: a negative average, which only defective rows produce,
    is a gap (NULL), never drawn as a time."""
    numbers = pd.to_numeric(values, errors="coerce")
    return numbers.where(~(numbers < 0))


def defect_marks(x: pd.Series, values: pd.Series, series: str, meta: str) -> go.Scatter | None:
    """Grey crosses on the axis where a series' time is negative (its line has a gap there), each
    with a hover naming the defect; None when there is none."""
    numbers = pd.to_numeric(values, errors="coerce")
    bad = (numbers < 0).fillna(False).to_numpy()
    if not bad.any():
        return None
    hover = [
        f"{series}, {when}: {fmt_number(v, SECONDS)}, {DEFECT_NOTE}"
        for when, v in zip(x[bad], numbers[bad], strict=True)
    ]
    return go.Scatter(
        x=list(x[bad]),
        y=[0.0] * int(bad.sum()),
        mode="markers",
        marker={"symbol": "x-thin-open", "size": 10, "color": NEUTRAL_COLOUR, "line": {"width": 2}},
        name=escape(f"{series}: {DEFECT_NOTE}", quote=False),
        showlegend=False,
        hovertext=[escape(h, quote=False) for h in hover],
        hoverinfo="text",
        meta=meta,
    )


def count_defects(
    frame: pd.DataFrame, columns: Sequence[str], keys: Sequence[str], when: str = "month"
) -> list[str]:
    """One line per negative time a chart leaves out (`columns` of `frame`), naming its series
    (`keys`), period and value: for the data-quality section."""
    found = []
    for column in columns:
        if frame.empty or column not in frame.columns:
            continue
        values = pd.to_numeric(frame[column], errors="coerce")
        for _, r in frame[values < 0].iterrows():
            series = " ".join(str(r[k]) if k != "priority" else priority_label(r[k]) for k in keys)
            found.append(f"{series}, {fmt_date(r[when])}: {column} {fmt_number(r[column], SECONDS)}")
    return found


def priority_label(priority: Any) -> str:
    """`P1`.. for a priority, `no priority` for types without one (NYPD non-CIP)."""
    return "no priority" if missing(priority) else f"P{int(priority)}"


PRIORITY_COLOURS = ("#D55E00", "#0072B2", "#009E73", "#CC79A7", "#555555")  # P1..P4, no priority


def priority_figures(monthly_priority: pd.DataFrame, key_of: AgencyKey) -> list[go.Figure]:
    """Monthly dispatch and travel time: small multiples, one panel per agency, one line per
    priority (the same colour for a priority in every panel); a negative time is a gap with a
    marked defect."""
    figures = []
    data = monthly_priority
    if not data.empty:
        data = data.assign(month=pd.to_datetime(data["month"]))
        data = data.sort_values(["agency", "priority", "month"], na_position="last", kind="stable")
    agencies = [] if data.empty else list(dict.fromkeys(data["agency"]))
    priorities = [] if data.empty else sorted({p for p in data["priority"] if not missing(p)})
    colours = {p: PRIORITY_COLOURS[min(i, len(PRIORITY_COLOURS) - 2)] for i, p in enumerate(priorities)}
    columns = 2 if len(agencies) > 1 else 1
    rows = max(1, -(-len(agencies) // columns))
    for column, title in (
        ("avg_dispatch_s", "Average dispatch time"),
        ("avg_travel_s", "Average travel time"),
    ):
        titles = [escape(short_name(a), quote=False) for a in agencies] or ["No data"]
        fig = make_subplots(
            rows=rows, cols=columns, shared_xaxes=True, subplot_titles=titles, vertical_spacing=0.14
        )
        legend_shown: set[str] = set()
        for i, agency in enumerate(agencies):
            at = {"row": i // columns + 1, "col": i % columns + 1}
            for priority, series in data[data["agency"] == agency].groupby(
                "priority", dropna=False, sort=False
            ):
                filled = with_missing_months(series, ("agency", "priority"))
                y = drawn_times(filled[column])
                label = priority_label(priority)
                months = filled["month"].dt.strftime("%Y-%m-%d")
                if pd.to_numeric(filled[column], errors="coerce").notna().sum() == 0:
                    continue
                fig.add_trace(
                    go.Scatter(
                        x=months,
                        y=y,
                        mode="lines",
                        name=label,
                        legendgroup=label,
                        showlegend=label not in legend_shown,
                        legendrank=100 + (99 if missing(priority) else int(priority)),
                        line={"color": colours.get(priority, PRIORITY_COLOURS[-1])},
                        meta=key_of(agency),
                    ),
                    **at,
                )
                legend_shown.add(label)
                marks = defect_marks(months, filled[column], f"{short_name(agency)} {label}", key_of(agency))
                if marks is not None:
                    fig.add_trace(marks, **at)
        fig.update_yaxes(title_text="Seconds", col=1)
        fig.update_layout(
            title_text=f"{title} by agency and priority (monthly, incident-weighted)",
            legend_title_text="Priority",
            height=120 + 230 * rows,
            margin={"l": 60, "r": 20, "t": 80, "b": 40},
        )
        figures.append(fig)
    return figures


# The end-to-end response time headline (gold.kpi_response_time at the report's last week).
RESPONSE_SEGMENTS = (  # (column, label, colour), in the order they happen
    ("pickup_s", "Pickup (call to first pickup)", "#E69F00"),
    ("pickup_to_dispatch_s", "Pickup to dispatch", "#56B4E9"),
    ("travel_s", "Travel (dispatch to arrival)", "#009E73"),
)
RESPONSE_PERIODS = ("week", "trailing_weeks", "year_earlier")


def _weeks_of(row: Any) -> int:
    """The weeks a period spans (its first to its last week)."""
    return (pd.Timestamp(row["period_last_week"]) - pd.Timestamp(row["period_first_week"])).days // 7 + 1


def period_label(row: Any) -> str:
    """`Week of 2025-12-22`, `52 weeks to 2025-12-22`, `Same 52 weeks a year earlier (to 2024-12-23)`."""
    last = fmt_date(row["period_last_week"])
    if row["period"] == "week":
        return f"Week of {last}"
    if row["period"] == "trailing_weeks":
        return f"{_weeks_of(row)} weeks to {last}"
    return f"Same {_weeks_of(row)} weeks a year earlier (to {last})"


def _series(frame: pd.DataFrame) -> list[tuple[tuple[str, str], pd.DataFrame]]:
    """(agency, incident type) -> its rows by period, agencies in the frame's order of first sight."""
    if frame.empty:
        return []
    groups = frame.groupby(["agency", "incident_type"], sort=False)
    return [(key, rows.set_index("period")) for key, rows in groups]


def response_time_html(frame: pd.DataFrame, key_of: AgencyKey) -> str:
    """One row per agency's most urgent incident type: the end-to-end time of the latest week,
    of the trailing weeks and of the same weeks a year earlier (m:ss), the change, and a note
    where a segment is negative (defective rows: not drawn)."""
    if frame.empty:
        return '<p class="note">No end-to-end response time for the last week of the report.</p>'
    rows = []
    for (agency, kind), periods in _series(frame):
        cells = name_cell(f"{agency}: {kind}")
        for period in RESPONSE_PERIODS:
            if period not in periods.index:
                cells += cell(NA, num=True)
                continue
            r = periods.loc[period]
            weeks = f" ({int(r['weeks_with_data'])} wk with data)" if period != "week" else ""
            cells += cell(fmt_number(r["avg_call_to_agency_arrival_s"], SECONDS) + weeks, num=True)
        change = periods["arrival_change_vs_year_earlier_pct"].get("trailing_weeks")
        text, css = change_text(change, True)
        cells += cell(text, css=css)
        rows.append((key_of(agency), cells))
    heads = {r["period"]: period_label(r) for r in frame.drop_duplicates("period").to_dict("records")}
    headers = (
        "Agency: most urgent incidents",
        heads.get("week", "Latest week"),
        heads.get("trailing_weeks", "Trailing weeks"),
        heads.get("year_earlier", "A year earlier"),
        "Trailing weeks vs a year earlier",
    )
    return table(headers, rows, "No end-to-end response time for the last week of the report.")


def response_time_defects(frame: pd.DataFrame) -> list[str]:
    """A line per negative segment of the headline (defective rows): such a segment is not drawn."""
    found = []
    for (agency, kind), periods in _series(frame):
        for period, r in periods.iterrows():
            for column, label, _ in RESPONSE_SEGMENTS:
                if not missing(r[column]) and float(r[column]) < 0:
                    found.append(
                        f"{agency}: {kind}, {period_label(r.to_dict() | {'period': period})}: "
                        f"{label} {fmt_number(r[column], SECONDS)} (negative)"
                    )
    return found


def _minute_ticks(longest: float) -> tuple[list[float], list[str]]:
    """Axis ticks every 1, 2 or 5 minutes up to `longest` seconds, labelled m:ss."""
    step = next((s for s in (60, 120, 300, 600) if longest / s <= 10), 1200)
    values = [float(v) for v in range(0, int(longest) + step, step)]
    return values, [f"{int(v) // 60}:{int(v) % 60:02d}" for v in values]


def response_time_figure(frame: pd.DataFrame, key_of: AgencyKey | None = None) -> go.Figure:
    """Small multiples, one panel per agency's most urgent type: a stacked bar per period of the
    three segments (pickup, pickup to dispatch, travel), m:ss. A negative segment (defective
    rows) is left out of its bar, and its hover says so."""
    key_of = key_of or (lambda _: ALL_KEY)
    series = _series(frame)
    titles = [escape(f"{short_name(a)}: {short_name(k)}", quote=False) for (a, k), _ in series] or ["No data"]
    fig = make_subplots(
        rows=len(titles), cols=1, shared_xaxes=True, subplot_titles=titles, vertical_spacing=0.12
    )
    longest = 60.0
    for i, ((agency, _), periods) in enumerate(series, start=1):
        present = [p for p in reversed(RESPONSE_PERIODS) if p in periods.index]  # latest on top
        labels = [period_label(periods.loc[p].to_dict() | {"period": p}) for p in present]
        total = pd.to_numeric(periods["avg_call_to_agency_arrival_s"], errors="coerce").max()
        longest = max(longest, 0.0 if missing(total) else float(total))
        for column, label, colour in RESPONSE_SEGMENTS:
            values = [periods.loc[p, column] for p in present]
            shown = [None if missing(v) or float(v) < 0 else float(v) for v in values]
            hover = [
                f"{label}: {fmt_number(v, SECONDS)}"
                + (" — negative (defective rows), not drawn" if not missing(v) and float(v) < 0 else "")
                + f"<br>end to end: {fmt_number(periods.loc[p, 'avg_call_to_agency_arrival_s'], SECONDS)}"
                for p, v in zip(present, values, strict=True)
            ]
            fig.add_trace(
                go.Bar(
                    x=shown,
                    y=[escape(t, quote=False) for t in labels],
                    orientation="h",
                    name=label,
                    legendgroup=column,
                    showlegend=i == 1,
                    marker_color=colour,
                    customdata=hover,
                    hovertemplate="%{y}<br>%{customdata}<extra></extra>",
                    text=[fmt_number(v, SECONDS) if v is not None else "" for v in shown],
                    textposition="inside",
                    meta=key_of(agency),
                ),
                row=i,
                col=1,
            )
    ticks, tick_text = _minute_ticks(longest)
    fig.update_xaxes(tickvals=ticks, ticktext=tick_text)
    fig.update_xaxes(
        title_text="Call to the agency's arrival, m:ss (incident-weighted)", row=len(titles), col=1
    )
    fig.update_layout(
        barmode="stack",
        title_text="End-to-end response time of the most urgent incidents, by segment",
        legend_title_text="Segment",
        legend_traceorder="normal",
        height=140 + 170 * len(titles),
        margin={"l": 60, "r": 20, "t": 80, "b": 50},
    )
    return fig
