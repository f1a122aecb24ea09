"""The only module that reads and writes: source files and the layer tables (Delta).

Locally a table is a Delta folder `<warehouse>/<layer>/<table>`; on Databricks the same logical
name is the Unity Catalog table `<catalog>.<schema of layer>.<table>` (from params).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import hashlib
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from nyc911lib import engine
from nyc911lib.config import Params
from nyc911lib.errors import ConcurrentRunError, ParamsError, SourceError
from nyc911lib.io.exports import export_header
from nyc911lib.io.tables import Commit, Replace, Tables, Txn

if TYPE_CHECKING:  # the engine's classes (SQLFrame's or PySpark's): names for the annotations only
    from pyspark.sql import DataFrame, SparkSession


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


_COMMIT_FILE = re.compile(r"^\d{20}\.(json|checkpoint(\.\d+\.\d+)?\.parquet)$")


def has_commit(table_dir: str | Path) -> bool:
    """Whether a local Delta folder holds at least one commit. A write killed before its first
    commit leaves a `_delta_log` folder with no commit (or data files only): not a table."""
    log = Path(table_dir) / "_delta_log"
    return log.is_dir() and any(_COMMIT_FILE.match(p.name) for p in log.iterdir())


def tables(spark: SparkSession | None = None) -> Tables:
    """The Delta operations of this process's engine (`nyc911lib.io.tables.Tables`).

    `spark=None` before any session exists gives a reader of local Delta logs (versions, table
    ids, commit metadata) with delta-rs, which reads what either engine writes: a run can tell
    whether it has anything to do without starting an engine (no JVM on the spark engine)."""
    if spark is None and not engine.has_session():
        return _LOG_READER
    session = spark if spark is not None else engine.session()
    backend = _BACKENDS.get(id(session))
    if backend is None:
        if engine.name() == "spark":
            from nyc911lib.io.delta_spark import DeltaSparkTables  # noqa: PLC0415 - imports delta-spark

            backend = DeltaSparkTables(session)
        else:
            from nyc911lib.io.delta_rs import DeltaRsTables  # noqa: PLC0415

            backend = DeltaRsTables(session)
        _BACKENDS[id(session)] = backend
    return backend


_BACKENDS: dict[int, Tables] = {}


class _LogReader:
    """Reads local Delta logs without an engine session (see `tables`); reading rows or writing
    needs the engine's session."""

    def __getattr__(self, attribute: str):
        from nyc911lib.io.delta_rs import DeltaRsTables  # noqa: PLC0415

        if attribute not in ("exists", "version", "last_commit", "table_id"):
            raise AttributeError(f"{attribute} needs the engine's session: call nyc911lib.session() first")
        return getattr(DeltaRsTables(session=None), attribute)


_LOG_READER = _LogReader()


def table_exists(spark: SparkSession, params: Params, layer: str, key: str) -> bool:
    """Whether the table has been committed at least once (a half-created folder is not a table)."""
    return tables(spark).exists(table_name(params, layer, key))


def read_table(
    spark: SparkSession, params: Params, layer: str, key: str, version: int | None = None
) -> DataFrame:
    """Read a layer table (Delta), at its latest or at a given version (time travel)."""
    name = table_name(params, layer, key)
    if not params.catalog and not has_commit(name):
        raise SourceError(f"table {layer}.{key} does not exist yet at {name}: run the earlier layers first")
    return tables(spark).read(name, version)


def write_table(
    df: DataFrame,
    params: Params,
    layer: str,
    key: str,
    mode: str = "overwrite",
    *,
    txn: Txn | None = None,
    metadata: dict | None = None,
    replace: Replace | None = None,
    properties: dict[str, str] | None = None,
    cluster_by: tuple[str, ...] = (),
) -> str:
    """Write a layer table as Delta: `overwrite` replaces data and schema, `append` merges schema
    (a new source column is kept, never an error). Each write is one atomic Delta commit.

    `txn` makes the write idempotent: it is skipped when the table already committed that
    application id at that version or later (a batch replayed after a crash). `metadata` is
    stored as the commit's userMetadata (JSON), with the engine and runner of this process;
    `replace` overwrites only the rows in that date range (or in any of those ranges).
    """
    name = table_name(params, layer, key)
    tables(engine.session()).write(
        df,
        name,
        mode=mode,
        txn=txn,
        metadata=commit_metadata(metadata),
        replace=replace,
        properties=properties,
        cluster_by=cluster_by,
    )
    return name


def commit_metadata(metadata: dict | None = None) -> dict:
    """What every commit records: the engine and the runner of this process, and `metadata`."""
    return {"engine": engine.name(), "runner": os.environ.get(RUNNER_ENV, "library"), **(metadata or {})}


RUNNER_ENV = "NYC911_RUNNER"  # set by `nyc911 run` (notebooks, inline, ...) for the processes it runs


