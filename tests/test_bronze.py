"""Bronze on the spark engine: Spark's reader (line numbering, permissive CSV parsing, lineage).

The duckdb engine's reader gives the same rows (tests/test_csv_reader.py compares them).
"""

from __future__ import annotations

import hashlib

import pytest

from nyc911lib import (
    bronze_from_lines,
    lines_of_files,
    parse_csv_lines,
    with_line_number,
)
from nyc911lib.io.storage import read_file_lines
from nyc911lib.transforms.bronze import lines_of_text_file

pytestmark = pytest.mark.spark


@pytest.mark.parametrize("partitions", [1, 7])
def test_line_numbers_follow_file_order_across_partitions(spark, partitions):
    values = [(f"line {i}",) for i in range(1, 101)]
    lines = spark.sparkContext.parallelize(values, partitions).toDF(["value"])
    numbered = lines.transform(with_line_number()).orderBy("_line_number").collect()
    assert [r._line_number for r in numbered] == list(range(1, 101))
    assert [r.value for r in numbered] == [f"line {i}" for i in range(1, 101)]


@pytest.mark.parametrize(
    ("line", "fields", "corrupt"),
    [
        ("a,b,c", ["a", "b", "c"], None),
        ('"x, y",b,c', ["x, y", "b", "c"], None),
        ('1,"say ""hi""",3', ["1", 'say "hi"', "3"], None),
        ("a,b", ["a", "b", None], "a,b"),
        ("a,b,c,d", ["a", "b", "c"], "a,b,c,d"),
        ('"a,b,c', ["a,b,c", None, None], '"a,b,c'),
        ("", [None, None, None], ""),
    ],
)
def test_parse_csv_lines_keeps_malformed_lines_with_raw_text(spark, line, fields, corrupt):
    df = spark.createDataFrame([(line,)], "value string").transform(parse_csv_lines(["c1", "c2", "c3"]))
    row = df.first()
    assert [row.c1, row.c2, row.c3] == fields
    assert row._corrupt_record == corrupt


def test_bronze_from_lines_numbers_rows_skips_header_and_adds_lineage(spark):
    header = ["Week Start Date", "Agency", "Surprise Column"]
    lines = spark.createDataFrame(
        [("Week Start Date,Agency,Surprise Column",), ("11/18/2013,EMS,x",), ("bad line",)], "value string"
    ).coalesce(1)
    rows = (
        lines.transform(bronze_from_lines(header, "/data/e2e.csv", "file", "b1"))
        .orderBy("_line_number")
        .collect()
    )
    assert [r._line_number for r in rows] == [2, 3]
    assert rows[0].week_start_date == "11/18/2013"
    assert rows[0].surprise_column == "x"
    assert rows[0]._corrupt_record is None
    assert rows[1]._corrupt_record == "bad line"
    assert {(r._source_file, r._source_kind, r._batch_id) for r in rows} == {("/data/e2e.csv", "file", "b1")}
    assert all(r._ingested_at is not None for r in rows)


def test_lines_of_files_numbers_every_physical_line_and_keeps_bad_bytes(spark):
    content = b"\xef\xbb\xbfA,B\r\n1,2\n\n3,\xff4\n"
    files = spark.createDataFrame([("file:/l/x.csv", bytearray(content))], "path string, content binary")
    rows = lines_of_files(files).orderBy("_line_number").collect()
    assert [(r._line_number, r.value) for r in rows] == [
        (1, "\ufeffA,B"),
        (2, "1,2"),
        (3, ""),
        (4, "3,\ufffd4"),
    ]
    assert {r._source_sha256 for r in rows} == {hashlib.sha256(content).hexdigest()}


@pytest.mark.parametrize(
    "content",
    [
        b"\xef\xbb\xbfA,B\r\n1,2\n\n3,\xff4\n",  # BOM, CRLF and LF, a blank line, a bad byte
        b"A,B\n" + b"\n".join(b"%d,%d" % (i, i) for i in range(30)),  # no final newline
        b"A,B\r\n" + b"".join(b"%d,x\ry\r\r\n" % i for i in range(40)),  # CRs inside lines
    ],
)
def test_a_large_file_read_in_splits_gives_the_lines_of_the_whole_file_read(spark, tmp_path, content):
    path = tmp_path / "x.csv"
    path.write_bytes(content)
    sha = hashlib.sha256(content).hexdigest()
    files = spark.createDataFrame([(f"file:{path}", bytearray(content))], "path string, content binary")
    whole = [tuple(r) for r in lines_of_files(files).orderBy("_line_number").collect()]
    spark.conf.set("spark.sql.files.maxPartitionBytes", "16")  # many splits of a few lines each
    try:
        text = read_file_lines(spark, f"file:{path}")
        assert text.rdd.getNumPartitions() > 1
        split = [tuple(r) for r in text.transform(lines_of_text_file(f"file:{path}", sha)).collect()]
    finally:
        spark.conf.unset("spark.sql.files.maxPartitionBytes")
    split = sorted(split, key=lambda r: r[2])
    assert split[1:] == whole[1:]  # every data line, as read whole
    # the header line: Hadoop's line reader drops a UTF-8 byte-order mark (the header is parsed
    # with or without one, and it is not a bronze row)
    assert split[0] == (*whole[0][:3], whole[0][3].removeprefix("\ufeff"))
    assert [r[2] for r in whole] == list(range(1, len(whole) + 1))
