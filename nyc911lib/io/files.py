"""Files written whole or not at all: the one atomic write of every file the project writes beside
its Delta tables (the report and its summary, PDFs and chart PNGs, alert files, the sample, a
landed copy of an export).

The bytes go to a hidden temporary file in the target's folder (`.<name>.<random>.part`: hidden
and not `*.csv`, so bronze never sees it), which then replaces the target in one `os.replace`. A
reader sees the old file or the new one, never a part; an error or a kill leaves no target
(at worst a hidden part file, which nothing reads).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

SHARED = 0o644  # what a report or a landed file is: meant to be read by others


@contextlib.contextmanager
def atomic_file(target: str | os.PathLike[str], *, binary: bool = False, mode: int = SHARED) -> Iterator[IO]:
    """Open a hidden part file beside `target` for writing (UTF-8 text with no newline
    translation, or `binary`); when the block ends without an error it replaces `target`, with
    permissions `mode`. On an error the part file is removed and `target` is untouched."""
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, part = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            yield handle
        os.chmod(part, mode)  # mkstemp creates 0600
        os.replace(part, path)
    except BaseException:
        Path(part).unlink(missing_ok=True)
        raise


def write_atomic(target: str | os.PathLike[str], data: str | bytes, *, mode: int = SHARED) -> Path:
    """Write `data` (text as UTF-8) to `target` whole or not at all; returns the target's path."""
    with atomic_file(target, binary=isinstance(data, bytes), mode=mode) as handle:
        handle.write(data)
    return Path(target)


def copy_atomic(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> Path:
    """Copy the file `source` to `target` whole or not at all; returns the target's path."""
    with Path(source).open("rb") as src, atomic_file(target, binary=True) as sink:
        shutil.copyfileobj(src, sink, length=1 << 20)
    return Path(target)
