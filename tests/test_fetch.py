"""nyc911lib.io.fetch against a real HTTP server on 127.0.0.1 that serves the real exports of
../shared/data (the portal CSV export and the SODA JSON API) and injects faults per request.

Every fault ends either in a correct landed file or in a FetchError whose exact message is asserted,
with nothing left in the landing folder. Waits are recorded, not slept; timeouts are TIMEOUT_S (long
enough for a loopback answer on a loaded machine: 0.5 s timed out under make test's load), and a
slow or stalled answer takes 3 times as long.
"""

from __future__ import annotations

import csv
import datetime as dt
import errno
import json
import logging
import os
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from http_fixture_server import (
    JSON_TYPE,
    Fault,
    FixtureServer,
    Portal,
    cut,
    drop,
    json_records,
    mid_row_cut,
    replace_body,
    rewrite_body,
    slow,
    socrata_week,
    stall,
    status,
)

from nyc911lib.errors import ParamsError, SourceError
from nyc911lib.io.fetch import (
    FetchConfig,
    FetchError,
    api_resource_url,
    csv_export_url,
    fetch_csv_export,
    landed_name,
)
from nyc911lib.io.fetch_api import fetch_api
from nyc911lib.io.storage import read_source_header
from nyc911lib.schema import BRONZE_SOURCE_NAMES, sanitize_column_name

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
EXPORT = SHARED_DATA / "nyc911_e2e_through_2025-12-22.csv"
TIMEOUT_S = 2.0
SLOW_S = 3 * TIMEOUT_S
EXPORT_2023 = SHARED_DATA / "nyc911_e2e_through_2023-01-23.csv"
NOW = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
LANDED = "nyc911_e2e_20260102T030405Z.csv"
TOKEN_ENV = "NYC911_APP_TOKEN"
TOKEN = "-".join(["fixture", "app", "token", "Qx7"])  # assembled: the secret scan must not match it
ORDER = "week_start_date,agency,final_incident_type,:id"
HTML = b"<!DOCTYPE html>\n<html><body><h1>Down for maintenance</h1></body></html>\n"
WITHOUT_AGENCY = [n for n in BRONZE_SOURCE_NAMES if n != "agency"]


def need(path: Path) -> Path:
    if not path.is_file():
        pytest.skip(f"real export not available: {path}")
    return path


@dataclass
class Harness:
    """The loopback portal, a fetch config pointing at it, a landing folder, the recorded waits."""

    portal: Portal
    cfg: FetchConfig
    landing: Path
    sleeps: list[float] = field(default_factory=list)

    def csv(self, now: dt.datetime = NOW, **changes) -> Path:
        return fetch_csv_export(replace(self.cfg, **changes), self.landing, now, sleep=self.sleeps.append)

    def api(self, since: dt.date | None = None, now: dt.datetime = NOW, **changes) -> Path | None:
        config = replace(self.cfg, **changes)
        return fetch_api(config, self.landing, since, now, sleep=self.sleeps.append)

    @property
    def csv_url(self) -> str:
        return f"{self.cfg.base_url}/api/views/t7p9-n9dy/rows.csv?accessType=DOWNLOAD"

    @property
    def resource(self) -> str:
        return f"{self.cfg.base_url}/resource/t7p9-n9dy.json"

    @property
    def count_url(self) -> str:
        return f"{self.resource}?$select=count(*)"

    @property
    def page_url(self) -> str:
        return f"{self.resource}?$order={ORDER}&$limit={self.cfg.page_size}&$offset=0"

    def landed(self) -> list[str]:
        return sorted(p.name for p in self.landing.iterdir()) if self.landing.exists() else []


@pytest.fixture(scope="module")
def server():
    """The loopback portal for the whole module (its faults and request log are reset per test)."""
    srv = FixtureServer(need(EXPORT), warm_order=ORDER).start()
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def no_token(monkeypatch):
    """A developer's real token must not reach the test server."""
    monkeypatch.delenv(TOKEN_ENV, raising=False)


