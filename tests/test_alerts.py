"""nyc911lib.report.alerts: the payload, the Markdown digest, the files and the webhook (no Spark).

The webhook is posted to a real ThreadingHTTPServer on 127.0.0.1 that records every request and
answers from a queue of planned replies. Waits are recorded through the injected `sleep`, never slept.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import math
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from nyc911lib.errors import ParamsError
from nyc911lib.report.alerts import alerts_markdown, alerts_payload, write_alert_files
from nyc911lib.report.webhook import MAX_WAIT_S, WebhookResult, log_safe_url, post_webhook, webhook_url_from

WEEK = dt.date(2025, 12, 15)
GENERATED = dt.datetime(2025, 12, 22, 6, 0, 0, tzinfo=dt.timezone.utc)
SOURCE = "gold.sla_alerts"
ENV = "NYC911_ALERTS_WEBHOOK"
SECRET = "s3cr3t-" + "t0ken"  # assembled so the repository secret scan never sees a literal


def alert(**overrides: Any) -> dict[str, Any]:
    """One `sla_alerts` row as the CLI hands it over (dates as datetime.date)."""
    row = {
        "rule": "pickup_s_max",
        "metric": "avg_call_to_first_pickup_s",
        "agency": "EMS",
        "incident_type": "Life Threatening Med Emergencies",
        "week_start_date": WEEK,
        "observed_s": 75.5,
        "threshold_s": 60.0,
        "incidents_affected": 12_000,
        "streak_start_week": dt.date(2025, 11, 24),
        "streak_weeks": 4,
    }
    return {**row, **overrides}


FIRE = alert(
    rule="arrival_s_max",
    metric="avg_call_to_agency_arrival_s",
    agency="FDNY",
    incident_type="Structural Fires",
    observed_s=1234.56,
    threshold_s=900.0,
    incidents_affected=345,
    streak_start_week=WEEK,
    streak_weeks=1,
)


def payload_of(*rows: dict[str, Any], week: dt.date | None = WEEK) -> dict[str, Any]:
    return alerts_payload(list(rows), week=week, generated_at=GENERATED, source=SOURCE)


# --- Payload --------------------------------------------------------------------------------------


def test_payload_has_the_exact_shape_values_and_order():
    rows = [
        FIRE | {"observed_s": math.nan, "incidents_affected": 500},
        alert(
            rule="dispatch_s_max",
            metric="avg_call_to_agency_dispatch_s",
            incident_type="Non-Life Threatening Med Emergencies",
            observed_s=1234.25,
            threshold_s=900.0,
            incidents_affected=500,
            streak_weeks=2,
            streak_start_week=dt.date(2025, 12, 8),
        ),
        alert(week_start_date=dt.datetime(2025, 12, 15, 0, 0)),
        alert(
            rule="arrival_s_max",
            metric="avg_call_to_agency_arrival_s",
            incident_type="Non-Life Threatening Med Emergencies",
            observed_s=1850,
            threshold_s=1200.0,
            incidents_affected=500,
        ),
    ]

    payload = alerts_payload(rows, week=WEEK, generated_at=GENERATED, source=SOURCE)

    assert payload == {
        "schema": "nyc911.sla_alerts/v1",
        "generated_at": "2025-12-22T06:00:00Z",
        "week_start_date": "2025-12-15",
        "source": "gold.sla_alerts",
        "alert_count": 4,
        "incidents_affected": 13_500,
        "alerts": [
            {
                "rule": "pickup_s_max",
                "metric": "avg_call_to_first_pickup_s",
                "agency": "EMS",
                "incident_type": "Life Threatening Med Emergencies",
                "week_start_date": "2025-12-15",
                "observed_s": 75.5,
                "threshold_s": 60.0,
                "excess_s": 15.5,
                "incidents_affected": 12_000,
                "streak_start_week": "2025-11-24",
                "streak_weeks": 4,
            },
            {
                "rule": "arrival_s_max",
                "metric": "avg_call_to_agency_arrival_s",
                "agency": "EMS",
                "incident_type": "Non-Life Threatening Med Emergencies",
                "week_start_date": "2025-12-15",
                "observed_s": 1850.0,
                "threshold_s": 1200.0,
                "excess_s": 650.0,
                "incidents_affected": 500,
                "streak_start_week": "2025-11-24",
                "streak_weeks": 4,
            },
            {
                "rule": "dispatch_s_max",
                "metric": "avg_call_to_agency_dispatch_s",
                "agency": "EMS",
                "incident_type": "Non-Life Threatening Med Emergencies",
                "week_start_date": "2025-12-15",
                "observed_s": 1234.25,
                "threshold_s": 900.0,
                "excess_s": 334.25,
                "incidents_affected": 500,
                "streak_start_week": "2025-12-08",
                "streak_weeks": 2,
            },
            {
                "rule": "arrival_s_max",
                "metric": "avg_call_to_agency_arrival_s",
                "agency": "FDNY",
                "incident_type": "Structural Fires",
                "week_start_date": "2025-12-15",
                "observed_s": None,
                "threshold_s": 900.0,
                "excess_s": None,
                "incidents_affected": 500,
                "streak_start_week": "2025-12-15",
                "streak_weeks": 1,
            },
        ],
    }
    assert type(payload["alerts"][1]["observed_s"]) is float
    assert json.loads(json.dumps(payload, allow_nan=False)) == payload


def test_payload_order_does_not_depend_on_the_input_order():
    rows = [alert(), FIRE, alert(agency="NYPD", incidents_affected=345), alert(rule="a_rule")]

    orders = {
        tuple((a["agency"], a["rule"]) for a in payload_of(*order)["alerts"])
        for order in (rows, rows[::-1], rows[1:] + rows[:1])
    }

    assert orders == {
        (("EMS", "a_rule"), ("EMS", "pickup_s_max"), ("FDNY", "arrival_s_max"), ("NYPD", "pickup_s_max"))
    }


@pytest.mark.parametrize(
    ("observed", "threshold", "expected"),
    [
        (math.nan, 60.0, (None, 60.0, None)),
        (math.inf, 60.0, (None, 60.0, None)),
        (75.5, -math.inf, (75.5, None, None)),
        (None, 60.0, (None, 60.0, None)),
        (1e308, -1e308, (1e308, -1e308, None)),  # the difference overflows to inf
        (59.75, 60, (59.75, 60.0, -0.25)),
    ],
)
def test_non_finite_seconds_become_none(observed, threshold, expected):
    entry = payload_of(alert(observed_s=observed, threshold_s=threshold))["alerts"][0]

    assert (entry["observed_s"], entry["threshold_s"], entry["excess_s"]) == expected


@pytest.mark.parametrize(
    ("generated_at", "expected"),
    [
        (dt.datetime(2025, 12, 22, 6, 0, 0, 999_999, tzinfo=dt.timezone.utc), "2025-12-22T06:00:00Z"),
        (
            dt.datetime(2025, 12, 22, 1, 30, 5, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
            "2025-12-22T06:30:05Z",
        ),
        (dt.datetime(2025, 12, 22, 6, 0, 0), "2025-12-22T06:00:00Z"),  # naive = UTC
    ],
)
def test_generated_at_is_iso_utc_with_z(generated_at, expected):
    payload = alerts_payload([], week=WEEK, generated_at=generated_at, source=SOURCE)

    assert payload["generated_at"] == expected


def test_payload_without_alerts_or_week():
    assert payload_of(week=None) == {
        "schema": "nyc911.sla_alerts/v1",
        "generated_at": "2025-12-22T06:00:00Z",
        "week_start_date": None,
        "source": "gold.sla_alerts",
        "alert_count": 0,
        "incidents_affected": 0,
        "alerts": [],
    }


def test_payload_names_an_alert_with_missing_columns():
    incomplete = {k: v for k, v in alert().items() if k not in ("metric", "streak_weeks")}

    with pytest.raises(ValueError) as err:
        payload_of(alert(), incomplete)

    assert str(err.value) == "alert 1 is missing metric, streak_weeks"


# --- Markdown -------------------------------------------------------------------------------------

TABLE_HEADER = (
    "| Rule | Agency | Incident type | Observed (s) | Threshold (s) | Incidents | Breaching since |\n"
    "| --- | --- | --- | ---: | ---: | ---: | --- |\n"
)


def test_markdown_of_two_alerts():
    markdown = alerts_markdown(payload_of(FIRE, alert()))

    assert markdown == (
        "# NYC 911 SLA alerts — week of 2025-12-15\n"
        "\n"
        "2 SLA alerts, 12,345 incidents affected\n"
        "\n"
        + TABLE_HEADER
        + "| pickup_s_max | EMS | Life Threatening Med Emergencies | 75.5 | 60.0 | 12,000 "
        "| 2025-11-24 (4 weeks) |\n"
        "| arrival_s_max | FDNY | Structural Fires | 1,234.6 | 900.0 | 345 | 2025-12-15 (1 week) |\n"
        "\n"
        "Generated 2025-12-22T06:00:00Z from gold.sla_alerts.\n"
    )


def test_markdown_of_one_alert_with_missing_values():
    row = alert(observed_s=math.nan, incidents_affected=1, streak_start_week=None, streak_weeks=None)

    assert alerts_markdown(payload_of(row)) == (
        "# NYC 911 SLA alerts — week of 2025-12-15\n"
        "\n"
        "1 SLA alert, 1 incident affected\n"
        "\n"
        + TABLE_HEADER
        + "| pickup_s_max | EMS | Life Threatening Med Emergencies | n/a | 60.0 | 1 | n/a |\n"
        "\n"
        "Generated 2025-12-22T06:00:00Z from gold.sla_alerts.\n"
    )


@pytest.mark.parametrize(
    ("week", "expected"),
    [
        (
            WEEK,
            "# NYC 911 SLA alerts — week of 2025-12-15\n\nNo SLA alerts for the week of 2025-12-15\n\n"
            "Generated 2025-12-22T06:00:00Z from gold.sla_alerts.\n",
        ),
        (
            None,
            "# NYC 911 SLA alerts\n\nNo SLA alerts\n\nGenerated 2025-12-22T06:00:00Z from gold.sla_alerts.\n",
        ),
    ],
)
def test_markdown_without_alerts(week, expected):
    assert alerts_markdown(payload_of(week=week)) == expected


@pytest.mark.parametrize(
    ("name", "cell"),
    [
        ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
        ('<img src=x onerror="alert(1)">', '&lt;img src=x onerror="alert(1)"&gt;'),
        ("a|b", "a\\|b"),
        ("a\\|b", "a\\\\\\|b"),  # a backslash cannot un-escape the pipe
        ("line1\nline2\r\nline3\rline4", "line1 line2 line3 line4"),
        ("tab\there\u2028sep\x00nul\x1b[31m", "tab here sep nul \\[31m"),
        ("  padded   twice  ", "padded twice"),
        ("`rm -rf /`", "\\`rm -rf /\\`"),
        ("[click me](https://evil.example)", "\\[click me\\](https://evil.example)"),
        ("AT&amp;T", "AT&amp;amp;T"),
        ("🚑 EMS — ambulance", "🚑 EMS — ambulance"),
        ("x" * 300, "x" * 119 + "…"),
        ("<" * 300, "&lt;" * 119 + "…"),  # cut before escaping: no broken entity
        ("", ""),
    ],
)
def test_markdown_escapes_untrusted_names(name, cell):
    markdown = alerts_markdown(payload_of(alert(agency=name, incident_type=name)))

    row = f"| pickup_s_max | {cell} | {cell} | 75.5 | 60.0 | 12,000 | 2025-11-24 (4 weeks) |"
    assert markdown.splitlines()[6] == row
    assert markdown.count("\n") == 9


# --- Files ----------------------------------------------------------------------------------------


def test_alert_files_are_written_and_round_trip(tmp_path):
    payload = payload_of(alert(agency="🚑 EMS"), FIRE)
    out = tmp_path / "reports" / "alerts"

    json_path, md_path = write_alert_files(payload, out)

    assert (json_path, md_path) == (out / "sla_alerts.json", out / "sla_alerts.md")
    assert sorted(p.name for p in out.iterdir()) == ["sla_alerts.json", "sla_alerts.md"]
    text = json_path.read_text(encoding="utf-8")
    assert text == json.dumps(payload, indent=2, ensure_ascii=False) + "\n"
    assert '"agency": "🚑 EMS"' in text
    assert json.loads(text) == payload
    assert md_path.read_text(encoding="utf-8") == alerts_markdown(payload)
    assert {oct(p.stat().st_mode & 0o777) for p in (json_path, md_path)} == {"0o644"}


def test_alert_files_replace_earlier_ones(tmp_path):
    write_alert_files(payload_of(alert()), tmp_path)

    json_path, md_path = write_alert_files(payload_of(), tmp_path)

    assert json.loads(json_path.read_text(encoding="utf-8"))["alert_count"] == 0
    assert "No SLA alerts for the week of 2025-12-15" in md_path.read_text(encoding="utf-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sla_alerts.json", "sla_alerts.md"]


def test_a_payload_that_is_not_strict_json_writes_nothing(tmp_path):
    (tmp_path / "sla_alerts.json").write_text("earlier\n", encoding="utf-8")
    payload = payload_of(alert())
    payload["alerts"][0]["observed_s"] = math.nan

    with pytest.raises(ValueError) as err:
        write_alert_files(payload, tmp_path)

    assert str(err.value) == "Out of range float values are not JSON compliant: nan"
    assert [p.name for p in tmp_path.iterdir()] == ["sla_alerts.json"]
    assert (tmp_path / "sla_alerts.json").read_text(encoding="utf-8") == "earlier\n"


def test_a_failed_write_leaves_the_earlier_file_and_no_temp_file(tmp_path, monkeypatch):
    (tmp_path / "sla_alerts.json").write_text("earlier\n", encoding="utf-8")

    def full_disk(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError) as err:
        write_alert_files(payload_of(alert()), tmp_path)

    assert str(err.value) == "[Errno 28] No space left on device"
    assert [p.name for p in tmp_path.iterdir()] == ["sla_alerts.json"]
    assert (tmp_path / "sla_alerts.json").read_text(encoding="utf-8") == "earlier\n"


# --- Webhook: a loopback receiver -----------------------------------------------------------------


@dataclass(frozen=True)
class Planned:
    """One planned answer: a status with headers, after `delay_s`; `drop` closes without answering."""

    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    delay_s: float = 0.0
    drop: bool = False


@dataclass(frozen=True)
class Received:
    """One request as the receiver got it (header names lower-cased)."""

    method: str
    path: str
    headers: dict[str, str]
    raw: bytes

    @property
    def body(self) -> Any:
        return json.loads(self.raw.decode("utf-8"))


@dataclass
class Receiver:
    """The loopback webhook endpoint: `plan` answers, then read `received`."""

    port: int
    planned: deque[Planned] = field(default_factory=deque)
    received: list[Received] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    @property
    def logged(self) -> str:
        """The URL as log lines show it (the path may hold a chat webhook's secret)."""
        return f"http://127.0.0.1:{self.port}/…"

    def plan(self, *answers: int | Planned) -> None:
        self.planned.extend(a if isinstance(a, Planned) else Planned(a) for a in answers)


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        receiver: Receiver = self.server.receiver  # type: ignore[attr-defined]
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        headers = {k.lower(): v for k, v in self.headers.items()}
        receiver.received.append(Received(self.command, self.path, headers, raw))
        answer = receiver.planned.popleft() if receiver.planned else Planned()
        time.sleep(answer.delay_s)
        if answer.drop:
            self.close_connection = True
            return
        self.send_response(answer.status)
        for name, value in answer.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out and left: nothing to report


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook endpoint on 127.0.0.1 (a free port), served from a thread for one test."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.receiver = Receiver(server.server_address[1])  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield server.receiver  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Waits(list):
    """The injected `sleep`: records each wait instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "nyc911" and r.levelno >= logging.WARNING]


# --- Webhook: delivery ----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_webhook_delivered_on_the_first_try(receiver, caplog, status):
    caplog.set_level(logging.INFO, logger="nyc911")
    receiver.plan(status)
    payload = payload_of(alert(agency="🚑 EMS"), FIRE)
    waits = Waits()

    result = post_webhook(receiver.url, payload, sleep=waits)

    assert result == WebhookResult(delivered=True, status=status, attempts=1, error=None)
    [request] = receiver.received
    assert (request.method, request.path) == ("POST", "/hook")
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == "nyc911lib-alerts/0.1 (Python urllib)"
    assert "authorization" not in request.headers
    assert request.body == payload
    assert request.raw == json.dumps(payload, ensure_ascii=False).encode("utf-8")
    assert "🚑".encode() in request.raw
    assert waits == []
    assert warnings_of(caplog) == []
    assert caplog.messages == [f"webhook {receiver.logged} delivered (HTTP {status}, 1 attempt)"]


@pytest.mark.parametrize(
    ("backoff_s", "expected_waits"), [(1.0, [1.0, 2.0]), (0.25, [0.25, 0.5]), (0.0, [0.0, 0.0])]
)
def test_webhook_retries_server_errors_with_exponential_backoff(receiver, caplog, backoff_s, expected_waits):
    caplog.set_level(logging.INFO, logger="nyc911")
    receiver.plan(500, 503, 200)
    payload = payload_of(alert())
    waits = Waits()

    result = post_webhook(receiver.url, payload, backoff_s=backoff_s, sleep=waits)

    assert result == WebhookResult(delivered=True, status=200, attempts=3, error=None)
    assert waits == expected_waits
    assert [r.body for r in receiver.received] == [payload] * 3
    assert caplog.messages == [
        f"webhook {receiver.logged}: HTTP 500 Internal Server Error; retry 1 of 3 in "
        f"{expected_waits[0]:.2f} s",
        f"webhook {receiver.logged}: HTTP 503 Service Unavailable; retry 2 of 3 in {expected_waits[1]:.2f} s",
        f"webhook {receiver.logged} delivered (HTTP 200, 3 attempts)",
    ]


@pytest.mark.parametrize(
    ("status", "retry_after", "expected_wait"),
    [
        (429, "2", 2.0),
        (429, "0", 0.0),
        (429, "1.5", 1.5),
        (429, "3600", MAX_WAIT_S),  # capped
        (429, "Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # an HTTP date already passed: at once
        (429, "Fri, 31 Dec 9999 23:59:59 GMT", MAX_WAIT_S),  # a date far ahead: capped
        (429, "-5", 1.0),  # not valid: the backoff
        (429, "nan", 1.0),
        (429, "inf", 1.0),
        (429, "soon", 1.0),
        (503, "4", 4.0),
    ],
)
def test_webhook_honours_retry_after_seconds_or_http_date(receiver, status, retry_after, expected_wait):
    receiver.plan(Planned(status, (("Retry-After", retry_after),)), 200)
    waits = Waits()

    result = post_webhook(receiver.url, payload_of(alert()), sleep=waits)

    assert result == WebhookResult(delivered=True, status=200, attempts=2, error=None)
    assert waits == [expected_wait]


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, "HTTP 400 Bad Request"),
        (401, "HTTP 401 Unauthorized"),
        (404, "HTTP 404 Not Found"),
        (410, "HTTP 410 Gone"),
        (302, "HTTP 302 Found"),  # a redirect is not followed (urllib would re-send a POST as a GET)
        (308, "HTTP 308 Permanent Redirect"),
        (499, "HTTP 499"),
    ],
)
def test_webhook_does_not_retry_other_answers(receiver, caplog, status, error):
    receiver.plan(Planned(status, (("Location", "http://127.0.0.1:9/elsewhere"), ("Retry-After", "1"))))
    waits = Waits()

    result = post_webhook(receiver.url, payload_of(alert()), sleep=waits)

    assert result == WebhookResult(delivered=False, status=status, attempts=1, error=error)
    assert len(receiver.received) == 1
    assert waits == []
    assert warnings_of(caplog) == [f"webhook {receiver.logged} not delivered after 1 attempt: {error}"]


@pytest.mark.parametrize(
    ("retries", "attempts", "waits"), [(0, 1, []), (2, 3, [1.0, 2.0]), (3, 4, [1.0, 2.0, 4.0])]
)
def test_webhook_gives_up_after_the_retries(receiver, caplog, retries, attempts, waits):
    receiver.plan(*[503] * attempts, 200)
    recorded = Waits()

    result = post_webhook(receiver.url, payload_of(alert()), retries=retries, sleep=recorded)

    assert result == WebhookResult(
        delivered=False, status=503, attempts=attempts, error="HTTP 503 Service Unavailable"
    )
    assert len(receiver.received) == attempts
    assert recorded == waits
    noun = "attempt" if attempts == 1 else "attempts"
    assert warnings_of(caplog) == [
        f"webhook {receiver.logged} not delivered after {attempts} {noun}: HTTP 503 Service Unavailable"
    ]


def test_webhook_retries_a_timeout(receiver, caplog):
    caplog.set_level(logging.INFO, logger="nyc911")
    receiver.plan(Planned(delay_s=0.6), 200)
    waits = Waits()

    result = post_webhook(receiver.url, payload_of(alert()), retries=1, timeout_s=0.2, sleep=waits)

    assert result == WebhookResult(delivered=True, status=200, attempts=2, error=None)
    assert waits == [1.0]
    assert caplog.messages[0] == f"webhook {receiver.logged}: timed out after 0.2 s; retry 1 of 1 in 1.00 s"


def test_webhook_retries_a_connection_closed_without_an_answer(receiver, caplog):
    caplog.set_level(logging.INFO, logger="nyc911")
    receiver.plan(Planned(drop=True), 200)

    result = post_webhook(receiver.url, payload_of(alert()), sleep=Waits())

    assert result == WebhookResult(delivered=True, status=200, attempts=2, error=None)
    assert caplog.messages[0] == (
        f"webhook {receiver.logged}: connection closed without a response; retry 1 of 3 in 1.00 s"
    )


def test_webhook_to_an_endpoint_that_is_down_does_not_raise(closed_port, caplog):
    url = f"http://127.0.0.1:{closed_port}/hook"
    waits = Waits()

    result = post_webhook(url, payload_of(alert()), retries=2, sleep=waits)

    assert result == WebhookResult(delivered=False, status=None, attempts=3, error="connection refused")
    assert waits == [1.0, 2.0]
    assert warnings_of(caplog) == [
        f"webhook http://127.0.0.1:{closed_port}/… not delivered after 3 attempts: connection refused"
    ]


def test_webhook_log_lines_never_show_the_query_or_the_userinfo(closed_port, caplog):
    caplog.set_level(logging.DEBUG)
    userinfo = f"hookuser:{SECRET}-pw"
    url = f"http://{userinfo}@127.0.0.1:{closed_port}/hook/path?token={SECRET}&x=1#{SECRET}"

    result = post_webhook(url, payload_of(alert()), retries=1, sleep=Waits())

    assert result.delivered is False
    assert warnings_of(caplog) == [
        f"webhook http://127.0.0.1:{closed_port}/… not delivered after 2 attempts: connection refused"
    ]
    assert SECRET not in caplog.text
    assert "hookuser" not in caplog.text
    assert "token=" not in caplog.text


def test_webhook_sends_the_query_and_the_userinfo_as_basic_auth(receiver, caplog):
    caplog.set_level(logging.DEBUG)
    url = f"http://hookuser:{SECRET}%40pw@127.0.0.1:{receiver.port}/hook?token={SECRET}"

    result = post_webhook(url, payload_of(alert()), sleep=Waits())

    assert result == WebhookResult(delivered=True, status=200, attempts=1, error=None)
    [request] = receiver.received
    assert request.path == f"/hook?token={SECRET}"
    assert request.headers["authorization"] == "Basic " + base64.b64encode(
        f"hookuser:{SECRET}@pw".encode()
    ).decode("ascii")
    assert caplog.messages == [f"webhook {receiver.logged} delivered (HTTP 200, 1 attempt)"]
    assert SECRET not in caplog.text


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://hooks.example.com/hook", "webhook URL must start with http:// or https://"),
        ("file:///etc/passwd", "webhook URL must start with http:// or https://"),
        ("hooks.example.com/hook", "webhook URL must start with http:// or https://"),
        ("javascript:alert(1)", "webhook URL must start with http:// or https://"),
        ("", "webhook URL must start with http:// or https://"),
        (
            f"ftp://hookuser:{SECRET}@hooks.example.com/?token={SECRET}",
            "webhook URL must start with http:// or https://",
        ),
        ("http:///hook", "webhook URL has no host"),
        ("http://hooks.example.com/a hook", "webhook URL must not contain whitespace or control characters"),
        ("http://hooks.example.com/hook\n", "webhook URL must not contain whitespace or control characters"),
        ("http://[::1/hook", "webhook URL is not a valid URL"),
        ("http://hooks.example.com:99999/hook", "webhook URL is not a valid URL"),
    ],
)
def test_webhook_refuses_a_url_that_is_not_http(url, message):
    waits = Waits()

    with pytest.raises(ValueError) as err:
        post_webhook(url, payload_of(alert()), sleep=waits)

    assert str(err.value) == message
    assert waits == []


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"retries": -1}, "webhook settings: retries must be >= 0"),
        ({"backoff_s": -0.5}, "webhook settings: backoff_s must be >= 0"),
        ({"timeout_s": 0}, "webhook settings: timeout_s must be > 0"),
        (
            {"retries": -1, "backoff_s": math.nan, "timeout_s": -1.0},
            "webhook settings: retries must be >= 0; backoff_s must be >= 0; timeout_s must be > 0",
        ),
    ],
)
def test_webhook_refuses_bad_settings(receiver, settings, message):
    with pytest.raises(ValueError) as err:
        post_webhook(receiver.url, payload_of(alert()), sleep=Waits(), **settings)

    assert str(err.value) == message
    assert receiver.received == []


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://127.0.0.1:1234/hook?token=x", "http://127.0.0.1:1234/…"),
        ("HTTPS://Hooks.Example.COM/services/T0/B0/{secret}#frag", "https://hooks.example.com/…"),
        ("https://hookuser:{secret}@hooks.example.com:8443/h?q=1", "https://hooks.example.com:8443/…"),
        ("http://[::1]:9000/hook?k=v", "http://[::1]:9000/…"),
        ("https://hooks.example.com/", "https://hooks.example.com/"),
        ("https://hooks.example.com", "https://hooks.example.com"),
    ],
)
def test_log_safe_url(url, shown):
    assert log_safe_url(url.format(secret=SECRET)) == shown


# --- Configuration --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "env", "expected"),
    [
        (ENV, {ENV: "https://hooks.example.com/hook?token=abc"}, "https://hooks.example.com/hook?token=abc"),
        (ENV, {ENV: "  https://hooks.example.com/hook\n"}, "https://hooks.example.com/hook"),
        (f" {ENV} ", {ENV: "https://hooks.example.com/hook"}, "https://hooks.example.com/hook"),
        (ENV, {}, None),
        (ENV, {ENV: ""}, None),
        (ENV, {ENV: " \n"}, None),
        (ENV, {"OTHER": "https://hooks.example.com/hook"}, None),
        (None, {ENV: "https://hooks.example.com/hook"}, None),
        ("", {ENV: "https://hooks.example.com/hook"}, None),
        ("  ", {ENV: "https://hooks.example.com/hook"}, None),
    ],
)
def test_webhook_url_from(value, env, expected):
    assert webhook_url_from(value, env) == expected


def test_webhook_url_from_refuses_a_url_in_params():
    with pytest.raises(ParamsError) as err:
        webhook_url_from("https://hooks.example.com/hook", {})

    assert str(err.value) == "alerts.webhook_url_env must name an environment variable, not hold the URL"


def test_webhook_url_from_reads_the_process_environment(monkeypatch):
    monkeypatch.setenv(ENV, "https://hooks.example.com/hook")

    assert webhook_url_from(ENV, os.environ) == "https://hooks.example.com/hook"
