"""The only module that reads and writes: source files and the layer tables (Delta).

Locally a table is a Delta folder `<warehouse>/<layer>/<table>`; on Databricks the same logical
name is the Unity Catalog table `<catalog>.<schema of layer>.<table>` (from params).
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import errno
import fcntl
import hashlib
import io
import json
import os
import re
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession

from nyc911lib.config import Params
from nyc911lib.errors import ConcurrentRunError, ParamsError, SourceError

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


def read_table(
    spark: SparkSession, params: Params, layer: str, key: str, version: int | None = None
) -> DataFrame:
    """Read a layer table (Delta), at its latest or at a given version (time travel)."""
    name = table_name(params, layer, key)
    reader = spark.read if version is None else spark.read.option("versionAsOf", version)
    if params.catalog:
        return reader.table(name)
    if not table_exists(spark, params, layer, key):
        raise SourceError(f"table {layer}.{key} does not exist yet at {name}: run the earlier layers first")
    return reader.format("delta").load(name)


Txn = tuple[str, int]  # (application id, version): Delta's idempotent-write transaction identifier


def write_table(
    df: DataFrame,
    params: Params,
    layer: str,
    key: str,
    mode: str = "overwrite",
    *,
    txn: Txn | None = None,
    metadata: dict | None = None,
    replace_where: str | None = None,
    properties: dict[str, str] | None = None,
) -> str:
    """Write a layer table as Delta: `overwrite` replaces data and schema, `append` merges schema
    (a new source column is kept, never an error). Each write is one atomic Delta commit.

    `txn` makes the write idempotent: Delta skips it when the table already committed that
    application id at that version or later (a streaming micro-batch replayed after a crash).
    `metadata` is stored as the commit's userMetadata (JSON); `replace_where` overwrites only the
    rows matching that predicate.
    """
    name = table_name(params, layer, key)
    writer = df.write.format("delta").mode(mode)
    if replace_where is not None:
        writer = writer.option("replaceWhere", replace_where)
    elif mode == "overwrite":
        writer = writer.option("overwriteSchema", "true")
    else:
        writer = writer.option("mergeSchema", "true")
    if txn is not None:
        writer = writer.option("txnAppId", txn[0]).option("txnVersion", str(txn[1]))
    if metadata is not None:
        writer = writer.option("userMetadata", json.dumps(metadata, sort_keys=True))
    for prop, value in (properties or {}).items():  # `delta.*` options become table properties on create
        writer = writer.option(prop, value)
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


def read_file_lines(spark: SparkSession, uri: str) -> DataFrame:
    """A landed file's lines (`value`) by Spark's text reader, split on LF, in parallel splits."""
    return spark.read.option("lineSep", "\n").text(uri)


def local_file(uri: str) -> Path:
    """The driver-side path of a landed file's URI (`file:` URIs, plain paths, and `dbfs:/Volumes`
    paths, which Databricks mounts at /Volumes); a clear error for anything else."""
    for prefix, root in (("file://", ""), ("file:", ""), ("dbfs:/Volumes/", "/Volumes/")):
        if uri.startswith(prefix):
            return Path(root + uri[len(prefix) :])
    if uri.startswith("/"):
        return Path(uri)
    raise SourceError(
        f"{uri}: a file over performance.whole_file_max_mb is hashed on the driver and must be on a "
        "local or mounted path (file:, /Volumes); raise whole_file_max_mb to read it whole instead"
    )


def delta_table(spark: SparkSession, params: Params, layer: str, key: str) -> DeltaTable:
    """The DeltaTable handle of a layer table (for MERGE and history)."""
    name = table_name(params, layer, key)
    return DeltaTable.forName(spark, name) if params.catalog else DeltaTable.forPath(spark, name)


def table_version(spark: SparkSession, params: Params, layer: str, key: str) -> int | None:
    """The latest committed version of a table (None when it does not exist)."""
    if not table_exists(spark, params, layer, key):
        return None
    return delta_table(spark, params, layer, key).history(1).first()["version"]


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
    conf = "spark.databricks.delta.commitInfo.userMetadata"
    if metadata is not None:
        spark.conf.set(conf, json.dumps(metadata, sort_keys=True))
    try:
        delta_table(spark, params, layer, key).optimize().executeZOrderBy(*columns)
    finally:
        if metadata is not None:
            spark.conf.unset(conf)


def table_size_bytes(spark: SparkSession, params: Params, layer: str, key: str) -> int:
    """The size of a table's current files, from its Delta log (0 when it does not exist)."""
    if not table_exists(spark, params, layer, key):
        return 0
    return int(delta_table(spark, params, layer, key).detail().first()["sizeInBytes"])


def last_commit_metadata(spark: SparkSession, params: Params, layer: str, key: str) -> dict | None:
    """The userMetadata (JSON) of a table's latest commit; None when absent or not JSON."""
    if not table_exists(spark, params, layer, key):
        return None
    text = delta_table(spark, params, layer, key).history(1).first()["userMetadata"]
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


