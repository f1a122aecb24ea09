"""The HTML report in headless system Chromium from file:// with the network cut (no Spark): charts
draw without console errors, the agency filter restyles charts and tiles, hostile agency names stay
text, and the PDF / chart PNG / screenshot renderers of nyc911lib.report.browser write valid files.

Chromium and chromedriver missing is a failure (BrowserNotFoundError), not a skip: `make test`
installs them (`make browser-deps`)."""

from __future__ import annotations

import datetime as dt
import re
import struct
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest
from conftest import agency_summary
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from nyc911lib.errors import Nyc911Error
from nyc911lib.report import browser
from nyc911lib.report.browser import (
    PNG_MAGIC,
    BrowserNotFoundError,
    chart_pngs,
    find_chromedriver,
    find_chromium,
    full_page_screenshot,
    headless_driver,
    html_to_pdf,
    page_check,
)
from nyc911lib.report.html import ALL_AGENCIES, CHARTS, render_report_html, write_report
from nyc911lib.report.sections import short_name

pytestmark = pytest.mark.browser

JAN, FEB = dt.date(2024, 1, 1), dt.date(2024, 2, 1)
# (month, agency, incidents, avg_call_to_first_pickup_s, sla_breach_rate_pct)
MONTHLY = [
    (JAN, "EMS", 1000, 5.0, 10.0),
    (FEB, "EMS", 3000, 7.0, 20.0),
    (JAN, "FDNY", 200, 4.0, 0.0),
    (FEB, "FDNY", 600, 8.0, 40.0),
    (JAN, "NYPD", 50, 10.0, 50.0),
    (FEB, "NYPD", 150, 2.0, 10.0),
]
# gold's kpi_summary per agency for MONTHLY's weeks, worked out by hand (EXPECTED_TILES).
AGENCIES = agency_summary([("EMS", 4000, 17.5, 6.5), ("FDNY", 800, 30.0, 7.0), ("NYPD", 200, 20.0, 4.0)])
# Tile texts: total incidents; incident-weighted SLA breach %; weighted pickup s.
EXPECTED_TILES = {
    ALL_AGENCIES: ["5,000", "22.5 %", "6.3 s"],  # straight from the summary row
    "EMS": ["4,000", "17.5 %", "6.5 s"],  # (1000*10+3000*20)/4000, (1000*5+3000*7)/4000
    "FDNY": ["800", "30.0 %", "7.0 s"],  # (200*0+600*40)/800, (200*4+600*8)/800
    "NYPD": ["200", "20.0 %", "4.0 s"],  # (50*50+150*10)/200, (50*10+150*2)/200
}
LONG_NAME = ("<b>x</b>&amp;\"'é" * 30)[:300]
HOSTILE_NAMES = [
    "<script>window.__pwned=1</script>",
    "\"quoted' & </div>",
    "🚑🔥",
    '<img src=x onerror="window.__pwned=2">',
    LONG_NAME,
]

VISIBLE_TRACES_JS = """return document.getElementById(arguments[0]).data
  .map(function (t, i) { return t.visible !== false ? i : -1; }).filter(function (i) { return i >= 0; });"""
FETCH_JS = """var done = arguments[arguments.length - 1];
fetch(arguments[0], {mode: "no-cors", cache: "no-store"})
  .then(function () { done("ok"); }, function (e) { done("error: " + e); });"""


def make_summary() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "scope_from": None,
                "scope_to": None,
                "first_week": JAN,
                "last_week": dt.date(2024, 2, 26),
                "total_incidents": 5000,
                "rows": 6,
                "agencies": 3,
                "avg_call_to_first_pickup_s": 6.3,
                "sla_breach_incidents_pct": 22.5,
                "sla_breach_rows_pct": 20.0,
                "source_kinds": "file",
            }
        ]
    )


