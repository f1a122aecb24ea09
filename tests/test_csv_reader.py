"""The embedded engine's bronze reader (`nyc911lib.io.csv_reader`) gives the Spark reader's rows.

Every expected value below was established by running the Spark path (binaryFile,
`lines_of_files`, `from_csv` in PERMISSIVE mode) on the same bytes; the `spark` tests run it again
and compare whole tables: the edge cases, the bad-input corpus, the sample and the real exports.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from nyc911lib.errors import SourceError
from nyc911lib.io.csv_reader import CHUNK_BYTES, Export, bronze_batches, bronze_table, read_export
from nyc911lib.io.univocity import MAX_FIELDS, Univocity, strict_csv

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
REAL_2025 = SHARED_DATA / "nyc911_e2e_through_2025-12-22.csv"
REAL_2023 = SHARED_DATA / "nyc911_e2e_through_2023-01-23.csv"
NOW = dt.datetime(2026, 1, 2, 3, 4, 5, 678901)  # naive: UTC
HEADER = b"a,b,c\n"
U = "\ufffd"  # the replacement character
FFFF = "\uffff".encode()

# (id, one data line's bytes after the header `a,b,c`, (a, b, c, _corrupt_record)), each as Spark gives it.
LINES = [
    ("well_formed", b"1,2,3", ("1", "2", "3", None)),
    ("unquoted_empty_is_null", b"x,,z", ("x", None, "z", None)),
    ("all_empty", b",,", (None, None, None, None)),
    ("quoted_empty_is_null_too", b'"",b,""', (None, "b", None, None)),  # never "": nullValue is ""
    ("spaces_kept", b'" a ", b ,c ', (" a ", " b ", "c ", None)),  # no trimming, in or out of quotes
    ("escaped_quotes", b'"a ""b"" c",x,y', ('a "b" c', "x", "y", None)),
    ("comma_in_quotes", b'a,"b,c",d', ("a", "b,c", "d", None)),
    ("only_an_escaped_quote", b'"""",b,c', ('"', "b", "c", None)),
    ("last_quoted_empty", b'a,b,""', ("a", "b", None, None)),
    ("last_three_quotes", b'a,b,"""', ("a", "b", '"', None)),
    # a field count other than the header's: the fields present, NULL for the rest, the raw line
    ("too_few", b"1,2", ("1", "2", None, "1,2")),
    ("one_field", b"1", ("1", None, None, "1")),
    ("too_many", b"1,2,3,4", ("1", "2", "3", "1,2,3,4")),
    ("trailing_comma_is_a_fourth_field", b"a,b,c,", ("a", "b", "c", "a,b,c,")),
    ("leading_comma", b",a,b", (None, "a", "b", None)),
    # broken quoting is malformed only when it changes the field count
    ("unclosed_quote_runs_to_the_end", b'"abc,d', ("abc,d", None, None, '"abc,d')),
    ("unclosed_quote_in_last_field", b'a,b,"c', ("a", "b", "c", None)),
    ("lone_quote_last", b'a,b,"', ("a", "b", '"', None)),
    ("lone_quote", b'"', ('"', None, None, '"')),
    ("two_quotes", b'""', (None, None, None, '""')),
    ("quote_inside_unquoted_field", b'ab"c,d,e', ('ab"c', "d", "e", None)),
    ("quote_at_end_of_unquoted_field", b'a,b,c"', ("a", "b", 'c"', None)),
    ("space_then_quote_is_unquoted", b' "a",b,c', (' "a"', "b", "c", None)),
    ("text_after_closing_quote_kept", b'"a"b,c,d', ('"a"b', "c", "d", None)),
    ("space_and_text_after_closing_quote", b'"a" x,b,c', ('"a" x', "b", "c", None)),
    ("blanks_after_closing_quote_dropped", b'"a"  ,b,c', ("a", "b", "c", None)),
    ("tab_between_quoted_values", b'"a"\t"b",c,d', ('"a"\t"b"', "c", "d", None)),
    ("quotes_inside_after_close", b'a,"b"c"d",e', ("a", '"b"c"d"', "e", None)),
    ("escaped_quote_at_end", b'a,"b""",c', ("a", 'b"', "c", None)),
    ("escaped_quote_then_unclosed", b'"a"",b,c', ('a",b,c', None, None, '"a"",b,c')),
    ("hash_is_not_a_comment", b"#a,b,c", ("#a", "b", "c", None)),
    # blank lines: the line itself is the record (bronze's rule), fields as parsed
    ("empty_line", b"", (None, None, None, "")),
    ("spaces_only", b"   ", ("   ", None, None, "   ")),
    ("tab_only", b"\t", ("\t", None, None, "\t")),  # not blank for Spark's trim (spaces only)
    ("spaces_between_commas", b" , , ", (" ", " ", " ", None)),
    # CR: CRLF ends a line; any other CR is text; one trailing CR is cut from the record only
    ("crlf", b"1,2,3\r", ("1", "2", "3", None)),
    ("lone_cr_inside", b"a\rb,c,d", ("a\rb", "c", "d", None)),
    ("cr_before_crlf", b"a,b,c\r\r", ("a", "b", "c\r", None)),
    ("cr_before_crlf_malformed", b"x,y\r\r", ("x", "y\r", None, "x,y")),
    ("only_cr_before_crlf", b"\r\r", ("\r", None, None, "")),
    ("cr_inside_quotes", b'x,"y\r",z', ("x", "y\r", "z", None)),
    ("cr_after_closing_quote", b'x,"y"\r,z', ("x", "y", "z", None)),
    # Java's UTF-8 decoder: one U+FFFD per invalid sequence as the JDK counts them
    ("invalid_byte", b"v,\xff,z", ("v", U, "z", None)),
    ("overlong_two_bytes", b"v,\xc0\x80,z", ("v", U * 2, "z", None)),
    ("lead_without_continuation", b"v,\xc3A,z", ("v", U + "A", "z", None)),
    ("three_byte_cut", b"v,\xe2\x82A,z", ("v", U + "A", "z", None)),
    ("encoded_surrogate_is_one", b"v,\xed\xa0\x80,z", ("v", U, "z", None)),  # Python: three
    ("surrogate_prefix_is_one", b"v,\xed\xa0A,z", ("v", U + "A", "z", None)),  # Python: two
    ("four_byte_cut", b"v,\xf0\x9f\x98A,z", ("v", U + "A", "z", None)),
    ("above_u10ffff", b"v,\xf4\x90\x80\x80,z", ("v", U * 4, "z", None)),
    ("five_byte_form", b"v,\xf8\x88\x80\x80\x80,z", ("v", U * 5, "z", None)),
    ("overlong_three_bytes", b"v,\xe0\x80\x80,z", ("v", U * 3, "z", None)),
    ("stray_continuations", b"v,\x80\x80,z", ("v", U * 2, "z", None)),
    ("emoji", '😀,"😀,x",z'.encode(), ("😀", "😀,x", "z", None)),
    # NUL: kept, except inside a quoted field read by univocity's slow path (not closed before a comma)
    ("nul_in_quoted_field_before_comma", b'"a\x00b",c,d', ("a\x00b", "c", "d", None)),
    ("nul_in_last_quoted_field_dropped", b'x,y,"a\x00b"', ("x", "y", "ab", None)),
    ("nul_in_unquoted_field", b"\x00a,b,c", ("\x00a", "b", "c", None)),
    ("nul_after_closing_quote", b'"a"\x00b,c,d', ('"a"\x00b', "c", "d", None)),
    # U+FFFF is from_csv's internal line separator: it ends the record, and alone is no record at all
    ("uffff_alone", FFFF, (None, None, None, None)),
    ("uffff_first", FFFF + b"a,b,c", ("a", "b", "c", None)),
    ("uffff_in_quotes_is_text", b'"a' + FFFF + b'b",c,d', ("a\uffffb", "c", "d", None)),
    ("uffff_ends_the_record", b"v," + FFFF + b",z", ("v", None, None, "v,\uffff")),
]

