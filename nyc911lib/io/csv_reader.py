"""Bronze rows of one landed file without Spark: the embedded engine's reader (Python + pyarrow).

## Bronze contract

A landed file is read whole; `_source_sha256` is the SHA-256 of its bytes. They are decoded as UTF-8
the way the JVM decodes them (each invalid sequence is one U+FFFD by Java's count: `ED A0 80` is one,
a sequence cut by the end of the file is one) and split into lines at LF, a CR right before the LF
dropped; the empty string after a final LF is not a line. Line 1 is the header (U+FEFF and spaces
around names removed, names by `bronze_column_names`). Every other line is one bronze row, columns:
`_source_sha256`, `_line_number` (2, 3, ...), one STRING per header name, `_corrupt_record`,
`_source_file`, `_source_kind`, `_batch_id`, `_ingested_at` (UTC).
- Fields are split at commas. A field starting with `"` is quoted: `""` in it is one `"`, commas are
  text, blanks (up to U+0020) after its closing quote are dropped, other text after it is kept with
  the quotes (`"a"b` -> `"a"b`), an unclosed quote runs to the end of the line. A `"` anywhere else
  is text (`ab"c`, ` "a"`). Nothing is trimmed: spaces, tabs and CRs stay in the fields.
- An empty field, unquoted or `""`, is NULL: a source column is never the empty string.
- A line with as many fields as the header has a NULL `_corrupt_record`. Any other line keeps its
  first fields (missing ones NULL, extra ones dropped) and its raw text in `_corrupt_record`, one
  trailing CR removed; a quoted line break so gives two malformed rows.
- A line that is empty or only spaces has itself as `_corrupt_record` (its fields as parsed: NULL,
  or the spaces as the first field).
- Kept from Spark's parser (univocity 2.9.1): a NUL in a quoted field is dropped unless the field
  holds no `""` and closes right before a comma; a U+FEFF starting the first non-empty data line is
  dropped; U+FFFF outside quotes ends the record (the next line is then read from that character
  offset; a line of only U+FFFF has a NULL record); a line of more than 20,480 fields fails the run.

`tests/test_csv_reader.py` checks these rows against Spark's reader (`transforms.bronze`: binaryFile,
`lines_of_files`, `from_csv` in PERMISSIVE mode) on the edge cases, random lines, the bad-input
corpus, the sample and the real exports. Plain lines are split in pyarrow, well-quoted lines by
Python's csv module, the rest by a port of univocity's parser that keeps its state between lines.
"""

from __future__ import annotations

import codecs
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from nyc911lib.io.univocity import BOM, MAX_FIELDS, NL, Univocity, strict_csv, too_many_fields, utf16_units
from nyc911lib.schema import bronze_column_names, parse_header_line

CORRUPT = "_corrupt_record"
LINEAGE_STRINGS = ("_source_file", "_source_kind", "_batch_id")
_TIMESTAMP = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class Export:
    """One landed file as read for bronze: content hash, header, data lines (decoded as Spark
    decodes them; line 2 of the file is `lines[0]`) and size in bytes."""

    sha256: str
    header: list[str]
    lines: list[str]
    bytes: int


def read_export(path: Path) -> Export:
    """Read a (small) landed file at once: hash its bytes, decode them as Spark does, split it into
    lines. The engine reads with `bronze_batches`, which streams; this one is for tests and tools."""
    data = Path(path).read_bytes()
    lines = split_lines(decode_utf8(data))
    return Export(
        sha256=hashlib.sha256(data).hexdigest(),
        header=parse_header_line(lines[0]) if lines else [],
        lines=lines[1:],
        bytes=len(data),
    )


def bronze_table(
    export: Export, *, source_file: str, source_kind: str, batch_id: str, ingested_at: datetime
) -> pa.Table:
    """The bronze rows of an export read at once (`read_export`), as `bronze_batches` gives them.

    `ingested_at` is UTC: a naive datetime is taken as UTC, an aware one converted.
    """
    rows = _BronzeRows(export.header, export.sha256, (source_file, source_kind, batch_id), ingested_at)
    return pa.Table.from_batches([rows.batch(export.lines)], schema=rows.schema)


