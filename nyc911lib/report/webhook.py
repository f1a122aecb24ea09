"""Posting the SLA alerts to a chat webhook: the one delivery of `nyc911 alerts`.

Webhook URLs carry secrets (tokens in the query, userinfo), so they live in an environment variable
(never a file) and a log line names only ``scheme://host[:port]/path``. A delivery never raises for
network problems: transient failures (5xx, 429, connection errors, timeouts) are retried with
exponential backoff (`nyc911lib.io.http`), honouring ``Retry-After`` as seconds or an HTTP date,
capped at `MAX_WAIT_S`; the outcome is a `WebhookResult` plus, when not delivered, one warning
line on the ``nyc911`` logger.
"""

from __future__ import annotations

import base64
import http
import http.client
import json
import logging
import ssl
import time
import unicodedata
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nyc911lib.errors import ParamsError
from nyc911lib.io.http import Sleep, TransientError, retry_after_seconds, with_retries
from nyc911lib.report.alerts import plural

log = logging.getLogger("nyc911")
MAX_WAIT_S = 60.0  # cap on any wait between webhook attempts (backoff or Retry-After)
_USER_AGENT = "nyc911lib-alerts/0.1 (Python urllib)"


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
        noun = plural(attempts, "attempt")
        log.warning("webhook %s not delivered after %d %s: %s", shown, attempts, noun, failure)
        return WebhookResult(delivered=False, status=failure.status, attempts=attempts, error=str(failure))
    log.info("webhook %s delivered (HTTP %d, %d %s)", shown, status, attempts, plural(attempts, "attempt"))
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
