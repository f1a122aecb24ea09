"""Repeating an HTTP request after a transient failure: the one retry mechanism of the NYC Open
Data download (`fetch`) and the alert webhook (`alerts`).

Each caller keeps its own transport (stdlib `urllib`: no client library for two requests) and
says what is transient by raising `TransientError`: a 5xx or 429 answer, a refused or dropped
connection, a timeout, a body cut short after the headers. Anything else ends the request at once.
The wait before repeat n (0-based) is ``backoff_s * 2**n``, or the server's ``Retry-After``
(seconds, or an HTTP date), never more than a cap; `sleep` is injectable for tests. (urllib3's
`Retry` would do the same only inside urllib3's own connection pool, and knows nothing of a body
cut short after the headers, which is what a dropped NYC Open Data export looks like.)
"""

from __future__ import annotations

import datetime as dt
import email.utils
import math
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
Sleep = Callable[[float], None]
OnRetry = Callable[["TransientError", int, float], None]  # failure, repeat number (1-based), wait in s


class TransientError(Exception):
    """A failed attempt that the same request may survive when repeated."""

    def __init__(self, problem: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(problem)
        self.status = status
        self.retry_after = retry_after


def retry_after_seconds(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header: delta-seconds (finite, not negative) or an
    HTTP date (0 once passed); None when absent or not valid, so the backoff applies."""
    text = (value or "").strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.timezone.utc)
        return max(0.0, (when - (now or dt.datetime.now(dt.timezone.utc))).total_seconds())
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def retry_delay(attempt: int, *, backoff_s: float, cap_s: float, retry_after: float | None = None) -> float:
    """The wait before repeating attempt `attempt` (0-based): Retry-After or exponential, capped."""
    wait = retry_after if retry_after is not None else backoff_s * 2.0 ** min(attempt, 60)
    return min(wait, cap_s)


def with_retries(
    attempt: Callable[[], T],
    *,
    retries: int,
    backoff_s: float,
    cap_s: float,
    sleep: Sleep,
    on_retry: OnRetry | None = None,
) -> T:
    """`attempt()`, repeated after each `TransientError` it raises, at most `retries` more times;
    the last `TransientError` is raised when none succeeds. Other exceptions end it at once."""
    for n in range(retries + 1):
        try:
            return attempt()
        except TransientError as failure:
            if n == retries:
                raise
            delay = retry_delay(n, backoff_s=backoff_s, cap_s=cap_s, retry_after=failure.retry_after)
            if on_retry is not None:
                on_retry(failure, n + 1, delay)
            sleep(delay)
    raise AssertionError("unreachable")  # the loop returns or raises
