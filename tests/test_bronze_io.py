"""A landed file identified without its rows (`identify`, what the declarative runner logs) counts
the same data lines as the readers that parse it (`csv_reader.read_export`, the duckdb engine's,
tested against Spark's in tests/test_csv_reader.py)."""

from __future__ import annotations

import pytest

from nyc911lib.io.bronze_io import identify
from nyc911lib.io.csv_reader import read_export

HEADER = (
    b"Week Start Date,Agency,Final Incident Type,# of Incidents Calculated,Call to First Pickup,"
    b"Call to Agency Dispatch,Call to Agency Arrival,Call to First Arrival (Multi-Agency Incidents),"
    b"Median Dispatch,Median Travel,Average Travel,Average Dispatch\n"
)
ROW = b"01/06/2025,EMS,1. Critical,3,1,2,3,4,5,6,7,8"


@pytest.mark.parametrize(
    ("body", "data_lines"),
    [
        (ROW + b"\n" + ROW + b"\n", 2),
        (ROW + b"\r\n" + ROW + b"\r\n", 2),  # CRLF
        (ROW + b"\n" + ROW, 2),  # no final newline
        (ROW + b"\n\n" + ROW + b"\n", 3),  # a blank line is a (bad) row
        (ROW + b"\n" + ROW + b"\r", 2),  # a final CR ends no line
        (ROW + b"\ra" + b"\n", 1),  # a lone CR inside a line
    ],
    ids=["lf", "crlf", "no final newline", "blank line", "final cr", "inner cr"],
)
def test_identify_counts_the_lines_the_reader_reads(tmp_path, body, data_lines):
    path = tmp_path / "20260105T000000000000Z__file__export.csv"
    path.write_bytes(HEADER + body)
    found = identify(path)
    assert found.data_lines == data_lines == len(read_export(path).lines)
    assert (found.kind, found.batch_id[:23], found.bytes) == (
        "file",
        "20260105T000000000000Z-",
        len(HEADER + body),
    )
