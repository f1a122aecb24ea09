"""A loopback stand-in for the NYC Open Data portal, for the fetch tests (standard library only).

It serves one real export two ways, as the portal does: the CSV export at
`/api/views/<id>/rows.csv` (the file's bytes) and SODA JSON records at `/resource/<id>.json`
(field names = `sanitize_column_name` of the headers, values as strings, empty values omitted,
`week_start_date` as a floating timestamp). The JSON endpoint honours `$limit` (capped at
`max_limit`), `$offset`, `$order` (fields, `:id`, ASC/DESC), `$select=count(*)` and a `$where` of
the form `field >= 'value'`; it sends `X-SODA2-Fields` like Socrata.

Faults are planned per request: `plan(*faults, then=...)` queues one fault (or None: serve
normally) per coming request, and `then` applies to every request after the queue. A fault is a
function from the normal `Reply` to the one actually sent.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
import threading
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from nyc911lib.schema import sanitize_column_name

JSON_TYPE = "application/json;charset=utf-8"
CSV_TYPE = "text/csv; charset=utf-8"
_WHERE = re.compile(r"^\s*(\w+)\s*>=\s*'([^']*)'\s*$")


@dataclass(frozen=True)
class Reply:
    """What the server sends: `length` is the Content-Length header (None: no header)."""

    status: int = 200
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    length: int | None = None
    delay_s: float = 0.0  # wait before the status line
    stall_after: int | None = None  # send this many body bytes, then wait `stall_s`
    stall_s: float = 0.0
    drop: bool = False  # close the connection without any response


Fault = Callable[[Reply], Reply]


@dataclass(frozen=True)
class Seen:
    """One request as the server received it (header names lower-cased)."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]


def reply(status: int, body: bytes, content_type: str, **headers: str) -> Reply:
    """A well-formed reply with an honest Content-Length."""
    extra = tuple((k.replace("_", "-"), v) for k, v in headers.items())
    return Reply(status, body, (("Content-Type", content_type), *extra), len(body))


def json_reply(status: int, payload: Any, fields: Sequence[str] | None = None) -> Reply:
    """JSON the way Socrata writes it: one record per line, `,` leading the next."""
    if isinstance(payload, list):
        return json_list_reply([json.dumps(r) for r in payload], fields, status)
    body = json.dumps(payload).encode()
    extra = {"X_SODA2_Fields": json.dumps(list(fields))} if fields is not None else {}
    return reply(status, body, JSON_TYPE, **extra)


def json_list_reply(records: Sequence[str], fields: Sequence[str] | None = None, status: int = 200) -> Reply:
    """A list of already serialized records."""
    body = ("[" + "\n,".join(records) + "]\n").encode()
    extra = {"X_SODA2_Fields": json.dumps(list(fields))} if fields is not None else {}
    return reply(status, body, JSON_TYPE, **extra)


# --- Faults ---------------------------------------------------------------------------------------


def status(
    code: int, body: bytes = b"", content_type: str = JSON_TYPE, retry_after: str | None = None
) -> Fault:
    """Answer with `code` instead (and `Retry-After` if given)."""
    extra = {"Retry_After": retry_after} if retry_after is not None else {}
    return lambda _normal: reply(code, body, content_type, **extra)


def replace_body(data: bytes, content_type: str | None = None) -> Fault:
    """Status 200 with another body (and content type, if given)."""

    def fault(normal: Reply) -> Reply:
        ctype = content_type or dict(normal.headers)["Content-Type"]
        return reply(200, data, ctype)

    return fault


def rewrite_body(change: Callable[[bytes], bytes]) -> Fault:
    """The normal body passed through `change` (Content-Length follows)."""

    def fault(normal: Reply) -> Reply:
        new = change(normal.body)
        return replace(normal, body=new, length=len(new))

    return fault


def slow(seconds: float) -> Fault:
    """Say nothing for `seconds` before answering."""
    return lambda normal: replace(normal, delay_s=seconds)


