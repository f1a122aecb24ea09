"""SLA alerts for one week: a JSON payload, a Markdown digest, the two files and a webhook POST.

The CLI (`nyc911 alerts`) reads the latest week's rows of gold `sla_alerts` into dicts (dates as
`datetime.date`) and passes them in. `alerts_payload` and `alerts_markdown` are pure.

Agency and incident-type names come from an external CSV and are untrusted text: in Markdown every
cell is put on one line, shortened to `MAX_CELL_CHARS`, has `& < >` written as HTML entities (no
raw HTML) and the characters | \\ ` [ ] backslash-escaped (no broken table, code span or link). Emphasis
characters are left alone: at worst they change the look of a name.

Webhook URLs carry secrets (tokens in the query, userinfo), so they live in an environment variable
(never a file) and a log line names only ``scheme://host[:port]/path``. A delivery never raises for
network problems: transient failures (5xx, 429, connection errors, timeouts) are retried with
exponential backoff, honouring a numeric ``Retry-After``; the outcome is a `WebhookResult` plus, when
not delivered, one warning line on the ``nyc911`` logger.
"""

from __future__ import annotations

import base64
import datetime as dt
import http
import http.client
import json
import logging
import math
import ssl
import time
import unicodedata
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nyc911lib.errors import ParamsError
from nyc911lib.io.files import write_atomic
from nyc911lib.io.http import Sleep, TransientError, retry_after_seconds, with_retries

log = logging.getLogger("nyc911")


SCHEMA = "nyc911.sla_alerts/v1"
ALERTS_JSON = "sla_alerts.json"
ALERTS_MARKDOWN = "sla_alerts.md"
ALERT_COLUMNS = (
    "rule",
    "metric",
    "agency",
    "incident_type",
    "week_start_date",
    "observed_s",
    "threshold_s",
    "incidents_affected",
    "streak_start_week",
    "streak_weeks",
)
MAX_WAIT_S = 60.0  # cap on any wait between webhook attempts (backoff or Retry-After)
MAX_CELL_CHARS = 120  # longer Markdown cells are cut to this many characters, ending in "…"
NA = "n/a"

_USER_AGENT = "nyc911lib-alerts/0.1 (Python urllib)"
_TITLE = "NYC 911 SLA alerts"
_TABLE_HEADER = (
    "| Rule | Agency | Incident type | Observed (s) | Threshold (s) | Incidents | Breaching since |",
    "| --- | --- | --- | ---: | ---: | ---: | --- |",
)
_MD_ESCAPES = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        "\\": "\\\\",
        "|": "\\|",
        "`": "\\`",
        "[": "\\[",
        "]": "\\]",
    }
)
_LINE_BREAKING = frozenset({"Cc", "Zl", "Zp"})  # control characters, line and paragraph separators


# --- Payload --------------------------------------------------------------------------------------


def alerts_payload(
    alerts: Sequence[Mapping[str, Any]], *, week: dt.date | None, generated_at: dt.datetime, source: str
) -> dict[str, Any]:
    """The JSON-ready alert document; alerts by incidents affected (desc), agency, incident type, rule.

    Floats are kept whole; NaN and infinities become None. A naive `generated_at` is taken as UTC.
    Raises ValueError naming an alert (0-based, input order) that lacks any of `ALERT_COLUMNS`.
    """
    entries = sorted((_alert_entry(i, alert) for i, alert in enumerate(alerts)), key=_sort_key)
    return {
        "schema": SCHEMA,
        "generated_at": _utc_iso(generated_at),
        "week_start_date": _iso_date(week),
        "source": source,
        "alert_count": len(entries),
        "incidents_affected": sum(entry["incidents_affected"] or 0 for entry in entries),
        "alerts": entries,
    }


