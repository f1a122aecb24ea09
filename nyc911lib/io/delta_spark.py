"""Delta tables on the spark engine: PySpark + delta-spark (locally, on a cluster, on Databricks).

Implements `nyc911lib.io.tables.Tables`. A local table is a Delta folder; on Databricks the name is a
Unity Catalog `catalog.schema.table`.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession

from nyc911lib.io.tables import Commit, Replace, Txn, last_data_commit, replace_predicate

_USER_METADATA_CONF = "spark.databricks.delta.commitInfo.userMetadata"
_TXN_CONFS = ("spark.databricks.delta.write.txnAppId", "spark.databricks.delta.write.txnVersion")


def _is_catalog_name(name: str) -> bool:
    return not name.startswith("/") and "://" not in name and name.count(".") == 2


def _quote(column: str) -> str:
    """An identifier in Spark SQL."""
    return "`" + column.replace("`", "``") + "`"


@contextlib.contextmanager
def _session_confs(spark: SparkSession, confs: dict[str, str]) -> Iterator[None]:
    """Set session confs for the block only (Delta reads a DML command's transaction id and commit
    metadata from them)."""
    for key, value in confs.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key in confs:
            spark.conf.unset(key)


class DeltaSparkTables:
    """`Tables` with delta-spark."""

    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark

    def _handle(self, name: str) -> DeltaTable:
        if _is_catalog_name(name):
            return DeltaTable.forName(self.spark, name)
        return DeltaTable.forPath(self.spark, name)

    def exists(self, name: str) -> bool:
        if _is_catalog_name(name):
            return self.spark.catalog.tableExists(name)
        from nyc911lib.io.storage import has_commit  # noqa: PLC0415 - storage imports this module

        return has_commit(name)

    def read(self, name: str, version: int | None = None) -> DataFrame:
        reader = self.spark.read if version is None else self.spark.read.option("versionAsOf", version)
        return reader.table(name) if _is_catalog_name(name) else reader.format("delta").load(name)

    def write(
        self,
        df: DataFrame,
        name: str,
        *,
        mode: str,
        txn: Txn | None = None,
        metadata: dict | None = None,
        replace: Replace | None = None,
        properties: dict[str, str] | None = None,
        cluster_by: tuple[str, ...] = (),
    ) -> None:
        if cluster_by:  # each task's file in that order (no shuffle: the layout, not the result)
            df = df.sortWithinPartitions(*cluster_by)
        writer = df.write.format("delta").mode(mode)
        if replace is not None:
            writer = writer.option("replaceWhere", replace_predicate(replace, _quote))
        elif mode == "overwrite":
            writer = writer.option("overwriteSchema", "true")
        else:
            writer = writer.option("mergeSchema", "true")
        if txn is not None:
            writer = writer.option("txnAppId", txn[0]).option("txnVersion", str(txn[1]))
        if metadata is not None:
            writer = writer.option("userMetadata", json.dumps(metadata, sort_keys=True))
        for prop, value in (properties or {}).items():  # `delta.*` options: table properties on create
            writer = writer.option(prop, value)
        if _is_catalog_name(name):
            writer.saveAsTable(name)
        else:
            writer.save(name)

    def merge(
        self,
        name: str,
        rows: DataFrame,
        *,
        on: tuple[str, ...],
        values: tuple[str, ...],
        txn: Txn,
        metadata: dict | None = None,
        within: Replace | None = None,
    ) -> None:
        match = " AND ".join(f"t.`{k}` = s.`{k}`" for k in on)
        if within is not None:
            match += f" AND ({replace_predicate(within, lambda column: 't.' + _quote(column))})"
        differs = " OR ".join(f"NOT (t.`{c}` <=> s.`{c}`)" for c in values)
        confs = {_TXN_CONFS[0]: txn[0], _TXN_CONFS[1]: str(txn[1])}
        if metadata is not None:
            confs[_USER_METADATA_CONF] = json.dumps(metadata, sort_keys=True)
        with _session_confs(self.spark, confs):
            (
                self._handle(name)
                .alias("t")
                .merge(rows.alias("s"), match)
                .whenMatchedUpdateAll(condition=differs)
                .whenNotMatchedInsertAll()
                .execute()
            )

    def version(self, name: str) -> int | None:
        found = self.last_commit(name)
        return found.version if found else None

    def last_commit(self, name: str) -> Commit | None:
        if not self.exists(name):
            return None
        handle, columns = self._handle(name), ("version", "operation", "userMetadata")
        return last_data_commit(lambda limit: handle.history(limit).select(*columns).collect())

    def table_id(self, name: str) -> str:
        return self._handle(name).detail().first()["id"]

    def size_bytes(self, name: str) -> int:
        if not self.exists(name):
            return 0
        return int(self._handle(name).detail().first()["sizeInBytes"])

    def zorder(self, name: str, columns: list[str], metadata: dict | None = None) -> None:
        confs = {_USER_METADATA_CONF: json.dumps(metadata, sort_keys=True)} if metadata is not None else {}
        with _session_confs(self.spark, confs):
            self._handle(name).optimize().executeZOrderBy(*columns)

    def drop(self, name: str) -> None:
        if _is_catalog_name(name):
            self.spark.sql(f"DROP TABLE IF EXISTS {name}")
        else:
            shutil.rmtree(name, ignore_errors=True)

    def changes(self, name: str, starting_version: int) -> DataFrame:
        reader = self.spark.read.format("delta").option("readChangeFeed", "true")
        reader = reader.option("startingVersion", starting_version)
        return reader.table(name) if _is_catalog_name(name) else reader.load(name)