# A whole file after the header `a,b,c`: the rows of lines 2, 3, ... (state is kept between lines).
FILES = [
    # a U+FEFF starting the first non-empty data line is dropped (univocity's reader starts there)
    (
        "bom_first_data_line",
        b"\n\xef\xbb\xbfa,b\n\xef\xbb\xbfx,y\n",
        [
            (None, None, None, ""),
            ("a", "b", None, "a,b"),
            ("\ufeffx", "y", None, "\ufeffx,y"),
        ],
    ),
    (
        "bom_alone_first",
        b"\xef\xbb\xbf\n\xef\xbb\xbf\n",
        [
            ("\x00", None, None, "\ufeff"),
            ("\ufeff", None, None, "\ufeff"),  # a fresh buffer's NUL
        ],
    ),
    # a quoted line break: the physical lines are split first, two malformed lines
    ("quoted_newline", b'a,"b\nc",d\n', [("a", "b", None, 'a,"b'), ('c"', "d", None, 'c",d')]),
    # after a U+FFFF ended a record early, the next line is read from that character offset
    (
        "uffff_carries_the_offset",
        b"abcdefgh," + FFFF + b"i,j\nq\nr,s,t\n",
        [
            ("abcdefgh", None, None, "abcdefgh,\uffff"),
            ("i", None, None, "q"),
            ("r", "s", "t", None),
        ],
    ),
    (
        "uffff_offset_into_next_line",
        b"v," + FFFF + b",z\nv,\xee\x80\x80,z\n",
        [
            ("v", None, None, "v,\uffff"),
            (None, "z", None, ",z"),
        ],
    ),
    (
        "uffff_offset_cuts_a_surrogate_pair",
        b"," + FFFF + "q\nx😀,b,c\n".encode(),
        [
            (None, None, None, ",\uffff"),
            ("?", "b", "c", None),  # Java writes a lone surrogate as ?
        ],
    ),
    # the end of the file: no final newline, a truncated UTF-8 sequence (one U+FFFD), a lone CR
    ("no_final_newline", b"x,y,z", [("x", "y", "z", None)]),
    ("truncated_at_end", b"v,w,\xe2\x82", [("v", "w", U, None)]),
    ("surrogate_prefix_at_end", b"v,w,\xed\xa0", [("v", "w", U, None)]),  # Python: two
    ("four_byte_cut_at_end", b"v,w,\xf0\x9f\x98", [("v", "w", U, None)]),
    ("lone_cr_at_end", b"x,y\r", [("x", "y\r", None, "x,y")]),
    ("blank_last_line", b"x,y,z\n\n", [("x", "y", "z", None), (None, None, None, "")]),
]