def _alert_entry(index: int, alert: Mapping[str, Any]) -> dict[str, Any]:
    """One alert as plain JSON values, with `excess_s` = observed - threshold."""
    missing = [column for column in ALERT_COLUMNS if column not in alert]
    if missing:
        raise ValueError(f"alert {index} is missing {', '.join(missing)}")
    observed, threshold = _seconds(alert["observed_s"]), _seconds(alert["threshold_s"])
    excess = _seconds(observed - threshold) if observed is not None and threshold is not None else None
    return {
        "rule": _text(alert["rule"]),
        "metric": _text(alert["metric"]),
        "agency": _text(alert["agency"]),
        "incident_type": _text(alert["incident_type"]),
        "week_start_date": _iso_date(alert["week_start_date"]),
        "observed_s": observed,
        "threshold_s": threshold,
        "excess_s": excess,
        "incidents_affected": _count(alert["incidents_affected"]),
        "streak_start_week": _iso_date(alert["streak_start_week"]),
        "streak_weeks": _count(alert["streak_weeks"]),
    }


def _sort_key(entry: Mapping[str, Any]) -> tuple[int, str, str, str, str]:
    return (
        -(entry["incidents_affected"] or 0),
        entry["agency"] or "",
        entry["incident_type"] or "",
        entry["rule"] or "",
        entry["metric"] or "",
    )


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _count(value: Any) -> int | None:
    return None if value is None else int(value)


def _seconds(value: Any) -> float | None:
    """A finite float, or None (for None, NaN and infinities)."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _iso_date(value: object) -> str | None:
    """`YYYY-MM-DD` for a date, a datetime (its date) or an ISO date string; None stays None."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        return dt.date.fromisoformat(value).isoformat()
    raise TypeError(f"expected a date, got {type(value).__name__}")