def make_monthly(rows: list[tuple]) -> pd.DataFrame:
    columns = ["month", "agency", "incidents", "avg_call_to_first_pickup_s", "sla_breach_rate_pct"]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.assign(incidents_per_week=frame["incidents"] / 4)  # gold's column


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from the IHDR chunk of a PNG."""
    assert data[:8] == PNG_MAGIC
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def driver() -> Iterator:
    """One offline headless Chromium for the whole module."""
    with headless_driver() as d:
        yield d


@pytest.fixture(scope="module")
def report_html(tmp_path_factory) -> Path:
    html = render_report_html(make_summary(), make_monthly(MONTHLY), agency_summary=AGENCIES)
    return write_report(tmp_path_factory.mktemp("report") / "kpi_report.html", html)


@pytest.fixture(scope="module")
def hostile_html(tmp_path_factory) -> Path:
    rows = [
        (month, name, 10 * (i + 1) + m, 3.0 + i, 5.0 + i)
        for i, name in enumerate(HOSTILE_NAMES)
        for m, month in enumerate((JAN, FEB))
    ]
    html = render_report_html(make_summary(), make_monthly(rows))
    return write_report(tmp_path_factory.mktemp("hostile") / "kpi_report.html", html)


@pytest.fixture
def loopback_server() -> Iterator[tuple[str, list[str]]]:
    """An HTTP server on 127.0.0.1: (its URL, the paths it was asked for)."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/probe", seen
    finally:
        server.shutdown()
        server.server_close()


def tile_texts(driver) -> list[str]:
    return [driver.find_element(By.ID, f"tile-value-{i}").text for i in range(3)]


def chart_ids(driver) -> list[str]:
    return [div.get_attribute("id") for div in driver.find_elements(By.CSS_SELECTOR, "div.chart")]


def heatmap_rows(driver, chart_id: str) -> list[str]:
    """The row labels of a heatmap chart as drawn (its y-axis ticks), top to bottom."""
    return driver.execute_script(
        "return [...document.querySelectorAll('#' + arguments[0] + ' .ytick text')]"
        ".sort((a, b) => a.getBoundingClientRect().top - b.getBoundingClientRect().top)"
        ".map(e => e.textContent);",
        chart_id,
    )


def legend_texts(driver, chart_id: str) -> list[str]:
    return driver.execute_script(
        "return Array.prototype.map.call(document.querySelectorAll('#' + arguments[0] + ' .legendtext'),"
        " function (e) { return e.textContent; });",
        chart_id,
    )


def assert_no_script_ran(driver) -> None:
    assert driver.execute_script("return typeof window.__pwned") == "undefined"
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert  # noqa: B018 - the property raises when no alert is open


# --- finding the binaries ---------------------------------------------------------------------


def test_chromium_and_chromedriver_are_installed():
    # Absent binaries fail here (and in every test using the driver) with the install hint.
    for path in (find_chromium(), find_chromedriver()):
        assert path.is_file()


