"""The one SparkSession factory: Delta-enabled local sessions, the active session on Databricks."""

from __future__ import annotations

import contextlib
import math
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from delta import configure_spark_with_delta_pip
from pyspark.sql import SparkSession

from nyc911lib.config import PerformanceSettings
from nyc911lib.engine import is_databricks, require_java
from nyc911lib.spark_conf import (
    LARGE_INPUT_DRIVER_MEMORY,
    LOCAL_CONF,
    QUICK_START_JAVA_OPTIONS,
    delta_jars,
)

LOG4J_CONF = Path(__file__).resolve().parent / "log4j2.properties"


def spark_log_path() -> Path:
    """Where the local driver JVM writes its own output (Java warnings, Spark's log):
    `NYC911_SPARK_LOG`, else `nyc911-spark-<uid>.log` in the temporary folder."""
    default = Path(tempfile.gettempdir()) / f"nyc911-spark-{os.getuid()}.log"
    return Path(os.environ.get("NYC911_SPARK_LOG") or default)


@contextlib.contextmanager
def jvm_output_to(log: Path) -> Iterator[None]:
    """Point this process's stdout and stderr (file descriptors 1 and 2) at `log` for the block.

    The driver JVM inherits them when it starts: started inside this block, its warnings (`Using
    incubator modules`), Spark's start-up lines and every later log line go to `log` and never
    to the terminal or a notebook's output, where errors must stay one line.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved = os.dup(1), os.dup(2)
    target = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.dup2(target, 1)
        os.dup2(target, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, target):
            os.close(fd)


_SESSION_LOCK = threading.Lock()


def get_spark(app_name: str = "nyc911", *, quick_start: bool = False) -> SparkSession:
    """Return the session to use: the active one on Databricks, else a local Delta session.

    Locally the Delta jars come from `.jars/` when `make` fetched them, else through Spark's own
    Maven resolution on first use (cached under ~/.ivy2*); no jar is committed. The driver JVM's
    own output goes to `spark_log_path()` (warnings and errors), never to the terminal, and
    calling it twice returns the same session. `quick_start` starts the driver JVM with
    QUICK_START_JAVA_OPTIONS (small inputs).
    """
    with _SESSION_LOCK:  # gold's writer threads ask for it at once: one session, made once
        return _get_or_create(app_name, quick_start)


def _get_or_create(app_name: str, quick_start: bool) -> SparkSession:
    # getActiveSession is per thread: a new thread sees None, so the process-wide session is
    # looked up too (calling the builder again would re-apply its settings to the live session).
    active = SparkSession.getActiveSession() or SparkSession._instantiatedSession
    if active is not None or is_databricks():
        return active or SparkSession.builder.getOrCreate()
    require_java()
    builder = SparkSession.builder.appName(app_name).master(os.environ.get("NYC911_MASTER", "local[2]"))
    for key, value in LOCAL_CONF.items():
        builder = builder.config(key, value)
    builder = builder.config("spark.sql.shuffle.partitions", os.environ.get("NYC911_SHUFFLE_PARTITIONS", "4"))
    java_options = f"-Dlog4j.configurationFile=file:{LOG4J_CONF}"
    if quick_start:
        java_options += f" {QUICK_START_JAVA_OPTIONS}"
    builder = builder.config("spark.driver.extraJavaOptions", java_options)
    if quick_start:  # a cluster's executors (NYC911_MASTER) live as short as the driver
        builder = builder.config("spark.executor.extraJavaOptions", QUICK_START_JAVA_OPTIONS)
    else:
        builder = builder.config("spark.driver.memory", LARGE_INPUT_DRIVER_MEMORY)
    jars = delta_jars()
    if jars:
        builder = builder.config("spark.jars", ",".join(str(p) for p in jars))
    else:
        builder = configure_spark_with_delta_pip(builder)
    with jvm_output_to(spark_log_path()):
        spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(os.environ.get("NYC911_SPARK_LOG_LEVEL", "WARN"))
    return spark


def shuffle_partitions_for(data_bytes: int, settings: PerformanceSettings) -> int:
    """Shuffle partitions for data of this size: one per `shuffle_partition_mb`, at least
    `min_shuffle_partitions` (the small-data setting, which so switches off as data grows)."""
    per_partition = settings.shuffle_partition_mb * 2**20
    return max(settings.min_shuffle_partitions, math.ceil(data_bytes / per_partition))


def size_shuffles(spark: SparkSession, data_bytes: int, settings: PerformanceSettings) -> int:
    """Set the session's shuffle partitions for `data_bytes` of input, unless the user fixed them
    with NYC911_SHUFFLE_PARTITIONS, and its file splits to `shuffle_partition_mb`; return the
    shuffle partitions now in force."""
    if "NYC911_SHUFFLE_PARTITIONS" not in os.environ:
        spark.conf.set("spark.sql.shuffle.partitions", str(shuffle_partitions_for(data_bytes, settings)))
    # Files are read in splits of the same size (Spark's default, 128 MB of Parquet, became
    # 500-800 MB partitions of rows in memory at 1,000x the export).
    spark.conf.set("spark.sql.files.maxPartitionBytes", str(int(settings.shuffle_partition_mb * 2**20)))
    return int(spark.conf.get("spark.sql.shuffle.partitions"))