def _table(tmp_path: Path, data: bytes) -> pa.Table:
    path = tmp_path / "x.csv"
    path.write_bytes(data)
    return _table_of(path)


def _table_of(path: Path) -> pa.Table:
    export = read_export(path)
    return bronze_table(export, source_file=str(path), source_kind="file", batch_id="b1", ingested_at=NOW)


def _values(table: pa.Table) -> list[tuple]:
    names = [c for c in table.column_names if not c.startswith("_")] + ["_corrupt_record"]
    return [tuple(row[c] for c in names) for row in table.to_pylist()]


@pytest.mark.parametrize(("line", "expected"), [c[1:] for c in LINES], ids=[c[0] for c in LINES])
def test_a_line_gives_the_fields_and_record_spark_gives(tmp_path, line, expected):
    assert _values(_table(tmp_path, HEADER + line + b"\n")) == [expected]


@pytest.mark.parametrize(("body", "expected"), [c[1:] for c in FILES], ids=[c[0] for c in FILES])
def test_a_file_gives_the_rows_spark_gives(tmp_path, body, expected):
    assert _values(_table(tmp_path, HEADER + body)) == expected


def _streamed(path: Path, chunk_bytes: int) -> pa.Table:
    sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    lineage = {"source_file": str(path), "source_kind": "file", "batch_id": "b1", "ingested_at": NOW}
    return bronze_batches(path, sha256=sha256, chunk_bytes=chunk_bytes, **lineage).read_all()


@pytest.mark.parametrize("chunk_bytes", [1, 7, CHUNK_BYTES])
@pytest.mark.parametrize(
    "data",
    [HEADER + c[1] + b"\n" for c in LINES] + [HEADER + c[1] for c in FILES],
    ids=[f"line-{c[0]}" for c in LINES] + [f"file-{c[0]}" for c in FILES],
)
def test_the_streamed_rows_are_the_rows_of_the_whole_file(tmp_path, data, chunk_bytes):
    """`bronze_batches` (the engine's reader: the file in chunks cut after an LF, one parser)
    gives exactly `bronze_table` of the whole file, on every case above, even one line per chunk."""
    path = tmp_path / "x.csv"
    path.write_bytes(data)
    assert _streamed(path, chunk_bytes).equals(_table_of(path))


