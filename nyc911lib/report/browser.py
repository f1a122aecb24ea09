"""Headless system Chromium (driven by selenium through chromedriver) as an offline renderer and
checker for the HTML report: page checks, PDF, chart PNGs and full-page screenshots.

I/O edge module; needs the `dev` extra (selenium) and the Debian packages chromium and
chromium-driver (`make browser-deps`). Both binaries are passed to selenium explicitly, so
selenium-manager never runs and nothing is downloaded. By default the browser has no network:
every request goes to a dead proxy and DevTools emulates an offline connection; file:// still works.
"""

from __future__ import annotations

import base64
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from nyc911lib.errors import Nyc911Error
from nyc911lib.io.files import write_atomic

CHROMIUM_ENV = "NYC911_CHROMIUM"
CHROMEDRIVER_ENV = "NYC911_CHROMEDRIVER"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
CHROMEDRIVER_NAMES = ("chromedriver",)
INSTALL_HINT = (
    "install the Debian packages chromium and chromium-driver "
    "(`make browser-deps`, or as root: apt-get install -y --no-install-recommends chromium chromium-driver)"
)
CHROME_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
)
# Offline: every request (loopback included, `<-loopback>`) goes to the discard port, where nothing listens.
OFFLINE_FLAGS = ("--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>")
CHART_SELECTOR = ".chart"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
A4_SHORT_IN, A4_LONG_IN, PDF_MARGIN_IN, CSS_PX_PER_IN = 8.27, 11.69, 0.4, 96

_CHART_STATE_JS = """if (document.readyState !== "complete") { return null; }
var divs = document.querySelectorAll(arguments[0]), drawn = 0;
for (var i = 0; i < divs.length; i++) { if (divs[i].querySelector("svg.main-svg")) { drawn++; } }
return [divs.length, drawn];"""

_TO_IMAGE_JS = """var sel = arguments[0], w = arguments[1], h = arguments[2];
var done = arguments[arguments.length - 1];
if (typeof Plotly === "undefined") { done({error: "Plotly is not loaded"}); return; }
var divs = Array.prototype.slice.call(document.querySelectorAll(sel));
Promise.all(divs.map(function (d) { return Plotly.toImage(d, {format: "png", width: w, height: h}); }))
  .then(function (urls) { done({urls: urls}); }, function (e) { done({error: String(e)}); });"""

# The report's own print rules (@media print in nyc911lib.report.html) keep sections and charts
# whole and hide the chart toolbars; the PDF only needs the page's width to scale it.
_PAGE_WIDTH_JS = "return document.documentElement.scrollWidth;"


class BrowserNotFoundError(Nyc911Error):
    """Chromium or chromedriver is not installed (or an override does not point at one)."""


class BrowserPageError(Nyc911Error):
    """The page did not finish drawing, or the browser could not render it."""


@dataclass(frozen=True)
class PageCheck:
    """What a page showed after loading: chart divs, how many drew an SVG, console output."""

    url: str
    charts: int
    drawn: int
    console_errors: tuple[str, ...]  # SEVERE browser-console entries (errors, uncaught exceptions)
    console: tuple[dict[str, Any], ...]  # every console entry (level, message, source, timestamp)


def _find(env: str, names: tuple[str, ...], what: str) -> Path:
    override = os.environ.get(env, "").strip()
    if override:
        found = shutil.which(override)
        if found is None:
            raise BrowserNotFoundError(
                f"{env}={override!r} is not an executable {what}; unset it or {INSTALL_HINT}"
            )
        return Path(found)
    for name in names:
        found = shutil.which(name)
        if found is not None:
            return Path(found)
    raise BrowserNotFoundError(
        f"{what} not found (looked on PATH for {', '.join(names)}; or set {env}): {INSTALL_HINT}"
    )


def find_chromium() -> Path:
    """The Chromium binary: $NYC911_CHROMIUM, else chromium / chromium-browser / google-chrome on PATH."""
    return _find(CHROMIUM_ENV, CHROMIUM_NAMES, "Chromium browser")


def find_chromedriver() -> Path:
    """The chromedriver binary: $NYC911_CHROMEDRIVER, else chromedriver on PATH."""
    return _find(CHROMEDRIVER_ENV, CHROMEDRIVER_NAMES, "chromedriver")