def file_sha256(path: Path) -> str:
    """Content hash of a source file (identifies a publication across renames)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_source_header(path: str | Path) -> list[str]:
    """The header of a CSV export, after checking the file exists and is an export
    (`exports.export_header`). Raises SourceError with the problem named."""
    path = Path(path)
    if not path.exists():
        raise SourceError(f"source file not found: {path}")
    if not path.is_file():
        raise SourceError(f"source is not a file: {path}")
    return export_header(path, f"source file {path}")


def read_file_lines(spark: SparkSession, uri: str) -> DataFrame:
    """A landed file's lines (`value`) by Spark's text reader, split on LF, in parallel splits."""
    return spark.read.option("lineSep", "\n").text(uri)


def table_version(spark: SparkSession, params: Params, layer: str, key: str) -> int | None:
    """The latest committed version of a table (None when it does not exist)."""
    return tables(spark).version(table_name(params, layer, key))


def zorder_table(
    spark: SparkSession,
    params: Params,
    layer: str,
    key: str,
    *,
    columns: list[str],
    metadata: dict | None = None,
) -> None:
    """OPTIMIZE a table with Z-ORDER BY `columns` (one commit, carrying `metadata` as its
    userMetadata like the write before it, so the table still reads as written from its inputs)."""
    tables(spark).zorder(table_name(params, layer, key), columns, commit_metadata(metadata))


def table_size_bytes(spark: SparkSession, params: Params, layer: str, key: str) -> int:
    """The size of a table's current files, from its Delta log (0 when it does not exist)."""
    return tables(spark).size_bytes(table_name(params, layer, key))


def last_commit_metadata(spark: SparkSession, params: Params, layer: str, key: str) -> dict | None:
    """The userMetadata (JSON) of a table's latest commit; None when absent or not JSON."""
    found = last_commit(spark, params, layer, key)
    return found.metadata if found else None


def last_commit(spark: SparkSession, params: Params, layer: str, key: str) -> Commit | None:
    """The latest commit of a table: its version and userMetadata; None when there is no table."""
    return tables(spark).last_commit(table_name(params, layer, key))


def merge_on_key(
    spark: SparkSession,
    params: Params,
    layer: str,
    key: str,
    rows: DataFrame,
    *,
    on: Sequence[str],
    values: Sequence[str],
    txn: Txn,
    metadata: dict | None = None,
    within: Replace | None = None,
) -> None:
    """Upsert `rows` (one per key) into a table: insert new keys, update a key only when one of
    `values` differs (an identical row is a no-op). One idempotent Delta MERGE commit (none when
    nothing changes), carrying `metadata` as its userMetadata; `within` (date ranges of a key
    column holding every row) limits the files it reads to those with rows in them."""
    tables(spark).merge(
        table_name(params, layer, key),
        rows,
        on=tuple(on),
        values=tuple(values),
        txn=txn,
        metadata=commit_metadata(metadata),
        within=within,
    )


def drop_table(spark: SparkSession, params: Params, layer: str, key: str) -> None:
    """Remove a table and its history (a full refresh of that table)."""
    tables(spark).drop(table_name(params, layer, key))


def table_state(spark: SparkSession, params: Params, layer: str, key: str) -> str | None:
    """`<Delta table id>@<version>`: which table, at which commit (None: it does not exist). The
    id tells a table dropped and written again apart from the old one at the same version."""
    name = table_name(params, layer, key)
    backend = tables(spark)
    version = backend.version(name)
    return None if version is None else f"{backend.table_id(name)}@{version}"


def ingested_kinds(params: Params) -> set[str]:
    """The source kinds bronze's ingest log lists, read without an engine session (delta-rs) so a
    run can check them before it starts one; empty for a catalog (the landing volume tells)."""
    return {k for k in ingest_log_column(params, "source_kind") if k}


def ingested_file_names(params: Params) -> set[str]:
    """The names of the landed files bronze's ingest log lists (read as `ingested_kinds`)."""
    return {Path(f).name for f in ingest_log_column(params, "source_file") if f}


def ingest_log_column(params: Params, column: str) -> list:
    """One column of bronze's ingest log, read with delta-rs (no engine session); empty when
    there is no log yet, or for a catalog."""
    if params.catalog or params.warehouse is None:
        return []
    path = table_name(params, "bronze", "ingest_log")
    if not has_commit(path):
        return []
    from deltalake import DeltaTable as RsDeltaTable  # noqa: PLC0415 - local warehouses only
    from deltalake import QueryBuilder  # noqa: PLC0415

    # delta-rs's own query engine: a few milliseconds, where `to_pyarrow_table` imports
    # pyarrow.dataset (0.7 s) on a command that may do nothing else.
    log = QueryBuilder().register("ingest_log", RsDeltaTable(path))
    return log.execute(f'SELECT "{column}" FROM ingest_log').read_all().column(column).to_pylist()


@contextlib.contextmanager
def warehouse_lock(params: Params) -> Iterator[None]:
    """Hold the warehouse's run lock for the block: a second run on the same warehouse fails at
    once with a clear message. The OS releases the lock when the process dies (even on SIGKILL),
    so a killed run never leaves a stale lock. On Databricks the job's max_concurrent_runs: 1
    plays this role (no local warehouse folder to lock)."""
    if params.warehouse is None:
        yield
        return
    params.warehouse.mkdir(parents=True, exist_ok=True)
    path = params.warehouse / ".nyc911.lock"
    with path.open("a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise ConcurrentRunError(
                f"another nyc911 run is using the warehouse {params.warehouse} ({holder}); "
                "nothing was done: run again when it has finished"
            ) from None
        fh.truncate(0)
        fh.write(f"pid {os.getpid()} since {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M:%S} UTC")
        fh.flush()
        try:
            yield
        finally:
            fh.truncate(0)
            fcntl.flock(fh, fcntl.LOCK_UN)
