"""Delta tables on the duckdb engine: delta-rs (`deltalake`) under SQLFrame on an in-process DuckDB.

Implements `nyc911lib.io.tables.Tables` for local folders. A table is read as a pyarrow dataset of
one version registered on the session's DuckDB connection (a DuckDB view per table id and
version, so a frame read before a later commit keeps reading its own version); a frame is written
as the Arrow of its DuckDB result, with its types made those both engines keep (see `conform`).

What delta-rs does differently from delta-spark, and what this module does about it:

- it records a `Transaction(app_id, version)` but never skips a replay: `write` and `merge` read
  the table's transaction version first and write nothing when `txn` was already committed;
- it commits an append of no rows: `write` skips an empty append to an existing table (a new
  table is still created, with the frame's schema, as Spark does);
- it takes Arrow types as they come (decimal(38,0), timestamp without time zone, void), which
  would make `decimal` columns and the `timestampNtz` table feature: `conform` casts them first;
- a MERGE that changes no row writes no commit (like Spark); its rows' extra columns are dropped
  (delta-spark ignores them without schema auto-merge) and a missing column is refused (delta-rs
  would keep the target's value, delta-spark refuses it).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import shutil
import threading
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pa_fs
from deltalake import CommitProperties, DeltaTable, Transaction, WriterProperties, write_deltalake

from nyc911lib.errors import EngineError
from nyc911lib.io.tables import (
    Commit,
    Replace,
    Txn,
    last_data_commit,
    maintenance_metadata,
    replace_predicate,
)

BATCH_ROWS = 256 * 1024  # rows per Arrow batch streamed from DuckDB into a Delta write
# Parquet row groups of DuckDB's own size (122,880 rows) rather than delta-rs's 1,048,576: a read
# decodes whole row groups, and pyarrow's scanner reads several files ahead, so at 1,000x the real
# export (bronze: 60 text columns) million-row groups held about 4 GB outside DuckDB's memory limit.
ROW_GROUP_ROWS = 122_880
WRITER = WriterProperties(max_row_group_size=ROW_GROUP_ROWS)
# Files of about 8 MB: a table of weekly rows written in week order (`cluster_by`) is then files of
# week ranges, and a MERGE or ranged overwrite of a few weeks rewrites one of them, not the table.
TARGET_FILE_BYTES = 8 * 2**20
UTC_TIMESTAMP = pa.timestamp("us", tz="UTC")


def conform_type(arrow_type: pa.DataType) -> pa.DataType:
    """The Arrow type a column of `arrow_type` is written as: decimal(38,0) (an uncast `F.sum`) as
    bigint, other decimals as double, every timestamp as microseconds in UTC (a naive one taken
    as UTC: never `timestamp_ntz`), an all-NULL (void) column as string, an unsigned integer as a
    wider signed one (uint64 as bigint); nested types likewise."""
    conformed = arrow_type
    if pa.types.is_decimal(arrow_type):
        conformed = pa.int64() if (arrow_type.precision, arrow_type.scale) == (38, 0) else pa.float64()
    elif pa.types.is_timestamp(arrow_type):
        conformed = UTC_TIMESTAMP
    elif pa.types.is_null(arrow_type):
        conformed = pa.string()
    elif pa.types.is_date64(arrow_type):
        conformed = pa.date32()
    elif pa.types.is_unsigned_integer(arrow_type):  # Delta has signed integers only
        conformed = {8: pa.int16(), 16: pa.int32()}.get(arrow_type.bit_width, pa.int64())
    elif pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        conformed = pa.list_(arrow_type.value_field.with_type(conform_type(arrow_type.value_type)))
    elif pa.types.is_struct(arrow_type):
        conformed = pa.struct([f.with_type(conform_type(f.type)) for f in arrow_type])
    elif pa.types.is_map(arrow_type):
        conformed = pa.map_(conform_type(arrow_type.key_type), conform_type(arrow_type.item_type))
    return conformed


def target_schema(incoming: pa.Schema, table: pa.Schema | None) -> pa.Schema:
    """The schema a frame with `incoming` columns is written with: the table's columns first, in
    its order and with its types (one missing from the frame is written as NULLs), then the
    frame's new columns with their types conformed. Without a table, just the frame's, conformed."""
    fields = [] if table is None else list(table)
    known = {f.name for f in fields}
    fields += [pa.field(f.name, conform_type(f.type)) for f in incoming if f.name not in known]
    return pa.schema(fields)


def conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """`batch` cast to `schema` by column name (see `target_schema`); a failing cast (overflow,
    text that is no number) raises, timestamps are truncated to microseconds as Spark does."""
    columns = []
    for target in schema:
        index = batch.schema.get_field_index(target.name)
        if index < 0:
            columns.append(pa.nulls(batch.num_rows, target.type))
            continue
        column = batch.column(index)
        columns.append(
            column.cast(target.type, safe=not pa.types.is_timestamp(column.type))
            if column.type != target.type
            else column
        )
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _view_type(arrow_type: pa.DataType) -> pa.DataType:
    """`arrow_type` with its strings as string views. A file delta-rs writes in a MERGE or OPTIMIZE
    declares its strings as views: a dataset of plain strings over it then fails DuckDB's pushed-down
    filter (`equal` has no kernel for string and string_view); read as views, both kinds of file
    filter (DuckDB reads views as VARCHAR)."""
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return pa.string_view()
    if pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type):
        return pa.binary_view()
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return pa.list_(arrow_type.value_field.with_type(_view_type(arrow_type.value_type)))
    if pa.types.is_struct(arrow_type):
        return pa.struct([f.with_type(_view_type(f.type)) for f in arrow_type])
    if pa.types.is_map(arrow_type):
        return pa.map_(_view_type(arrow_type.key_type), _view_type(arrow_type.item_type))
    return arrow_type


def _quote(column: str) -> str:
    """An identifier in delta-rs's (DataFusion) SQL."""
    return '"' + column.replace('"', '""') + '"'


