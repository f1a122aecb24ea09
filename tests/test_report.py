"""The offline HTML KPI report: tiles, figures, self-containment, escaping (no Spark)."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import shutil
import subprocess
from html import escape
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from conftest import agency_summary
from plotly.offline import get_plotlyjs

from nyc911lib.report import html as report
from nyc911lib.report.html import (
    DATA_SOURCE,
    SYNTHETIC_BANNER,
    format_tile,
    kpi_tiles,
    monthly_figures,
    plotly_text,
    render_report_html,
    report_summary_json,
    write_report,
)
from nyc911lib.report.monitoring import sla_figure
from nyc911lib.report.sections import (
    RESPONSE_SEGMENTS,
    ReportDetails,
    fmt_duration,
    fmt_number,
    priority_figures,
    short_name,
)

JAN, FEB, MAR = dt.date(2024, 1, 1), dt.date(2024, 2, 1), dt.date(2024, 3, 1)
HOSTILE_NAMES = [
    "</script><script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    'O\'Brien & "Co" </div></section>',
    "🚑 EMS <b>bold</b>\u2028line",
    ("<a href=\"javascript:alert(1)\" popup='x'>" + "&<>\"'" * 60)[:300],
]
ALLOWED_TAGS = {
    "html",
    "head",
    "meta",
    "title",
    "style",
    "script",
    "body",
    "h1",
    "h2",
    "div",
    "p",
    "label",
    "select",
    "option",
    "section",
}
ALLOWED_IDS = re.compile(r"agency-filter|report-data|tile-value-\d+|chart-\d+")
CHART_JSON = re.compile(r"\(function\(f\)\{Plotly\.newPlot\(\"(chart-\d+)\".*?\}\)\((.*?)\);\n", re.S)


def make_summary(**overrides) -> pd.DataFrame:
    row = {
        "scope_from": None,
        "scope_to": None,
        "first_week": JAN,
        "last_week": dt.date(2024, 2, 26),
        "total_incidents": 1234,
        "rows": 12,
        "agencies": 2,
        "avg_call_to_first_pickup_s": 6.5,
        "sla_breach_incidents_pct": 12.25,
        "sla_breach_rows_pct": 10.0,
        "source_kinds": "file",
    }
    return pd.DataFrame([{**row, **overrides}])


def make_monthly(rows: list[tuple]) -> pd.DataFrame:
    """rows: (month, agency, incidents, avg_call_to_first_pickup_s, sla_breach_rate_pct)."""
    frame = pd.DataFrame(
        rows, columns=["month", "agency", "incidents", "avg_call_to_first_pickup_s", "sla_breach_rate_pct"]
    )
    for column in ("avg_dispatch_s", "avg_travel_s", "avg_call_to_agency_arrival_s", "sla_breach_rows_pct"):
        frame[column] = 1.0
    frame["rows"] = 1
    frame["weeks"] = [4 if pd.Timestamp(m).month == 2 else 5 for m in frame["month"]]
    frame["incidents_per_week"] = frame["incidents"] / frame["weeks"]  # gold's column
    return frame


MONTHLY = make_monthly(
    [
        (JAN, "NYPD", 50, 3.0, 0.0),
        (JAN, "EMS", 100, 4.0, 10.0),
        (FEB, "EMS", 300, 8.0, 20.0),
        (FEB, "NYPD", 150, float("nan"), 40.0),
    ]
)
# gold's kpi_summary per agency over the same weeks (gold computes it: tests/test_gold.py), in
# gold's order, not the report's.
AGENCIES = agency_summary([("NYPD", 200, 30.0, 3.0), ("EMS", 400, 17.5, 7.0)])


class _Collector(HTMLParser):
    """Start tags, id attributes, option texts and raw script bodies of an HTML document."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.ids: list[str] = []
        self.options: list[tuple[str, str]] = []
        self.scripts: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.add(tag)
        if "id" in attrs:
            self.ids.append(attrs["id"])
        self._in = tag
        if tag == "option":
            self.options.append((attrs.get("value") or "", ""))
        elif tag == "script":
            self.scripts.append("")

    def handle_data(self, data):
        if self._in == "option":
            value, text = self.options[-1]
            self.options[-1] = (value, text + data)
        elif self._in == "script":
            self.scripts[-1] += data

    def handle_endtag(self, tag):
        self._in = None


def parse(html: str) -> _Collector:
    collector = _Collector()
    collector.feed(html)
    return collector


