"""Download the live "911 End-to-End Data" (t7p9-n9dy) from NYC Open Data into a landing folder.

Two ways in: the portal's CSV export (`fetch_csv_export`, the exact file a user downloads) and the
SODA JSON API (`fetch_api`, paged, optionally only the weeks from a watermark on, written as a CSV
whose header is the API field names, which the pipeline reads like the portal headers).

A download is written to a hidden `.<name>.part` file in the landing folder and checked before it
is accepted (not empty, not an HTML page, the required columns, every row complete, the
Content-Length). Only then is it published, atomically and without ever replacing a file, as
``nyc911_e2e_<UTC yyyymmddTHHMMSSZ>.csv``. A failure raises FetchError naming the URL and the
problem and leaves nothing in the landing folder.

Transient failures (HTTP 429/500/502/503/504, connection errors, timeouts, a body that stops early)
are retried with exponential backoff, honouring ``Retry-After``; other 4xx answers and content
problems fail at once. The optional app token is read from an environment variable and sent only as
the ``X-App-Token`` header (not forwarded on redirects): never in a URL, a log line, a message or
a file.
"""

from __future__ import annotations

import csv
import datetime as dt
import http.client
import itertools
import json
import logging
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

from nyc911lib.config import FetchConfig
from nyc911lib.errors import MissingColumnsError, SourceError
from nyc911lib.io.exports import export_header
from nyc911lib.io.http import Sleep, TransientError, retry_after_seconds, with_retries
from nyc911lib.schema import bronze_column_names, check_required_columns

log = logging.getLogger("nyc911")

T = TypeVar("T")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
LANDED_PREFIX = "nyc911_e2e_"  # `nyc911 fetch` lands nyc911_e2e_<UTC stamp>.csv
# A stable order for offset paging: the natural key, then the row id as the tie-breaker.
_CHUNK = 64 * 1024
DETAIL_CHARS = 200
_URL_SAFE = "$,:*()'"
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_USER_AGENT = "nyc911lib-fetch/0.1 (Python urllib)"


class FetchError(SourceError):
    """A download failed or its content was refused; nothing was landed."""


# --- URLs and names -------------------------------------------------------------------------------


def csv_export_url(config: FetchConfig) -> str:
    """The portal's full CSV export (the headers exactly as a user's download has them)."""
    return f"{config.base_url.rstrip('/')}/api/views/{config.dataset_id}/rows.csv?accessType=DOWNLOAD"


def api_resource_url(config: FetchConfig) -> str:
    """The SODA JSON endpoint of the dataset (no query)."""
    return f"{config.base_url.rstrip('/')}/resource/{config.dataset_id}.json"