def test_random_files_stream_as_they_read_whole(tmp_path):
    """Random lines of commas, quotes, CRs, U+FFFF (which makes the parser read characters of
    earlier, longer lines), non-ASCII and invalid UTF-8, streamed in chunks of a few bytes."""
    rng = random.Random(11)
    pieces = [
        b"a",
        b"bb",
        b" ",
        b",",
        b",",
        b'"',
        b'""',
        b"\r",
        "é".encode(),
        "😀".encode(),
        FFFF,
        b"\xed\xa0",
    ]
    for case in range(25):
        lines = [
            b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 30))) for _ in range(rng.randint(1, 40))
        ]
        path = tmp_path / f"r{case}.csv"
        path.write_bytes(HEADER + b"\n".join(lines) + rng.choice([b"", b"\n"]))
        whole = _table_of(path)
        for chunk_bytes in (1, 50):
            assert _streamed(path, chunk_bytes).equals(whole), (case, chunk_bytes)


def test_columns_order_types_and_lineage_are_the_spark_readers(tmp_path):
    data = HEADER + b"1,2,3\n4,5\n"
    table = _table(tmp_path, data)
    assert table.column_names == [
        "_source_sha256", "_line_number", "a", "b", "c", "_corrupt_record",
        "_source_file", "_source_kind", "_batch_id", "_ingested_at",
    ]  # fmt: skip
    assert [str(t) for t in table.schema.types] == [
        "string", "int64", "string", "string", "string", "string", "string", "string", "string",
        "timestamp[us, tz=UTC]",
    ]  # fmt: skip
    row = table.to_pylist()[1]
    assert row["_line_number"] == 3  # 1 is the header
    assert row["_source_sha256"] == hashlib.sha256(data).hexdigest()  # of the whole file's bytes
    lineage = (row["_source_file"], row["_source_kind"], row["_batch_id"])
    assert lineage == (str(tmp_path / "x.csv"), "file", "b1")
    assert row["_ingested_at"] == NOW.replace(tzinfo=dt.timezone.utc)