def chart_figures(html: str) -> dict[str, dict]:
    """The figure JSON handed to Plotly.newPlot, per chart div id."""
    return {div_id: json.loads(payload) for div_id, payload in CHART_JSON.findall(html)}


@pytest.fixture(scope="module")
def page() -> str:
    return render_report_html(
        make_summary(), MONTHLY, title="KPI test", params_note="params: default.yaml", agency_summary=AGENCIES
    )


def test_tiles_are_the_summary_then_gold_per_agency_rows_by_agency():
    keys = ("agency", "total_incidents", "sla_breach_pct", "avg_call_to_first_pickup_s")
    assert kpi_tiles(make_summary(), AGENCIES) == [
        dict(zip(keys, values, strict=True))
        for values in (("All agencies", 1234, 12.25, 6.5), ("EMS", 400, 17.5, 7.0), ("NYPD", 200, 30.0, 3.0))
    ]
    unknown = agency_summary([("FDNY", 0, float("nan"), None)])
    assert kpi_tiles(make_summary(), unknown)[1] == {
        "agency": "FDNY",
        "total_incidents": 0,
        "sla_breach_pct": None,
        "avg_call_to_first_pickup_s": None,
    }


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        (1234567, None, "1,234,567"),
        (17.5, " %", "17.5 %"),
        (7.04, " s", "7.0 s"),
        (float("nan"), " s", "n/a"),
        (None, " %", "n/a"),
        (float("inf"), " s", "n/a"),
    ],
)
def test_format_tile(value, unit, expected):
    assert format_tile(value, unit) == expected


def test_figures_have_one_trace_per_agency_and_units():
    figures = monthly_figures(MONTHLY)
    assert [f.layout.yaxis.title.text for f in figures] == ["Incidents per week", "Seconds", "Agency"]
    assert [f.layout.title.text for f in figures] == [
        "Weekly incident volume by agency",
        "Average call to first pickup by agency",
        "SLA breach rate by agency and month",
    ]
    volume, pickup, breach = figures
    for fig in (volume, pickup):
        assert [t.name for t in fig.data] == ["EMS", "NYPD"]
        assert fig.layout.xaxis.title.text == "Month"
    assert list(volume.data[0].x) == ["2024-01-01", "2024-02-01"]
    assert list(volume.data[0].y) == [100 / 5, 300 / 4]  # gold's weekly mean, never the month's sum
    assert list(pickup.data[0].y) == [4.0, 8.0]
    assert math.isnan(pickup.data[1].y[1])
    (heatmap,) = breach.data  # month x agency, one trace, shown whichever agency is selected
    assert (heatmap.type, list(heatmap.y), list(heatmap.x), heatmap.meta) == (
        "heatmap",
        ["EMS", "NYPD"],
        ["2024-01-01", "2024-02-01"],
        "*",
    )
    assert [list(row) for row in heatmap.z] == [[10.0, 20.0], [0.0, 40.0]]
    assert breach.layout.coloraxis.colorbar.title.text == "% of incidents"


def test_a_negative_time_is_a_gap_marked_with_its_defect():
    monthly = make_monthly(
        [(JAN, "FDNY", 10, 5.0, 1.0), (FEB, "FDNY", 10, -46.68, 1.0), (MAR, "FDNY", 10, 4.0, 0.0)]
    )
    _, pickup, _ = monthly_figures(monthly)
    line, marks = pickup.data
    assert list(line.y[:1]) == [5.0] and math.isnan(line.y[1]) and list(line.y[2:]) == [4.0]
    assert (list(marks.x), list(marks.y), marks.meta, marks.mode) == (["2024-02-01"], [0.0], "0", "markers")
    assert list(marks.hovertext) == ["FDNY, 2024-02-01: -46.7 s, negative (defective rows): not drawn"]
    details = ReportDetails(
        monthly_priority=pd.DataFrame(
            [(FEB, "FDNY", 3.0, 10, -136.6, 339.1, 5), (MAR, "FDNY", 3.0, 10, 20.0, 330.0, 4)],
            columns=["month", "agency", "priority", "incidents", "avg_dispatch_s", "avg_travel_s", "weeks"],
        )
    )
    html = render_report_html(make_summary(), monthly, details=details)
    assert "<h3>Chart points not drawn: 2</h3>" in html
    assert "<li>FDNY, 2024-02-01: avg_call_to_first_pickup_s -46.7 s</li>" in html
    assert "<li>FDNY P3, 2024-02-01: avg_dispatch_s -2:17 min</li>" in html
    dispatch = chart_figures(html)["chart-4"]
    assert [t["name"] for t in dispatch["data"]] == ["P3", "FDNY P3: negative (defective rows): not drawn"]