def read_header(path: Path) -> list[str]:
    """The header of a landed file as `bronze_batches` reads it (its first line; [] when empty)."""
    with Path(path).open("rb") as fh:
        lines = split_lines(decode_utf8(fh.readline()))
    return parse_header_line(lines[0]) if lines else []


CHUNK_BYTES = 32 << 20  # bytes of a landed file decoded and parsed at a time by `bronze_batches`


def bronze_batches(
    path: Path,
    *,
    sha256: str,
    source_file: str,
    source_kind: str,
    batch_id: str,
    ingested_at: datetime,
    chunk_bytes: int = CHUNK_BYTES,
) -> pa.RecordBatchReader:
    """The bronze rows of a landed file as a stream of Arrow batches, about `chunk_bytes` of the
    file each, read as it is consumed: the same rows as `bronze_table(read_export(path), ...)`,
    without the file in memory (a 1.7 GB export is never read whole). `sha256` is the file's
    (from a first pass, `bronze_io.identify`), stamped on every row.

    The file is cut right after an LF byte: no UTF-8 decoding decision looks past an LF (it is no
    continuation byte), so chunk by chunk decodes as the whole file does, and one `LineParser`
    parses the lines in file order, keeping Spark's parser state from chunk to chunk.
    """
    chunks = _chunks_after_lf(Path(path), chunk_bytes)
    first = next(chunks, b"")
    lines = split_lines(decode_utf8(first))
    header = parse_header_line(lines[0]) if lines else []
    rows = _BronzeRows(header, sha256, (source_file, source_kind, batch_id), ingested_at)

    def batches() -> Iterator[pa.RecordBatch]:
        yield rows.batch(lines[1:])
        for chunk in chunks:
            yield rows.batch(split_lines(decode_utf8(chunk)))

    return pa.RecordBatchReader.from_batches(rows.schema, batches())


def _chunks_after_lf(path: Path, size: int) -> Iterator[bytes]:
    """A file's bytes in pieces of about `size`, each ending right after an LF (the last may not)."""
    with path.open("rb") as fh:
        rest = b""
        while block := fh.read(size):
            data = rest + block
            cut = data.rfind(b"\n") + 1
            if cut == 0:  # no LF yet (a line longer than `size`): read on
                rest = data
                continue
            rest = data[cut:]
            yield data[:cut]
        if rest:
            yield rest


class _BronzeRows:
    """Bronze batches of one file: its header's columns, its lineage, and the one `LineParser`
    that reads its data lines in file order (line numbers go on from batch to batch)."""

    def __init__(self, header: list[str], sha256: str, lineage: tuple[str, str, str], at: datetime) -> None:
        names = bronze_column_names(header)
        self.parser = LineParser(len(names))
        self.next_line = 2  # line 1 is the header
        self.sha256, self.lineage = sha256, lineage
        self.ingested_at = (at.astimezone(timezone.utc) if at.tzinfo else at).replace(tzinfo=timezone.utc)
        self.schema = pa.schema(
            [
                ("_source_sha256", pa.string()),
                ("_line_number", pa.int64()),
                *((name, pa.string()) for name in names),
                (CORRUPT, pa.string()),
                *((name, pa.string()) for name in LINEAGE_STRINGS),
                ("_ingested_at", _TIMESTAMP),
            ]
        )

    def batch(self, lines: Sequence[str]) -> pa.RecordBatch:
        """The bronze rows of the next `lines` of the file."""
        fields, corrupt = self.parser.columns(lines)
        n, start = len(lines), self.next_line
        self.next_line += n
        arrays = [
            pa.repeat(pa.scalar(self.sha256, pa.string()), n),
            pa.array(range(start, start + n), pa.int64()),
            *fields,
            corrupt,
            *(pa.repeat(pa.scalar(value, pa.string()), n) for value in self.lineage),
            pa.repeat(pa.scalar(self.ingested_at, _TIMESTAMP), n),
        ]
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)


# --- Decoding and lines: Spark's `cast(content as string)` and `split(.., '\r?\n')` -------------