@pytest.fixture
def h(server, tmp_path) -> Harness:
    server.portal.reset()
    cfg = FetchConfig(
        base_url=server.base_url,
        timeout_s=TIMEOUT_S,
        retries=3,
        backoff_s=0.01,
        backoff_cap_s=5.0,
        page_size=5000,
    )
    return Harness(server.portal, cfg, tmp_path / "landing")


@pytest.fixture(scope="module")
def source() -> bytes:
    return need(EXPORT).read_bytes()


@pytest.fixture(scope="module")
def source_rows(source) -> list[dict[str, str]]:
    """The export's rows keyed by API field name (the csv module's reading)."""
    reader = csv.reader(source.decode("utf-8").splitlines())
    names = [sanitize_column_name(h) for h in next(reader)]
    return [dict(zip(names, row, strict=True)) for row in reader]


@pytest.fixture(scope="module")
def source_keys(source_rows) -> set[tuple[dt.date, str, str]]:
    return keys(source_rows)


@pytest.fixture(scope="module")
def source_view(source_rows) -> Counter[tuple[tuple[str, str], ...]]:
    """Every row's values as the API would send them (a multiset)."""
    return Counter(map(as_api, source_rows))


@pytest.fixture(scope="module")
def source_weeks(source_rows) -> list[dt.date]:
    return [week(r["week_start_date"]) for r in source_rows]