def test_plotly_js_is_inlined_exactly_once(page):
    plotly_js = get_plotlyjs()
    assert page.count(plotly_js) == 1
    assert page.count(plotly_js[:200]) == 1  # the licence header: no second (partial) copy either
    assert not re.search(r"<script[^>]*\bsrc\s*=", page, re.I)
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<html") == 1
    assert page.endswith("</html>")


def test_header_tiles_sections_and_filter(page):
    doc = parse(page)
    assert f"Data source: {escape(DATA_SOURCE)}" in page
    assert "2024-01-01 to 2024-02-26" in page
    assert "params: default.yaml" in page
    assert SYNTHETIC_BANNER not in page
    for text in (
        "Incidents per week",
        "Incident-weighted mean of the weekly averages, seconds.",
        "% of incidents",
        "1,234",
        "12.2 %",
        "6.5 s",
    ):
        assert escape(text) in page
    assert doc.options == [("all", "All agencies"), ("0", "EMS"), ("1", "NYPD")]
    config = json.loads(next(s for s in doc.scripts if '"tiles"' in s and "Plotly" not in s))
    assert config["charts"] == ["chart-0", "chart-1", "chart-2"]
    assert config["tiles"] == {
        "all": ["1,234", "12.2 %", "6.5 s"],
        "0": ["400", "17.5 %", "7.0 s"],
        "1": ["200", "30.0 %", "3.0 s"],
    }
    figures = chart_figures(page)
    assert sorted(figures) == config["charts"]
    assert [t["name"] for t in figures["chart-1"]["data"]] == ["EMS", "NYPD"]
    assert figures["chart-2"]["layout"]["coloraxis"]["colorbar"]["title"]["text"] == "% of incidents"
    assert "Plotly.restyle" in page


@pytest.mark.parametrize(
    ("source_kinds", "synthetic"),
    [
        ("sample", True),
        ("file,sample", True),
        (" file , sample ", True),
        ("file", False),
        ("", False),
        (None, False),
        ("samples", False),
    ],
)
def test_synthetic_banner_iff_sample(source_kinds, synthetic):
    html = render_report_html(make_summary(source_kinds=source_kinds), MONTHLY)
    assert (SYNTHETIC_BANNER in html) is synthetic
    assert ('class="banner"' in html) is synthetic


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_agency_name_is_escaped_everywhere(name):
    monthly = make_monthly([(JAN, name, 10, 5.0, 1.0), (JAN, "EMS", 20, 6.0, 2.0)])
    html = render_report_html(make_summary(), monthly, title=name, params_note=name)
    doc = parse(html)
    assert name not in html
    assert escape(name) in html  # the <title>, <h1>, note and option texts
    assert doc.tags <= ALLOWED_TAGS  # no injected <img>, <a>, ... elements
    assert all(ALLOWED_IDS.fullmatch(i) for i in doc.ids)
    assert len(doc.scripts) == 3 and html.count("</script>") == 3  # nothing closed a <script> early
    assert all("</" not in s and "\u2028" not in s for s in doc.scripts[1:])  # no end tag, no raw U+2028
    shown = short_name(name)  # names over 60 characters are cut for display, full in the title
    assert sorted(text for _, text in doc.options) == sorted(["All agencies", "EMS", shown])  # round trip
    assert (f'title="{escape(name)}"' in html) is (shown != name)
    figures = chart_figures(html)
    assert len(figures) == 3
    for fig in (figures["chart-0"], figures["chart-1"]):  # entity-escaped: shown literally, never as markup
        assert sorted(t["name"] for t in fig["data"]) == sorted(["EMS", plotly_text(shown)])
    assert sorted(figures["chart-2"]["data"][0]["y"]) == sorted(["EMS", plotly_text(shown)])  # the heatmap
    if "<" in name:  # "<" -> "&lt;" for plotly.js, whose "&" is \u0026 in the script-safe JSON
        assert "\\u0026lt;" in doc.scripts[-1]


def test_empty_monthly_frame(tmp_path):
    columns = list(MONTHLY.columns)
    for empty in (pd.DataFrame(columns=columns), pd.DataFrame()):
        assert all(len(f.data) == 0 for f in monthly_figures(empty))
        assert [t["agency"] for t in kpi_tiles(make_summary(), empty)] == ["All agencies"]
        html = render_report_html(make_summary(source_kinds="sample"), empty)
        doc = parse(html)
        assert doc.options == [("all", "All agencies")]
        assert "No data" in html
        assert SYNTHETIC_BANNER in html
        assert all(fig["data"] == [] for fig in chart_figures(html).values())


