"""Benchmark inputs derived from the real export, in its exact CSV format, generated once and cached.

- `plus_one_week`: the export plus one more week: the rows of its last week again, dated 7 days
  later (the weekly publication an incremental run receives).
- `weekly_publication`: what `nyc911 fetch --api --since` lands each week for the export
  replicated `scale` times: its last four weeks restated (every third row's incident count + 1)
  and one new week (the last week's rows dated 7 days later).
- `scaled`: the export replicated `scale` times. Copy (t, j) shifts every week back by
  t x (the export's span in weeks), so dates stay Mondays and copies never overlap in time (at most
  10 time copies, back to the 1890s), and suffixes every incident type with ` #j` (j > 0), so every
  natural key (week, agency, incident type) stays unique. Agencies, counts and times are the
  real ones, so the quality rules behave as on the export (its 2 negative pickups are quarantined
  `scale` times).

Files are streamed to disk (`.part`, then renamed) and named after the source's content hash and
the generator version, so a cache hit is always the same bytes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GENERATOR_VERSION = 1
MAX_TIME_COPIES = 10
DATE_FORMAT = "%m/%d/%Y"


@dataclass(frozen=True)
class Generated:
    """A generated CSV and its number of data rows (header excluded)."""

    path: Path
    rows: int


def _sha8(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:8]


def _read_export(source: Path) -> tuple[str, list[list[str]]]:
    """The header line and every data line split as [week, agency, incident type, rest + newline].

    The export quotes nothing; a quote in the first three fields would need a CSV writer here, so
    it stops the generator instead of writing a different format.
    """
    with source.open(encoding="utf-8", newline="") as fh:
        header, *lines = fh.readlines()
    rows = [line.split(",", 3) for line in lines if line.strip()]
    for row in rows:
        if len(row) != 4 or any('"' in f for f in row[:3]):
            raise ValueError(f"{source}: unexpected line for the generator: {','.join(row)[:120]!r}")
        if not row[3].endswith("\n"):
            row[3] += "\n"
    return header if header.endswith("\n") else header + "\n", rows


def _week(text: str) -> dt.date:
    return dt.datetime.strptime(text, DATE_FORMAT).date()


def _cached(target: Path) -> Generated | None:
    meta = target.with_suffix(".json")
    if target.is_file() and meta.is_file():
        return Generated(target, int(json.loads(meta.read_text())["rows"]))
    return None


def _finish(part: Path, target: Path, rows: int) -> Generated:
    os.replace(part, target)
    target.with_suffix(".json").write_text(json.dumps({"rows": rows, "bytes": target.stat().st_size}))
    return Generated(target, rows)


def export_rows(source: Path) -> int:
    """Data rows of an export (non-empty lines after the header)."""
    with source.open("rb") as fh:
        return sum(1 for line in fh if line.strip()) - 1


def plus_one_week(source: Path, cache_dir: Path) -> Generated:
    """The export with one more week appended: its last week's rows dated 7 days later."""
    target = cache_dir / f"{source.stem}_plus1week_v{GENERATOR_VERSION}_{_sha8(source)}.csv"
    if hit := _cached(target):
        return hit
    _, rows = _read_export(source)
    last = max(_week(r[0]) for r in rows)
    new_date = (last + dt.timedelta(days=7)).strftime(DATE_FORMAT)
    new_week = [",".join([new_date, a, t, rest]) for d, a, t, rest in rows if _week(d) == last]
    cache_dir.mkdir(parents=True, exist_ok=True)
    part = target.with_name(f".{target.name}.part")
    with source.open("rb") as src, part.open("wb") as out:
        data = src.read()
        out.write(data if data.endswith(b"\n") else data + b"\n")
        out.write("".join(new_week).encode("utf-8"))
    return _finish(part, target, len(rows) + len(new_week))


def split_scale(scale: int) -> tuple[int, int]:
    """(time copies, incident-type copies) whose product is `scale`, at most MAX_TIME_COPIES in time."""
    time_copies = max(d for d in range(1, MAX_TIME_COPIES + 1) if scale % d == 0)
    return time_copies, scale // time_copies


