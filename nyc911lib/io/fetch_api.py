"""The SODA JSON API way in (`fetch_api`): paged, optionally only the weeks from a watermark on,
written as a CSV whose header is the API field names (which the pipeline reads like the portal
headers), then checked and landed as the CSV export is (`nyc911lib.io.fetch`)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nyc911lib.config import FetchConfig
from nyc911lib.io.fetch import (
    DETAIL_CHARS,
    HTML_TYPES,
    Client,
    FetchError,
    api_resource_url,
    check_columns,
    check_csv,
    land_part,
    landed_name,
    log,
    new_client,
    open_url,
    part_file,
    query_url,
    read_body,
    retrying,
)
from nyc911lib.io.http import Sleep, TransientError
from nyc911lib.schema import BRONZE_SOURCE_NAMES

API_ORDER = "week_start_date,agency,final_incident_type,:id"
Record = dict[str, Any]


def _since_params(since: dt.date | None) -> dict[str, str]:
    """The `$where` watermark for weeks starting on or after `since` (none without it)."""
    if since is None:
        return {}
    return {"$where": f"week_start_date >= '{since:%Y-%m-%d}T00:00:00'"}


# --- The SODA JSON API ----------------------------------------------------------------------------


def fetch_api(
    config: FetchConfig,
    landing_dir: str | Path,
    since: dt.date | None = None,
    now: dt.datetime | None = None,
    *,
    sleep: Sleep = time.sleep,
) -> Path | None:
    """Download the dataset through the SODA API (weeks >= `since` only, if given) as a landed CSV.

    Pages with `$limit`/`$offset` in `API_ORDER`; the header is the API field names (dataset
    columns first, in the portal's order). With `since`, no matching rows is "nothing new": returns
    None and lands nothing. Raises FetchError (and lands nothing) otherwise.
    """
    client = new_client(config, sleep)
    resource = api_resource_url(config)
    where = _since_params(since)
    expected = _api_count(client, resource, where)
    if expected == 0:
        if since is not None:
            log.info("fetch: no rows with week_start_date >= %s; nothing landed", since)
            return None
        raise FetchError(f"GET {query_url(resource, _count_params(where))}: the dataset has no rows")
    fields, records = _api_records(client, resource, where, expected)
    header = _api_header(fields, records)
    check_columns(f"GET {resource}", header)
    landing, name = Path(landing_dir), landed_name(now)
    with part_file(landing, name) as part:
        _write_records(part, header, records)
        try:
            rows = check_csv(part, f"GET {resource}")
        except TransientError as exc:  # cannot happen for a file written here; keep the contract anyway
            raise FetchError(f"GET {resource}: {exc}") from None
        landed = land_part(part, landing, name)
    log.info("fetch: landed %s (%d rows from the API)", landed, rows)
    return landed


def _count_params(where: Mapping[str, str]) -> dict[str, str]:
    return {"$select": "count(*)", **where}


def _api_count(client: Client, resource: str, where: Mapping[str, str]) -> int:
    """The number of matching rows (`$select=count(*)`), to check the paging against."""
    url = query_url(resource, _count_params(where))
    log.info("fetch: GET %s", url)
    page, _ = retrying(client, url, lambda: _get_json_page(client, url))
    values = list(page[0].values()) if len(page) == 1 else []
    try:
        if len(values) != 1:
            raise ValueError
        return int(str(values[0]))
    except ValueError:
        raise FetchError(
            f"GET {url}: expected one count, got {client.redact(json.dumps(page))[:100]}"
        ) from None


def _api_records(
    client: Client, resource: str, where: Mapping[str, str], expected: int
) -> tuple[list[str], list[Record]]:
    """All matching records, page by page; the result must have exactly `expected` rows."""
    fields: list[str] = []
    records: list[Record] = []
    while len(records) < expected:
        params = {**where, "$order": API_ORDER, "$limit": client.config.page_size, "$offset": len(records)}
        url = query_url(resource, params)
        log.info("fetch: GET %s", url)
        page, page_fields = retrying(client, url, lambda url=url: _get_json_page(client, url))
        if not page:
            break
        fields = fields or page_fields
        records.extend(page)
    if len(records) != expected:
        raise FetchError(
            f"GET {resource}: the pages returned {len(records)} rows but the count query said {expected}; "
            "the dataset changed during the download: try again"
        )
    return fields, records


def _get_json_page(client: Client, url: str) -> tuple[list[Record], list[str]]:
    """One attempt at one page: a JSON list of objects, and the `X-SODA2-Fields` names if sent."""
    body = io.BytesIO()
    with open_url(client, url) as response:
        content_type = response.headers.get_content_type()
        read_body(client.config, response, body)
        fields = _soda_fields(response.headers.get("X-SODA2-Fields"))
    data = body.getvalue()
    if not data.strip():
        raise FetchError(f"GET {url}: the response body is empty")
    if content_type in HTML_TYPES or data.lstrip().startswith(b"<"):
        raise FetchError(
            f"GET {url}: the response is an HTML page (Content-Type {content_type}), not JSON records"
        )
    try:
        page = json.loads(data)
    except ValueError as exc:
        where = f": {exc.msg} at char {exc.pos}" if isinstance(exc, json.JSONDecodeError) else ""
        raise TransientError(f"the body is not valid JSON (cut off?){where}") from None
    return _check_page(client, url, page), fields


def _check_page(client: Client, url: str, page: object) -> list[Record]:
    if not isinstance(page, list):
        kind = "a JSON object" if isinstance(page, dict) else f"JSON {type(page).__name__}"
        message = page.get("message") if isinstance(page, dict) else None
        detail = f" ({client.redact(message)[:DETAIL_CHARS]})" if isinstance(message, str) else ""
        raise FetchError(f"GET {url}: expected a JSON list of records, got {kind}{detail}")
    for i, record in enumerate(page):
        if not isinstance(record, dict):
            raise FetchError(f"GET {url}: record {i} is not a JSON object")
    return page


def _soda_fields(value: str | None) -> list[str]:
    """The field names Socrata lists in `X-SODA2-Fields` (a JSON array), or [] if absent/invalid."""
    try:
        fields = json.loads(value) if value else []
    except ValueError:
        return []
    return [f for f in fields if isinstance(f, str)] if isinstance(fields, list) else []


def _api_header(fields: Sequence[str], records: Sequence[Record]) -> list[str]:
    """Every field named by the API or present in a record (Socrata omits empty values), minus system
    fields (`:id`, ...): the known source columns in the portal's order, then any new ones."""
    seen = dict.fromkeys(fields)
    for record in records:
        seen.update(dict.fromkeys(record))
    names = [n for n in seen if not n.startswith(":")]
    known = [n for n in BRONZE_SOURCE_NAMES if n in seen]
    return known + [n for n in names if n not in BRONZE_SOURCE_NAMES]


def _cell(value: object) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)


def _write_records(part: Path, header: Sequence[str], records: Sequence[Record]) -> None:
    """The records as a CSV (RFC 4180 quoting, `\\n` line ends), fsynced."""
    with part.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows([_cell(record.get(name)) for name in header] for record in records)
        fh.flush()
        os.fsync(fh.fileno())