def test_nan_metrics_show_na():
    summary = make_summary(
        avg_call_to_first_pickup_s=float("nan"),
        sla_breach_incidents_pct=None,
        first_week=None,
        last_week=None,
    )
    monthly = make_monthly([(JAN, "EMS", 10, float("nan"), float("nan"))])
    unknown = agency_summary([("EMS", 10, None, float("nan"))])
    html = render_report_html(summary, monthly, agency_summary=unknown)
    config = json.loads(next(s for s in parse(html).scripts if '"tiles"' in s and "Plotly" not in s))
    assert config["tiles"] == {"all": ["1,234", "n/a", "n/a"], "0": ["10", "n/a", "n/a"]}
    assert "n/a to n/a" in html


def test_report_summary_json_is_serializable():
    summary = make_summary(
        scope_from=dt.date(2024, 1, 1),
        scope_to=pd.Timestamp("2024-03-31"),
        sla_breach_rows_pct=float("nan"),
        source_kinds="file,sample",
    )
    out = report_summary_json(summary)
    assert json.loads(json.dumps(out, allow_nan=False)) == out
    assert out == {
        "scope_from": "2024-01-01",
        "scope_to": "2024-03-31",
        "first_week": "2024-01-01",
        "last_week": "2024-02-26",
        "total_incidents": 1234,
        "rows": 12,
        "agencies": 2,
        "avg_call_to_first_pickup_s": 6.5,
        "sla_breach_incidents_pct": 12.25,
        "sla_breach_rows_pct": None,
        "source_kinds": "file,sample",
    }
    assert isinstance(out["total_incidents"], int)


def test_write_report_creates_dirs_and_replaces(tmp_path):
    target = tmp_path / "a" / "b" / "kpi_report.html"
    assert write_report(target, "<p>old</p>") == target
    assert write_report(str(target), "<p>new ✓</p>") == target
    assert target.read_text(encoding="utf-8") == "<p>new ✓</p>"
    assert [p.name for p in target.parent.iterdir()] == ["kpi_report.html"]  # no temp file left


@pytest.mark.skipif(shutil.which("node") is None, reason="node not installed")
def test_agency_filter_script_runs(tmp_path):
    """Run the report's inline scripts in node against a minimal fake DOM and fake Plotly."""
    html = render_report_html(make_summary(), MONTHLY, agency_summary=AGENCIES)
    scripts = parse(html).scripts
    harness = """
var els = {}, listeners = {}, restyles = [];
function el(id) { return els[id] || (els[id] = {id: id, textContent: "", data: null}); }
els["report-data"] = {textContent: DATA};
el("agency-filter").addEventListener = function (ev, fn) { listeners[ev] = fn; };
var document = {getElementById: el, querySelectorAll: function () { return []; }};
var Plotly = {
  newPlot: function (id, data) { el(id).data = data; },
  restyle: function (div, update, idx) { restyles.push([div.id, update.visible, idx]); },
};
SCRIPT
function tiles() { return [0, 1, 2].map(function (i) { return el("tile-value-" + i).textContent; }); }
listeners.change({target: {value: "1"}});
var afterOne = tiles();
listeners.change({target: {value: "all"}});
console.log(JSON.stringify({afterOne: afterOne, afterAll: tiles(), restyles: restyles}));
""".replace("DATA", json.dumps(scripts[1])).replace("SCRIPT", scripts[2])
    path = tmp_path / "harness.js"
    path.write_text(harness, encoding="utf-8")
    out = json.loads(subprocess.run(["node", str(path)], check=True, capture_output=True, text=True).stdout)
    assert out["afterOne"] == ["200", "30.0 %", "3.0 s"]
    assert out["afterAll"] == ["1,234", "12.2 %", "6.5 s"]
    # the line charts show the selected agency's trace only; the heatmap (meta "*") stays shown
    assert out["restyles"][:3] == [
        ["chart-0", [False, True], [0, 1]],
        ["chart-1", [False, True], [0, 1]],
        ["chart-2", [True], [0]],
    ]
    assert out["restyles"][3:] == [
        ["chart-0", [True, True], [0, 1]],
        ["chart-1", [True, True], [0, 1]],
        ["chart-2", [True], [0]],
    ]


def test_module_has_no_spark_dependency():
    assert "pyspark" not in Path(report.__file__).read_text(encoding="utf-8")