def read_landed(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        return header, [dict(zip(header, row, strict=True)) for row in reader]


def week(value: str) -> dt.date:
    """A week as the portal (`MM/DD/YYYY`) or the API (`YYYY-MM-DDT00:00:00.000`) writes it."""
    if "/" in value:
        return dt.datetime.strptime(value, "%m/%d/%Y").date()
    return dt.date.fromisoformat(value[:10])


def keys(rows: list[dict[str, str]]) -> set[tuple[dt.date, str, str]]:
    return {(week(r["week_start_date"]), r["agency"], r["final_incident_type"]) for r in rows}


def as_api(row: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """A row's non-empty values, the week as the API writes it (comparable across both sources)."""
    values = {k: v for k, v in row.items() if v != ""}
    if "/" in values["week_start_date"]:
        values["week_start_date"] = socrata_week(values["week_start_date"])
    return tuple(sorted(values.items()))


@dataclass(frozen=True)
class Case:
    """Faults for the coming requests (None: serve normally), one for every later request, and the
    expected outcome: the waits, the number of requests, or the message after a FetchError."""

    queued: tuple[Fault | None, ...] = ()
    then: Fault | None = None
    waits: tuple[float, ...] = ()
    requests: int = 1
    message: str = ""
    retries: int = 3


def cases(table: dict[str, Case]):
    return pytest.mark.parametrize("case", table.values(), ids=table.keys())


# --- CSV export: success ---------------------------------------------------------------------------


def test_csv_export_lands_the_portal_file_byte_for_byte(h, source):
    landed = h.csv()

    assert landed == h.landing / LANDED
    assert landed.read_bytes() == source
    assert h.landed() == [LANDED]
    assert [(s.path, s.query) for s in h.portal.seen] == [
        ("/api/views/t7p9-n9dy/rows.csv", {"accessType": "DOWNLOAD"})
    ]
    assert "x-app-token" not in h.portal.seen[0].headers
    assert h.sleeps == []


@pytest.mark.parametrize("export", [EXPORT, EXPORT_2023], ids=["through-2025", "through-2023"])
def test_csv_export_of_each_real_export(export, tmp_path):
    srv = FixtureServer(need(export)).start()
    try:
        landed = fetch_csv_export(FetchConfig(base_url=srv.base_url, timeout_s=2.0, retries=0), tmp_path, NOW)
    finally:
        srv.stop()
    assert landed.read_bytes() == export.read_bytes()


CSV_TRANSIENT = {
    "500 twice": Case((status(500), status(500)), waits=(0.01, 0.02)),
    "502 503 504": Case((status(502), status(503), status(504)), waits=(0.01, 0.02, 0.04)),
    "429 Retry-After 2": Case((status(429, retry_after="2"),), waits=(2.0,)),
    "503 Retry-After above the cap": Case((status(503, retry_after="120"),), waits=(5.0,)),
    "429 Retry-After date passed": Case(
        (status(429, retry_after="Wed, 21 Oct 2015 07:28:00 GMT"),), waits=(0.0,)
    ),
    "slow answer": Case((slow(SLOW_S),), waits=(0.01,)),
    "stall mid-body": Case((stall(SLOW_S),), waits=(0.01,)),
    "connection dropped": Case((drop(),), waits=(0.01,)),
    "cut mid-row, honest Content-Length": Case((cut("honest"),), waits=(0.01,)),
    "cut mid-row, no Content-Length": Case((cut("absent"),), waits=(0.01,)),
    "cut mid-row, full Content-Length": Case((cut("full"),), waits=(0.01,)),
}


@cases(CSV_TRANSIENT)
def test_csv_export_retries_transient_faults(h, source, case):
    h.portal.plan(*case.queued)

    landed = h.csv()

    assert landed.read_bytes() == source
    assert h.landed() == [LANDED]
    assert h.sleeps == list(case.waits)
    assert len(h.portal.seen) == len(case.queued) + 1


# --- CSV export: refusals ------------------------------------------------------------------------


def _malformed(source: bytes) -> bytes:
    """The first five rows, the second one cut after 21 of its 30 fields."""
    lines = source.split(b"\n")[:6]
    lines[2] = b",".join(lines[2].split(b",")[:21])
    return b"\n".join(lines) + b"\n"


def _without_agency_header(source: bytes) -> bytes:
    return source.replace(b"Week Start Date,Agency,", b"Week Start Date,", 1)


def _header_only(source: bytes) -> bytes:
    return source[: source.index(b"\n") + 1]


CUT_OFF = "the body is cut off mid-row (it does not end with a newline)"
CSV_FAILURES = {
    "500 every time": Case(
        then=status(500), requests=4, message=" failed after 4 attempts: HTTP 500 Internal Server Error"
    ),
    "slow every time": Case(
        then=slow(SLOW_S),
        requests=2,
        retries=1,
        message=f" failed after 2 attempts: timed out after {TIMEOUT_S:g} s",
    ),
    "stall every time": Case(
        then=stall(SLOW_S),
        requests=2,
        retries=1,
        message=f" failed after 2 attempts: timed out after {TIMEOUT_S:g} s while reading the body",
    ),
    "dropped every time": Case(
        then=drop(),
        requests=2,
        retries=1,
        message=" failed after 2 attempts: connection failed: Remote end closed connection without response",
    ),
    "cut mid-row every time, honest Content-Length": Case(
        then=cut("honest"), requests=4, message=f" failed after 4 attempts: {CUT_OFF}"
    ),
    "cut mid-row every time, no Content-Length": Case(
        then=cut("absent"), requests=4, message=f" failed after 4 attempts: {CUT_OFF}"
    ),
    "cut mid-row every time, full Content-Length": Case(
        then=cut("full"),
        requests=4,
        message=" failed after 4 attempts: the body ended after {cut} of {size} bytes (Content-Length)",
    ),
    "404": Case((status(404),), message=" failed: HTTP 404 Not Found"),
    "404 with a Socrata message": Case(
        (status(404, json.dumps({"code": "not_found", "message": "Dataset not found"}).encode()),),
        message=" failed: HTTP 404 Not Found (Dataset not found)",
    ),
    "403 with an HTML body": Case((status(403, HTML, "text/html"),), message=" failed: HTTP 403 Forbidden"),
    "HTML page with 200": Case(
        (replace_body(HTML, "text/html; charset=utf-8"),),
        message=": the response is an HTML page (Content-Type text/html), not a CSV export",
    ),
    "HTML page labelled text/csv": Case(
        (replace_body(b"  \n" + HTML),), message=": the export is an HTML/XML page, not a CSV export"
    ),
    "empty body": Case((replace_body(b""),), message=": the export is empty"),
    "header without Agency": Case(
        (rewrite_body(_without_agency_header),),
        message=f": missing required columns ['agency']; the file has {WITHOUT_AGENCY}",
    ),
    "header only": Case((rewrite_body(_header_only),), message=": the export has a header but no data rows"),
    "broken quoting": Case(
        (rewrite_body(lambda b: _header_only(b) + b'"abc,"de"f\n'),),
        message=": line 2 is not valid CSV (',' expected after '\"')",
    ),
    "not UTF-8": Case(
        (rewrite_body(lambda b: b.replace(b"Dispute", b"Disput\xe9", 1)),),
        message=": the body is not UTF-8 text",
    ),
    "a blank line at the end": Case((rewrite_body(lambda b: b + b"\n"),), message=": line 11608 is blank"),
    "a short row inside": Case(
        (rewrite_body(_malformed),), message=": line 3 has 21 fields, the header has 30"
    ),
}


@cases(CSV_FAILURES)
def test_csv_export_failures_name_the_problem_and_land_nothing(h, source, case):
    h.portal.plan(*case.queued, then=case.then)

    with pytest.raises(FetchError) as err:
        h.csv(retries=case.retries)

    assert str(err.value) == f"GET {h.csv_url}" + case.message.format(
        cut=mid_row_cut(source), size=len(source)
    )
    assert isinstance(err.value, SourceError)
    assert len(h.portal.seen) == case.requests
    assert h.sleeps == [0.01 * 2**n for n in range(case.requests - 1)]
    assert h.landed() == []


# --- Token and names -------------------------------------------------------------------------------


def test_app_token_is_a_header_only_and_never_leaks(h, monkeypatch, caplog):
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    caplog.set_level(logging.DEBUG)

    landed_csv = h.csv()
    landed_api = h.api(since=dt.date(2025, 12, 1))
    h.portal.plan(status(403, json.dumps({"message": f"app token {TOKEN} is not valid"}).encode()))
    with pytest.raises(FetchError) as err:
        h.csv()

    assert len(h.portal.seen) == 4  # csv, count, one page, csv
    assert [s.headers.get("x-app-token") for s in h.portal.seen] == [TOKEN] * 4
    assert all(TOKEN not in s.path and TOKEN not in json.dumps(s.query) for s in h.portal.seen)
    assert str(err.value) == f"GET {h.csv_url} failed: HTTP 403 Forbidden (app token *** is not valid)"
    assert TOKEN.encode() not in landed_csv.read_bytes() + landed_api.read_bytes()
    assert TOKEN not in caplog.text
    assert h.landed() == [LANDED, LANDED.replace(".csv", "_2.csv")]


def test_every_fetch_lands_a_new_file_and_never_overwrites(h, source):
    h.landing.mkdir()
    (h.landing / LANDED).write_bytes(b"landed earlier\n")

    names = [
        h.csv().name,
        h.csv().name,
        h.api(since=dt.date(2025, 12, 1)).name,
        h.csv(now=NOW + dt.timedelta(hours=1)).name,
    ]

    stem = LANDED.removesuffix(".csv")
    assert names == [f"{stem}_2.csv", f"{stem}_3.csv", f"{stem}_4.csv", "nyc911_e2e_20260102T040405Z.csv"]
    assert h.landed() == sorted([LANDED, *names])
    assert (h.landing / LANDED).read_bytes() == b"landed earlier\n"
    assert (h.landing / names[0]).read_bytes() == (h.landing / names[1]).read_bytes() == source


def test_an_unusable_landing_folder_is_a_fetch_error(h):
    h.landing.write_bytes(b"a file, not a folder")

    with pytest.raises(FetchError) as err:
        h.csv()

    problem = FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(h.landing))
    assert str(err.value) == f"cannot write to the landing folder {h.landing}: {problem}"
    assert h.portal.seen == []


@pytest.mark.parametrize(
    "now",
    [
        dt.datetime(2026, 1, 2, 3, 4, 5),
        dt.datetime(2026, 1, 1, 22, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
    ],
    ids=["naive is UTC", "converted to UTC"],
)
def test_landed_name_is_a_utc_timestamp(now):
    assert landed_name(now) == LANDED


def test_config_checks_its_values_and_builds_the_urls():
    config = FetchConfig()
    assert csv_export_url(config) == (
        "https://data.cityofnewyork.us/api/views/t7p9-n9dy/rows.csv?accessType=DOWNLOAD"
    )
    assert api_resource_url(config) == "https://data.cityofnewyork.us/resource/t7p9-n9dy.json"
    with pytest.raises(ParamsError) as err:
        FetchConfig(base_url="ftp://example.org", dataset_id="../x", page_size=0)
    assert str(err.value) == (
        "fetch config: base_url must start with http:// or https://; "
        "dataset_id must look like 'abcd-1234'; page_size must be >= 1"
    )


# --- SODA API: success -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "paging",
    [(50_000, 50_000, 1), (2_000, 50_000, 6), (5_000, 1_000, 12)],
    ids=["one page", "six pages", "server caps $limit"],
)
def test_api_lands_every_row_of_the_export(h, source_keys, source_view, paging):
    page_size, max_limit, pages = paging
    h.portal.reset(max_limit=max_limit)

    landed = h.api(page_size=page_size)

    header, rows = read_landed(landed)
    assert landed == h.landing / LANDED
    assert header == list(BRONZE_SOURCE_NAMES)
    assert read_source_header(landed) == header  # what the pipeline reads: API names pass unchanged
    assert len(rows) == source_view.total() == 11_606
    assert keys(rows) == source_keys
    assert Counter(map(as_api, rows)) == source_view
    assert h.portal.seen[0].query == {"$select": "count(*)"}
    step = min(page_size, max_limit)
    assert [s.query for s in h.portal.seen[1:]] == [
        {"$order": ORDER, "$limit": str(page_size), "$offset": str(n * step)} for n in range(pages)
    ]
    assert h.landed() == [LANDED]


@pytest.mark.parametrize(
    "since",
    [dt.date(2025, 1, 6), dt.date(2025, 1, 8), dt.date(2013, 11, 18), dt.date(2025, 12, 22)],
    ids=["a Monday", "mid-week", "the first week", "the last week"],
)
def test_api_since_returns_only_the_weeks_from_the_watermark(h, source_weeks, since):
    expected = sum(1 for w in source_weeks if w >= since)

    _, rows = read_landed(h.api(since=since))

    assert len(rows) == expected > 0
    assert min(week(r["week_start_date"]) for r in rows) >= since
    where = f"week_start_date >= '{since:%Y-%m-%d}T00:00:00'"
    assert h.portal.seen[0].query == {"$select": "count(*)", "$where": where}
    assert all(s.query["$where"] == where for s in h.portal.seen[1:])


def test_api_since_after_the_last_week_is_nothing_new(h):
    assert h.api(since=dt.date(2025, 12, 29)) is None
    assert h.landed() == []
    assert len(h.portal.seen) == 1


# --- SODA API: faults ------------------------------------------------------------------------------

# Requests: 0 = the count, then the pages (page_size 5000: three pages).
API_TRANSIENT = {
    "500 on the count": Case((status(500),), waits=(0.01,)),
    "429 Retry-After on page 2": Case((None, None, status(429, retry_after="1")), waits=(1.0,)),
    "slow page 1": Case((None, slow(SLOW_S)), waits=(0.01,)),
    "stall on page 2": Case((None, None, stall(SLOW_S)), waits=(0.01,)),
    "dropped on page 1": Case((None, drop()), waits=(0.01,)),
    "JSON cut off on page 3": Case((None, None, None, cut("honest")), waits=(0.01,)),
    "JSON cut off, full Content-Length": Case((None, cut("full")), waits=(0.01,)),
}


@cases(API_TRANSIENT)
def test_api_retries_transient_faults(h, source_keys, case):
    h.portal.plan(*case.queued)

    _, rows = read_landed(h.api())

    assert len(rows) == len(source_keys)
    assert keys(rows) == source_keys
    assert h.sleeps == list(case.waits)
    assert len(h.portal.seen) == 4 + 1


def _without_agency(payload):
    return [{k: v for k, v in record.items() if k != "agency"} for record in payload]


def _plus_five(payload):
    return [{"count": str(int(payload[0]["count"]) + 5)}]


API_FAILURES = {
    "count not a number": Case(
        (json_records(lambda _p: [{"count": "many"}]),),
        message='GET {count}: expected one count, got [{{"count": "many"}}]',
    ),
    "no rows at all": Case(
        (json_records(lambda _p: [{"count": "0"}]),), message="GET {count}: the dataset has no rows"
    ),
    "fewer rows than counted": Case(
        (json_records(_plus_five),),
        message="GET {resource}: the pages returned 11606 rows but the count query said 11611; "
        "the dataset changed during the download: try again",
    ),
    "error object with 200": Case(
        (None, json_records(lambda _p: {"error": True, "message": "query timed out"})),
        message="GET {page}: expected a JSON list of records, got a JSON object (query timed out)",
    ),
    "records not objects": Case(
        (None, replace_body(b"[1, 2]\n")), message="GET {page}: record 0 is not a JSON object"
    ),
    "records without agency": Case(
        then=json_records(_without_agency, WITHOUT_AGENCY),
        message=f"GET {{resource}}: missing required columns ['agency']; the file has {WITHOUT_AGENCY}",
    ),
    "HTML page with 200": Case(
        (None, replace_body(HTML, "text/html")),
        message="GET {page}: the response is an HTML page (Content-Type text/html), not JSON records",
    ),
    "empty body": Case(
        (None, replace_body(b"", JSON_TYPE)), message="GET {page}: the response body is empty"
    ),
    "404 on the count": Case((status(404),), message="GET {count} failed: HTTP 404 Not Found"),
    "503 every time": Case(
        (None,), then=status(503), message="GET {page} failed after 4 attempts: HTTP 503 Service Unavailable"
    ),
    "JSON cut off every time": Case(
        (None,),
        then=cut("honest"),
        message="GET {page} failed after 4 attempts: the body is not valid JSON (cut off?): {json_error}",
    ),
}


def _json_error(h: Harness) -> str:
    """The decoder's complaint about page 1 cut the way `cut` cuts it."""
    body = h.portal.soda({"$order": ORDER, "$limit": str(h.cfg.page_size), "$offset": "0"}).body
    try:
        json.loads(body[: mid_row_cut(body)])
    except json.JSONDecodeError as exc:
        return f"{exc.msg} at char {exc.pos}"
    raise AssertionError("the cut page parsed")


@cases(API_FAILURES)
def test_api_failures_name_the_problem_and_land_nothing(h, case):
    h.portal.plan(*case.queued, then=case.then)

    with pytest.raises(FetchError) as err:
        h.api()

    json_error = _json_error(h) if "{json_error}" in case.message else ""
    expected = case.message.format(
        count=h.count_url, resource=h.resource, page=h.page_url, json_error=json_error
    )
    assert str(err.value) == expected
    assert h.landed() == []
