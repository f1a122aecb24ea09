"""Self-contained offline HTML KPI report built from the gold tables (as small pandas frames).

Pure functions: the caller reads gold.kpi_summary and gold.kpi_monthly_agency into pandas and
passes them in. Agency names come from an external CSV and are untrusted text: every string put
into HTML is escaped, JSON inside <script> is made script-safe, trace names are entity-escaped
(plotly.js parses pseudo-HTML such as <a href> in them) and element ids are index-based.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

from nyc911lib.io.files import write_atomic
from nyc911lib.report.monitoring import (
    anomalies_html,
    data_quality_html,
    sla_alerts_html,
    sla_figure,
    sla_rules_html,
)
from nyc911lib.report.sections import (
    MAX_NAME_CHARS,
    MAX_TABLE_ROWS,
    SECTION_CSS,
    ReportDetails,
    agency_key_of,
    count_defects,
    defect_marks,
    drawn_times,
    fmt_number,
    headline_html,
    missing,
    priority_figures,
    response_time_defects,
    response_time_figure,
    response_time_html,
    short_name,
    with_missing_months,
)

DATA_SOURCE = "NYC Open Data, 911 End-to-End Data (t7p9-n9dy)"
SYNTHETIC_BANNER = "Synthetic sample data — not real NYC figures"
ALL_AGENCIES = "All agencies"
NA = "n/a"

# Tiles: (key in a kpi_tiles entry, label, one-line definition with units, unit suffix; None = integer)
TILES: tuple[tuple[str, str, str, str | None], ...] = (
    ("total_incidents", "Total incidents", "Sum of incidents in scope, incidents.", None),
    (
        "sla_breach_pct",
        "SLA breach rate",
        "Share of incidents in rows breaching an applicable SLA rule, % of incidents.",
        " %",
    ),
    (
        "avg_call_to_first_pickup_s",
        "Avg call to first pickup",
        "Incident-weighted mean of the weekly averages, seconds.",
        " s",
    ),
)
# Charts: (monthly column, title, y-axis title with units, one-line definition with units)
CHARTS: tuple[tuple[str, str, str, str], ...] = (
    (
        "incidents_per_week",
        "Weekly incident volume by agency",
        "Incidents per week",
        "Incidents per week, the mean of each calendar month's weeks (a week counts in the month it "
        "starts; months hold 4 or 5 weeks, so monthly sums would zig-zag), incidents.",
    ),
    (
        "avg_call_to_first_pickup_s",
        "Average call to first pickup by agency",
        "Seconds",
        "Incident-weighted mean of the weekly averages per month, seconds; a negative average "
        "(defective rows) is a gap marked with a grey cross on the axis.",
    ),
    (
        "sla_breach_rate_pct",
        "SLA breach rate by agency and month",
        "% of incidents",
        "Share of incidents in rows breaching an applicable SLA rule, per month and agency, % of "
        "incidents (darker: more breaches; blank: no data).",
    ),
)
HEATMAP_COLUMNS = ("sla_breach_rate_pct",)  # drawn as a month x agency heatmap, not as lines
EVERY_AGENCY = "*"  # the `meta` of a trace the agency filter never hides


def _num(value: Any, cast: type = float) -> Any:
    """int/float, or None when missing or not finite."""
    if missing(value) or not math.isfinite(float(value)):
        return None
    return cast(value)


def _iso(value: Any) -> str | None:
    """A date-like value as an ISO date string; None when missing."""
    if missing(value):
        return None
    if isinstance(value, dt.datetime):  # includes pd.Timestamp
        return value.date().isoformat()
    return value.isoformat() if isinstance(value, dt.date) else str(value)


def script_safe(json_text: str) -> str:
    """Escape <, >, & and U+2028/U+2029 in JSON text so it cannot end or break a <script>.

    These characters only occur inside JSON strings, where \\uXXXX escapes mean the same thing.
    """
    for char, repl in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        json_text = json_text.replace(char, repl)
    return json_text


def _clean_monthly(monthly: pd.DataFrame) -> pd.DataFrame:
    """Rows with a known agency (as str) and month (as datetime), sorted by month."""
    if monthly.empty:
        return pd.DataFrame(columns=["month", "agency", *(c for c, *_ in CHARTS)])
    data = monthly[monthly["agency"].notna()].copy()
    data["agency"] = data["agency"].astype(str)
    data["month"] = pd.to_datetime(data["month"])
    return data.sort_values(["month", "agency"], kind="stable")


def _agencies(data: pd.DataFrame) -> list[str]:
    return sorted(set(data["agency"]))


def report_summary_json(summary: pd.DataFrame) -> dict[str, Any]:
    """The gold.kpi_summary row as a JSON-serializable dict (dates as ISO strings, NaN as None)."""
    return _summary_values(summary.iloc[0].to_dict() if len(summary) else {})


def _summary_values(row: dict[str, Any]) -> dict[str, Any]:
    """One kpi_summary row (a dict) as JSON-serializable values."""
    out: dict[str, Any] = {k: _iso(row.get(k)) for k in ("scope_from", "scope_to", "first_week", "last_week")}
    out.update({k: _num(row.get(k), int) for k in ("total_incidents", "rows", "agencies")})
    out.update(
        {
            k: _num(row.get(k))
            for k in ("avg_call_to_first_pickup_s", "sla_breach_incidents_pct", "sla_breach_rows_pct")
        }
    )
    out["source_kinds"] = "" if missing(row.get("source_kinds")) else str(row["source_kinds"])
    return out


def is_synthetic(summary: pd.DataFrame) -> bool:
    """True when the data includes the synthetic built-in sample ("sample" in source_kinds)."""
    kinds = report_summary_json(summary)["source_kinds"].split(",")
    return "sample" in {k.strip() for k in kinds}


def kpi_tiles(summary: pd.DataFrame, agency_summary: pd.DataFrame | None = None) -> list[dict[str, Any]]:
    """Tile values: first "All agencies" (the `summary` row), then one entry per agency, in
    order, from `agency_summary` (gold's `kpi_summary` per agency over the same weeks: the report
    does no math of its own). Keys: agency + TILES keys; None = unknown."""
    rows = [(ALL_AGENCIES, report_summary_json(summary))]
    if agency_summary is not None and not agency_summary.empty:
        known = agency_summary[agency_summary["agency"].notna()].sort_values("agency", kind="stable")
        rows += [(str(r["agency"]), _summary_values(r)) for r in known.to_dict("records")]
    return [
        {
            "agency": agency,
            "total_incidents": values["total_incidents"],
            "sla_breach_pct": values["sla_breach_incidents_pct"],
            "avg_call_to_first_pickup_s": values["avg_call_to_first_pickup_s"],
        }
        for agency, values in rows
    ]


def format_tile(value: Any, unit: str | None) -> str:
    """A tile value as display text (`fmt_number`: thousands separators, m:ss or one decimal plus
    unit, or "n/a")."""
    return fmt_number(value, unit)


def plotly_text(text: str) -> str:
    """Text for plotly.js labels: &, <, > as entities, so it is shown literally, never as markup."""
    return escape(text, quote=False)


def monthly_figures(monthly: pd.DataFrame) -> list[go.Figure]:
    """The charts of CHARTS: lines with one trace per agency, in the same (sorted) order in each
    (a missing month a gap, a negative time a gap marked with a cross), or a month x agency heatmap with one
    row (trace) per agency."""
    data = _clean_monthly(monthly)
    agencies = _agencies(data)
    figures = []
    for column, title, y_title, _ in CHARTS:
        fig = go.Figure()
        if column in HEATMAP_COLUMNS and agencies:
            # One trace of every agency (plotly.js fails on several one-row heatmaps on one axis):
            # it stays shown whichever agency the filter selects (meta "*"), a comparison view.
            months = pd.date_range(data["month"].min(), data["month"].max(), freq="MS")
            grid = data.pivot_table(index="agency", columns="month", values=column, aggfunc="first")
            grid = grid.reindex(index=agencies, columns=months)
            fig.add_trace(
                go.Heatmap(
                    x=months.strftime("%Y-%m-%d"),
                    y=[plotly_text(short_name(a)) for a in agencies],
                    z=[[None if missing(v) else float(v) for v in row] for row in grid.to_numpy()],
                    coloraxis="coloraxis",
                    meta=EVERY_AGENCY,
                    hovertemplate="%{y}, %{x|%Y-%m}: %{z:.1f} %<extra></extra>",
                )
            )
        for index, agency in enumerate([] if column in HEATMAP_COLUMNS else agencies):
            rows = with_missing_months(data[data["agency"] == agency], ("agency",))
            x = rows["month"].dt.strftime("%Y-%m-%d")
            values = pd.to_numeric(rows[column], errors="coerce")
            name = plotly_text(short_name(agency))
            drawn = drawn_times(values) if column.endswith("_s") else values
            fig.add_trace(go.Scatter(x=x, y=drawn, mode="lines+markers", name=name, meta=str(index)))
            marks = defect_marks(x, values, short_name(agency), str(index)) if column.endswith("_s") else None
            if marks is not None:
                fig.add_trace(marks)
        fig.update_layout(
            title_text=title,
            xaxis_title_text="Month",
            yaxis_title_text="Agency" if column in HEATMAP_COLUMNS else y_title,
            legend_title_text="Agency",
            height=160 + 45 * len(agencies) if column in HEATMAP_COLUMNS else 380,
            margin={"l": 60, "r": 20, "t": 50, "b": 50},
        )
        if column in HEATMAP_COLUMNS:
            fig.update_layout(
                coloraxis={"colorscale": "Oranges", "cmin": 0, "colorbar": {"title": {"text": y_title}}},
                yaxis={"autorange": "reversed"},
            )
        if not agencies:
            fig.add_annotation(text="No data", showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
        figures.append(fig)
    return figures


# Printed (a browser's Print, or `nyc911 report --format pdf`): no chart toolbars, no agency filter,
# and a page breaks between sections, or between a long section's charts, never through a chart.
_CSS = """body{font-family:system-ui,sans-serif;margin:24px;color:#222}
.banner{background:#b00020;color:#fff;font-weight:bold;font-size:1.3em;padding:12px 16px;border-radius:6px}
.tiles{display:flex;gap:16px;flex-wrap:wrap}
.tile{border:1px solid #ccc;border-radius:8px;padding:12px 16px;min-width:220px;max-width:320px}
.tile .value{font-size:1.8em;font-weight:bold}.def{color:#555;font-size:.9em;margin:4px 0}
.note{color:#555;font-style:italic}
select{max-width:28em}
@media print{
.modebar-container{display:none!important}
section{break-inside:avoid;page-break-inside:avoid}
.chart,.tile,table.data{break-inside:avoid;page-break-inside:avoid}
h2{break-after:avoid;page-break-after:avoid}
label[for=agency-filter],#agency-filter{display:none}
}"""

# Reads the embedded JSON (never HTML), sets tiles via textContent, shows the traces whose `meta`
# is the selected agency's index, the table rows of that agency and its headline view.
_FILTER_JS = """(function(){
var cfg=JSON.parse(document.getElementById("report-data").textContent);
function each(sel,fn){var els=document.querySelectorAll(sel);for(var i=0;i<els.length;i++){fn(els[i]);}}
document.getElementById("agency-filter").addEventListener("change",function(e){
  var key=e.target.value,tiles=cfg.tiles[key];
  for(var i=0;i<tiles.length;i++){document.getElementById("tile-value-"+i).textContent=tiles[i];}
  cfg.charts.forEach(function(id){
    var div=document.getElementById(id),vis=[],idx=[];
    for(var t=0;t<(div.data||[]).length;t++){
      var m=div.data[t].meta;vis.push(key==="all"||m===key||m==="*");idx.push(t);
    }
    if(idx.length){Plotly.restyle(div,{visible:vis},idx);}
  });
  each("[data-agency-row]",function(el){el.hidden=!(key==="all"||el.getAttribute("data-agency-row")===key);});
  each("[data-agency-view]",function(el){el.hidden=el.getAttribute("data-agency-view")!==key;});
});
})();"""


def _section(title: str, definition: str, body: str) -> str:
    return f'<section><h2>{escape(title)}</h2><p class="def">{escape(definition)}</p>{body}</section>'


def _tiles_html(values: list[str]) -> str:
    return (
        '<div class="tiles">'
        + "".join(
            f'<div class="tile"><div class="label">{escape(label)}</div>'
            f'<div class="value" id="tile-value-{i}">{escape(value)}</div>'
            f'<p class="def">{escape(definition)}</p></div>'
            for i, ((_, label, definition, _), value) in enumerate(zip(TILES, values, strict=True))
        )
        + "</div>"
    )


def _chart_script(fig: go.Figure, div_id: str) -> str:
    fig_json = script_safe(pio.to_json(fig, validate=False))
    plot = f'Plotly.newPlot("{div_id}",f.data,f.layout,{{"responsive":true}});'
    return f"(function(f){{{plot}}})({fig_json});\n"


# Where a chart goes in the assembled HTML; escaped data can never contain "<", so never this.
CHART_SLOT = "<!--chart-->"


def defects_html(defects: list[str]) -> str:
    """The data-quality note on the chart points left out: every negative average time."""
    if not defects:
        return '<p class="note">Chart points not drawn: none (no negative average time).</p>'
    items = "".join(f"<li>{escape(d)}</li>" for d in defects[:MAX_TABLE_ROWS])
    more = f"<li>… and {len(defects) - MAX_TABLE_ROWS} more</li>" if len(defects) > MAX_TABLE_ROWS else ""
    return (
        f'<h3>Chart points not drawn: {len(defects)}</h3><p class="def">A negative average time comes only '
        "from defective rows: the charts leave it out (a gap marked with a grey cross) and gold keeps "
        f"it as published.</p><ul>{items}{more}</ul>"
    )


def _detail_sections(
    details: ReportDetails, agencies: list[str], last_week: Any, monthly: pd.DataFrame
) -> tuple[list[str], list[go.Figure]]:
    """The HTML of the detail sections (a CHART_SLOT where each chart goes) and their figures."""
    key_of = agency_key_of(agencies)
    defects = [
        *count_defects(monthly, ("avg_call_to_first_pickup_s",), ("agency",)),
        *count_defects(details.monthly_priority, ("avg_dispatch_s", "avg_travel_s"), ("agency", "priority")),
        *response_time_defects(details.response_time),
    ]
    figures = [
        *priority_figures(details.monthly_priority, key_of),
        sla_figure(details.sla_breach_weekly, key_of),
    ]
    sections = [
        _section(
            "Dispatch and travel times by agency and priority",
            "Incident-weighted monthly means of the weekly average dispatch time (call to agency "
            "dispatch) and travel time (dispatch to arrival), seconds; P1 is the most urgent priority.",
            CHART_SLOT + CHART_SLOT,
        ),
        _section(
            "SLA breaches",
            "A week x agency x incident-type row breaches a rule when its metric exceeds the rule's "
            "threshold (seconds); the rate is the share of incidents in breaching rows, % of incidents. "
            "Alerts list the latest week's breaches with the first week of their unbroken streak.",
            sla_rules_html(details.sla_rules)
            + CHART_SLOT
            + "<h3>Alerts in the latest week</h3>"
            + sla_alerts_html(details.sla_alerts, key_of),
        ),
        _section(
            "Anomalies",
            "Weekly incidents and average times per agency and incident type against the same weeks "
            "of prior years: score = (observed - seasonal median) / (1.4826 x MAD), flagged at "
            "|score| >= the threshold in params; volumes in incidents, times as m:ss min from a "
            "minute up, else seconds.",
            anomalies_html(details.anomalies, key_of),
        ),
        _section(
            "Data quality",
            "Every landed file: rows ingested and where they went (silver, unchanged, superseded by a "
            "newer publication, quarantine), rows failing each quality rule, and how fresh the data is.",
            data_quality_html(details, last_week) + defects_html(defects),
        ),
    ]
    return sections, figures


def render_report_html(
    summary: pd.DataFrame,
    monthly: pd.DataFrame,
    title: str = "NYC 911 End-to-End KPI report",
    params_note: str | None = None,
    *,
    details: ReportDetails | None = None,
    agency_summary: pd.DataFrame | None = None,
) -> str:
    """One self-contained HTML document: plotly.js inline once (works offline from file://),
    source and date range header, synthetic-data banner, the latest-week headline (with
    `details`), KPI tiles (per agency from `agency_summary`, gold's `kpi_summary` per agency),
    the monthly charts, the detail sections and an agency filter over the charts' agencies."""
    meta = report_summary_json(summary)
    agencies = _agencies(_clean_monthly(monthly))
    everyone, *per_agency = kpi_tiles(summary, agency_summary)
    by_agency = {t["agency"]: t for t in per_agency}
    unknown = dict.fromkeys(key for key, *_ in TILES)
    tiles = [everyone, *(by_agency.get(a, {"agency": a, **unknown}) for a in agencies)]
    shown = [[format_tile(t[key], unit) for key, _, _, unit in TILES] for t in tiles]
    parts = [
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f'<style>{_CSS}\n{SECTION_CSS}</style><script type="text/javascript">{get_plotlyjs()}</script>'
        f"</head><body><h1>{escape(title)}</h1>"
    ]
    if is_synthetic(summary):
        parts.append(f'<div class="banner" role="alert">{escape(SYNTHETIC_BANNER)}</div>')
    parts.append(
        f"<p>Data source: {escape(DATA_SOURCE)}. Date range: weeks starting "
        f"{escape(meta['first_week'] or NA)} to {escape(meta['last_week'] or NA)}.</p>"
    )
    if params_note:
        parts.append(f'<p class="note">{escape(params_note)}</p>')
    options = "".join(
        f'<option value="{"all" if i == 0 else i - 1}"'
        + (f' title="{escape(t["agency"])}"' if len(t["agency"]) > MAX_NAME_CHARS else "")
        + f">{escape(short_name(t['agency']))}</option>"
        for i, t in enumerate(tiles)
    )
    parts.append(
        f'<p><label for="agency-filter">Agency: </label><select id="agency-filter">{options}</select></p>'
    )
    if details is not None:
        parts.append(
            _section(
                "End-to-end response time",
                "Call to the agency's arrival for each agency's most urgent incidents (params "
                "response_time), incident-weighted: the report's last week, the trailing weeks ending "
                "with it and the same weeks a year earlier, as m:ss min; split into pickup (call to first "
                "pickup), pickup to dispatch (call to dispatch minus pickup) and travel (dispatch to "
                "arrival). NYPD (Non-CIP) types have no priority and no most urgent type.",
                response_time_html(details.response_time, agency_key_of(agencies)) + CHART_SLOT,
            )
        )
        parts.append(
            _section(
                "Latest week",
                "Each figure for the latest week in the data against the same week 52 weeks earlier and "
                "the median of the 12 weeks before it; ▲/▼ give the direction, better/worse whether it "
                "is good (times: lower is better); incidents; times as m:ss min from a minute up, "
                "else seconds.",
                headline_html(details.headline, agency_key_of(agencies), ALL_AGENCIES),
            )
        )
    parts.append(
        _section(
            "Key figures",
            "Headline KPIs for the selected agency over the whole date range.",
            _tiles_html(shown[0]),
        )
    )
    no_data = "" if len(tiles) > 1 else '<p class="note">No data: the monthly table is empty.</p>'
    figures = (
        [] if details is None else [response_time_figure(details.response_time, agency_key_of(agencies))]
    )
    figures += monthly_figures(monthly)
    for _, chart_title, _, definition in CHARTS:
        parts.append(_section(chart_title, definition, no_data + CHART_SLOT))
    if details is not None:
        sections, detail_figures = _detail_sections(details, agencies, meta["last_week"], monthly)
        parts.extend(sections)
        figures.extend(detail_figures)
    html_body = "".join(parts)
    chart_ids = [f"chart-{i}" for i in range(len(figures))]
    pieces = html_body.split(CHART_SLOT)
    body = pieces[0] + "".join(
        f'<div id="{div_id}" class="chart"></div>{rest}'
        for div_id, rest in zip(chart_ids, pieces[1:], strict=True)
    )
    config = {"charts": chart_ids, "tiles": {"all": shown[0], **{str(i): s for i, s in enumerate(shown[1:])}}}
    scripts = "".join(_chart_script(f, d) for f, d in zip(figures, chart_ids, strict=True))
    config_json = script_safe(json.dumps(config))
    return (
        body + f'<script type="application/json" id="report-data">{config_json}</script>'
        f'<script type="text/javascript">{scripts}{_FILTER_JS}</script></body></html>'
    )


def write_report(path: str | os.PathLike[str], html: str) -> Path:
    """Write `html` (or any report text) to `path` whole or not at all."""
    return write_atomic(path, html)