def test_a_missing_month_is_a_gap_in_the_line_not_a_straight_segment():
    """EMS has January and April, NYPD every month: EMS's line stops over February and March."""
    months = [dt.date(2024, m, 1) for m in (1, 2, 3, 4)]
    monthly = make_monthly(
        [(months[0], "EMS", 100, 4.0, 10.0), (months[3], "EMS", 300, 8.0, 20.0)]
        + [(m, "NYPD", 50 + i, 3.0, 0.0) for i, m in enumerate(months)]
    )
    volume, pickup, _ = monthly_figures(monthly)
    ems, nypd = volume.data
    every = ["2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01"]
    assert (list(ems.x), list(nypd.x)) == (every, every)
    assert [None if pd.isna(v) else v for v in ems.y] == [100 / 5, None, None, 300 / 5]
    assert [None if pd.isna(v) else v for v in pickup.data[0].y] == [4.0, None, None, 8.0]
    assert list(nypd.y) == [50 / 5, 51 / 4, 52 / 5, 53 / 5]  # incidents per week (Feb: 4 weeks)


def test_a_priority_series_with_a_missing_month_is_a_gap_too():
    rows = pd.DataFrame(
        {
            "month": [dt.date(2024, 1, 1), dt.date(2024, 3, 1), dt.date(2024, 1, 1)],
            "agency": ["EMS", "EMS", "NYPD_NON_CIP"],
            "priority": [1, 1, None],
            "avg_dispatch_s": [60.0, 70.0, 500.0],
            "avg_travel_s": [300.0, 320.0, 900.0],
        }
    )
    dispatch, _ = priority_figures(rows, lambda agency: agency)
    ems = next(t for t in dispatch.data if t.meta == "EMS")
    assert list(ems.x) == ["2024-01-01", "2024-02-01", "2024-03-01"]
    assert [None if pd.isna(v) else v for v in ems.y] == [60.0, None, 70.0]
    # small multiples: a panel per agency (its title), a line per priority in it
    assert [(t.name, t.meta, t.xaxis) for t in dispatch.data] == [
        ("P1", "EMS", "x"),
        ("no priority", "NYPD_NON_CIP", "x2"),
    ]
    assert [a.text for a in dispatch.layout.annotations] == ["EMS", "NYPD_NON_CIP"]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (3.97, "4.0 s"),
        (59.94, "59.9 s"),
        (59.96, "1:00 min"),
        (1539.0, "25:39 min"),  # the real export's EMS travel: not "1,539.0 s"
        (3339.94, "55:40 min"),
        (-46.68, "-46.7 s"),  # a defective row's negative pickup keeps its sign
        (-65.0, "-1:05 min"),
        (None, "n/a"),  # e.g. a year-earlier period without data
        (float("nan"), "n/a"),
    ],
)
def test_times_read_as_mss_from_a_minute_up(seconds, text):
    assert fmt_number(seconds, " s") == text
    assert format_tile(seconds, " s") == text
    assert fmt_duration(seconds) == text


def response_frame(agency: str = "EMS", pickup: float = 4.2) -> pd.DataFrame:
    """gold.kpi_response_time's rows of one series at the report's last week (2025-12-22)."""
    last = dt.date(2025, 12, 22)
    periods = {
        "week": (last, last, 1, 851.46, 3.31, 296.03, 555.6, None),
        "trailing_weeks": (dt.date(2024, 12, 30), last, 52, 714.6, pickup, 233.65, 480.96, 7.25),
        "year_earlier": (dt.date(2024, 1, 1), dt.date(2024, 12, 23), 51, 666.3, 5.4, 215.69, 450.61, None),
    }
    rows = []
    for period, (first, end, weeks, arrival, pick, dispatch, travel, change) in periods.items():
        rows.append(
            {
                "week_start_date": last,
                "agency": agency,
                "incident_type": "Life Threatening Med Emergencies",
                "period": period,
                "period_first_week": first,
                "period_last_week": end,
                "weeks_with_data": weeks,
                "avg_call_to_agency_arrival_s": arrival,
                "pickup_s": pick,
                "pickup_to_dispatch_s": dispatch - pick,
                "travel_s": travel,
                "arrival_change_vs_year_earlier_pct": change,
            }
        )
    return pd.DataFrame(rows)