def _java_replaced_length(data: bytes, p: int) -> int:
    """How many bytes from `p` (where Python found invalid UTF-8) the JDK's UTF-8 decoder turns
    into one U+FFFD (`new String(bytes, UTF_8)`, JDK 17), so that decoding resumes where Java's does.
    A stray continuation byte, C0, C1, F8-FF, or a two-byte lead without its second byte: 1."""
    if 0xE0 <= data[p] <= 0xEF:
        return _java_three_byte(data, p)
    if 0xF0 <= data[p] <= 0xF7:
        return _java_four_byte(data, p)
    return 1


def _continuation(b: int) -> bool:
    return b & 0xC0 == 0x80


def _java_three_byte(data: bytes, p: int) -> int:
    n, b1 = len(data), data[p]
    if p + 2 < n:
        b2, b3 = data[p + 1], data[p + 2]
        if (b1 == 0xE0 and b2 & 0xE0 == 0x80) or not _continuation(b2):
            return 1
        return 3 if _continuation(b3) else 2  # 3: an encoded surrogate, well formed but refused
    if p + 1 < n and ((b1 == 0xE0 and data[p + 1] & 0xE0 == 0x80) or not _continuation(data[p + 1])):
        return 1
    return n - p  # a truncated sequence at the end of the input: one U+FFFD


def _java_four_byte(data: bytes, p: int) -> int:
    n, b1 = len(data), data[p]
    if p + 3 < n:
        if _bad_second_of_four(b1, data[p + 1]):
            return 1
        return 3 if _continuation(data[p + 2]) else 2
    if b1 > 0xF4 or (p + 1 < n and _bad_second_of_four(b1, data[p + 1])):
        return 1
    if p + 2 < n and not _continuation(data[p + 2]):
        return 2
    return n - p  # a truncated sequence at the end of the input: one U+FFFD


def _bad_second_of_four(b1: int, b2: int) -> bool:
    return (
        b1 > 0xF4
        or (b1 == 0xF0 and not 0x90 <= b2 <= 0xBF)
        or (b1 == 0xF4 and b2 & 0xF0 != 0x80)
        or b2 & 0xC0 != 0x80
    )


def _java_replace(err: UnicodeError) -> tuple[str, int]:
    if not isinstance(err, UnicodeDecodeError):
        raise err
    return "\ufffd", err.start + _java_replaced_length(err.object, err.start)


codecs.register_error("nyc911-java-replace", _java_replace)


def decode_utf8(data: bytes) -> str:
    """Bytes as text the way Spark's `cast(binary as string)` then a string function read them
    (JDK decoder: invalid sequences -> U+FFFD, Java's count). A byte-order mark is kept."""
    return data.decode("utf-8", errors="nyc911-java-replace")


