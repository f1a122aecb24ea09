"""The local Spark settings and the Delta jars, without importing pyspark: read by the session
factory (`nyc911lib.spark`) and by the launcher of `spark-pipelines` (`nyc911lib.run.sdp`), which
runs beside the duckdb engine in one process."""

from __future__ import annotations

import os
from importlib.metadata import version
from pathlib import Path

DEFAULT_JARS_DIR = Path(__file__).resolve().parent.parent / ".jars"

# Small-data settings for a laptop: the 911 export is ~12k rows, so the default 200 shuffle
# partitions would mean 200 tiny tasks per shuffle. Override with NYC911_SHUFFLE_PARTITIONS.
LOCAL_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.driver.memory": "2g",
    "spark.databricks.delta.snapshotPartitions": "2",
    "spark.sql.sources.parallelPartitionDiscovery.parallelism": "2",
    "spark.databricks.delta.properties.defaults.enableChangeDataFeed": "false",
    # Table features both engines read and write: delta-rs reads no deletion vectors.
    "spark.databricks.delta.properties.defaults.enableDeletionVectors": "false",
}


def delta_jars(jars_dir: Path | None = None) -> list[Path]:
    """The Delta jars matching the installed pyspark and delta-spark, if `make` fetched them.

    `make` copies exactly these two jars from Maven Central into `.jars/` (git-ignored) with
    Maven's dependency plugin; an empty list means "let Spark resolve them itself".
    """
    jars_dir = jars_dir or Path(os.environ.get("NYC911_JARS_DIR", DEFAULT_JARS_DIR))
    spark_minor = ".".join(version("pyspark").split(".")[:2])
    delta = version("delta-spark")
    wanted = [
        jars_dir / f"delta-spark_{spark_minor}_2.13-{delta}.jar",
        jars_dir / f"delta-storage-{delta}.jar",
    ]
    return wanted if all(p.is_file() for p in wanted) else []


# For a small input the driver JVM's start dominates a run: the C1 compiler only and the serial
# collector start it faster (measured here: session start 11 s -> 6 s) but run long jobs slower,
# so they are used for small inputs only (`performance.quick_start_max_mb`).
# C1 alone also shrinks the JVM's code cache to 48 MB, which a run on the real export fills in two
# minutes (the JVM then stops compiling): the cache keeps its usual size.
QUICK_START_JAVA_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -XX:ReservedCodeCacheSize=240m"

# The local driver's heap for a larger input (the local executor runs in it): at 1,000x the
# export a 2 GB heap ran out of space caching silver's partitions (Java heap space, after 31 min).
LARGE_INPUT_DRIVER_MEMORY = "4g"