def test_response_time_headline_table_and_stacked_bars():
    html = render_report_html(
        make_summary(),
        MONTHLY,
        details=ReportDetails(response_time=response_frame()),
        agency_summary=AGENCIES,
    )
    assert "<h2>End-to-end response time</h2>" in html
    row = re.search(r"<tr data-agency-row=\"0\">(.*?)</tr>", html).group(1)
    assert re.findall(r"<td[^>]*>(.*?)</td>", row)[1:] == [
        "14:11 min",
        "11:55 min (52 wk with data)",
        "11:06 min (51 wk with data)",
        "▲ 7.2 % higher (worse)",
    ]
    assert "<th>52 weeks to 2025-12-22</th>" in html
    assert "<th>Same 52 weeks a year earlier (to 2024-12-23)</th>" in html
    bars = chart_figures(html)["chart-0"]
    assert [t["name"] for t in bars["data"]] == [label for _, label, _ in RESPONSE_SEGMENTS]
    pickup, dispatch, travel = bars["data"]
    assert pickup["y"] == [
        "Same 52 weeks a year earlier (to 2024-12-23)",
        "52 weeks to 2025-12-22",
        "Week of 2025-12-22",
    ]
    assert pickup["x"] == [5.4, 4.2, 3.31]
    assert dispatch["x"] == pytest.approx([215.69 - 5.4, 233.65 - 4.2, 296.03 - 3.31])
    assert travel["text"] == ["7:31 min", "8:01 min", "9:16 min"]
    assert {t["meta"] for t in bars["data"]} == {"0"}  # EMS's index: the agency filter applies
    assert bars["layout"]["barmode"] == "stack"
    assert bars["layout"]["xaxis"]["ticktext"][:3] == ["0:00", "2:00", "4:00"]


def test_a_negative_segment_is_not_drawn_and_counted():
    html = render_report_html(
        make_summary(), MONTHLY, details=ReportDetails(response_time=response_frame(pickup=-0.16))
    )
    pickup = chart_figures(html)["chart-0"]["data"][0]
    assert pickup["x"] == [5.4, None, 3.31]
    assert "negative (defective rows), not drawn" in pickup["customdata"][1]
    assert "<h3>Chart points not drawn: 1</h3>" in html
    assert (
        "<li>EMS: Life Threatening Med Emergencies, 52 weeks to 2025-12-22: Pickup (call to first pickup) "
        "-0.2 s (negative)</li>"
    ) in html


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_agency_name_in_the_headline_is_escaped(name):
    monthly = make_monthly([(JAN, name, 10, 5.0, 1.0)])
    html = render_report_html(
        make_summary(), monthly, details=ReportDetails(response_time=response_frame(name))
    )
    doc = parse(html)
    assert name not in html
    # the detail sections' tables and lists besides the report's own tags, nothing injected
    assert doc.tags <= ALLOWED_TAGS | {"h3", "table", "thead", "tbody", "tr", "th", "td", "span", "ul", "li"}
    assert all(ALLOWED_IDS.fullmatch(i) for i in doc.ids)
    bars = chart_figures(html)["chart-0"]
    assert bars["layout"]["annotations"][0]["text"] == plotly_text(
        f"{short_name(name)}: Life Threatening Med Emergencies"
    )


def test_weekly_sla_chart_is_a_panel_per_agency_over_the_last_104_weeks():
    weeks = pd.date_range("2022-01-03", periods=120, freq="7D")
    rows = [
        {"week_start_date": w.date(), "rule": rule, "agency": agency, "breach_incidents_pct": float(i % 7)}
        for i, w in enumerate(weeks)
        for agency in ("EMS", "FDNY")
        for rule in ("pickup_over_5s", "travel_over_10m")
        if not (agency == "FDNY" and i == 110)  # a week without data: a gap
    ]
    fig = sla_figure(pd.DataFrame(rows), lambda agency: agency)
    assert [a.text for a in fig.layout.annotations] == ["EMS", "FDNY"]
    assert [(t.name, t.meta, t.yaxis, t.showlegend) for t in fig.data] == [
        ("pickup_over_5s", "EMS", "y", True),
        ("travel_over_10m", "EMS", "y", True),
        ("pickup_over_5s", "FDNY", "y2", False),
        ("travel_over_10m", "FDNY", "y2", False),
    ]
    assert fig.data[0].line.color == fig.data[2].line.color != fig.data[1].line.color  # a rule's colour
    assert fig.data[0].x[0] == weeks[120 - 104].date().isoformat() and len(fig.data[0].x) == 104
    fdny = list(fig.data[2].y)
    assert math.isnan(fdny[110 - 16]) and fdny[109 - 16] == float(109 % 7)