@contextlib.contextmanager
def idempotent_dml(spark: SparkSession, txn: Txn) -> Iterator[None]:
    """Run Delta DML (MERGE) as an idempotent write: the session confs Delta reads for DML, set
    for the block only."""
    keys = ("spark.databricks.delta.write.txnAppId", "spark.databricks.delta.write.txnVersion")
    spark.conf.set(keys[0], txn[0])
    spark.conf.set(keys[1], str(txn[1]))
    try:
        yield
    finally:
        for k in keys:
            spark.conf.unset(k)


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
) -> None:
    """Upsert `rows` (one per key) into a table: insert new keys, update a key only when one of
    `values` differs (an identical row is a no-op). One idempotent Delta MERGE commit."""
    match = " AND ".join(f"t.`{k}` = s.`{k}`" for k in on)
    differs = " OR ".join(f"NOT (t.`{c}` <=> s.`{c}`)" for c in values)
    with idempotent_dml(spark, txn):
        (
            delta_table(spark, params, layer, key)
            .alias("t")
            .merge(rows.alias("s"), match)
            .whenMatchedUpdateAll(condition=differs)
            .whenNotMatchedInsertAll()
            .execute()
        )


def drop_table(spark: SparkSession, params: Params, layer: str, key: str) -> None:
    """Remove a table and its history (a full refresh of that table)."""
    name = table_name(params, layer, key)
    if params.catalog:
        spark.sql(f"DROP TABLE IF EXISTS {name}")
    else:
        shutil.rmtree(name, ignore_errors=True)


def checkpoint_dir(params: Params, stream: str) -> str:
    """The checkpoint folder of a streaming query: `<checkpoints>/<stream>`."""
    return f"{str(params.checkpoints_dir).rstrip('/')}/{stream}"


def reset_checkpoint(checkpoint: str) -> None:
    """Forget what a stream has processed (it starts again from the beginning of its source)."""
    shutil.rmtree(checkpoint, ignore_errors=True)


SOURCE_MARK = "_nyc911_source_version"  # beside Spark's own files in a checkpoint folder


def table_state(spark: SparkSession, params: Params, layer: str, key: str) -> str | None:
    """`<Delta table id>@<version>`: which table, at which commit (None: it does not exist). The
    id tells a table dropped and written again apart from the old one at the same version."""
    if not table_exists(spark, params, layer, key):
        return None
    table = delta_table(spark, params, layer, key)
    return f"{table.detail().first()['id']}@{table.history(1).first()['version']}"


def source_version_mark(checkpoint: str) -> str | None:
    """The source table state (`table_state`) a stream had fully processed when its last run
    ended (None: no run ended since the checkpoint was made, e.g. a crash or a reset)."""
    try:
        return (Path(checkpoint) / SOURCE_MARK).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def mark_source_version(checkpoint: str, state: str | None) -> None:
    """Record that a stream's run processed its source up to at least `state` (atomic rename)."""
    if state is None:
        return
    mark = Path(checkpoint) / SOURCE_MARK
    part = mark.with_name(mark.name + ".part")
    part.write_text(state, encoding="utf-8")
    part.replace(mark)


def stream_query_id(spark: SparkSession, checkpoint: str) -> str:
    """The id Spark gave the streaming query of a checkpoint (new when the checkpoint is reset),
    read from `<checkpoint>/metadata`, which Spark writes before the first micro-batch."""
    return json.loads(spark.read.text(f"{checkpoint}/metadata").first()[0])["id"]


# --- Landing: immutable, timestamped publications ---------------------------------------------

_STAMP = re.compile(r"(\d{8}T\d{6})(\d{6})?Z")


def landed_stamp(now: dt.datetime | None = None) -> str:
    """`20261126T200102123456Z`: UTC landing time to the microsecond, sortable as text."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return f"{now.astimezone(dt.timezone.utc):%Y%m%dT%H%M%S%f}Z"


def publication_stamp(file_name: str) -> str | None:
    """The landing stamp in a landed file name, padded to microseconds; None when it has none."""
    match = _STAMP.search(file_name)
    return f"{match.group(1)}{match.group(2) or '000000'}Z" if match else None


def land_file(source: Path, landing_dir: Path, kind: str) -> tuple[Path, bool]:
    """Copy an export into the landing folder as `<stamp>__<kind>__<name>`, unless a file with the
    same content is already there. Returns (landed path, whether it is new).

    The copy goes to a hidden `.part` file first (the stream ignores hidden files) and is then
    renamed, so a partial copy never appears as a landed file.
    """
    sha = file_sha256(source)
    landing_dir.mkdir(parents=True, exist_ok=True)
    for existing in sorted(landing_dir.glob("*.csv")):
        if existing.stat().st_size == source.stat().st_size and file_sha256(existing) == sha:
            return existing, False
    target = landing_dir / f"{landed_stamp()}__{kind}__{source.name}"
    part = landing_dir / f".{target.name}.part"
    try:
        shutil.copyfile(source, part)
        os.replace(part, target)
    finally:
        part.unlink(missing_ok=True)
    return target, True


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
