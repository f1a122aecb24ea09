"""The Delta table operations every engine provides, as one protocol.

`nyc911lib.io.storage` names tables (a local folder or a Unity Catalog name) and calls these; each
engine has one implementation:

- `nyc911lib.io.delta_spark.DeltaSparkTables`: PySpark + delta-spark (local, a cluster, Databricks);
- `nyc911lib.io.delta_rs.DeltaRsTables`: delta-rs (`deltalake`) under the embedded engine, SQLFrame
  on an in-process DuckDB, for local folders only.

Both read and write the same Delta tables: one engine's table is read, appended to and merged by
the other (the table features both support: no deletion vectors; timestamps as `timestamp` in
UTC, never `timestamp_ntz`; `bigint` stays `bigint`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

Txn = tuple[str, int]  # (application id, version): Delta's idempotent-write transaction identifier


@dataclass(frozen=True)
class DateRange:
    """Rows whose `column` (a date) lies in [low, high], either bound optional: what a ranged
    overwrite (Delta replaceWhere) replaces."""

    column: str
    low: dt.date | None = None
    high: dt.date | None = None


Replace = DateRange | tuple[DateRange, ...]  # a ranged overwrite: the rows in any of the ranges


def replace_predicate(replace: Replace, quote: Callable[[str], str]) -> str:
    """The SQL predicate of a ranged overwrite (`quote` quotes an identifier in the backend's SQL):
    the rows in any of the ranges; `false` for no range."""
    ranges = replace if isinstance(replace, tuple) else (replace,)
    ors = []
    for one in ranges:
        parts = []
        if one.low is not None:
            parts.append(f"{quote(one.column)} >= DATE '{one.low.isoformat()}'")
        if one.high is not None:
            parts.append(f"{quote(one.column)} <= DATE '{one.high.isoformat()}'")
        ors.append(" AND ".join(parts) or "true")
    if not ors:
        return "false"
    return ors[0] if len(ors) == 1 else " OR ".join(f"({o})" for o in ors)


@dataclass(frozen=True)
class Commit:
    """A table's latest data commit: its version and its userMetadata parsed as a JSON object
    (None when absent or not a JSON object); and `head`, the table's latest version, maintenance
    commits included: the version to read for the current data (a maintained table's log may no
    longer hold the data commit's own entry)."""

    version: int
    metadata: dict | None
    head: int = -1  # -1: the same as `version`

    def __post_init__(self) -> None:
        if self.head < 0:
            object.__setattr__(self, "head", self.version)


def metadata_of(text: str | None) -> dict | None:
    """A commit's userMetadata as a JSON object; None when absent or not a JSON object."""
    try:
        value = json.loads(text) if text else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


# Commits that change no row: what retention maintenance writes (`nyc911lib.run.retention`).
# A table's version and last commit, as every run compares them (what gold was built from, what
# silver accounted for), are those of its latest data commit: maintenance leaves a table current.
MAINTENANCE_OPERATIONS = frozenset({"VACUUM START", "VACUUM END", "SET TBLPROPERTIES"})
# The userMetadata key with which a maintenance commit of this project names the data commit it
# follows (the rest of its metadata is that commit's): the data commit stays known after its own
# log entry has expired (a table maintained weekly with no new data for longer than its retention).
DATA_VERSION = "data_version"


def maintenance_metadata(data: Commit) -> dict:
    """The userMetadata of a maintenance commit after the data commit `data`."""
    return {**(data.metadata or {}), DATA_VERSION: data.version}


def latest_data_commit(history: Any) -> Commit | None:
    """The latest data commit, from `history` (newest first: dicts or rows with `version`,
    `operation` and `userMetadata`): the first commit that is not maintenance, or the data commit
    a maintenance commit of this project names; None when the listed commits do not tell."""
    head = None
    for entry in history:
        head = int(entry["version"]) if head is None else head
        metadata = metadata_of(entry["userMetadata"])
        if entry["operation"] not in MAINTENANCE_OPERATIONS:
            return Commit(int(entry["version"]), metadata, head)
        if metadata is not None and isinstance(metadata.get(DATA_VERSION), int):
            rest = {k: v for k, v in metadata.items() if k != DATA_VERSION}
            return Commit(metadata[DATA_VERSION], rest or None, head)
    return None


def last_data_commit(history: Callable[[int | None], Sequence[Any]]) -> Commit:
    """A table's latest data commit from its `history(limit)` (newest first; None: all of it):
    the last two commits almost always tell (`latest_data_commit`); after maintenance by another
    tool, the whole log; when only maintenance is left in the log, its latest commit."""
    entries = history(2)
    found = latest_data_commit(entries)
    if found is None:
        entries = history(None)
        found = latest_data_commit(entries)
    return found or Commit(int(entries[0]["version"]), None)


class Tables(Protocol):
    """Delta operations on a table given by its physical name (a local path, or `catalog.schema.
    table` on Databricks). `DataFrame` is the engine's PySpark-API DataFrame."""

    def exists(self, name: str) -> bool:
        """Whether the table has at least one commit (a folder without one is no table)."""

    def read(self, name: str, version: int | None = None) -> Any:
        """The table (at `version`, time travel) as a lazy DataFrame."""

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
    ) -> Any:
        """One atomic commit of `df` (none for rows appended to a table that are no rows).

        - `mode="overwrite"`: replaces data and schema (or, with `replace`, only the rows in that
          range, keeping the schema); `mode="append"`: adds rows, a new column is added to the
          schema (schema merge), never an error.
        - `txn`: skipped (returns False, nothing written) when the table already committed that
          application id at that version or later; else the commit records it.
        - `metadata`: the commit's userMetadata (JSON, keys sorted).
        - `properties`: table properties set when the table is created (e.g. Change Data Feed).
        - `cluster_by`: columns the rows are written in the order of, so each file and row group
          holds a narrow range of them and a read or MERGE filtered by them skips the others.
        """

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
        """Upsert `rows` (one per key `on`): insert new keys, update a matched key only when one of
        `values` differs, NULL-safely (an identical row is a no-op). One idempotent commit (none
        when nothing changes; skipped when `txn` was committed), carrying `metadata`.

        `within`: date ranges of a key column holding every row of `rows`; the MERGE then reads
        only the target's files with rows in them (a target-only condition of the match, which
        both Delta engines skip files by) and rewrites only those it changes."""

    def version(self, name: str) -> int | None:
        """The version of the latest data commit, maintenance skipped (None: no table)."""

    def last_commit(self, name: str) -> Commit | None:
        """The latest data commit, maintenance skipped (None: no table)."""

    def table_id(self, name: str) -> str:
        """The Delta table id (metadata id): a table dropped and created again gets a new one."""

    def size_bytes(self, name: str) -> int:
        """The size of the table's current data files (0: no table)."""

    def zorder(self, name: str, columns: list[str], metadata: dict | None = None) -> None:
        """OPTIMIZE ... ZORDER BY `columns`, one commit carrying `metadata`."""

    def drop(self, name: str) -> None:
        """Remove the table and its history (nothing when it does not exist)."""

    def changes(self, name: str, starting_version: int) -> Any:
        """The Change Data Feed from `starting_version` on, as a DataFrame with `_change_type`,
        `_commit_version` (for tests and readers of silver's restatements)."""
