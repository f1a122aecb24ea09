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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from nyc911lib.io.univocity import BOM, MAX_FIELDS, NL, Univocity, strict_csv, too_many_fields
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
    """Read a landed file once: hash its bytes, decode them as Spark does, split it into lines.

    A streaming variant for large files can hash incrementally, decode chunks cut right after an
    LF byte (no decoding decision crosses one; only the last chunk has an end of input) and feed
    the lines to one `LineParser` batch after batch.
    """
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
    """The bronze rows of an export, with the Spark reader's column names, order and types.

    `ingested_at` is UTC: a naive datetime is taken as UTC, an aware one converted.
    """
    names = bronze_column_names(export.header)
    fields, corrupt = LineParser(len(names)).columns(export.lines)
    n = len(export.lines)
    if ingested_at.tzinfo is not None:
        ingested_at = ingested_at.astimezone(timezone.utc)
    arrays = [
        pa.repeat(pa.scalar(export.sha256, pa.string()), n),
        pa.array(range(2, n + 2), pa.int64()),
        *fields,
        corrupt,
        *(pa.repeat(pa.scalar(value, pa.string()), n) for value in (source_file, source_kind, batch_id)),
        pa.repeat(pa.scalar(ingested_at.replace(tzinfo=timezone.utc), _TIMESTAMP), n),
    ]
    schema = pa.schema(
        [
            ("_source_sha256", pa.string()),
            ("_line_number", pa.int64()),
            *((name, pa.string()) for name in names),
            (CORRUPT, pa.string()),
            *((name, pa.string()) for name in LINEAGE_STRINGS),
            ("_ingested_at", _TIMESTAMP),
        ]
    )
    return pa.Table.from_arrays(arrays, schema=schema)


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


class LineParser:
    """Bronze fields of the data lines of one file, fed in file order, batch after batch.

    It keeps the state Spark's parser keeps from one line to the next (one parser reads all the
    lines of a whole file, as in the one Spark task that reads it), so a streaming reader can feed
    a large file's lines in batches to one LineParser.
    """

    def __init__(self, width: int) -> None:
        self.width = width
        self._univocity = Univocity()

    def columns(self, lines: Sequence[str]) -> tuple[list[pa.Array], pa.Array]:
        """The `width` field columns and the `_corrupt_record` column of the next `lines`.

        Plain lines (no quote, nothing left by an earlier line) are split at their commas in
        pyarrow; the others are parsed here in Python, in file order.
        """
        width, u = self.width, self._univocity
        base = len(u.history)
        u.history.extend(lines)
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