@contextmanager
def headless_driver(*, offline: bool = True, width: int = 1400, height: int = 1000) -> Iterator[WebDriver]:
    """A headless Chromium webdriver with a throw-away profile and browser-console logging;
    `offline` (default) cuts all network access (file:// URLs still load). Quit on exit."""
    chromium, chromedriver = find_chromium(), find_chromedriver()
    with tempfile.TemporaryDirectory(prefix="nyc911-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = str(chromium)
        for flag in (*CHROME_FLAGS, *(OFFLINE_FLAGS if offline else ())):
            options.add_argument(flag)
        options.add_argument(f"--window-size={width},{height}")
        options.add_argument(f"--user-data-dir={profile}")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(options=options, service=Service(executable_path=str(chromedriver)))
        try:
            if offline:
                driver.execute_cdp_cmd(
                    "Network.emulateNetworkConditions",
                    {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
                )
            yield driver
        finally:
            driver.quit()


@contextmanager
def _session(driver: WebDriver | None) -> Iterator[WebDriver]:
    """`driver` itself, or a fresh offline headless driver for the duration of the block."""
    if driver is not None:
        yield driver
        return
    with headless_driver() as own:
        yield own


def page_check(driver: WebDriver, html: Path, *, timeout_s: float = 30.0) -> PageCheck:
    """Open `html` from file://, wait until every `.chart` div has drawn its `svg.main-svg` and
    return the console output of that load. Raises BrowserPageError on timeout."""
    url = Path(html).resolve().as_uri()
    driver.get_log("browser")  # drain entries of earlier pages
    driver.get(url)
    state: list[int] | None = None

    def drawn(d: WebDriver) -> bool:
        nonlocal state
        state = d.execute_script(_CHART_STATE_JS, CHART_SELECTOR)
        return state is not None and state[0] == state[1]

    try:
        WebDriverWait(driver, timeout_s, poll_frequency=0.05).until(drawn)
    except TimeoutException:
        console = "; ".join(e.get("message", "") for e in driver.get_log("browser")) or "none"
        got = "the page never finished loading" if state is None else f"{state[1]} of {state[0]} drew"
        raise BrowserPageError(
            f"{url}: charts not drawn after {timeout_s:g}s ({got}); console: {console}"
        ) from None
    assert state is not None
    entries = tuple(driver.get_log("browser"))
    errors = tuple(str(e.get("message", "")) for e in entries if e.get("level") == "SEVERE")
    return PageCheck(url=url, charts=state[0], drawn=state[1], console_errors=errors, console=entries)


def html_to_pdf(html: Path, pdf: Path, *, driver: WebDriver | None = None) -> Path:
    """Print `html` (after its charts drew) to an A4 landscape PDF with backgrounds, scaled so the
    page width fits; written atomically. Uses `driver` or a fresh offline one."""
    with _session(driver) as d:
        page_check(d, html)
        content_px = int(d.execute_script(_PAGE_WIDTH_JS)) or 1
        printable_px = (A4_LONG_IN - 2 * PDF_MARGIN_IN) * CSS_PX_PER_IN
        scale = max(0.1, min(1.0, int(printable_px / content_px * 100) / 100))
        margin = PDF_MARGIN_IN
        result = d.execute_cdp_cmd(
            "Page.printToPDF",
            {
                "landscape": True,
                "printBackground": True,
                "paperWidth": A4_SHORT_IN,
                "paperHeight": A4_LONG_IN,
                "marginTop": margin,
                "marginBottom": margin,
                "marginLeft": margin,
                "marginRight": margin,
                "scale": scale,
            },
        )
    data = base64.b64decode(result["data"])
    if not data.startswith(b"%PDF-"):
        raise BrowserPageError(f"{html}: Chromium did not return a PDF")
    return write_atomic(Path(pdf), data)


def chart_pngs(
    html: Path, out_dir: Path, *, driver: WebDriver | None = None, width: int = 1200, height: int = 500
) -> list[Path]:
    """Render every `.chart` div of `html` with Plotly.toImage in the page (Chromium is the offline
    image renderer, no kaleido) to out_dir/chart-N.png (N = document order); written atomically."""
    prefix = "data:image/png;base64,"
    with _session(driver) as d:
        page_check(d, html)
        d.set_script_timeout(60)
        result = d.execute_async_script(_TO_IMAGE_JS, CHART_SELECTOR, width, height)
    if not isinstance(result, dict) or "urls" not in result:
        error = result.get("error") if isinstance(result, dict) else result
        raise BrowserPageError(f"{html}: Plotly.toImage failed: {error}")
    paths = []
    for i, url in enumerate(result["urls"]):
        if not str(url).startswith(prefix):
            raise BrowserPageError(f"{html}: chart {i} did not render as a PNG data URL")
        paths.append(write_atomic(Path(out_dir) / f"chart-{i}.png", base64.b64decode(url[len(prefix) :])))
    return paths


def full_page_screenshot(html: Path, png: Path, *, driver: WebDriver | None = None) -> Path:
    """A PNG of the whole page of `html` (beyond the viewport) after its charts drew; atomic write."""
    with _session(driver) as d:
        page_check(d, html)
        size = d.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        result = d.execute_cdp_cmd(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
        )
    return write_atomic(Path(png), base64.b64decode(result["data"]))