def metadata_text(metadata: dict | None) -> str | None:
    """A commit's userMetadata: the JSON of `metadata`, keys sorted (as the spark engine writes it)."""
    return None if metadata is None else json.dumps(metadata, sort_keys=True)


def _commit_properties(txn: Txn | None, metadata: dict | None) -> CommitProperties | None:
    text = metadata_text(metadata)
    if txn is None and text is None:
        return None
    return CommitProperties(
        custom_metadata={"userMetadata": text} if text is not None else None,
        app_transactions=[Transaction(txn[0], txn[1])] if txn is not None else None,
    )


def _committed(table: DeltaTable, txn: Txn | None) -> bool:
    """Whether `table` already committed `txn`'s application id at its version or later."""
    if txn is None:
        return False
    done = table.transaction_version(txn[0])
    return done is not None and done >= txn[1]


def _arrow_schema(table: DeltaTable) -> pa.Schema:
    return pa.schema(table.schema().to_arrow())  # arro3 -> pyarrow (Arrow C interface)


def _split_by_views(dataset: Any) -> tuple[list[Any], list[Any]]:
    """The fragments (data files) of `dataset` whose footers declare no string or binary views,
    and those that do (delta-rs writes views in a MERGE or OPTIMIZE; its plain writes do not)."""
    plain, views = [], []
    for fragment in dataset.get_fragments():
        (views if any(_is_view(f.type) for f in fragment.physical_schema) else plain).append(fragment)
    return plain, views


def _is_view(arrow_type: pa.DataType) -> bool:
    """Whether `arrow_type` is or holds a string or binary view."""
    if pa.types.is_string_view(arrow_type) or pa.types.is_binary_view(arrow_type):
        return True
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return _is_view(arrow_type.value_type)
    if pa.types.is_struct(arrow_type):
        return any(_is_view(f.type) for f in arrow_type)
    if pa.types.is_map(arrow_type):
        return _is_view(arrow_type.key_type) or _is_view(arrow_type.item_type)
    return False


def _local_filesystem(path: str, table: DeltaTable) -> pa_fs.FileSystem | None:
    """pyarrow's own local filesystem rooted at the table folder, when every data file of this
    version is logged as a plain path under that folder; else None (delta-rs's filesystem).

    delta-rs's default is a `PyFileSystem` over its Rust store: pyarrow's I/O threads call it
    through Python, taking the GIL for every read. Besides the cost, a read-ahead still under way
    when the interpreter shuts down then tries to take the GIL, is ended by Python and aborts the
    process ("terminate called without an active exception", exit -6, seen in a CI run after a
    step had printed its result). The native filesystem reads without Python."""
    logged = pa.table(table.get_add_actions(flatten=True)).column("path").to_pylist()  # as in the log
    plain = all("%" not in f and "://" not in f and not f.startswith("/") for f in logged)
    return pa_fs.SubTreeFileSystem(path, pa_fs.LocalFileSystem()) if plain else None


def read_arrow(path: str | Path, columns: list[str] | None = None, version: int | None = None) -> pa.Table:
    """One version (default: the latest) of the Delta table at local folder `path` as an Arrow
    table, read through `_local_filesystem` (see there why never through delta-rs's Python one):
    for checks and tools that want a table's rows without an engine session."""
    path = str(Path(path).absolute())
    table = DeltaTable(path, version=version)
    return table.to_pyarrow_dataset(filesystem=_local_filesystem(path, table)).to_table(columns=columns)


