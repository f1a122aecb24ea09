"""Reading landed files into bronze rows: I/O at the edge, one reader per engine, one contract.

Both readers give the same bronze rows for the same file (the contract in `nyc911lib.io.csv_reader`,
tested on the bad-input corpus and the real exports on both engines):

- spark: Spark reads small files whole (binaryFile, hashed in Spark) and large ones in parallel
  line splits (text reader, hashed on the driver), then parses each line with `from_csv` in
  PERMISSIVE mode (`nyc911lib.transforms.bronze`);
- duckdb: Python reads the file in chunks and parses its lines (`nyc911lib.io.csv_reader`), and
  DuckDB scans the rows as a stream of Arrow batches while delta-rs writes them: no file is ever
  held whole in memory.

Every header is checked before anything is written: one bad file stops the run with its name.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, SparkSession

from nyc911lib import engine
from nyc911lib.config import Params
from nyc911lib.errors import SourceError
from nyc911lib.io import storage
from nyc911lib.run import landing
from nyc911lib.schema import bronze_column_names, check_required_columns, parse_header_line
from nyc911lib.transforms.bronze import bronze_from_numbered_lines, lines_of_files, lines_of_text_file


@dataclass(frozen=True)
class Publication:
    """A landed file bronze has not ingested: its identity, and its bronze rows (lazy)."""

    path: Path
    kind: str
    sha256: str
    header: list[str]
    batch_id: str
    bytes: int
    data_lines: int
    rows: Callable[[dt.datetime], DataFrame]  # the bronze rows, stamped with an ingestion time

    @property
    def source_file(self) -> str:
        return str(self.path)


@dataclass(frozen=True)
class LandedFile:
    """A landed file identified without reading its rows: for the declarative runners, whose
    engine reads the rows itself."""

    path: Path
    kind: str
    sha256: str
    header: tuple[str, ...]
    batch_id: str
    bytes: int
    data_lines: int  # the bronze rows it gives: its lines (split on LF, as `lines_of_files`) but the header

    @property
    def source_file(self) -> str:
        return str(self.path)


def _hash_and_count_lines(path: Path) -> tuple[str, int]:
    """A file's sha256 and its lines as `transforms.bronze.lines_of_files` splits them (on LF,
    a CR before it dropped; the empty string after a final LF is not a line), in one read."""
    digest, newlines, last = hashlib.sha256(), 0, b""
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
            newlines += chunk.count(b"\n")
            last = chunk[-1:]
    return digest.hexdigest(), newlines + (1 if last not in (b"", b"\n") else 0)


def identify(path: Path, kind: str | None = None) -> LandedFile:
    """A landed file's identity, after the checks every reader makes (exists, not empty, a CSV
    with data rows and the required columns); `kind` overrides the one its name gives."""
    header = storage.read_source_header(path)
    sha256, lines = _hash_and_count_lines(path)
    found_kind, batch_id = _identity(path, sha256, header)
    size = path.stat().st_size
    return LandedFile(path, kind or found_kind, sha256, tuple(header), batch_id, size, lines - 1)


def _identity(path: Path, sha256: str, header: list[str]) -> tuple[str, str]:
    """(kind, batch id) of a landed file, after checking its header."""
    check_required_columns(str(path), bronze_column_names(header))
    modified = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.timezone.utc).replace(tzinfo=None)
    return landing.source_kind_of(path.name), landing.publication_id(path.name, modified, sha256)


def read_publications(
    spark: SparkSession, params: Params, files: list[Path]
) -> tuple[list[Publication], list[DataFrame]]:
    """The pending files as publications in publication order, and the frames held for them
    (release them with `engine.release` when the rows are written)."""
    reader = _read_spark if engine.name() == "spark" else _read_duckdb
    publications, held = reader(spark, params, files)
    return sorted(publications, key=lambda pub: pub.batch_id), held


def _read_duckdb(
    spark: SparkSession, params: Params, files: list[Path]
) -> tuple[list[Publication], list[DataFrame]]:
    """Each file in two passes, never whole in memory: its hash and lines first (`identify`'s
    pass), then its rows as a stream of Arrow batches (`csv_reader.bronze_batches`) that DuckDB
    scans once, as the bronze append writes it (a second scan would be refused by DuckDB)."""
    from nyc911lib.io.csv_reader import bronze_batches, read_header  # noqa: PLC0415 - duckdb engine only

    publications, held = [], []
    for path in files:
        header = read_header(path)
        if not header:
            raise SourceError(f"landed file is empty: {path}; remove it from the landing folder")
        sha256, lines = _hash_and_count_lines(path)
        kind, batch_id = _identity(path, sha256, header)

        def rows(
            ingested_at: dt.datetime, sha256=sha256, kind=kind, batch_id=batch_id, path=path
        ) -> DataFrame:
            lineage = {"source_file": str(path), "source_kind": kind, "batch_id": batch_id}
            frame = engine.from_arrow(bronze_batches(path, sha256=sha256, ingested_at=ingested_at, **lineage))
            held.append(frame)
            return frame

        size = path.stat().st_size
        publications.append(Publication(path, kind, sha256, header, batch_id, size, lines - 1, rows))
    return publications, held


def _file_name(path: F.Column) -> F.Column:
    """The file name of a path as Spark reports it (`file:/a/b%20c.csv` -> `b c.csv`)."""
    return F.url_decode(F.regexp_extract(path, r"([^/]+)$", 1))


def _read_spark(
    spark: SparkSession, params: Params, files: list[Path]
) -> tuple[list[Publication], list[DataFrame]]:
    """Small files whole in one job (their content hashed in Spark); a file over
    `performance.whole_file_max_mb` in parallel line splits, hashed on the driver, so no task
    holds a whole file. Files are keyed by name (unique in a landing folder)."""
    limit = params.performance.whole_file_max_mb * 2**20
    small = [p for p in files if p.stat().st_size <= limit]
    sha_of, header_of, data_lines, line_frames = {}, {}, {}, {}
    held = []
    if small:
        whole = spark.read.format("binaryFile").load([p.resolve().as_uri() for p in small])
        lines = lines_of_files(whole).withColumn("_name", _file_name(F.col("path"))).persist()
        held.append(lines)
        firsts = lines.where(F.col("_line_number") == 1).select("_name", "_source_sha256", "value")
        for r in firsts.collect():
            sha_of[r["_name"]], header_of[r["_name"]] = r["_source_sha256"], parse_header_line(r["value"])
        for r in lines.where(F.col("_line_number") > 1).groupBy("_name").count().collect():
            data_lines[r["_name"]] = r["count"]  # every line but the header is one bronze row
        for p in small:
            line_frames[p.name] = lines.where(F.col("_name") == p.name).drop("_name")
    for p in files:
        if p in small:
            continue
        uri = p.resolve().as_uri()
        sha_of[p.name], header_of[p.name] = storage.file_sha256(p), storage.read_source_header(p)
        text = storage.read_file_lines(spark, uri)
        line_frames[p.name] = text.transform(lines_of_text_file(uri, sha_of[p.name]))
        data_lines[p.name] = text.count() - 1  # one plain pass: numbering the lines is not needed
    publications = []
    for p in files:
        if p.name not in header_of:
            raise SourceError(f"landed file is empty: {p}; remove it from the landing folder")
        kind, batch_id = _identity(p, sha_of[p.name], header_of[p.name])

        def rows(
            ingested_at: dt.datetime, p=p, kind=kind, batch_id=batch_id, header=header_of[p.name]
        ) -> DataFrame:
            return (
                line_frames[p.name]
                .drop("path")
                .transform(bronze_from_numbered_lines(header, str(p), kind, batch_id, F.lit(ingested_at)))
            )

        publications.append(
            Publication(
                p,
                kind,
                sha_of[p.name],
                header_of[p.name],
                batch_id,
                p.stat().st_size,
                data_lines.get(p.name, 0),
                rows,
            )
        )
    return publications, held