def test_missing_binaries_raise_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.delenv(browser.CHROMIUM_ENV, raising=False)
    monkeypatch.delenv(browser.CHROMEDRIVER_ENV, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    for find in (find_chromium, find_chromedriver):
        with pytest.raises(BrowserNotFoundError, match="chromium-driver") as err:
            find()
        assert isinstance(err.value, Nyc911Error)
        assert "make browser-deps" in str(err.value)
    with pytest.raises(BrowserNotFoundError, match="chromium"), headless_driver():
        pass


def test_env_overrides_win_and_are_checked(monkeypatch, tmp_path):
    driver_path = find_chromedriver()
    fake = tmp_path / "my-chromium"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv(browser.CHROMIUM_ENV, str(fake))
    monkeypatch.setenv(browser.CHROMEDRIVER_ENV, str(driver_path))
    assert find_chromium() == fake
    assert find_chromedriver() == driver_path
    monkeypatch.setenv(browser.CHROMEDRIVER_ENV, str(tmp_path / "nope"))
    with pytest.raises(BrowserNotFoundError, match=browser.CHROMEDRIVER_ENV):
        find_chromedriver()


# --- the report in the browser ------------------------------------------------------------------


def test_report_draws_every_chart_offline_without_console_errors(driver, report_html):
    check = page_check(driver, report_html)
    assert check.url.startswith("file://")
    assert check.console_errors == (), check.console
    ids = chart_ids(driver)
    assert ids == [f"chart-{i}" for i in range(len(CHARTS))]
    assert check.charts == check.drawn == len(ids) > 0
    for chart_id in ids:
        assert driver.find_elements(By.CSS_SELECTOR, f"#{chart_id} svg.main-svg")


def test_printed_the_report_has_no_chart_toolbars_and_breaks_between_sections(driver, report_html):
    """Under print media (a browser's Print, `nyc911 report --format pdf`): every chart's Plotly
    toolbar and the agency filter are hidden, sections and charts are kept whole (a page breaks
    between them, never through one); on screen the toolbars are there."""
    page_check(driver, report_html)
    toolbars = (
        "return [...document.querySelectorAll('.modebar-container')].map(e => getComputedStyle(e).display);"
    )
    on_screen = driver.execute_script(toolbars)
    assert len(on_screen) == 3 and "none" not in on_screen  # one per chart (the 3 monthly charts)
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        printed = driver.execute_script(
            toolbars[: -len(";")]
            + """.concat([
              getComputedStyle(document.getElementById('agency-filter')).display,
              ...[...document.querySelectorAll('section, .chart')].map(e => getComputedStyle(e).breakInside),
            ]);"""
        )
    finally:
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
    sections = len(driver.find_elements(By.CSS_SELECTOR, "section, .chart"))
    assert printed == ["none"] * 4 + ["avoid"] * sections


def test_agency_filter_restyles_charts_and_tiles(driver, report_html):
    page_check(driver, report_html)
    agencies = sorted({row[1] for row in MONTHLY})
    select = Select(driver.find_element(By.ID, "agency-filter"))
    assert [o.text for o in select.options] == [ALL_AGENCIES, *agencies]
    *lines, heatmap = chart_ids(driver)  # volume and pickup: a line per agency; SLA: month x agency
    for chart_id in lines:
        assert driver.execute_script(VISIBLE_TRACES_JS, chart_id) == list(range(len(agencies)))
        assert legend_texts(driver, chart_id) == agencies
    assert heatmap_rows(driver, heatmap) == agencies
    assert tile_texts(driver) == EXPECTED_TILES[ALL_AGENCIES]

    for i, agency in enumerate(agencies):
        select.select_by_visible_text(agency)
        assert select.first_selected_option.text == agency
        for chart_id in lines:
            assert driver.execute_script(VISIBLE_TRACES_JS, chart_id) == [i]
            # plotly drops hidden traces from the SVG (and the legend, with one trace left)
            assert len(driver.find_elements(By.CSS_SELECTOR, f"#{chart_id} .scatterlayer .trace")) == 1
        # the heatmap compares the agencies: it stays whole whichever is selected
        assert driver.execute_script(VISIBLE_TRACES_JS, heatmap) == [0]
        assert heatmap_rows(driver, heatmap) == agencies
        assert tile_texts(driver) == EXPECTED_TILES[agency]

    select.select_by_visible_text(ALL_AGENCIES)
    assert driver.execute_script(VISIBLE_TRACES_JS, "chart-0") == list(range(len(agencies)))
    assert len(driver.find_elements(By.CSS_SELECTOR, "#chart-0 .scatterlayer .trace")) == len(agencies)
    assert tile_texts(driver) == EXPECTED_TILES[ALL_AGENCIES]


def test_hostile_agency_names_stay_text(driver, hostile_html):
    check = page_check(driver, hostile_html)
    assert check.console_errors == (), check.console
    assert check.charts == check.drawn == len(CHARTS)
    assert_no_script_ran(driver)
    # only the report's own scripts (plotly.js, the JSON data, the charts + filter) and no <img>
    assert driver.execute_script("return document.scripts.length") == 3
    assert driver.find_elements(By.TAG_NAME, "img") == []

    names = sorted(HOSTILE_NAMES)
    shown = [short_name(n) for n in names]  # over 60 characters: cut for display, full in the title
    select = Select(driver.find_element(By.ID, "agency-filter"))
    assert [o.text for o in select.options] == [ALL_AGENCIES, *shown]
    assert [o.get_attribute("textContent") for o in select.options] == [ALL_AGENCIES, *shown]
    assert select.options[1 + names.index(LONG_NAME)].get_attribute("title") == LONG_NAME
    *lines, heatmap = chart_ids(driver)
    for chart_id in lines:
        assert legend_texts(driver, chart_id) == shown
    assert heatmap_rows(driver, heatmap) == shown

    for i, name in enumerate(shown):
        select.select_by_index(i + 1)
        assert select.first_selected_option.text == name
        assert driver.execute_script(VISIBLE_TRACES_JS, "chart-0") == [i]
        assert_no_script_ran(driver)


def test_network_is_cut_two_ways(driver, loopback_server, tmp_path):
    url, seen = loopback_server
    page = tmp_path / "blank.html"
    page.write_text("<!DOCTYPE html><title>blank</title>", encoding="utf-8")
    page_check(driver, page)
    assert driver.execute_async_script(FETCH_JS, url).startswith("error")
    # without the DevTools offline emulation the dead proxy still stops the request
    conditions = {"latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}
    driver.execute_cdp_cmd("Network.emulateNetworkConditions", {"offline": False, **conditions})
    try:
        assert driver.execute_async_script(FETCH_JS, url).startswith("error")
    finally:
        driver.execute_cdp_cmd("Network.emulateNetworkConditions", {"offline": True, **conditions})
    assert seen == []


def test_online_driver_reaches_loopback_without_selenium_manager(monkeypatch, loopback_server, tmp_path):
    """Control for the test above; selenium-manager (which may download drivers) is never called."""

    def no_manager(*args, **kwargs):
        raise AssertionError("selenium-manager was invoked")

    monkeypatch.setattr("selenium.webdriver.common.driver_finder.SeleniumManager.binary_paths", no_manager)
    url, seen = loopback_server
    page = tmp_path / "blank.html"
    page.write_text("<!DOCTYPE html><title>blank</title>", encoding="utf-8")
    with headless_driver(offline=False) as online:
        page_check(online, page)
        assert online.execute_async_script(FETCH_JS, url) == "ok"
    assert seen == ["/probe"]


# --- renderers ----------------------------------------------------------------------------------


def test_full_page_screenshot_covers_more_than_the_viewport(driver, report_html, tmp_path):
    png = full_page_screenshot(report_html, tmp_path / "shots" / "page.png", driver=driver)
    assert png == tmp_path / "shots" / "page.png"
    width, height = png_size(png.read_bytes())
    inner_width, inner_height = driver.execute_script("return [window.innerWidth, window.innerHeight]")
    assert width >= inner_width
    assert height > inner_height
    assert [p.name for p in png.parent.iterdir()] == ["page.png"]  # no temp file left


def test_html_to_pdf_with_its_own_browser(report_html, tmp_path):
    pdf = html_to_pdf(report_html, tmp_path / "report.pdf")
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-")
    assert len(re.findall(rb"/Type\s*/Page\b(?!s)", data)) >= 1
    boxes = re.findall(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]", data)
    assert boxes
    assert all(float(w) > float(h) for w, h in boxes)  # landscape
    assert abs(float(boxes[0][0]) - 842) < 2  # A4 long side, points
    assert [p.name for p in tmp_path.iterdir()] == ["report.pdf"]


def test_chart_pngs_one_per_chart(driver, report_html, tmp_path):
    paths = chart_pngs(report_html, tmp_path / "charts", driver=driver)
    assert [p.name for p in paths] == [f"chart-{i}.png" for i in range(len(CHARTS))]
    for path in paths:
        assert png_size(path.read_bytes()) == (1200, 500)
    assert sorted(p.name for p in (tmp_path / "charts").iterdir()) == [p.name for p in paths]
