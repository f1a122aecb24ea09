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


@dataclass(frozen=True)
class Commit:
    """A table's latest commit: its version and its userMetadata parsed as a JSON object (None
    when absent or not a JSON object)."""

    version: int
    metadata: dict | None


def metadata_of(text: str | None) -> dict | None:
    """A commit's userMetadata as a JSON object; None when absent or not a JSON object."""
    try:
        value = json.loads(text) if text else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


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
        replace: DateRange | None = None,
        properties: dict[str, str] | None = None,
    ) -> Any:
        """One atomic commit of `df` (none for rows appended to a table that are no rows).

        - `mode="overwrite"`: replaces data and schema (or, with `replace`, only the rows in that
          range, keeping the schema); `mode="append"`: adds rows, a new column is added to the
          schema (schema merge), never an error.
        - `txn`: skipped (returns False, nothing written) when the table already committed that
          application id at that version or later; else the commit records it.
        - `metadata`: the commit's userMetadata (JSON, keys sorted).
        - `properties`: table properties set when the table is created (e.g. Change Data Feed).
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
    ) -> None:
        """Upsert `rows` (one per key `on`): insert new keys, update a matched key only when one of
        `values` differs, NULL-safely (an identical row is a no-op). One idempotent commit (none
        when nothing changes; skipped when `txn` was committed), carrying `metadata`."""

    def version(self, name: str) -> int | None:
        """The latest version (None: no table)."""

    def last_commit(self, name: str) -> Commit | None:
        """The latest commit (None: no table)."""

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
