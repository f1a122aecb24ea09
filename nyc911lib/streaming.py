"""Incremental runs with Structured Streaming: the landing-folder source, the bronze table as a
source, and `availableNow` micro-batches handled by `foreachBatch` with a checkpoint.

A micro-batch whose writes were committed but whose checkpoint was not (a crash in between) is
replayed with the same batch id; every write in a handler carries the transaction id
(`<stream>-<query id>`, batch id), so Delta skips what it already committed.
"""

from __future__ import annotations

from collections.abc import Callable

from pyspark.errors import StreamingQueryException
from pyspark.sql import DataFrame, SparkSession

from nyc911lib import storage
from nyc911lib.config import Params

BINARY_FILE_SCHEMA = "path STRING, modificationTime TIMESTAMP, length BIGINT, content BINARY"
LANDED_GLOB = "*.csv"  # hidden `.part` files of a download or copy in progress never match


def landing_files(spark: SparkSession, params: Params) -> DataFrame:
    """The landing folder as a stream of whole files (path, modificationTime, length, content).

    Locally Spark's binaryFile file source; on Databricks (`ingest_format: cloudFiles`) Auto
    Loader with the same rows, so the bronze handler is the same function.
    """
    if params.ingest_format == "cloudFiles":
        reader = spark.readStream.format("cloudFiles").option("cloudFiles.format", "binaryFile")
    else:
        reader = spark.readStream.format("binaryFile").schema(BINARY_FILE_SCHEMA)
    return reader.option("pathGlobFilter", LANDED_GLOB).load(str(params.landing_dir))


def table_changes(spark: SparkSession, params: Params, layer: str, key: str) -> DataFrame:
    """An append-only Delta table as a stream of its new rows."""
    name = storage.table_name(params, layer, key)
    reader = spark.readStream.format("delta")
    return reader.table(name) if params.catalog else reader.load(name)


Handler = Callable[[DataFrame, int, storage.Txn], None]


def run_available_now(
    spark: SparkSession, stream: DataFrame, name: str, checkpoint: str, handler: Handler
) -> int:
    """Process everything the source has that the checkpoint has not seen, then stop.

    `handler(batch, batch_id, txn)` gets each micro-batch and the transaction id its writes must
    carry. An error in the handler stops the query before its checkpoint commit and is raised
    as is. Returns the number of micro-batches run (0: nothing new, nothing written).
    """
    failure: list[BaseException] = []
    batches: list[int] = []

    def on_batch(batch: DataFrame, batch_id: int) -> None:
        try:
            txn = (f"nyc911-{name}-{storage.stream_query_id(spark, checkpoint)}", batch_id)
            handler(batch, batch_id, txn)
            batches.append(batch_id)
        except BaseException as exc:
            failure.append(exc)
            raise

    query = (
        stream.writeStream.queryName(f"nyc911_{name}")
        .option("checkpointLocation", checkpoint)
        .trigger(availableNow=True)
        .foreachBatch(on_batch)
        .start()
    )
    try:
        query.awaitTermination()
    except StreamingQueryException:
        if failure:
            raise failure[0] from None
        raise
    return len(batches)
