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

`tests/test_csv_reader.py` checks these rows against Spark's reader (`nyc911lib.bronze`: binaryFile,
`lines_of_files`, `from_csv` in PERMISSIVE mode) on the edge cases, random lines, the bad-input
corpus, the sample and the real exports. Plain lines are split in pyarrow, well-quoted lines by
Python's csv module, the rest by a port of univocity's parser that keeps its state between lines.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from nyc911lib.errors import SourceError
from nyc911lib.schema import bronze_column_names, parse_header_line

MAX_FIELDS = 20480  # Spark's `maxColumns`: a longer line fails the whole Spark job
CORRUPT = "_corrupt_record"
LINEAGE_STRINGS = ("_source_file", "_source_kind", "_batch_id")
_TIMESTAMP = pa.timestamp("us", tz="UTC")
_BOM = "\ufeff"
_NL = "\uffff"  # from_csv's line separator (SPARK-38955), univocity's normalized newline
_Q = '"'
_D = ","
_NUL = "\0"
_COMMENT = "#"  # univocity's default comment char: only checked at the end of the input


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
        self._univocity = _Univocity()

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
            if line and u.i == 0 and '"' not in line and _NL not in line and (u.started or line[0] != _BOM):
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
                raise _too_many_fields()
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
        if u.i == 0 and _NL not in line and (u.started or line[0] != _BOM):
            tokens = _strict_csv(line)
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


def _too_many_fields() -> SourceError:
    return SourceError(
        f"a line of the export has more than {MAX_FIELDS} fields, which Spark's CSV parser refuses"
    )


def _strict_csv(line: str) -> list[str] | None:
    """A quoted line's fields by Python's csv module when it accepts the line strictly (well-formed
    quoting, no NUL, CR or U+FFFF): then univocity gives the same fields. None: use the port."""
    if "\0" in line or "\r" in line or _NL in line or line[0] == _BOM:
        return None
    try:
        tokens = next(csv.reader([line], strict=True))
    except (csv.Error, StopIteration):
        return None
    if len(tokens) > MAX_FIELDS:
        raise _too_many_fields()
    return tokens


class _EndOfLineError(Exception):
    """The line's characters are all read (univocity's EOFException)."""


_NON_BMP = re.compile("[\U00010000-\U0010ffff]")


def _utf16(text: str) -> str:
    """`text` as Java holds it: a character beyond U+FFFF as its two UTF-16 surrogates."""
    return _NON_BMP.sub(_surrogates, text)


def _surrogates(match: re.Match[str]) -> str:
    code = ord(match[0]) - 0x10000
    return chr(0xD800 + (code >> 10)) + chr(0xDC00 + (code & 0x3FF))


def _from_utf16(text: str) -> str:
    """Back from Java's UTF-16: surrogate pairs joined, a lone surrogate (univocity can cut a pair)
    as `?`, which is what Java's UTF-8 encoder writes for it."""
    if not any("\ud800" <= c <= "\udfff" for c in text):
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "nyc911-lone-surrogate")


def _lone_surrogate(err: UnicodeError) -> tuple[str, int]:
    if not isinstance(err, UnicodeDecodeError):
        raise err
    return "?", err.start + 2


codecs.register_error("nyc911-lone-surrogate", _lone_surrogate)