def test_an_aware_ingestion_time_is_stored_in_utc(tmp_path):
    path = tmp_path / "x.csv"
    path.write_bytes(HEADER + b"1,2,3\n")
    at = dt.datetime(2026, 1, 2, 4, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    table = bronze_table(read_export(path), source_file="f", source_kind="file", batch_id="b", ingested_at=at)
    utc = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    assert table.column("_ingested_at").to_pylist() == [utc]


def test_read_export_hashes_the_bytes_and_decodes_like_spark(tmp_path):
    data = b"\xef\xbb\xbf A ,b\r\nx,\xed\xa0\x80\r\n\n"
    path = tmp_path / "x.csv"
    path.write_bytes(data)
    export = read_export(path)
    assert export == Export(
        sha256=hashlib.sha256(data).hexdigest(), header=["A", "b"], lines=["x,\ufffd", ""], bytes=len(data)
    )


def test_header_names_duplicates_empties_and_an_unknown_column(tmp_path):
    # BOM and spaces stripped from the header; repeated and empty names numbered; extra column kept
    table = _table(tmp_path, b'\xef\xbb\xbf A , a ,,#,"x, y",Rescued Column\n1,2,3,4,5,6\n')
    names = [c for c in table.column_names if not c.startswith("_")]
    assert names == ["a", "a_2", "unnamed", "unnamed_2", "x_y", "rescued_column"]
    assert _values(table) == [("1", "2", "3", "4", "5", "6", None)]


@pytest.mark.parametrize("data", [b"a,b,c\n", b"a,b,c"], ids=["header_line", "header_no_newline"])
def test_a_header_only_file_has_no_rows_but_all_columns(tmp_path, data):
    table = _table(tmp_path, data)
    assert table.num_rows == 0
    assert table.column_names[2:6] == ["a", "b", "c", "_corrupt_record"]


def test_an_empty_file_has_no_header_and_no_lines(tmp_path):
    path = tmp_path / "x.csv"
    path.write_bytes(b"")
    export = read_export(path)
    assert (export.header, export.lines, export.bytes) == ([], [], 0)
    table = bronze_table(export, source_file="f", source_kind="file", batch_id="b", ingested_at=NOW)
    assert table.num_rows == 0


def test_a_line_of_more_than_20480_fields_stops_the_ingestion_as_it_stops_spark(tmp_path):
    # Spark: [MALFORMED_CSV_RECORD] for the whole job; exactly 20,480 fields is a malformed row
    assert _values(_table(tmp_path, HEADER + b"," * (MAX_FIELDS - 1) + b"\n"))[0][3] == "," * (MAX_FIELDS - 1)
    with pytest.raises(SourceError, match="more than 20480 fields"):
        _table(tmp_path, HEADER + b"," * MAX_FIELDS + b"\n")
    with pytest.raises(SourceError, match="more than 20480 fields"):
        _table(tmp_path, HEADER + b'"a",' + b"," * MAX_FIELDS + b"\n")


def test_a_one_column_header_keeps_a_spaces_only_line_as_its_record(tmp_path):
    # well formed (one field), but bronze's blank rule sets the record; a tab line is not blank
    assert _values(_table(tmp_path, b"a\n  \n\t\n  x  \n")) == [("  ", "  "), ("\t", None), ("  x  ", None)]


def test_the_fast_paths_agree_with_the_univocity_port():
    """Plain lines take `str.split`, well-quoted lines Python's csv module: both must give what
    the line-by-line port of univocity gives (which the Spark tests check against Spark)."""
    rng = random.Random(7)
    alphabet = ["a", " ", '"', '"', ",", ",", "\r", "\t", "\0", "#", "é", "😀", '""']
    checked = 0
    for _ in range(20000):
        line = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
        port = Univocity()
        port.started = True
        port.history.append(line)
        expected = port.parse_line(line, 0)
        fast = line.split(",") if '"' not in line else strict_csv(line)
        if fast is not None:
            checked += 1
            assert fast == expected, repr(line)
    assert checked > 5000


def test_the_real_export_reads_into_bronze_rows_without_a_corrupt_record():
    """The real 2025 export through the default engine's reader: every line a bronze row, none
    corrupt. (Its speed is not asserted here: timing targets live in `make bench`; a 0.5 s bound
    here failed under `make test`'s load.)"""
    if not REAL_2025.is_file():
        pytest.skip(f"real export not available: {REAL_2025}")
    table = bronze_table(
        read_export(REAL_2025), source_file="f", source_kind="file", batch_id="b", ingested_at=NOW
    )
    assert table.num_rows == 11606
    assert table.column("_corrupt_record").null_count == 11606
    sha256 = hashlib.sha256(REAL_2025.read_bytes()).hexdigest()
    lineage = {"source_file": "f", "source_kind": "file", "batch_id": "b", "ingested_at": NOW}
    streamed = bronze_batches(REAL_2025, sha256=sha256, chunk_bytes=100_000, **lineage)
    assert streamed.read_all().equals(table)


# --- Parity with the Spark reader (NYC911_ENGINE=spark pytest -m spark) -----------------------


@pytest.fixture(scope="module")
def spark_session():
    """A Spark session of this process (get_spark returns the running one if there is one)."""
    from nyc911lib.spark import get_spark  # noqa: PLC0415 - the Spark engine only

    return get_spark()


def _spark_rows(spark, paths: list[Path]) -> dict[Path, tuple[list[str], list[str], list[tuple]]]:
    """The Spark reader's bronze rows of each file (column names, types, rows by line number),
    built as the pipeline builds them: the files read whole in one binaryFile read, split by
    `lines_of_files`, each file's header from its line 1 and its rows by
    `bronze_from_numbered_lines`. One collect per header; `_ingested_at` as microseconds (a
    collected timestamp would be in the local time zone)."""
    import pyspark.sql.functions as F  # noqa: PLC0415

    from nyc911lib.schema import parse_header_line  # noqa: PLC0415
    from nyc911lib.transforms.bronze import bronze_from_numbered_lines, lines_of_files  # noqa: PLC0415

    whole = spark.read.format("binaryFile").load([p.resolve().as_uri() for p in paths])
    name = F.url_decode(F.regexp_extract(F.col("path"), r"([^/]+)$", 1))  # as the pipeline names files
    lines = lines_of_files(whole).withColumn("_name", name).persist()
    try:
        firsts = lines.where(F.col("_line_number") == 1).select("_name", "value").collect()
        header_of = {r["_name"]: parse_header_line(r["value"]) for r in firsts}
        by_header: dict[tuple[str, ...], list[Path]] = {}
        for p in paths:
            by_header.setdefault(tuple(header_of[p.name]), []).append(p)
        out = {}
        for header, members in by_header.items():
            frames = [
                lines.where(F.col("_name") == p.name)
                .drop("_name", "path")
                .transform(bronze_from_numbered_lines(list(header), str(p), "file", "b1", F.lit(NOW)))
                for p in members
            ]
            frame = frames[0]
            for other in frames[1:]:
                frame = frame.union(other)
            types = [f.dataType.simpleString() for f in frame.schema]
            rows = frame.withColumn("_ingested_at", F.unix_micros("_ingested_at")).collect()
            for p in members:
                mine = sorted((tuple(r) for r in rows if r["_source_file"] == str(p)), key=lambda r: r[1])
                out[p] = frame.columns, types, mine
        return out
    finally:
        lines.unpersist()


def _assert_same_rows(spark, paths: list[Path]) -> dict[str, int]:
    """Compare every column of every row; return the row count of each file (by name)."""
    spark_types = {"string": "string", "bigint": "int64", "timestamp": "timestamp[us, tz=UTC]"}
    counts = {}
    for path, (columns, types, theirs) in _spark_rows(spark, paths).items():
        mine = _table_of(path)
        assert mine.column_names == columns, path.name
        assert [str(t) for t in mine.schema.types] == [spark_types[t] for t in types], path.name
        micros = pc.cast(mine.column("_ingested_at"), pa.int64())
        ours = [
            tuple(r.values())
            for r in mine.set_column(mine.num_columns - 1, "_ingested_at", micros).to_pylist()
        ]
        assert len(ours) == len(theirs), path.name
        for a, b in zip(ours, theirs, strict=True):
            assert a == b, path.name  # every column, NULL and "" told apart
        counts[path.name] = len(ours)
    return counts


def _edge_files(folder: Path) -> list[Path]:
    paths = []
    for name, line, _ in LINES:
        paths.append(folder / f"line_{name}.csv")
        paths[-1].write_bytes(HEADER + line + b"\n")
    for name, body, _ in FILES:
        paths.append(folder / f"file_{name}.csv")
        paths[-1].write_bytes(HEADER + body)
    return paths


def _fuzz_files(folder: Path, count: int = 6, lines: int = 150) -> list[Path]:
    """Random lines of quotes, commas, blanks, CRs, NULs, BOMs, U+FFFF and invalid UTF-8."""
    rng = random.Random(2026)
    pieces = [
        *b'a| |"|"|,|,|\r|\t|\x00|#|""|\n|\r\n'.split(b"|"),
        *(c.encode() for c in "é😀\ufeff\uffff"),
        *(b"\xff", b"\xed\xa0\x80", b"\xe2\x82"),  # invalid UTF-8
    ]
    paths = []
    for k in range(count):
        width = rng.choice([1, 3, 5])
        body = b"".join(
            b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 12))) + b"\n" for _ in range(lines)
        )
        paths.append(folder / f"fuzz_{k}.csv")
        paths[-1].write_bytes(",".join(f"c{j}" for j in range(width)).encode() + b"\n" + body)
    return paths


