"""nyc911lib.io.http: the one retry mechanism of the download and the webhook (their end-to-end
behaviour against real servers is in tests/test_fetch.py and tests/test_alerts.py)."""

from __future__ import annotations

import datetime as dt

import pytest

from nyc911lib.io.http import TransientError, retry_after_seconds, retry_delay, with_retries

NOW = dt.datetime(2026, 11, 30, 12, 0, 0, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("2", 2.0),
        (" 1.5 ", 1.5),
        ("0", 0.0),
        ("Mon, 30 Nov 2026 12:00:30 GMT", 30.0),  # an HTTP date ahead
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # passed: at once
        ("Mon, 30 Nov 2026 12:01:00", 60.0),  # no zone: UTC
        (None, None),
        ("", None),
        ("-5", None),
        ("nan", None),
        ("inf", None),
        ("soon", None),
    ],
)
def test_retry_after_is_seconds_or_an_http_date(value, seconds):
    assert retry_after_seconds(value, now=NOW) == seconds


@pytest.mark.parametrize(
    ("attempt", "backoff_s", "cap_s", "retry_after", "wait"),
    [
        (0, 1.0, 60.0, None, 1.0),
        (3, 1.0, 60.0, None, 8.0),
        (6, 1.0, 60.0, None, 60.0),
        (10_000, 1.0, 60.0, None, 60.0),  # no overflow
        (0, 0.01, 5.0, None, 0.01),
        (2, 0.01, 5.0, None, 0.04),
        (3, 1.0, 60.0, 5.0, 5.0),  # the server's wait, not the backoff
        (0, 1.0, 60.0, 600.0, 60.0),  # capped
        (4, 1.0, 60.0, 0.0, 0.0),
    ],
)
def test_retry_delay_is_exponential_or_retry_after_and_capped(attempt, backoff_s, cap_s, retry_after, wait):
    assert retry_delay(attempt, backoff_s=backoff_s, cap_s=cap_s, retry_after=retry_after) == wait


def _attempts(*outcomes):
    """An attempt function that raises or returns each outcome in turn, counting its calls."""
    calls = []

    def attempt():
        outcome = outcomes[len(calls)]
        calls.append(outcome)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    return attempt, calls


def test_transient_failures_are_repeated_with_the_waits_and_reported():
    attempt, calls = _attempts(TransientError("HTTP 503"), TransientError("HTTP 429", retry_after=7.0), "ok")
    waits, reported = [], []
    result = with_retries(
        attempt,
        retries=3,
        backoff_s=1.0,
        cap_s=60.0,
        sleep=waits.append,
        on_retry=lambda failure, n, delay: reported.append((str(failure), n, delay)),
    )
    assert (result, len(calls), waits) == ("ok", 3, [1.0, 7.0])
    assert reported == [("HTTP 503", 1, 1.0), ("HTTP 429", 2, 7.0)]


def test_the_last_transient_failure_is_raised_after_the_last_repeat():
    attempt, calls = _attempts(*(TransientError(f"HTTP 50{n}", status=500 + n) for n in range(3)))
    waits = []
    with pytest.raises(TransientError, match=r"^HTTP 502$") as err:
        with_retries(attempt, retries=2, backoff_s=0.5, cap_s=60.0, sleep=waits.append)
    assert (err.value.status, len(calls), waits) == (502, 3, [0.5, 1.0])


def test_any_other_failure_ends_at_once():
    attempt, calls = _attempts(ValueError("HTTP 404 Not Found"), "never")
    waits = []
    with pytest.raises(ValueError, match="HTTP 404 Not Found"):
        with_retries(attempt, retries=5, backoff_s=1.0, cap_s=60.0, sleep=waits.append)
    assert (len(calls), waits) == (1, [])