class _Univocity:
    """univocity-parsers 2.9.1 `CsvParser.parseLine` as Spark's from_csv configures it (quote and
    escape `"`, no comments, no whitespace trimming, STOP_AT_DELIMITER, line separator U+FFFF),
    with the state it keeps between lines: its char buffer, read position and last characters.

    A port of `parseSingleDelimiterRecord`, `parseQuotedValue`, `consumeValueOnEOF`, `handleEOF`
    and the input reader's `nextChar`, `getString`, `getQuotedString`, kept close to the Java."""

    def __init__(self) -> None:
        self.started = False  # whether the reader has started (it drops a BOM when it does)
        self.history: list[str] = []  # the lines given so far (the buffer holds the non-empty ones)
        self.position = 0  # the index in `history` of the line being parsed
        self.line = ""  # the current line in UTF-16 code units: the buffer's [0, len(line))
        self.length = -1  # -1: the line is consumed (univocity's end of input)
        self.i = 0  # 0 after a line read to its end: the next line starts clean
        self.record_start = 0
        self.tmp: list[str] = []
        self.ch = _NUL
        self.prev = _NUL
        self.unescaped = False
        self.app: list[str] = []
        self.values: list[str] = []

    def _buf(self, k: int) -> str:
        if k < len(self.line):
            return self.line[k]
        for j in range(self.position - 1, -1, -1):  # only after a U+FFFF left the position past the line
            units = _utf16(self.history[j])
            if k < len(units):
                return units[k]
        return _NUL  # a fresh buffer

    def _slice(self, start: int, end: int) -> str:
        if end <= len(self.line):
            return self.line[start:end]
        return "".join(self._buf(k) for k in range(start, end))

    # -- input reader ---------------------------------------------------------------------------

    def _next(self) -> str:
        if self.length == -1:
            raise _EndOfLineError
        ch = self._buf(self.i)
        self.i += 1
        if self.i >= self.length:
            self._update_buffer()
        return ch

    def _update_buffer(self) -> None:
        if self.length - self.record_start > 0:
            self.tmp.append(self._slice(self.record_start, self.length))
        self.record_start = 0
        self.length = -1  # the line reader has no more characters
        self.i = 0

    def _mark_record_start(self) -> None:
        self.tmp = []
        self.record_start = self.i % self.length if self.length != -1 else 0

    def _content_length(self) -> int:
        return self.i - self.record_start + sum(len(t) for t in self.tmp)

    def record_text(self) -> str | None:
        """`currentParsedContent()` after the last `parse_line`: the raw text Spark puts in
        `_corrupt_record` (before removing a line end); None when there is none."""
        if not self.tmp:
            text = self._slice(self.record_start, self.i) if self.i > self.record_start else None
        else:
            if self.i > self.record_start:
                self.tmp.append(self._slice(self.record_start, self.i))
            text, self.tmp = "".join(self.tmp), []
        return None if text is None else _from_utf16(text)

    def _get_string(self, ch: str) -> str | None:
        """The fast path for an unquoted value ending at a comma in the buffer (None: not taken)."""
        if self.i == 0:
            return None
        i = self.i
        while ch != _D:
            if i >= self.length:
                return None
            if ch == _NL:
                break
            ch = self._buf(i)
            i += 1
        pos, n = self.i - 1, i - self.i
        self.i = i - 1
        out = self._slice(pos, pos + n) if n > 0 else ""
        self.ch = self._next()  # input.getChar(): the comma or separator just read
        return out

    def _get_quoted_string(self) -> str | None:
        """The fast path for a quoted value without escapes closed right before a comma."""
        if self.i == 0:
            return None
        i = self.i
        while True:
            if i >= self.length:
                return None
            c = self._buf(i)
            if c == _Q:
                if self._buf(i - 1) == _Q:
                    return None
                if i + 1 < self.length and self._buf(i + 1) in (_D, _NL):
                    break
                return None
            if c == _NL:
                return None
            i += 1
        pos, n = self.i, i - self.i
        self.i = i + 1
        out = self._slice(pos, pos + n) if n > 0 else ""
        if self.i >= self.length:
            self._update_buffer()
        return out

    def _append_until(self, ch: str, stops: tuple[str, ...]) -> str:
        while ch not in stops:
            self.app.append(ch)
            ch = self._next()
        return ch

    # -- output ---------------------------------------------------------------------------------

    def _value(self, value: str) -> None:
        if len(self.values) >= MAX_FIELDS:
            raise _too_many_fields()
        self.values.append(value)

    def _value_from_appender(self) -> None:
        value, self.app = "".join(self.app), []
        self._value(value)

    def _row(self) -> list[str] | None:
        row, self.values = self.values, []
        return row or None

    # -- parser ---------------------------------------------------------------------------------

    def parse_line(self, line: str, position: int) -> list[str] | None:
        """`CsvParser.parseLine(line)` for the non-empty line `history[position]`: its tokens
        (None: no record)."""
        self.position = position
        self.line = _utf16(line)
        self.length = len(self.line)
        if not self.started:  # the reader starts on a fresh buffer and skips a byte-order mark
            self.started, self.i, self.tmp = True, 0, []
            if line[0] == _BOM:
                self.i = 1
        try:
            while True:
                self._mark_record_start()
                self.ch = self._next()
                self._parse_record()
                row = self._row()
                if row is not None:
                    return [_from_utf16(t) for t in row]
        except _EndOfLineError:
            row = self._handle_eof()
            return None if row is None else [_from_utf16(t) for t in row]

    def _parse_record(self) -> None:
        while self.ch != _NL:
            if self.ch == _D:
                self._value("")
            else:
                self.unescaped = False
                self.prev = _NUL
                if self.ch == _Q:
                    done = self._quoted_value_fast() if not self.app else None
                    if done is not None:
                        if done:
                            return
                        continue
                    self._parse_quoted_value()
                    self._value_from_appender()
                else:
                    self._unquoted_value()
            if self.ch != _NL:
                self.ch = self._next()
                if self.ch == _NL:
                    self._value("")

    def _quoted_value_fast(self) -> bool | None:
        """`getQuotedString` taken: True when the record ends, False to go on to the next value;
        None: not taken."""
        value = self._get_quoted_string()
        if value is None:
            return None
        self._value(value)
        try:
            self.ch = self._next()
            if self.ch == _D:
                try:
                    self.ch = self._next()
                    if self.ch == _NL:
                        self._value("")
                except _EndOfLineError:
                    self._value("")
                    return True
        except _EndOfLineError:
            return True
        return False

    def _unquoted_value(self) -> None:
        value = self._get_string(self.ch) if not self.app else None
        if value is not None:
            self._value(value)
        else:
            self.ch = self._append_until(self.ch, (_D, _NL))
            self._value_from_appender()

    def _parse_quoted_value(self) -> None:
        if self.prev != _NUL:  # text after an unescaped quote: everything up to the next comma
            self.app.insert(0, _Q)
            self.ch = self._next()
            self.ch = self._append_until(self.ch, (_D, _NL))
            return
        self.ch = self._next()
        while True:
            if self.prev == _Q and (self.ch <= " " or self.ch in (_D, _NL)):
                break
            if self.ch != _Q:
                if self.prev == _Q:  # an unescaped quote: keep it and go on to the next comma
                    self.unescaped = True
                    self.app.append(_Q)
                    self.app.append(self.ch)
                    self.prev = self.ch
                    self._parse_quoted_value()
                    return
                self.ch = self._append_until(self.ch, (_Q, _NUL))
                self.prev = self.ch
                self.ch = self._next()
            else:
                if self.prev == _Q:  # "" inside quotes: one quote
                    self.app.append(_Q)
                    self.ch = _NUL
                self.prev = self.ch
                self.ch = self._next()
                if self.unescaped and self.ch in (_D, _NL):
                    return
        if self.ch not in (_D, _NL) and self.ch <= " ":
            self._after_closing_quote()
        if self.ch not in (_D, _NL):
            raise AssertionError("univocity: unexpected character after a quoted value")

    def _after_closing_quote(self) -> None:
        """Blanks (up to U+0020) after a closing quote are dropped before a comma or the end; when
        text follows them, the quote, the blanks and the text up to the next comma are kept."""
        blanks = []
        while True:
            blanks.append(self.ch)
            self.ch = self._next()
            if self.ch == _NL:
                return
            if not (self.ch <= " " and self.ch != _D):
                break
        if self.ch != _D:
            self.app.append(_Q)
            self.app.extend(blanks)
            self.app.append(self.ch)
            self.prev = self.ch
            self._parse_quoted_value()

    def _consume_value_on_eof(self) -> bool:
        if self.ch == _Q:
            if self.prev == _Q:
                return True
            if not self.unescaped:
                self.app.append(_Q)
        out = self.prev != _NUL and self.ch not in (_D, _NL, _COMMENT)
        self.ch = self.prev = _NUL
        return out

    def _handle_eof(self) -> list[str] | None:
        consume = self._consume_value_on_eof()
        if self.values or consume:
            if self.app or consume:
                self._value_from_appender()
            elif self._content_length() > 0:
                self._value("")
            return self._row()
        if self.app or self._content_length() > 0:
            if self.app:
                self._value_from_appender()
            else:
                self._value("")
            return self._row()
        return None