@pytest.mark.spark
def test_spark_gives_the_same_rows_on_the_edge_cases_and_random_lines(spark_session, tmp_path):
    paths = _edge_files(tmp_path) + _fuzz_files(tmp_path)
    assert len(_assert_same_rows(spark_session, paths)) == len(paths)


@pytest.mark.spark
def test_spark_gives_the_same_rows_on_the_bad_input_corpus_and_the_sample(spark_session, tmp_path):
    from test_bad_input import _generate  # noqa: PLC0415 - the corpus of tests/test_bad_input.py

    from nyc911lib.sample import write_sample  # noqa: PLC0415

    kinds = _generate(tmp_path / "hostile.csv")
    paths = [tmp_path / "hostile.csv", write_sample(tmp_path / "sample.csv")]
    assert _assert_same_rows(spark_session, paths) == {"hostile.csv": sum(kinds.values()), "sample.csv": 1880}


@pytest.mark.spark
def test_spark_gives_the_same_rows_on_the_real_exports(spark_session):
    paths = [p for p in (REAL_2025, REAL_2023) if p.is_file()]
    if not paths:
        pytest.skip(f"real exports not available in {SHARED_DATA}")
    expected = {REAL_2025.name: 11606, REAL_2023.name: 8803}
    assert _assert_same_rows(spark_session, paths) == {p.name: expected[p.name] for p in paths}