@dataclass(frozen=True)
class Maintained:
    """What `maintain` did to one table."""

    properties_set: bool  # its retention properties were changed (a SET TBLPROPERTIES commit)
    files_removed: int  # data files VACUUM deleted


def maintain(path: str | Path, properties: dict[str, str], retain_hours: int) -> Maintained:
    """Retention maintenance of the local Delta table at `path`, whichever engine wrote it:

    1. set `properties` where the table's differ (its log and deleted-file retention);
    2. VACUUM, full (as Spark's VACUUM: files no retained version reads, tombstoned or left by a
       killed write, older than `retain_hours`);
    3. write a checkpoint, then remove the log entries older than the log retention, and the
       checksum files of what was removed (`_remove_orphan_checksums`).

    Each commit names the data commit it follows (`maintenance_metadata`), so the table's version
    and last commit, as runs compare them, do not move. Safe to stop at any point: a file is
    deleted only when no version within the retention reads it, and the log only up to a
    checkpoint. The caller holds the warehouse's lock (no writer runs meanwhile)."""
    path = str(Path(path).absolute())
    data = DeltaRsTables(session=None).last_commit(path)
    if data is None:
        raise EngineError(f"{path}: no Delta table to maintain")
    commit = _commit_properties(None, maintenance_metadata(data))
    table = DeltaTable(path)
    configured = table.metadata().configuration
    changed = any(configured.get(k) != v for k, v in properties.items())
    if changed:
        table.alter.set_table_properties(properties, commit_properties=commit)
        table = DeltaTable(path)
    removed = table.vacuum(retention_hours=retain_hours, dry_run=False, full=True, commit_properties=commit)
    table = DeltaTable(path)
    table.create_checkpoint()
    table.cleanup_metadata()
    _remove_orphan_checksums(Path(path))
    return Maintained(properties_set=changed, files_removed=len(removed))


def _remove_orphan_checksums(folder: Path) -> None:
    """Remove the checksum files the spark engine's writers leave beside what delta-rs just
    deleted, which delta-rs does not know of: Hadoop's `.<file>.crc` of a deleted data or log
    file, and Delta's `<version>.crc` of a log entry that expired. Left alone they would pile up,
    several per commit, which is what retention is for."""
    log = folder / "_delta_log"
    for crc in folder.rglob("*.crc"):
        if crc.name.startswith(".") and not crc.with_name(crc.name[1:-4]).exists():
            crc.unlink(missing_ok=True)  # Hadoop's checksum of a file that is gone
        elif crc.parent == log and crc.stem.isdigit() and not crc.with_suffix(".json").exists():
            crc.unlink(missing_ok=True)  # Delta's checksum of a version whose log entry expired
            crc.with_name(f".{crc.name}.crc").unlink(missing_ok=True)


def commit_times(path: str | Path) -> list[tuple[str, dt.datetime]]:
    """Every commit still in the local table's log as (operation, time in UTC), newest first."""
    return [
        (h["operation"], dt.datetime.fromtimestamp(h["timestamp"] / 1000, dt.timezone.utc))
        for h in DeltaTable(str(Path(path).absolute())).history()
    ]


