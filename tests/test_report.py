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
from nyc911lib.report.sections import fmt_number, priority_figures, short_name

JAN, FEB = dt.date(2024, 1, 1), dt.date(2024, 2, 1)
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
    assert [f.layout.yaxis.title.text for f in figures] == [
        "Incidents per month",
        "Seconds",
        "% of incidents",
    ]
    assert [f.layout.title.text for f in figures] == [
        "Monthly incident volume by agency",
        "Average call to first pickup by agency",
        "SLA breach rate by agency",
    ]
    for fig in figures:
        assert [t.name for t in fig.data] == ["EMS", "NYPD"]
        assert fig.layout.xaxis.title.text == "Month"
    volume, pickup, breach = figures
    assert list(volume.data[0].x) == ["2024-01-01", "2024-02-01"]
    assert list(volume.data[0].y) == [100, 300]
    assert list(pickup.data[0].y) == [4.0, 8.0]
    assert math.isnan(pickup.data[1].y[1])
    assert list(breach.data[1].y) == [0.0, 40.0]


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
        "Incidents per month",
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
    assert figures["chart-2"]["layout"]["yaxis"]["title"]["text"] == "% of incidents"
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
    for fig in figures.values():  # entity-escaped: plotly.js shows it literally, never as markup
        assert sorted(t["name"] for t in fig["data"]) == sorted(["EMS", plotly_text(shown)])
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
    assert out["restyles"][:3] == [[f"chart-{i}", [False, True], [0, 1]] for i in range(3)]
    assert out["restyles"][3:] == [[f"chart-{i}", [True, True], [0, 1]] for i in range(3)]


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
    assert [None if pd.isna(v) else v for v in ems.y] == [100, None, None, 300]
    assert [None if pd.isna(v) else v for v in pickup.data[0].y] == [4.0, None, None, 8.0]
    assert list(nypd.y) == [50, 51, 52, 53]


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
    ems = next(t for t in dispatch.data if t.name == "EMS P1")
    assert list(ems.x) == ["2024-01-01", "2024-02-01", "2024-03-01"]
    assert [None if pd.isna(v) else v for v in ems.y] == [60.0, None, 70.0]
    assert [t.name for t in dispatch.data] == ["EMS P1", "NYPD_NON_CIP no priority"]


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
    ],
)
def test_times_read_as_mss_from_a_minute_up(seconds, text):
    assert fmt_number(seconds, " s") == text
    assert format_tile(seconds, " s") == text
