"""A port of univocity's CsvParser as Spark's `from_csv` runs it (PERMISSIVE, one parser per
file, its state kept from one line to the next), for the lines Python's csv module cannot read as
Spark does. Used by `nyc911lib.io.csv_reader`; tests/test_csv_reader.py checks both against Spark."""

from __future__ import annotations

import codecs
import csv
import re

from nyc911lib.errors import SourceError

BOM = "\ufeff"
MAX_FIELDS = 20480  # Spark's `maxColumns`: a longer line fails the whole Spark job
NL = "\uffff"  # from_csv's line separator (SPARK-38955), univocity's normalized newline
_Q = '"'
_D = ","
_NUL = "\0"
_COMMENT = "#"  # univocity's default comment char: only checked at the end of the input


def too_many_fields() -> SourceError:
    return SourceError(
        f"a line of the export has more than {MAX_FIELDS} fields, which Spark's CSV parser refuses"
    )


def strict_csv(line: str) -> list[str] | None:
    """A quoted line's fields by Python's csv module when it accepts the line strictly (well-formed
    quoting, no NUL, CR or U+FFFF): then univocity gives the same fields. None: use the port."""
    if "\0" in line or "\r" in line or NL in line or line[0] == BOM:
        return None
    try:
        tokens = next(csv.reader([line], strict=True))
    except (csv.Error, StopIteration):
        return None
    if len(tokens) > MAX_FIELDS:
        raise too_many_fields()
    return tokens


class _EndOfLineError(Exception):
    """The line's characters are all read (univocity's EOFException)."""


_NON_BMP = re.compile("[\U00010000-\U0010ffff]")


def utf16_units(text: str) -> str:
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


class Univocity:
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
            units = utf16_units(self.history[j])
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
            if ch == NL:
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
                if i + 1 < self.length and self._buf(i + 1) in (_D, NL):
                    break
                return None
            if c == NL:
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
            raise too_many_fields()
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
        self.line = utf16_units(line)
        self.length = len(self.line)
        if not self.started:  # the reader starts on a fresh buffer and skips a byte-order mark
            self.started, self.i, self.tmp = True, 0, []
            if line[0] == BOM:
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
        while self.ch != NL:
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
            if self.ch != NL:
                self.ch = self._next()
                if self.ch == NL:
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
                    if self.ch == NL:
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
            self.ch = self._append_until(self.ch, (_D, NL))
            self._value_from_appender()

    def _parse_quoted_value(self) -> None:
        if self.prev != _NUL:  # text after an unescaped quote: everything up to the next comma
            self.app.insert(0, _Q)
            self.ch = self._next()
            self.ch = self._append_until(self.ch, (_D, NL))
            return
        self.ch = self._next()
        while True:
            if self.prev == _Q and (self.ch <= " " or self.ch in (_D, NL)):
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
                if self.unescaped and self.ch in (_D, NL):
                    return
        if self.ch not in (_D, NL) and self.ch <= " ":
            self._after_closing_quote()
        if self.ch not in (_D, NL):
            raise AssertionError("univocity: unexpected character after a quoted value")

    def _after_closing_quote(self) -> None:
        """Blanks (up to U+0020) after a closing quote are dropped before a comma or the end; when
        text follows them, the quote, the blanks and the text up to the next comma are kept."""
        blanks = []
        while True:
            blanks.append(self.ch)
            self.ch = self._next()
            if self.ch == NL:
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
        out = self.prev != _NUL and self.ch not in (_D, NL, _COMMENT)
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
