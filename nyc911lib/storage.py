"""The only module that reads and writes: source files and the layer tables (Delta).

Locally a table is a Delta folder `<warehouse>/<layer>/<table>`; on Databricks the same logical
name is the Unity Catalog table `<catalog>.<schema of layer>.<table>` (from params).
"""

from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

from nyc911lib.config import Params
from nyc911lib.errors import ParamsError, SourceError

_HEADER_PEEK_BYTES = 64 * 1024


def table_name(params: Params, layer: str, key: str) -> str:
    """The physical name of a logical table for the params' environment.

    A local path (`<warehouse>/<layer>/<table>`) or a Unity Catalog `catalog.schema.table`.
    """
    try:
        table = params.tables[layer][key]
    except KeyError as exc:
        raise ParamsError(f"params: no table '{key}' in layer '{layer}' ({params.source_file})") from exc
    if params.catalog:
        schema = params.schemas.get(layer, layer)
        return f"{params.catalog}.{schema}.{table}"
    if params.warehouse is None:
        raise ParamsError(f"params: environment '{params.environment}' sets neither warehouse nor catalog")
    return str(params.warehouse / layer / table)


def table_exists(spark: SparkSession, params: Params, layer: str, key: str) -> bool:
    """Whether the table has been written at least once."""
    name = table_name(params, layer, key)
    if params.catalog:
        return spark.catalog.tableExists(name)
    return (Path(name) / "_delta_log").is_dir()


def read_table(spark: SparkSession, params: Params, layer: str, key: str) -> DataFrame:
    """Read a layer table (Delta)."""
    name = table_name(params, layer, key)
    if params.catalog:
        return spark.read.table(name)
    if not table_exists(spark, params, layer, key):
        raise SourceError(f"table {layer}.{key} does not exist yet at {name}: run the earlier layers first")
    return spark.read.format("delta").load(name)


def write_table(df: DataFrame, params: Params, layer: str, key: str, mode: str = "overwrite") -> str:
    """Write a layer table as Delta: `overwrite` replaces data and schema, `append` merges schema
    (a new source column is kept, never an error). Each write is one atomic Delta commit."""
    name = table_name(params, layer, key)
    writer = df.write.format("delta").mode(mode)
    writer = (
        writer.option("overwriteSchema", "true")
        if mode == "overwrite"
        else writer.option("mergeSchema", "true")
    )
    if params.catalog:
        writer.saveAsTable(name)
    else:
        writer.save(name)
    return name


def file_sha256(path: Path) -> str:
    """Content hash of a source file (identifies a publication across renames)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_source_header(path: str | Path) -> list[str]:
    """The header of a CSV export, after checking the file exists, is not empty and has data rows.

    Raises SourceError with the problem named (missing, empty, header only, not a CSV).
    """
    path = Path(path)
    if not path.exists():
        raise SourceError(f"source file not found: {path}")
    if not path.is_file():
        raise SourceError(f"source is not a file: {path}")
    with path.open("rb") as fh:
        head = fh.read(_HEADER_PEEK_BYTES)
    if not head.strip():
        raise SourceError(f"source file is empty: {path}")
    text = head.decode("utf-8-sig", errors="replace")
    lines = text.splitlines()
    if text.lstrip().startswith("<"):
        raise SourceError(f"source file is not a CSV export (it looks like an HTML/XML page): {path}")
    header = next(csv.reader(io.StringIO(lines[0])))
    if not any(line.strip() for line in lines[1:]):
        raise SourceError(f"source file has a header but no data rows: {path}")
    return [h.strip() for h in header]


def read_source_lines(spark: SparkSession, path: str | Path) -> DataFrame:
    """The physical lines of a source file, in order, as a one-column (`value`) DataFrame."""
    return spark.read.text(str(Path(path).resolve()))