def stall(seconds: float) -> Fault:
    """Send half of the body, then say nothing for `seconds`."""
    return lambda normal: replace(normal, stall_after=len(normal.body) // 2, stall_s=seconds)


def drop() -> Fault:
    """Close the connection without answering."""
    return lambda normal: replace(normal, drop=True)


def mid_row_cut(data: bytes) -> int:
    """A cut position inside a row: before the 10th comma of the first line after the middle."""
    start = data.index(b"\n", len(data) // 2) + 1
    pos = start
    for _ in range(10):
        pos = data.index(b",", pos + 1)
    return pos


def cut(content_length: str) -> Fault:
    """The body cut off mid-row; Content-Length `honest` (the cut size), `absent` or `full` (a lie)."""

    def fault(normal: Reply) -> Reply:
        short = normal.body[: mid_row_cut(normal.body)]
        length = {"honest": len(short), "absent": None, "full": normal.length}[content_length]
        return replace(normal, body=short, length=length)

    return fault


def json_records(change: Callable[[Any], Any], fields: Sequence[str] | None = None) -> Fault:
    """Rewrite a JSON reply's payload (and its X-SODA2-Fields) with `change`."""

    def fault(normal: Reply) -> Reply:
        new = json_reply(normal.status, change(json.loads(normal.body)), fields)
        return new if fields is not None else replace(new, headers=new.headers[:1])

    return fault


# --- The portal -----------------------------------------------------------------------------------


def socrata_week(value: str) -> str:
    """`MM/DD/YYYY` -> Socrata's floating timestamp `YYYY-MM-DDT00:00:00.000`."""
    return dt.datetime.strptime(value, "%m/%d/%Y").strftime("%Y-%m-%dT%H:%M:%S.000")


def socrata_records(csv_path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """The export as the SODA API returns it: field names and records without empty values."""
    with csv_path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        fields = [sanitize_column_name(h) for h in next(reader)]
        records = []
        for row in reader:
            record = {f: v for f, v in zip(fields, row, strict=True) if v != ""}
            if "week_start_date" in record:
                record["week_start_date"] = socrata_week(record["week_start_date"])
            records.append(record)
    return fields, records


@dataclass
class Portal:
    """The data and the fault plan behind the server."""

    dataset_id: str
    csv_bytes: bytes
    fields: list[str]
    records: list[dict[str, str]]
    max_limit: int = 50_000
    queue: list[Fault | None] = field(default_factory=list)
    then: Fault | None = None
    seen: list[Seen] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    cache: dict[str, list[tuple[dict[str, str], str]]] = field(default_factory=dict)

    def plan(self, *faults: Fault | None, then: Fault | None = None) -> None:
        """Faults for the coming requests, one each (None = normal), then `then` for all others."""
        with self.lock:
            self.queue, self.then = list(faults), then

    def reset(self, max_limit: int = 50_000) -> None:
        """No faults, no recorded requests."""
        with self.lock:
            self.queue, self.then, self.seen, self.max_limit = [], None, [], max_limit

    def answer(self, path: str, query: Mapping[str, str], headers: Mapping[str, str]) -> Reply:
        """Record the request and return the reply to send, fault applied."""
        with self.lock:
            self.seen.append(Seen(path, dict(query), {k.lower(): v for k, v in headers.items()}))
            fault = self.queue.pop(0) if self.queue else self.then
        normal = self.route(path, query)
        return fault(normal) if fault else normal

    def route(self, path: str, query: Mapping[str, str]) -> Reply:
        if path == f"/api/views/{self.dataset_id}/rows.csv":
            return reply(200, self.csv_bytes, CSV_TYPE)
        if path == f"/resource/{self.dataset_id}.json":
            return self.soda(query)
        return json_reply(404, {"code": "not_found", "error": True, "message": f"no such path {path}"})

    def soda(self, query: Mapping[str, str]) -> Reply:
        """A SODA 2 query over the records (the subset of SoQL the fetcher uses)."""
        try:
            keep = where_filter(query.get("$where"))
        except ValueError as exc:
            return json_reply(400, {"code": "query.compiler.malformed", "error": True, "message": str(exc)})
        if query.get("$select", "").replace(" ", "").lower() == "count(*)":
            return json_reply(200, [{"count": str(sum(map(keep, self.records)))}], ["count"])
        rows = [text for record, text in self.ordered(query.get("$order", "")) if keep(record)]
        limit = min(int(query.get("$limit", "1000")), self.max_limit)
        offset = int(query.get("$offset", "0"))
        return json_list_reply(rows[offset : offset + limit], self.fields)

    def ordered(self, order: str) -> list[tuple[dict[str, str], str]]:
        """Every record with its JSON text, in `order` (cached: the data never changes)."""
        if order not in self.cache:
            keys = [part.split() for part in order.split(",") if part.strip()]
            rows = list(enumerate(self.records))
            for name, *direction in reversed(keys):
                desc = bool(direction) and direction[0].upper() == "DESC"
                if name == ":id":
                    rows.sort(key=lambda ir: ir[0], reverse=desc)
                else:
                    rows.sort(key=lambda ir, n=name: ir[1].get(n, ""), reverse=desc)
            self.cache[order] = [(record, json.dumps(record)) for _, record in rows]
        return self.cache[order]


def where_filter(clause: str | None) -> Callable[[Mapping[str, str]], bool]:
    """A row test for an empty `$where` or one of the form `field >= 'value'` (else ValueError)."""
    if not clause:
        return lambda _record: True
    match = _WHERE.match(clause)
    if not match:
        raise ValueError(f"unsupported $where: {clause}")
    name, value = match.groups()
    return lambda record: name in record and record[name] >= value


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
        self.send(self.server.portal.answer(url.path, query, dict(self.headers.items())))

    def send(self, out: Reply) -> None:
        stopping = self.server.portal.stopping
        if out.drop:
            return
        stopping.wait(out.delay_s)
        try:
            self.send_response(out.status)
            for name, value in out.headers:
                self.send_header(name, value)
            if out.length is not None:
                self.send_header("Content-Length", str(out.length))
            self.end_headers()
            split = len(out.body) if out.stall_after is None else out.stall_after
            self.wfile.write(out.body[:split])
            self.wfile.flush()
            if split < len(out.body):
                stopping.wait(out.stall_s)
                self.wfile.write(out.body[split:])
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests assert on `Portal.seen` instead."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    portal: Portal


class FixtureServer:
    """The portal on 127.0.0.1 (a free port), served from a background thread."""

    def __init__(self, csv_path: Path, dataset_id: str = "t7p9-n9dy", warm_order: str | None = None) -> None:
        """`warm_order`: an `$order` to sort by now, so no request waits for the sorting."""
        fields, records = socrata_records(csv_path)
        self.portal = Portal(dataset_id, csv_path.read_bytes(), fields, records)
        if warm_order is not None:
            self.portal.ordered(warm_order)
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.portal = self.portal
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05})

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FixtureServer:
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        """Release stalled handlers, stop serving and close the socket."""
        self.portal.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