def _utc_iso(moment: dt.datetime) -> str:
    """`YYYY-MM-DDTHH:MM:SSZ` in UTC (naive = UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- Markdown -------------------------------------------------------------------------------------


def alerts_markdown(payload: Mapping[str, Any]) -> str:
    """A Markdown digest of `payload`: heading, one-line summary, a table of the alerts, provenance."""
    week = payload["week_start_date"]
    alerts = payload["alerts"]
    lines = [f"# {_TITLE} — week of {md_text(week)}" if week else f"# {_TITLE}", ""]
    lines += [_summary(week, len(alerts), payload["incidents_affected"]), ""]
    if alerts:
        lines += [*_TABLE_HEADER, *(_table_row(alert) for alert in alerts), ""]
    lines.append(f"Generated {md_text(payload['generated_at'])} from {md_text(payload['source'])}.")
    return "\n".join(lines) + "\n"


def md_text(value: object) -> str:
    """Untrusted text made safe for one Markdown table cell (one line, escaped, at most MAX_CELL_CHARS)."""
    text = NA if value is None else str(value)
    text = "".join(" " if unicodedata.category(ch) in _LINE_BREAKING else ch for ch in text)
    text = " ".join(text.split())
    if len(text) > MAX_CELL_CHARS:
        text = text[: MAX_CELL_CHARS - 1] + "…"
    return text.translate(_MD_ESCAPES)


def _summary(week: str | None, count: int, incidents: int) -> str:
    if not count:
        return f"No SLA alerts for the week of {md_text(week)}" if week else "No SLA alerts"
    return f"{count:,} SLA {_plural(count, 'alert')}, {incidents:,} {_plural(incidents, 'incident')} affected"


def _table_row(alert: Mapping[str, Any]) -> str:
    cells = (
        alert["rule"],
        alert["agency"],
        alert["incident_type"],
        _decimal(alert["observed_s"]),
        _decimal(alert["threshold_s"]),
        _integer(alert["incidents_affected"]),
        _since(alert["streak_start_week"], alert["streak_weeks"]),
    )
    return "| " + " | ".join(md_text(cell) for cell in cells) + " |"


def _decimal(value: float | None) -> str:
    return NA if value is None else f"{value:,.1f}"


def _integer(value: int | None) -> str:
    return NA if value is None else f"{value:,}"


def _since(start: str | None, weeks: int | None) -> str:
    """`2025-11-24 (4 weeks)`: the first week of the breach streak and its length."""
    if start is None:
        return NA
    return start if weeks is None else f"{start} ({weeks:,} {_plural(weeks, 'week')})"


def _plural(n: int, word: str) -> str:
    return word if n == 1 else f"{word}s"


# --- Files ----------------------------------------------------------------------------------------


def write_alert_files(payload: Mapping[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """Write `sla_alerts.json` and `sla_alerts.md` into `out_dir`, each atomically; return both paths.

    Both texts are rendered before anything is written (a payload that is not strict JSON, e.g. with
    NaN, raises ValueError and touches nothing); a failed write leaves the previous file intact.
    """
    json_text = json.dumps(payload, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    markdown = alerts_markdown(payload)
    out = Path(out_dir)
    return write_atomic(out / ALERTS_JSON, json_text), write_atomic(out / ALERTS_MARKDOWN, markdown)


# --- Webhook --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookResult:
    """How a webhook delivery ended: `status` is the last HTTP status seen (None: no HTTP answer)."""

    delivered: bool
    status: int | None
    attempts: int
    error: str | None = None


class _RefusedError(Exception):
    """An answer that repeating the request would not change (4xx but 429, a redirect, a refused
    TLS certificate)."""

    def __init__(self, problem: str, *, status: int | None = None) -> None:
        super().__init__(problem)
        self.status = status


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Do not follow redirects: urllib would turn the POST into a body-less GET (or leak to another host)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def post_webhook(
    url: str,
    payload: Mapping[str, Any],
    *,
    retries: int = 3,
    backoff_s: float = 1.0,
    timeout_s: float = 10.0,
    sleep: Sleep = time.sleep,
) -> WebhookResult:
    """POST `payload` as UTF-8 JSON to `url`; never raises for network problems.

    `retries` is the number of repeats after the first attempt. Repeated: 5xx, 429, connection errors
    and timeouts; the wait before repeat n (0-based) is ``backoff_s * 2**n`` or the server's
    ``Retry-After`` (seconds or an HTTP date), at most `MAX_WAIT_S` (`io.http.with_retries`).
    Other answers (4xx, redirects) end at once. A userinfo in the URL is sent as Basic auth.
    Raises ValueError for a URL that is not http(s) or bad settings.
    """
    target, authorization = _webhook_target(url)
    _check_settings(retries=retries, backoff_s=backoff_s, timeout_s=timeout_s)
    shown = log_safe_url(url)
    body = json.dumps(payload, ensure_ascii=False, allow_nan=False).encode("utf-8")
    headers = {"Content-Type": "application/json", "User-Agent": _USER_AGENT}
    if authorization:
        headers["Authorization"] = authorization
    request = urllib.request.Request(target, data=body, headers=headers, method="POST")
    opener = urllib.request.build_opener(_NoRedirect)
    attempts = 0

    def attempt() -> int:
        nonlocal attempts
        attempts += 1
        return _post_once(opener, request, timeout_s)

    def logged(failure: TransientError, repeat: int, delay: float) -> None:
        log.info("webhook %s: %s; retry %d of %d in %.2f s", shown, failure, repeat, retries, delay)

    try:
        status = with_retries(
            attempt, retries=retries, backoff_s=backoff_s, cap_s=MAX_WAIT_S, sleep=sleep, on_retry=logged
        )
    except (TransientError, _RefusedError) as failure:
        noun = _plural(attempts, "attempt")
        log.warning("webhook %s not delivered after %d %s: %s", shown, attempts, noun, failure)
        return WebhookResult(delivered=False, status=failure.status, attempts=attempts, error=str(failure))
    log.info("webhook %s delivered (HTTP %d, %d %s)", shown, status, attempts, _plural(attempts, "attempt"))
    return WebhookResult(delivered=True, status=status, attempts=attempts)


def log_safe_url(url: str) -> str:
    """`scheme://host[:port]/…` of `url`: no userinfo, path, query or fragment. Chat webhooks
    (Slack, Teams, Discord) carry their secret in the path, so only where it goes is logged."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    port = f":{parts.port}" if parts.port is not None else ""
    path = "/…" if parts.path not in ("", "/") else parts.path
    return f"{parts.scheme.lower()}://{host}{port}{path}"