def landed_name(now: dt.datetime | None = None) -> str:
    """`nyc911_e2e_<UTC yyyymmddTHHMMSSZ>.csv` for `now` (default: the current time; naive = UTC)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    if now.tzinfo is not None:
        now = now.astimezone(dt.timezone.utc)
    return f"{LANDED_PREFIX}{now:%Y%m%dT%H%M%SZ}.csv"


def query_url(base: str, params: Mapping[str, str | int]) -> str:
    """`base?k=v&...`, percent-encoded but keeping SoQL's `$ , : * ( ) '` readable."""
    query = urllib.parse.urlencode(params, quote_via=urllib.parse.quote, safe=_URL_SAFE)
    return f"{base}?{query}"


# --- HTTP with retries ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Client:
    """One fetch's settings: the config, the token (if any) and how to wait."""

    config: FetchConfig
    token: str | None
    sleep: Sleep

    def redact(self, text: str) -> str:
        """`text` with the app token masked (for anything a server echoes back)."""
        return text.replace(self.token, "***") if self.token else text


def new_client(config: FetchConfig, sleep: Sleep) -> Client:
    token = os.environ.get(config.app_token_env, "").strip() or None
    return Client(config, token, sleep)


def open_url(client: Client, url: str) -> http.client.HTTPResponse:
    """Send one GET; transient failures raise TransientError, other HTTP errors FetchError."""
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    if client.token:
        # Unredirected: urllib does not copy it to a redirect target (which may be another host).
        request.add_unredirected_header("X-App-Token", client.token)
    try:
        return urllib.request.urlopen(request, timeout=client.config.timeout_s)
    except urllib.error.HTTPError as exc:
        try:
            raise _status_error(client, url, exc) from None
        finally:
            exc.close()
    except urllib.error.URLError as exc:
        raise _transport_error(client.config, exc.reason) from None
    except (OSError, http.client.HTTPException) as exc:
        raise _transport_error(client.config, exc) from None


def _status_error(client: Client, url: str, exc: urllib.error.HTTPError) -> Exception:
    status = f"HTTP {exc.code} {exc.reason}".strip()
    if exc.code in RETRY_STATUSES:
        return TransientError(status, retry_after=retry_after_seconds(exc.headers.get("Retry-After")))
    detail = _error_detail(client, exc)
    return FetchError(f"GET {url} failed: {status}" + (f" ({detail})" if detail else ""))


def _error_detail(client: Client, exc: urllib.error.HTTPError) -> str:
    """A short, token-free excerpt of an error body: a JSON `message`, else plain text (not HTML)."""
    try:
        raw = exc.read(4 * DETAIL_CHARS)
    except (OSError, http.client.HTTPException):
        return ""
    text = raw.decode("utf-8", errors="replace").strip()
    try:
        payload = json.loads(text)
    except ValueError:
        payload = None
    if isinstance(payload, dict) and isinstance(payload.get("message"), str):
        text = payload["message"]
    elif text.startswith("<"):
        return ""
    text = " ".join(client.redact(text).split())
    return text if len(text) <= DETAIL_CHARS else text[: DETAIL_CHARS - 3] + "..."


def _transport_error(config: FetchConfig, reason: object) -> TransientError:
    if isinstance(reason, TimeoutError) or "timed out" in str(reason):
        return TransientError(f"timed out after {config.timeout_s:g} s")
    return TransientError(f"connection failed: {reason}")


def retrying(client: Client, url: str, attempt: Callable[[], T]) -> T:
    """Run `attempt` until it succeeds, repeating it after transient failures (`io.http`)."""
    config = client.config

    def logged(failure: TransientError, repeat: int, delay: float) -> None:
        log.warning(
            "fetch: GET %s: %s; retry %d of %d in %.2f s", url, failure, repeat, config.retries, delay
        )

    try:
        return with_retries(
            attempt,
            retries=config.retries,
            backoff_s=config.backoff_s,
            cap_s=config.backoff_cap_s,
            sleep=client.sleep,
            on_retry=logged,
        )
    except TransientError as failure:
        attempts = config.retries + 1
        noun = "attempt" if attempts == 1 else "attempts"
        raise FetchError(f"GET {url} failed after {attempts} {noun}: {failure}") from None


def read_body(config: FetchConfig, response: http.client.HTTPResponse, sink: IO[bytes]) -> int:
    """Copy the body to `sink`; a stall, a lost connection or a short body raise TransientError."""
    size = 0
    while True:
        try:
            chunk = response.read(_CHUNK)
        except TimeoutError:
            raise TransientError(f"timed out after {config.timeout_s:g} s while reading the body") from None
        except (OSError, http.client.HTTPException) as exc:
            raise TransientError(
                f"connection lost while reading the body ({type(exc).__name__}: {exc})"
            ) from None
        if not chunk:
            break
        sink.write(chunk)
        size += len(chunk)
    declared = _content_length(response)
    if declared is not None and size != declared:
        raise TransientError(f"the body ended after {size} of {declared} bytes (Content-Length)")
    return size


def _content_length(response: http.client.HTTPResponse) -> int | None:
    value = response.headers.get("Content-Length")
    if response.headers.get("Transfer-Encoding", "").lower() == "chunked" or not value:
        return None
    try:
        return int(value)
    except ValueError:
        return None


# --- Validation -----------------------------------------------------------------------------------


def check_csv(path: Path, source: str) -> int:
    """Check a downloaded export; return its data row count.

    Refuses (FetchError) what `exports.export_header` refuses (an empty body, an HTML page, a
    header without rows), missing required columns and a row whose field count differs from the
    header's; a body that does not end with a newline was cut off mid-row (TransientError).
    """
    try:
        export_header(path, f"{source}: the export")
    except SourceError as exc:
        raise FetchError(str(exc)) from None
    with path.open("rb") as fh:
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) != b"\n":
            raise TransientError("the body is cut off mid-row (it does not end with a newline)")
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            return _check_rows(csv.reader(fh, strict=True), source)
    except UnicodeDecodeError:
        raise FetchError(f"{source}: the body is not UTF-8 text") from None


def _check_rows(reader: Any, source: str) -> int:
    """Required columns in the header, then every row with the header's field count."""
    try:
        header = [h.strip() for h in next(reader)]
        check_columns(source, bronze_column_names(header))
        rows = 0
        for row in reader:
            if not row:
                raise FetchError(f"{source}: line {reader.line_num} is blank")
            if len(row) != len(header):
                raise FetchError(
                    f"{source}: line {reader.line_num} has {len(row)} fields, the header has {len(header)}"
                )
            rows += 1
    except csv.Error as exc:
        raise FetchError(f"{source}: line {reader.line_num} is not valid CSV ({exc})") from None
    if rows == 0:
        raise FetchError(f"{source}: the export has a header but no data rows")
    return rows


def check_columns(source: str, names: Sequence[str]) -> None:
    try:
        check_required_columns(source, names)
    except MissingColumnsError as exc:
        raise FetchError(str(exc)) from None


# --- Landing --------------------------------------------------------------------------------------


@contextmanager
def part_file(landing: Path, name: str) -> Iterator[Path]:
    """A fresh hidden `.<name>.part` in `landing`, removed on the way out whatever happens.

    A file-system error (folder not writable, disk full) becomes a FetchError.
    """
    try:
        landing.mkdir(parents=True, exist_ok=True)
        part = _reserve_part(landing, name)
    except OSError as exc:
        raise FetchError(f"cannot write to the landing folder {landing}: {exc}") from None
    try:
        yield part
    except OSError as exc:
        raise FetchError(f"cannot write to the landing folder {landing}: {exc}") from None
    finally:
        part.unlink(missing_ok=True)


def _reserve_part(landing: Path, name: str) -> Path:
    for n in itertools.count(1):
        part = landing / (f".{name}.part" if n == 1 else f".{name}.{n}.part")
        try:
            with part.open("xb"):
                return part
        except FileExistsError:
            continue
    raise AssertionError("unreachable")


def land_part(part: Path, landing: Path, name: str) -> Path:
    """Publish `part` as `name` (or `<stem>_2.csv`, `_3`, ... if taken): atomic, never overwriting."""
    stem = name.removesuffix(".csv")
    for n in itertools.count(1):
        target = landing / (name if n == 1 else f"{stem}_{n}.csv")
        if _publish(part, target):
            return target
    raise AssertionError("unreachable")


def _publish(part: Path, target: Path) -> bool:
    """Hard-link then unlink (fails if `target` exists); where links are unsupported, os.replace."""
    try:
        os.link(part, target)
    except FileExistsError:
        return False
    except OSError:
        if target.exists():
            return False
        os.replace(part, target)
        return True
    part.unlink()
    return True


# --- The CSV export -------------------------------------------------------------------------------


def fetch_csv_export(
    config: FetchConfig,
    landing_dir: str | Path,
    now: dt.datetime | None = None,
    *,
    sleep: Sleep = time.sleep,
) -> Path:
    """Download the portal's CSV export into `landing_dir`; return the landed file.

    The file is byte-for-byte what the portal sent, accepted only after `check_csv`.
    Raises FetchError (and lands nothing) when the download fails or is refused.
    """
    client = new_client(config, sleep)
    url = csv_export_url(config)
    landing, name = Path(landing_dir), landed_name(now)
    log.info("fetch: GET %s", url)
    with part_file(landing, name) as part:
        rows = retrying(client, url, lambda: _download_export(client, url, part))
        landed = land_part(part, landing, name)
    log.info("fetch: landed %s (%d rows, %d bytes)", landed, rows, landed.stat().st_size)
    return landed


def _download_export(client: Client, url: str, part: Path) -> int:
    """One attempt: stream the body into `part` (truncated first) and check it."""
    with open_url(client, url) as response:
        content_type = response.headers.get_content_type()
        if content_type in HTML_TYPES:
            raise FetchError(
                f"GET {url}: the response is an HTML page (Content-Type {content_type}), not a CSV export"
            )
        with part.open("wb") as sink:
            read_body(client.config, response, sink)
            sink.flush()
            os.fsync(sink.fileno())
    return check_csv(part, f"GET {url}")