class DeltaRsTables:
    """`Tables` with delta-rs, for local folders, on a SQLFrame DuckDB session.

    `connection` is the session's DuckDB connection (default: the session's own); tables read
    are registered on it. Calls that run DuckDB queries hold one lock, as SQLFrame keeps a
    session's last result on the session."""

    def __init__(self, session: Any, connection: Any = None) -> None:
        self.session = session  # None: read the logs only (storage.tables before a session exists)
        self.connection = connection if connection is not None or session is None else session._conn
        self._lock = threading.RLock()
        self._views: dict[tuple[str, str, int], str] = {}  # (path, table id, version) -> view
        self._arrow_parts: dict[str, int] = {}  # view -> the Arrow objects registered under it
        self._feeds = itertools.count()

    @staticmethod
    def _path(name: str) -> str:
        if "://" in name or (not name.startswith((".", "/")) and name.count(".") == 2 and "/" not in name):
            raise EngineError(
                f"{name}: the duckdb engine reads and writes local Delta folders only "
                "(a catalog table needs the spark engine)"
            )
        return str(Path(name).absolute())

    def exists(self, name: str) -> bool:
        from nyc911lib.io.storage import has_commit  # noqa: PLC0415 - storage calls this module

        return has_commit(self._path(name))

    # --- reading ---------------------------------------------------------------------------

    def _view(self, path: str, table: DeltaTable) -> str:
        """The DuckDB view of `table` (one version of it), registered once."""
        table_id, version = table.metadata().id, table.version()
        key = (path, table_id, version)
        with self._lock:
            view = self._views.get(key)
            if view is None:
                digest = hashlib.sha1(path.encode()).hexdigest()[:10]
                view = f"delta_{digest}_{table_id.replace('-', '')[:12]}_v{version}"
                self._register_view(view, *self._datasets(path, table))
                self._views[key] = view
        return view

    @staticmethod
    def _datasets(path: str, table: DeltaTable) -> list[Any]:
        """One version of `table` as Arrow datasets DuckDB scans: the files with plain strings, and
        those declaring string views read as views (delta-rs's MERGE and OPTIMIZE write them).

        A dataset of plain strings over a views file fails a pushed-down string filter (`equal`
        has no kernel for string and string_view), and DuckDB pushes no filter at all into a
        dataset with view columns: read as one views dataset, a filter on bronze's batch id or on
        silver's weeks read every file (and materializing views was 6x slower). Apart, DuckDB
        pushes filters into the plain files (most of a table: what full writes wrote) and reads
        the few rewritten ones whole."""
        plain = _arrow_schema(table)
        dataset = table.to_pyarrow_dataset(schema=plain, filesystem=_local_filesystem(path, table))
        plain_files, view_files = _split_by_views(dataset)
        if not view_files:
            return [dataset]
        views = pa.schema(f.with_type(_view_type(f.type)) for f in plain)
        parts = [ds.FileSystemDataset(view_files, views, dataset.format, dataset.filesystem)]
        if plain_files:
            parts.insert(0, ds.FileSystemDataset(plain_files, plain, dataset.format, dataset.filesystem))
        return parts

    def _register_view(self, view: str, *parts: Any) -> None:
        """A DuckDB view over Arrow `parts` (same columns; UNION ALL), which SQLFrame's `table()`
        resolves with its columns (a registered Arrow object alone is in DuckDB's `temp` catalog,
        where SQLFrame finds none; and `SELECT *` over one leaves SQLFrame with the single column
        `*`). A void column (DuckDB type NULL, which SQLFrame cannot parse) is read as string."""
        selects = []
        for i, data in enumerate(parts):
            name = f"{view}_arrow" if i == 0 else f"{view}_arrow{i}"
            self.connection.register(name, data)
            columns = ", ".join(
                f"CAST(NULL AS VARCHAR) AS {_quote(f.name)}" if pa.types.is_null(f.type) else _quote(f.name)
                for f in data.schema
            )
            selects.append(f'SELECT {columns} FROM "{name}"')
        self._arrow_parts[view] = len(parts)
        self.connection.execute(f'CREATE OR REPLACE VIEW "{view}" AS {" UNION ALL ".join(selects)}')

    def read(self, name: str, version: int | None = None) -> Any:
        path = self._path(name)
        view = self._view(path, DeltaTable(path, version=version))
        with self._lock:
            return self.session.table(view)

    def changes(self, name: str, starting_version: int) -> Any:
        path = self._path(name)
        reader = pa.RecordBatchReader.from_stream(
            DeltaTable(path).load_cdf(starting_version=starting_version)
        )
        feed = reader.read_all()  # _commit_version comes as uint64, _commit_timestamp without a time zone
        feed = feed.cast(pa.schema(f.with_type(conform_type(f.type)) for f in feed.schema))
        with self._lock:
            view = f"delta_changes_{hashlib.sha1(path.encode()).hexdigest()[:10]}_{next(self._feeds)}"
            self._views[(path, view, -1)] = view  # dropped with the table
            self._register_view(view, feed)
            return self.session.table(view)

    # --- writing ---------------------------------------------------------------------------

    @staticmethod
    def _batches(reader: Any, table: pa.Schema | None) -> tuple[pa.Schema, pa.RecordBatch | None, Any]:
        """A frame's result `reader` as conformed Arrow batches: (schema, first non-empty batch or
        None when the frame has no rows, iterator of the rest)."""
        schema = target_schema(reader.schema, table)
        batches = (conform(b, schema) for b in reader)
        first = next((b for b in batches if b.num_rows), None)
        return schema, first, batches

    def write(
        self,
        df: Any,
        name: str,
        *,
        mode: str,
        txn: Txn | None = None,
        metadata: dict | None = None,
        replace: Replace | None = None,
        properties: dict[str, str] | None = None,
        cluster_by: tuple[str, ...] = (),
    ) -> bool:
        if mode not in ("overwrite", "append"):
            raise ValueError(f"write mode must be 'overwrite' or 'append', not {mode!r}")
        path = self._path(name)
        existing = DeltaTable(path) if self.exists(name) else None
        if existing is not None and _committed(existing, txn):
            return False
        keep_schema = existing is not None and (mode == "append" or replace is not None)
        options: dict[str, Any] = {"mode": mode}
        if existing is None:
            options["configuration"] = properties or None
        elif replace is not None:
            options["predicate"] = replace_predicate(replace, _quote)
        else:
            options["schema_mode"] = "merge" if mode == "append" else "overwrite"
        # The reader is closed however the write ends: a DuckDB result left open (a write that
        # failed half-way) can crash the process at exit, as an early-stopped scan does.
        if cluster_by:
            df = df.orderBy(*cluster_by)
        with self._lock, closing(df.toArrow(batch_size=BATCH_ROWS)) as reader:
            schema, first, rest = self._batches(reader, _arrow_schema(existing) if keep_schema else None)
            if first is None and existing is not None and mode == "append":
                return False  # Spark writes no commit for no rows appended; delta-rs would
            batches: Iterator[pa.RecordBatch] = iter([]) if first is None else _chain(first, rest)
            write_deltalake(
                path,
                pa.RecordBatchReader.from_batches(schema, batches),
                commit_properties=_commit_properties(txn, metadata),
                writer_properties=WRITER,
                target_file_size=TARGET_FILE_BYTES,
                **options,
            )
        return True

    def merge(
        self,
        name: str,
        rows: Any,
        *,
        on: tuple[str, ...],
        values: tuple[str, ...],
        txn: Txn,
        metadata: dict | None = None,
        within: Replace | None = None,
    ) -> None:
        path = self._path(name)
        table = DeltaTable(path)
        if _committed(table, txn):
            return
        schema = _arrow_schema(table)
        with self._lock:
            source = rows.toArrow()
        missing = [f.name for f in schema if f.name not in source.column_names]
        if missing:  # delta-rs would keep the target's values there; delta-spark refuses such a MERGE
            raise ValueError(f"{name}: the MERGE rows lack the table's columns {missing}")
        source = pa.Table.from_batches(  # in the table's types; extra columns dropped, as Spark ignores them
            [conform(b, schema) for b in source.to_batches()], schema=schema
        )
        if source.num_rows == 0:
            return
        match = " AND ".join(f"t.{_quote(k)} = s.{_quote(k)}" for k in on)
        if within is not None:
            match += f" AND ({replace_predicate(within, lambda column: 't.' + _quote(column))})"
        differs = " OR ".join(f"(t.{_quote(c)} IS DISTINCT FROM s.{_quote(c)})" for c in values) or "false"
        (
            table.merge(
                source=source,
                predicate=match,
                source_alias="s",
                target_alias="t",
                writer_properties=WRITER,
                commit_properties=_commit_properties(txn, metadata),
            )
            .when_matched_update_all(predicate=differs)
            .when_not_matched_insert_all()
            .execute()
        )  # a MERGE that changes no row commits nothing (delta-rs 1.6, checked in the tests)

    def zorder(self, name: str, columns: list[str], metadata: dict | None = None) -> None:
        DeltaTable(self._path(name)).optimize.z_order(
            columns, writer_properties=WRITER, commit_properties=_commit_properties(None, metadata)
        )

    def drop(self, name: str) -> None:
        path = self._path(name)
        with self._lock:
            for key in [k for k in self._views if k[0] == path]:
                view = self._views.pop(key)
                self.connection.execute(f'DROP VIEW IF EXISTS "{view}"')
                for i in range(self._arrow_parts.pop(view, 1)):
                    self.connection.unregister(f"{view}_arrow" if i == 0 else f"{view}_arrow{i}")
        shutil.rmtree(path, ignore_errors=True)

    # --- the log ---------------------------------------------------------------------------

    def version(self, name: str) -> int | None:
        found = self.last_commit(name)
        return found.version if found else None

    def last_commit(self, name: str) -> Commit | None:
        if not self.exists(name):
            return None
        table = DeltaTable(self._path(name))
        return last_data_commit(lambda limit: [{"userMetadata": None, **h} for h in table.history(limit)])

    def table_id(self, name: str) -> str:
        return DeltaTable(self._path(name)).metadata().id

    def size_bytes(self, name: str) -> int:
        if not self.exists(name):
            return 0
        files = pa.table(DeltaTable(self._path(name)).get_add_actions(flatten=True))
        return sum(files.column("size_bytes").to_pylist()) if files.num_rows else 0


def _chain(first: pa.RecordBatch, rest: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    yield first
    yield from rest
