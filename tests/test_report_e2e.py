"""The report end to end: gold of a pipeline run -> HTML -> headless Chromium (offline, file://).

One sample warehouse per module (the built-in sample, 2 years) and one hostile warehouse (names
that are markup, quotes, emoji and 300 characters, 4 years so anomalies have a baseline, and a
5x spike in the last week). Also `nyc911 report` (PDF, chart PNGs) and `nyc911 alerts` (JSON,
Markdown, webhook on a loopback server, exit status) in this process, on the same gold.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import REPO, assert_same_summary, run_once
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from nyc911lib import build_gold, build_report, load_params, read_table
from nyc911lib.report.browser import PNG_MAGIC, full_page_screenshot, headless_driver, page_check
from nyc911lib.report.sections import change_text, fmt_duration, short_name
from nyc911lib.run import cli
from nyc911lib.sample import write_sample

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

# The README's screenshot: refreshed only when asked (`make screenshot`), so `make test` leaves the
# checkout as it found it; otherwise the screenshot goes to the test's temporary folder.
SCREENSHOT = REPO / "reports" / "screenshots" / "kpi_report.png"
UPDATE_SCREENSHOT = os.environ.get("NYC911_UPDATE_SCREENSHOT") == "1"
HOSTILE_AGENCY = "<script>window.__pwned=1</script>"
HOSTILE_TYPES = (
    "\"quoted' & </div>",
    '🚑🔥 <img src=x onerror="window.__pwned=2">',
    ("</td></tr><script>window.__pwned=3</script>" * 8)[:300],
)
SPIKE = 5
VISIBLE_ROWS_JS = """return Array.from(document.querySelectorAll('[data-agency-row]'))
  .filter(function (r) { return !r.hidden; })
  .map(function (r) { return r.getAttribute('data-agency-row'); });"""


@pytest.fixture(scope="module")
def driver():
    with headless_driver() as d:
        yield d


@pytest.fixture(scope="module")
def sample_gold(spark, params, tmp_path_factory):
    """A warehouse holding the gold of the built-in sample."""
    root = tmp_path_factory.mktemp("sample")
    sample_params = replace(params.with_warehouse(root / "wh"), reports_dir=root / "reports")
    run_once(spark, sample_params)
    return sample_params


def hostile_source(path: Path) -> Path:
    """The sample over 4 years with NYPD (Non-CIP) renamed to markup and three of its incident
    types renamed to hostile text; in the last week they breach the pickup SLA and the first one
    has 5x its incidents."""
    sample = write_sample(path.with_name("plain.csv"), weeks=4 * 52 + 1)
    with sample.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    types = sorted({r["Final Incident Type"] for r in rows if r["Agency"] == "NYPD (Non-CIP)"})
    renamed = dict(zip(types, HOSTILE_TYPES, strict=False))
    last_week = max(rows, key=lambda r: (r["Week Start Date"][-4:], r["Week Start Date"]))["Week Start Date"]
    for r in rows:
        if r["Agency"] != "NYPD (Non-CIP)":
            continue
        r["Agency"] = HOSTILE_AGENCY
        r["Final Incident Type"] = renamed.get(r["Final Incident Type"], r["Final Incident Type"])
        if r["Week Start Date"] == last_week and r["Final Incident Type"] in HOSTILE_TYPES:
            r["Call to First Pickup"] = "30"  # every hostile type raises an SLA alert in the latest week
            if r["Final Incident Type"] == HOSTILE_TYPES[0]:
                r["# of Incidents Calculated"] = str(SPIKE * int(r["# of Incidents Calculated"]))
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def hostile_report(spark, params, tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    hostile_params = replace(
        params.with_warehouse(root / "wh"),
        agency_codes={**params.agency_codes, HOSTILE_AGENCY: HOSTILE_AGENCY},
        reports_dir=root / "reports",
    )
    run_once(spark, hostile_params, hostile_source(root / "hostile.csv"))
    return hostile_params, build_report(spark, hostile_params, root / "reports")


def assert_nothing_executed(driver) -> None:
    assert driver.execute_script("return typeof window.__pwned") == "undefined"
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert  # noqa: B018 - the property raises when no alert is open
    assert driver.find_elements(By.TAG_NAME, "img") == []
    assert driver.execute_script("return document.scripts.length") == 3


def test_sample_report_in_the_browser(spark, driver, sample_gold, tmp_path):
    html = build_report(spark, sample_gold, sample_gold.reports_dir)
    check = page_check(driver, html)
    assert check.console_errors == (), check.console
    # the response-time headline, 3 monthly (volume, pickup, SLA heatmap), dispatch and travel by
    # priority, SLA weekly
    assert check.charts == check.drawn == 7
    headline = driver.execute_script(
        "return [...document.querySelectorAll('section')][0].querySelector('tbody tr').innerText;"
    )
    latest = read_table(spark, sample_gold, "gold", "kpi_summary").first().last_week
    ems = {
        r.period: r
        for r in read_table(spark, sample_gold, "gold", "kpi_response_time").collect()
        if r.agency == "EMS" and r.week_start_date == latest
    }
    assert headline.split("\t") == [
        "EMS: Life Threatening Med Emergencies",
        fmt_duration(ems["week"].avg_call_to_agency_arrival_s),
        f"{fmt_duration(ems['trailing_weeks'].avg_call_to_agency_arrival_s)} (52 wk with data)",
        f"{fmt_duration(ems['year_earlier'].avg_call_to_agency_arrival_s)} (52 wk with data)",
        change_text(ems["trailing_weeks"].arrival_change_vs_year_earlier_pct, True)[0],
    ]
    views = driver.find_elements(By.CSS_SELECTOR, "[data-agency-view]")
    assert [v.get_attribute("data-agency-view") for v in views if v.is_displayed()] == ["all"]
    tile = driver.find_element(By.ID, "tile-value-0").text
    gold = read_table(spark, sample_gold, "gold", "kpi_summary").first()
    assert tile == f"{gold.total_incidents:,}"

    select = Select(driver.find_element(By.ID, "agency-filter"))
    # Agencies by the names params give them, never by gold's codes (NYPD_NON_CIP).
    assert [o.text for o in select.options] == ["All agencies", "EMS", "FDNY", "NYPD", "NYPD (Non-CIP)"]
    names = driver.execute_script("return document.getElementById('chart-1').data.map(t => t.name);")
    assert names == ["EMS", "FDNY", "NYPD", "NYPD (Non-CIP)"]
    assert "NYPD_NON_CIP" not in html.read_text(encoding="utf-8")
    select.select_by_visible_text("EMS")
    ems = select.first_selected_option.get_attribute("value")
    shown = [v.get_attribute("data-agency-view") for v in views if v.is_displayed()]
    assert shown == [ems]
    ems_incidents = sum(
        r.incidents
        for r in read_table(spark, sample_gold, "gold", "kpi_monthly_agency").collect()
        if r.agency == "EMS"
    )
    assert driver.find_element(By.ID, "tile-value-0").text == f"{ems_incidents:,}"
    assert set(driver.execute_script(VISIBLE_ROWS_JS)) <= {ems, "all"}
    for chart in ("chart-0", "chart-1", "chart-5", "chart-6"):
        metas = driver.execute_script(
            "return document.getElementById(arguments[0]).data"
            ".filter(function (t) { return t.visible !== false; }).map(function (t) { return t.meta; });",
            chart,
        )
        assert metas and set(metas) == {ems}
    select.select_by_visible_text("All agencies")
    shot = SCREENSHOT if UPDATE_SCREENSHOT else tmp_path / "kpi_report.png"
    path = full_page_screenshot(html, shot, driver=driver)
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 100_000


def test_hostile_names_render_as_text_and_nothing_runs(spark, driver, hostile_report):
    hostile_params, html = hostile_report
    check = page_check(driver, html)
    assert check.console_errors == (), check.console
    assert check.charts == check.drawn == 7
    assert_nothing_executed(driver)
    options = [o.text for o in Select(driver.find_element(By.ID, "agency-filter")).options]
    assert HOSTILE_AGENCY in options  # the markup is the option's text
    cells = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "td span.cut")]
    assert HOSTILE_AGENCY in cells
    for name in HOSTILE_TYPES:
        assert short_name(name) in cells, name
    long = driver.find_elements(By.CSS_SELECTOR, "td span.cut[title]")
    assert HOSTILE_TYPES[2] in {e.get_attribute("title") for e in long}  # cut for display, full in title
    anomalies = read_table(spark, hostile_params, "gold", "anomalies")
    spike = anomalies.where(
        (anomalies.incident_type == HOSTILE_TYPES[0]) & (anomalies.metric == "incidents")
    ).collect()
    last_week = read_table(spark, hostile_params, "gold", "kpi_summary").first().last_week
    assert [(r.week_start_date, r.direction) for r in spike] == [(last_week, "high")]
    assert 0.7 * SPIKE < spike[0].ratio < 1.3 * SPIKE  # against a seasonal median, not last week's count
    select = Select(driver.find_element(By.ID, "agency-filter"))
    select.select_by_visible_text(HOSTILE_AGENCY)
    key = select.first_selected_option.get_attribute("value")
    assert set(driver.execute_script(VISIBLE_ROWS_JS)) <= {key, "all"}
    assert key in driver.execute_script(VISIBLE_ROWS_JS)
    assert_nothing_executed(driver)
    shot = full_page_screenshot(html, html.with_suffix(".png"), driver=driver)
    assert shot.read_bytes()[:8] == PNG_MAGIC


def test_report_command_writes_pdf_and_chart_pngs(sample_gold, tmp_path, capsys):
    out = tmp_path / "out"
    code = cli.main(
        [
            "report",
            "--warehouse",
            str(sample_gold.warehouse),
            "--format",
            "pdf",
            "--chart-png",
            "--png",
            str(tmp_path / "shots" / "report.png"),
            "--out",
            str(out),
        ]
    )
    assert code == 0
    assert (out / "kpi_report.pdf").read_bytes()[:5] == b"%PDF-"
    assert sorted(p.name for p in (out / "charts").iterdir()) == [f"chart-{i}.png" for i in range(7)]
    shot = (tmp_path / "shots" / "report.png").read_bytes()  # the whole page, far taller than a screen
    assert shot[:8] == PNG_MAGIC and int.from_bytes(shot[20:24], "big") > 3000
    printed = capsys.readouterr().out
    assert f"pdf: {out / 'kpi_report.pdf'}" in printed
    assert f"png: {tmp_path / 'shots' / 'report.png'}" in printed


def test_report_scope_limits_weeks_and_agencies(spark, sample_gold, tmp_path):
    code = cli.main(
        [
            "report",
            "--warehouse",
            str(sample_gold.warehouse),
            "--from",
            "2024-01-01",
            "--to",
            "2024-06-30",
            "--agency",
            "FDNY",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    summary = json.loads((tmp_path / "kpi_summary.json").read_text())
    monthly = read_table(spark, sample_gold, "gold", "kpi_monthly_agency")
    fdny = [
        r
        for r in monthly.collect()
        if r.agency == "FDNY" and "2024-01-01" <= r.month.isoformat() <= "2024-06-30"
    ]
    assert summary["total_incidents"] == sum(r.incidents for r in fdny)
    assert (summary["first_week"], summary["last_week"]) == ("2024-01-01", "2024-06-24")
    assert summary["agencies"] == 1
    # The scope's headline figures, worked out here from gold's weeks of the scope (what the report
    # must get by applying gold's own summary function to them), the share of rows included.
    weeks = [
        r
        for r in read_table(spark, sample_gold, "gold", "kpi_weekly").collect()
        if r.agency == "FDNY" and "2024-01-01" <= r.week_start_date.isoformat() <= "2024-06-30"
    ]
    timed = [r for r in weeks if r.avg_call_to_first_pickup_s is not None]
    evaluated = [r for r in weeks if r.sla_breached is not None]
    expected = {
        "scope_from": "2024-01-01",
        "scope_to": "2024-06-30",
        "rows": len(weeks),
        "source_kinds": "sample",
        "avg_call_to_first_pickup_s": sum(r.avg_call_to_first_pickup_s * r.incidents for r in timed)
        / sum(r.incidents for r in timed),
        "sla_breach_incidents_pct": 100.0
        * sum(r.incidents for r in evaluated if r.sla_breached)
        / sum(r.incidents for r in evaluated),
        "sla_breach_rows_pct": 100.0 * sum(r.sla_breached for r in evaluated) / len(evaluated),
    }
    assert_same_summary({k: summary[k] for k in expected}, expected)
    html = (tmp_path / "kpi_report.html").read_text(encoding="utf-8")
    assert '<option value="0">FDNY</option>' in html and ">EMS</option>" not in html
    # The response-time headline follows the scope: FDNY's row at the scope's last week only.
    fdny_week = next(
        r
        for r in read_table(spark, sample_gold, "gold", "kpi_response_time").collect()
        if r.agency == "FDNY" and r.week_start_date.isoformat() == "2024-06-24" and r.period == "week"
    )
    headline = html[html.index("<h2>End-to-end response time</h2>") : html.index("<h2>Latest week</h2>")]
    assert "<th>Week of 2024-06-24</th>" in headline and "<th>52 weeks to 2024-06-24</th>" in headline
    assert "FDNY: Structural Fires" in headline and "EMS:" not in headline and "NYPD:" not in headline
    assert f'<td class="num">{fmt_duration(fdny_week.avg_call_to_agency_arrival_s)}</td>' in headline


def test_report_refuses_other_sla_rules(sample_gold, tmp_path, capsys):
    rules = tmp_path / "sla.yaml"
    rules.write_text(
        "sla_rules:\n  - name: pickup_over_9s\n    metric: avg_call_to_first_pickup_s\n    threshold_s: 9\n"
    )
    code = cli.main(["report", "--warehouse", str(sample_gold.warehouse), "--sla-rules", str(rules)])
    assert code == 1
    assert capsys.readouterr().err == (
        "nyc911: error: gold was computed with the SLA rules pickup_over_5s "
        "(avg_call_to_first_pickup_s > 5 s), but the SLA rules file asks for pickup_over_9s "
        "(avg_call_to_first_pickup_s > 9 s): rebuild gold with them first (name the file as "
        "sla_rules_file in the params, then nyc911 run --full-refresh)\n"
    )


class Hook:
    """A loopback webhook that answers with the planned statuses and records JSON bodies."""

    def __init__(self, statuses: list[int]):
        self.statuses, self.bodies = list(statuses), []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                hook.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(hook.statuses.pop(0) if hook.statuses else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook/secret-token"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_alerts_command_posts_latest_week_and_exits_3(spark, sample_gold, tmp_path, monkeypatch, capsys):
    hook = Hook([503])
    monkeypatch.setenv("NYC911_ALERTS_WEBHOOK", hook.url)
    try:
        code = cli.main(["alerts", "--warehouse", str(sample_gold.warehouse), "--out", str(tmp_path)])
    finally:
        hook.close()
    assert code == cli.ALERTS_FIRED
    alerts = read_table(spark, sample_gold, "gold", "sla_alerts")
    last_week = read_table(spark, sample_gold, "gold", "kpi_summary").first().last_week
    expected = alerts.where(alerts.week_start_date == last_week).collect()
    assert expected, "the sample's latest week breaches the 5 s pickup rule somewhere"
    payload = json.loads((tmp_path / "sla_alerts.json").read_text(encoding="utf-8"))
    assert len(hook.bodies) == 2 and hook.bodies[1] == payload  # a 503, then delivered
    assert payload["week_start_date"] == last_week.isoformat()
    assert payload["alert_count"] == len(expected)
    assert payload["incidents_affected"] == sum(r.incidents_affected for r in expected)
    got = sorted((a["agency"], a["incident_type"], a["observed_s"]) for a in payload["alerts"])
    assert got == sorted((r.agency, r.incident_type, r.observed_s) for r in expected)
    out = capsys.readouterr().out
    assert f"{len(expected)} SLA alert" in out and "webhook: delivered (HTTP 200)" in out
    assert (tmp_path / "sla_alerts.md").read_text(encoding="utf-8").startswith("# NYC 911 SLA alerts")


def test_alerts_command_survives_a_dead_webhook(sample_gold, tmp_path, monkeypatch, capsys, caplog):
    hook = Hook([])
    hook.close()  # nothing listens on the port any more
    monkeypatch.setenv("NYC911_ALERTS_WEBHOOK", hook.url)
    monkeypatch.setattr("time.sleep", lambda _s: None)
    code = cli.main(["alerts", "--warehouse", str(sample_gold.warehouse), "--out", str(tmp_path)])
    assert code == cli.ALERTS_FIRED
    assert "webhook: not delivered after 4 attempts: connection refused" in capsys.readouterr().out
    port = hook.url.split(":")[2].split("/")[0]
    assert caplog.messages[-1] == (
        f"webhook http://127.0.0.1:{port}/… not delivered after 4 attempts: connection refused"
    )
    assert "secret-token" not in caplog.text
    assert (tmp_path / "sla_alerts.json").is_file()


def test_alerts_command_exits_0_without_alerts(spark, sample_gold, tmp_path, capsys):
    warehouse = tmp_path / "wh"
    shutil.copytree(sample_gold.warehouse, warehouse)
    rules = tmp_path / "sla.yaml"
    rules.write_text(
        "sla_rules:\n  - name: pickup_over_1h\n"
        "    metric: avg_call_to_first_pickup_s\n    threshold_s: 3600\n"
    )
    lenient = load_params(sla_rules_file=rules).with_warehouse(warehouse)
    build_gold(spark, lenient, force=True)
    params_file = tmp_path / "params.yaml"
    text = (REPO / "params" / "default.yaml").read_text(encoding="utf-8")
    params_file.write_text(
        text.replace("sla_rules_file: sla_rules.yaml", f"sla_rules_file: {rules}").replace(
            "quality_rules_file: quality_rules.yaml",
            f"quality_rules_file: {REPO / 'params' / 'quality_rules.yaml'}",
        ),
        encoding="utf-8",
    )
    code = cli.main(
        [
            "alerts",
            "--params",
            str(params_file),
            "--warehouse",
            str(warehouse),
            "--no-post",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    assert json.loads((tmp_path / "sla_alerts.json").read_text())["alert_count"] == 0
    assert "No SLA alerts" in capsys.readouterr().out