def _write_copies(out: Any, rows: list[list[str]], scale: int, newest: list[list[str]] | None = None) -> None:
    """The export's `rows` replicated `scale` times into `out` (see the module docstring); the
    newest time copy from `newest` instead when given (the same keys, other values)."""
    weeks = {r[0] for r in rows}
    first, last = min(map(_week, weeks)), max(map(_week, weeks))
    span = dt.timedelta(weeks=(last - first).days // 7 + 1)
    types = {r[2] for r in rows}
    time_copies, type_copies = split_scale(scale)
    for t in range(time_copies):
        date_of = {w: (_week(w) - t * span).strftime(DATE_FORMAT) for w in weeks}
        copy = newest if t == 0 and newest is not None else rows
        for j in range(type_copies):
            type_of = {x: f"{x} #{j}".strip() if j else x for x in types}
            out.write("".join(f"{date_of[d]},{a},{type_of[ty]},{rest}" for d, a, ty, rest in copy))


def scaled(source: Path, scale: int, cache_dir: Path) -> Generated:
    """The export replicated `scale` times (see the module docstring), streamed to the cache."""
    if scale < 1:
        raise ValueError(f"scale must be >= 1, got {scale}")
    target = cache_dir / f"{source.stem}_x{scale}_v{GENERATOR_VERSION}_{_sha8(source)}.csv"
    if hit := _cached(target):
        return hit
    header, rows = _read_export(source)
    cache_dir.mkdir(parents=True, exist_ok=True)
    part = target.with_name(f".{target.name}.part")
    with part.open("w", encoding="utf-8", newline="", buffering=1 << 22) as out:
        out.write(header)
        _write_copies(out, rows, scale)
    return _finish(part, target, len(rows) * scale)


def _restate(rows: list[list[str]]) -> list[list[str]]:
    """The rows of a restated publication: every third row's incident count + 1, the rest as
    published."""
    out = []
    for i, (d, a, ty, rest) in enumerate(rows):
        count, _, tail = rest.partition(",")
        restated = f"{int(count) + 1},{tail}" if i % 3 == 0 and count.isdigit() else rest
        out.append([d, a, ty, restated])
    return out


def _weekly_parts(source: Path, scale: int, weeks: int) -> tuple[str, list[list[str]], set[str], str]:
    """The export's header and rows, the dates of its last `weeks - 1` weeks (restated) and the
    date of the new week (7 days after its last)."""
    header, rows = _read_export(source)
    restated = sorted({r[0] for r in rows}, key=_week)[-(weeks - 1) :]
    new_date = (_week(restated[-1]) + dt.timedelta(days=7)).strftime(DATE_FORMAT)
    return header, rows, set(restated), new_date


def weekly_publication(source: Path, scale: int, cache_dir: Path, weeks: int = 5) -> Generated:
    """The weekly publication of `scaled(source, scale)`, as `nyc911 fetch --api --since` lands
    it: its last `weeks - 1` weeks restated (every third row's incident count + 1) and one new
    week (the last week's rows dated 7 days later), in the same format."""
    target = cache_dir / f"{source.stem}_x{scale}_last{weeks}w_v{GENERATOR_VERSION}_{_sha8(source)}.csv"
    if hit := _cached(target):
        return hit
    header, rows, restated, new_date = _weekly_parts(source, scale, weeks)
    last = max(restated, key=_week)
    types = {r[2] for r in rows}
    lines: list[str] = []
    for j in range(split_scale(scale)[1]):
        type_of = {x: f"{x} #{j}".strip() if j else x for x in types}
        lines += [
            f"{d},{a},{type_of[ty]},{rest}"
            for d, a, ty, rest in _restate([r for r in rows if r[0] in restated])
        ]
        lines += [f"{new_date},{a},{type_of[ty]},{rest}" for d, a, ty, rest in rows if d == last]
    cache_dir.mkdir(parents=True, exist_ok=True)
    part = target.with_name(f".{target.name}.part")
    part.write_text(header + "".join(lines), encoding="utf-8", newline="")
    return _finish(part, target, len(lines))


def after_weekly_publication(source: Path, scale: int, cache_dir: Path, weeks: int = 5) -> Generated:
    """What silver holds once `weekly_publication` has landed on `scaled`, as one export: the
    scaled export with the restated rows in place of theirs and the new week added (the data the
    floor computes the weekly workload's gold from)."""
    target = cache_dir / f"{source.stem}_x{scale}_after{weeks}w_v{GENERATOR_VERSION}_{_sha8(source)}.csv"
    if hit := _cached(target):
        return hit
    header, rows, restated, new_date = _weekly_parts(source, scale, weeks)
    last = max(restated, key=_week)
    published = iter(_restate([r for r in rows if r[0] in restated]))
    latest = [next(published) if r[0] in restated else r for r in rows]  # time copy 0 as restated
    types, type_copies = {r[2] for r in rows}, split_scale(scale)[1]
    cache_dir.mkdir(parents=True, exist_ok=True)
    part = target.with_name(f".{target.name}.part")
    with part.open("w", encoding="utf-8", newline="", buffering=1 << 22) as out:
        out.write(header)
        _write_copies(out, rows, scale, newest=latest)
        for j in range(type_copies):
            type_of = {x: f"{x} #{j}".strip() if j else x for x in types}
            out.write("".join(f"{new_date},{a},{type_of[ty]},{rest}" for d, a, ty, rest in rows if d == last))
    new_rows = sum(1 for r in rows if r[0] == last) * type_copies
    return _finish(part, target, len(rows) * scale + new_rows)