def split_lines(text: str) -> list[str]:
    """Physical lines as Spark's `split(text, '\\r?\\n')` gives them, without the empty string
    after a final line break (a CR not followed by LF stays in its line)."""
    parts = text.split("\n")
    lines = [p[:-1] if p.endswith("\r") else p for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


# --- Parsing: Spark's from_csv (univocity CsvParser, PERMISSIVE) ---------------------------------


def _utf16_length(line: str) -> int:
    return len(line) if line.isascii() else len(utf16_units(line))


def _shadow_after(shadow: list[str], lines: Sequence[str]) -> list[str]:
    """The earlier lines univocity's char buffer can still show after `lines` were read, oldest
    first: those longer (in UTF-16 units) than every line after them. The buffer is overwritten
    from position 0 by each line, so a position past the current line (after a U+FFFF) shows the
    latest longer line; any other line is hidden for good by a later one at least as long."""
    if not lines:
        return shadow
    array = pa.array(lines, pa.string())
    lengths = pc.utf8_length(array).to_numpy(zero_copy_only=False).astype(np.int64)
    for i in pc.indices_nonzero(pc.invert(pc.string_is_ascii(array))).to_pylist():
        lengths[i] = _utf16_length(lines[i])
    after = np.empty_like(lengths)  # the longest line after each
    after[-1] = -1
    after[:-1] = np.maximum.accumulate(lengths[::-1])[::-1][1:]
    longest = int(lengths.max())
    kept = [line for line in shadow if _utf16_length(line) > longest]
    return kept + [lines[i] for i in np.flatnonzero(lengths > after)]


class LineParser:
    """Bronze fields of the data lines of one file, fed in file order, batch after batch.

    It keeps the state Spark's parser keeps from one line to the next (one parser reads all the
    lines of a whole file, as in the one Spark task that reads it), so a streaming reader can feed
    a large file's lines in batches to one LineParser. Of the lines before a batch it keeps only
    those univocity's char buffer can still show (`_shadow_after`), never the whole file.
    """

    def __init__(self, width: int) -> None:
        self.width = width
        self._univocity = Univocity()
        self._shadow: list[str] = []

    def columns(self, lines: Sequence[str]) -> tuple[list[pa.Array], pa.Array]:
        """The `width` field columns and the `_corrupt_record` column of the next `lines`.

        Plain lines (no quote, nothing left by an earlier line) are split at their commas in
        pyarrow; the others are parsed here in Python, in file order.
        """
        width, u = self.width, self._univocity
        base = len(self._shadow)
        u.history = [*self._shadow, *lines]
        plain: list[int] = []
        other: dict[int, tuple[list[str | None], str | None]] = {}
        for index, line in enumerate(lines):
            if line and u.i == 0 and '"' not in line and NL not in line and (u.started or line[0] != BOM):
                u.started = True  # univocity splits such a line at its commas, whatever it holds
                plain.append(index)
            elif not line:  # univocity returns no record; bronze keeps the blank line as it is
                other[index] = [None] * width, line
            else:
                other[index] = self._parse_slow(line, base + index)
        parts = pc.split_pattern(pa.array([lines[i] for i in plain], pa.string()), ",")
        counts = pc.list_value_length(parts)
        misfit = pc.not_equal(counts, width)
        if width == 1:  # a line of spaces is well formed then, but bronze gives it a record too
            blank = pc.equal(pc.utf8_trim(pc.list_element(parts, 0), " "), "")
            misfit = pc.or_(misfit, blank)
        for k in pc.indices_nonzero(misfit).to_pylist():
            line = lines[plain[k]]
            tokens = line.split(",")
            if len(tokens) > MAX_FIELDS:
                raise too_many_fields()
            other[plain[k]] = self._malformed(tokens, line, line)
        fit = pc.invert(misfit)
        parts = parts.filter(fit)
        columns = [pc.list_element(parts, j) for j in range(width)] if len(parts) else None
        if other:
            at = sorted(other)
            rows = [other[i][0] for i in at]
            rest = [pa.array(c, pa.string()) for c in zip(*rows, strict=True)] if rows else []
            order = pc.sort_indices(pa.array([plain[k] for k in pc.indices_nonzero(fit).to_pylist()] + at))
            fitted = columns or [pa.array([], pa.string())] * width
            columns = [pc.take(pa.concat_arrays([a, b]), order) for a, b in zip(fitted, rest, strict=True)]
        null = pa.scalar(None, pa.string())
        arrays = [pc.if_else(pc.equal(c, ""), null, c) for c in columns or []]  # "" and \"\" are NULL
        if not arrays:
            arrays = [pa.array([], pa.string())] * width
        text: list[str | None] = [None] * len(lines)
        for index, (_, record) in other.items():
            text[index] = record
        self._shadow = _shadow_after(self._shadow, lines)
        u.history = []
        return arrays, pa.array(text, pa.string())

    def _parse_slow(self, line: str, position: int) -> tuple[list[str | None], str | None]:
        u = self._univocity
        if u.i == 0 and NL not in line and (u.started or line[0] != BOM):
            tokens = strict_csv(line)
            if tokens is not None:
                u.started = True
                if len(tokens) == self.width:
                    return list(tokens), None
                return self._malformed(tokens, line, line)
        tokens = u.parse_line(line, position)
        if tokens is not None and len(tokens) == self.width:
            return list(tokens), line if line.strip(" ") == "" else None
        return self._malformed(tokens, line, u.record_text())

    def _malformed(
        self, tokens: list[str] | None, line: str, text: str | None
    ) -> tuple[list[str | None], str | None]:
        """Spark's partial result for a line whose field count is not the header's: the first
        fields, NULL for missing ones, and the raw text (one trailing CR removed) as the record."""
        fields: list[str | None] = list(tokens[: self.width]) if tokens is not None else []
        fields += [None] * (self.width - len(fields))
        if line.strip(" ") == "":
            return fields, line
        if text is not None and text.endswith("\r"):
            text = text[:-1]
        return fields, text
