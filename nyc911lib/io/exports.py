"""What makes a file a CSV export, checked in one place for every way a file arrives: a source
given to `nyc911 run` or landed by hand (`storage.read_source_header`) and a download
(`fetch`, which then checks every row too)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from nyc911lib.errors import SourceError

HEAD_BYTES = 64 * 1024  # how much of a file its header check reads


def export_header(path: Path, subject: str) -> list[str]:
    """The header of the CSV export at `path` (names stripped), after the checks every reader
    makes: not empty, not an HTML/XML page (a portal's error page saved as the export), a header
    followed by at least one data row. Raises SourceError `<subject> <problem>`, e.g.
    `source file /x.csv is empty`."""
    with path.open("rb") as fh:
        head = fh.read(HEAD_BYTES)
    text = head.decode("utf-8-sig", errors="replace")
    if not text.strip():
        raise SourceError(f"{subject} is empty")
    if text.lstrip().startswith("<"):
        raise SourceError(f"{subject} is an HTML/XML page, not a CSV export")
    lines = text.splitlines()
    header = next(csv.reader(io.StringIO(lines[0])), [])  # a blank first line: no columns
    if not any(line.strip() for line in lines[1:]):
        raise SourceError(f"{subject} has a header but no data rows")
    return [h.strip() for h in header]