def _webhook_target(url: str) -> tuple[str, str | None]:
    """The URL to send to (no userinfo, no fragment) and a Basic Authorization from its userinfo."""
    if any(ch.isspace() or unicodedata.category(ch) == "Cc" for ch in url):
        raise ValueError("webhook URL must not contain whitespace or control characters")
    try:
        parts = urllib.parse.urlsplit(url)
        scheme_ok = parts.scheme.lower() in ("http", "https")
        host, _ = parts.hostname, parts.port
    except ValueError:
        raise ValueError("webhook URL is not a valid URL") from None
    if not scheme_ok:
        raise ValueError("webhook URL must start with http:// or https://")
    if not host:
        raise ValueError("webhook URL has no host")
    authorization = None
    if parts.username is not None:
        user = urllib.parse.unquote(parts.username)
        password = urllib.parse.unquote(parts.password or "")
        authorization = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    netloc = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, "")), authorization


def _check_settings(*, retries: int, backoff_s: float, timeout_s: float) -> None:
    checks = {
        "retries must be >= 0": retries >= 0,
        "backoff_s must be >= 0": backoff_s >= 0,
        "timeout_s must be > 0": timeout_s > 0,
    }
    problems = [problem for problem, ok in checks.items() if not ok]
    if problems:
        raise ValueError("webhook settings: " + "; ".join(problems))


def _post_once(
    opener: urllib.request.OpenerDirector, request: urllib.request.Request, timeout_s: float
) -> int:
    """Send the request once; return the 2xx status, or raise TransientError or _RefusedError."""
    try:
        with opener.open(request, timeout=timeout_s) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        retry_after = exc.headers.get("Retry-After") if exc.headers else None
        exc.close()
        raise _status_failure(exc.code, retry_after) from None
    except urllib.error.URLError as exc:
        raise _transport_failure(exc.reason, timeout_s) from None
    except (OSError, http.client.HTTPException) as exc:
        raise _transport_failure(exc, timeout_s) from None


def _status_failure(code: int, retry_after: str | None) -> Exception:
    """A non-2xx answer: 5xx and 429 are transient (with the server's Retry-After), others not."""
    try:
        problem = f"HTTP {code} {http.HTTPStatus(code).phrase}"
    except ValueError:
        problem = f"HTTP {code}"
    if code == http.HTTPStatus.TOO_MANY_REQUESTS or code >= http.HTTPStatus.INTERNAL_SERVER_ERROR:
        return TransientError(problem, status=code, retry_after=retry_after_seconds(retry_after))
    return _RefusedError(problem, status=code)


def _transport_failure(reason: object, timeout_s: float) -> Exception:
    """A failure below HTTP, named briefly; all transient except a refused TLS certificate."""
    if isinstance(reason, TimeoutError) or "timed out" in str(reason):
        return TransientError(f"timed out after {timeout_s:g} s")
    if isinstance(reason, ssl.SSLCertVerificationError):
        return _RefusedError("TLS certificate verification failed")
    if isinstance(reason, ConnectionRefusedError):
        return TransientError("connection refused")
    if isinstance(reason, http.client.RemoteDisconnected):
        return TransientError("connection closed without a response")
    if isinstance(reason, ConnectionResetError):
        return TransientError("connection reset")
    return TransientError(f"connection failed: {reason}")


# --- Configuration --------------------------------------------------------------------------------


def webhook_url_from(value: str | None, env: Mapping[str, str]) -> str | None:
    """The webhook URL in the environment variable named `value` (params `alerts.webhook_url_env`).

    None when no variable is named or it is unset or blank. Raises ParamsError when `value` is a URL
    itself: URLs carry secrets and never live in a params file.
    """
    name = (value or "").strip()
    if not name:
        return None
    if "://" in name:
        raise ParamsError("alerts.webhook_url_env must name an environment variable, not hold the URL")
    return env.get(name, "").strip() or None
