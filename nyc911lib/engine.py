"""Which engine runs the PySpark-API transforms of this process: `duckdb` (the default) or `spark`.

- `duckdb`: the transforms run unchanged through SQLFrame on an in-process DuckDB, and Delta tables
  are read and written by delta-rs. No JVM: seconds on a laptop.
- `spark`: PySpark with delta-spark, locally (`local[2]`), on a standalone cluster
  (`NYC911_MASTER=spark://host:7077`) or on Databricks, where it is always the engine.

The engine is fixed per process, before anything imports pyspark: SQLFrame's `activate()` puts its
own modules in place of `pyspark` for the whole process, so `import pyspark.sql.functions as F` in
every transform module then means the engine's functions. `select()` does that once; the
transform modules are imported after it (`nyc911lib/__init__` imports them lazily, so
`import nyc911lib` itself decides nothing).

This module imports neither pyspark nor SQLFrame at import time, and holds the checks a command
makes before an engine starts (Java for Spark).
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

from nyc911lib.errors import EngineError, JavaNotFoundError

ENGINES = ("duckdb", "spark")
DEFAULT_ENGINE = "duckdb"
ENGINE_ENV = "NYC911_ENGINE"


@dataclass
class _State:
    selected: str | None = None
    connection: Any = None  # the DuckDB connection of the duckdb engine
    session: Any = None  # the SQLFrame session of the duckdb engine
    materialized: dict[int, tuple[str, str]] = field(default_factory=dict)  # frame id -> (kind, name)


_state = _State()
_frame_ids = itertools.count()


def is_databricks() -> bool:
    """True inside a Databricks runtime (it sets DATABRICKS_RUNTIME_VERSION)."""
    return "DATABRICKS_RUNTIME_VERSION" in os.environ


def resolve(name: str | None = None) -> str:
    """The engine a process would run: always `spark` on Databricks; else `name`, else
    `$NYC911_ENGINE`, else `spark` when Spark's own pyspark is already imported (a Spark program
    imported nyc911lib), else `duckdb`. An unknown name is refused with one line."""
    if is_databricks():
        return "spark"
    wanted = name or os.environ.get(ENGINE_ENV)
    if wanted is None and _pyspark_imported() and not _sqlframe_active():
        # Imported by a Spark program that had imported pyspark first (`spark-pipelines run` of
        # pipelines/, a spark-submit job) and asked for no engine: that program's engine.
        return "spark"
    wanted = wanted or DEFAULT_ENGINE
    if wanted not in ENGINES:
        raise EngineError(f"unknown engine '{wanted}'; expected one of {list(ENGINES)}")
    return wanted


def _pyspark_imported() -> list[str]:
    return sorted(m for m in sys.modules if m == "pyspark" or m.startswith("pyspark."))


def select(name: str | None = None) -> str:
    """Fix this process's engine (see `resolve`) and return it; calling it again with the same
    engine (or none) returns it, asking for another one is refused (start a new process)."""
    selected = _state.selected
    wanted = selected if (selected and name is None) else resolve(name)
    if selected is not None:
        if wanted != selected:
            raise EngineError(
                f"this process already runs the {selected} engine; the engine is fixed per process, so "
                f"{wanted} needs a new one (restart the notebook's kernel, or run another command)"
            )
        return selected
    if wanted == "duckdb":
        if _pyspark_imported() and not _sqlframe_active():
            raise EngineError(
                "pyspark was imported before nyc911lib chose the duckdb engine: import nyc911lib and "
                "choose the engine (nyc911lib.session(engine)) before importing pyspark"
            )
        _activate_sqlframe()
    else:
        try:
            import pyspark  # noqa: F401, PLC0415 - only to say clearly when it is missing
        except ImportError:
            raise EngineError(
                "the spark engine needs pyspark and delta-spark: pip install 'nyc911lib[spark]' "
                "(make test installs them)"
            ) from None
    _state.selected = wanted
    return wanted


def name() -> str:
    """The engine of this process (selecting the default one if none was chosen yet)."""
    return _state.selected or select()


def _sqlframe_active() -> bool:
    module = sys.modules.get("pyspark.sql")
    return module is not None and type(module).__module__.startswith("sqlframe")


def _activate_sqlframe() -> None:
    """SQLFrame on our own in-process DuckDB connection, in place of pyspark."""
    import duckdb  # noqa: PLC0415 - the duckdb engine only
    import sqlframe  # noqa: PLC0415

    _state.connection = duckdb.connect()
    sqlframe.activate(engine="duckdb", conn=_state.connection)
    _name_ctes_without_collisions()
    _copy_plans_without_waste()


CTE_NAME_BYTES = 10  # 80 bits: two CTEs of one query share a name once in ~10^24 pairs


def cte_name(sql: str) -> str:
    """The name the duckdb engine gives a CTE whose body is `sql`: "t" + 80 bits of its BLAKE2b."""
    return "t" + hashlib.blake2b(sql.encode("utf-8"), digest_size=CTE_NAME_BYTES).hexdigest()


def _name_ctes_without_collisions() -> None:
    """Give SQLFrame's CTEs collision-free names (a data-integrity fix of SQLFrame 4.10.0).

    SQLFrame names each CTE after a hash of its SQL and takes two CTEs of one name for the same
    CTE: it keeps the first and points the other's readers at it. Its hash is CRC32 cut to 8
    decimal digits (`f"t{zlib.crc32(sql)}"[:9]`), about 4 x 10^7 names, so two different CTEs of
    one query share a name about once in 40 million pairs, and a query has hundreds of pairs. When
    their columns match the query then answers from the wrong CTE, with no error: the union of
    two frames tagged 14627 and 20563 returns 14627 twice (tests/test_engine.py); when they
    differ, DuckDB stops with a binder error (seen once in a `make test` run: "Values list
    "t12457984" does not have a column named "metric""). Every name
    here is `cte_name` of the same SQL text SQLFrame hashes, so equal CTEs still share a name.
    """
    from sqlframe.base.dataframe import BaseDataFrame  # noqa: PLC0415 - the duckdb engine only
    from sqlframe.base.session import _BaseSession  # noqa: PLC0415

    if not callable(getattr(BaseDataFrame, "_create_hash_from_expression", None)):
        raise EngineError(
            "SQLFrame's BaseDataFrame._create_hash_from_expression is gone: check how this SQLFrame "
            "names its CTEs before using it (nyc911lib.engine._name_ctes_without_collisions)"
        )

    def _create_hash_from_expression(self: Any, expression: Any) -> str:
        sql = expression.sql(dialect=_BaseSession().input_dialect)
        return self.session._normalize_string(cte_name(sql))

    global sqlframe_cte_hash  # noqa: PLW0603 - kept for the test that shows the defect
    sqlframe_cte_hash = BaseDataFrame._create_hash_from_expression
    BaseDataFrame._create_hash_from_expression = _create_hash_from_expression


sqlframe_cte_hash: Any = None  # SQLFrame's own naming, once replaced (tests/test_engine.py)


# The versions whose copying `_copy_plans_without_waste` was checked against (their source read):
# another version keeps its own copying (slower, never wrong) until it is checked too.
PLAN_COPY_CHECKED = {"sqlglot": "30.29.0", "sqlframe": "4.10.0"}
_ATOMIC = frozenset({str, int, float, bool, type(None)})


def fast_deepcopy(value: Any, memo: Any = None) -> Any:
    """`copy.deepcopy`, without its per-item machinery for a dict or list of plain values (str,
    int, float, bool, None), which it copies to an equal, independent container exactly as
    deepcopy would (those values are immutable: deepcopy returns them as they are)."""
    kind = type(value)
    if kind is dict:
        for key, item in value.items():
            if type(key) not in _ATOMIC or type(item) not in _ATOMIC:
                return copy.deepcopy(value, memo)
        return dict(value)
    if kind is list:
        for item in value:
            if type(item) not in _ATOMIC:
                return copy.deepcopy(value, memo)
        return list(value)
    return copy.deepcopy(value, memo)


def _copy_plans_without_waste() -> None:
    """Two exact speed-ups of SQLFrame's planning, which copies its plans (sqlglot trees) at every
    DataFrame operation: on the built-in sample about half of a run's CPU was spent copying.

    - sqlglot's node copy deep-copies each node's `meta` and `comments` with `copy.deepcopy`:
      small dicts and lists of strings and numbers, copied by `fast_deepcopy` to the same result.
    - SQLFrame's `DataFrame.copy(**changes)` copied every attribute, the plan too, then replaced
      the ones in `changes`: it now copies only the attributes it keeps (the same frame results).

    Applied only to the versions of PLAN_COPY_CHECKED (the ones whose code this mirrors)."""
    import sqlglot.expressions.core as sqlglot_core  # noqa: PLC0415 - the duckdb engine only
    from sqlframe.base.dataframe import BaseDataFrame  # noqa: PLC0415

    if {package: version(package) for package in PLAN_COPY_CHECKED} != PLAN_COPY_CHECKED:
        return
    global sqlframe_frame_copy  # noqa: PLW0603 - kept for the test that compares the two
    sqlframe_frame_copy = BaseDataFrame.copy
    sqlglot_core.deepcopy = fast_deepcopy  # the name sqlglot's Expression.__deepcopy__ calls

    def copy_of(self: Any, **changes: Any) -> Any:
        # SQLFrame 4.10.0's BaseDataFrame.copy is `object_to_dict(self, **kwargs)` (each attribute
        # `.copy()`-ed, else `copy.copy`-ed, then `kwargs` over them) with a new join_on_uuid.
        changes["join_on_uuid"] = str(uuid.uuid4())
        kept = {
            k: v.copy() if hasattr(v, "copy") else copy.copy(v)
            for k, v in vars(self).items()
            if k not in changes
        }
        return self.__class__(**kept, **changes)

    BaseDataFrame.copy = copy_of


sqlframe_frame_copy: Any = None  # SQLFrame's own DataFrame.copy, once replaced (tests/test_engine.py)


def connection() -> Any:
    """The DuckDB connection of the duckdb engine (its session's)."""
    if name() != "duckdb":
        raise EngineError(f"no DuckDB connection: this process runs the {name()} engine")
    session()
    return _state.connection


def has_session() -> bool:
    """Whether this process has started its engine's session."""
    return _state.session is not None


def session(engine: str | None = None, params: Any = None) -> Any:
    """The session of this process's engine, selected here if not yet: `engine`, else
    `$NYC911_ENGINE`, else the `engine` of `params` (a `Params`), else duckdb. A SQLFrame DuckDB
    session, or the Spark session of `nyc911lib.spark.get_spark` (the job's own on Databricks)."""
    if engine is None and _state.selected is None and params is not None:
        engine = os.environ.get(ENGINE_ENV) or params.engine
    chosen = select(engine)
    if chosen == "spark":
        from nyc911lib.spark import get_spark  # noqa: PLC0415 - imports pyspark

        if _state.session is None or _state.session.sparkContext._jsc is None:
            _state.session = get_spark(quick_start=params is not None and small_input(params))
        return _state.session
    if _state.session is None:
        from pyspark.sql import SparkSession  # noqa: PLC0415 - SQLFrame's, after select()

        _state.session = SparkSession.builder.getOrCreate()
        # SQLFrame's session is a process singleton: one created before this (code that built a
        # DuckDBSession on a connection of its own) is returned with its connection. Views are
        # registered on the session's connection, or the session could not see them.
        _state.connection = _state.session._conn
        _state.session.conf.set("spark.sql.session.timeZone", "UTC")
    if params is not None:
        _limit_duckdb(params)
    return _state.session


SPILL_DIR = ".duckdb-spill"  # in the local warehouse


def duckdb_spill_dir(params: Any) -> Path:
    """Where the duckdb engine spills what exceeds its memory limit: `<warehouse>/.duckdb-spill`,
    or the system's temporary folder for a warehouse that is not a local folder."""
    return params.warehouse / SPILL_DIR if params.warehouse is not None else Path(tempfile.gettempdir())


def _limit_duckdb(params: Any) -> None:
    """DuckDB's memory limit and spill folder from the params (`performance`)."""
    limit_mb = round(params.performance.duckdb_memory_limit_gb * 1024)
    spill = str(duckdb_spill_dir(params)).replace("'", "''")
    _state.connection.execute(f"SET memory_limit = '{limit_mb}MiB'")
    _state.connection.execute(f"SET temp_directory = '{spill}'")


def small_input(params: Any) -> bool:
    """Whether a local warehouse (its landing folder and bronze) is under
    `performance.quick_start_max_mb`: the spark engine then starts its JVM for a short run."""
    if params.warehouse is None:
        return False
    roots = [params.landing_dir, params.warehouse / "bronze"]
    size = sum(p.stat().st_size for root in roots if root.is_dir() for p in root.rglob("*") if p.is_file())
    return size <= params.performance.quick_start_max_mb * 2**20


# --- Frames: materialize between steps --------------------------------------------------------
# Spark caches a frame it is told to persist. SQLFrame has no cache: every action re-runs (and
# re-generates the SQL of) the whole lazy chain, which costs seconds on a deep one. A frame used
# several times is therefore materialized: into a table of the session's DuckDB (duckdb engine),
# or persisted (spark engine).


def materialize(df: Any) -> Any:
    """`df` computed once: a persisted Spark frame, or a table of the session's in-memory DuckDB
    database. The table is DuckDB's, so it is held within the memory limit and spilled beyond it
    (`_limit_duckdb`): at 1,000x the real export, silver's evaluated rows, held as Arrow in the
    Python process instead, took the process past 18 GB."""
    if name() == "spark":
        return df.persist()
    # The statements SQLFrame's own DuckDB `toArrow` runs for `df` (`DataFrame.sql()` would give
    # them in the input dialect).
    statements = [df.session._to_sql(e) for e in df._get_expressions(optimize=False)]
    table = f"nyc911_frame_{next(_frame_ids)}"
    con = connection()
    for statement in statements[:-1]:
        con.execute(statement)
    con.execute(f'CREATE TABLE "{table}" AS {statements[-1]}')
    frame = session().table(table)
    _state.materialized[id(frame)] = ("TABLE", table)
    return frame


def from_arrow(table: Any) -> Any:
    """An Arrow table (or dataset, or a RecordBatchReader: scanned once) as a DataFrame of the
    duckdb engine, without a copy: a view on the DuckDB connection (dropped by `release`)."""
    view = f"nyc911_frame_{next(_frame_ids)}"
    con = connection()
    con.register(f"{view}_arrow", table)
    # A view, read with `table()`: SQLFrame then knows the columns (a `session.sql` frame over the
    # registered Arrow data reports its columns as ['*']).
    con.execute(f'CREATE OR REPLACE VIEW "{view}" AS SELECT * FROM "{view}_arrow"')
    frame = session().table(view)
    _state.materialized[id(frame)] = ("VIEW", view)
    return frame


def to_pandas(df: Any) -> Any:
    """A small result as pandas, shaped as Spark's `toPandas` shapes it on both engines: dates as
    `datetime.date` objects, timestamps as naive datetime64 in UTC, integers as int64 (a column
    with NULLs as float64)."""
    if name() == "spark":
        return df.toPandas()
    frame = df.toArrow().to_pandas(date_as_object=True)
    for column in frame.columns:
        if hasattr(frame[column].dtype, "tz") and frame[column].dtype.tz is not None:
            frame[column] = frame[column].dt.tz_convert("UTC").dt.tz_localize(None)
    return frame


def release(df: Any) -> None:
    """Free what `materialize` kept for `df` (nothing for a frame it did not make)."""
    if name() == "spark":
        df.unpersist()
        return
    made = _state.materialized.pop(id(df), None)
    if made is not None:
        kind, relation = made
        connection().execute(f'DROP {kind} IF EXISTS "{relation}"')
        if kind == "VIEW":
            connection().unregister(f"{relation}_arrow")


# --- Java, for the spark engine ----------------------------------------------------------------

MIN_JAVA = 17
JAVA_HELP = (
    "Spark needs Java {min}+ and {found}. Install one, e.g. `sudo apt-get install "
    "openjdk-17-jre-headless` (Debian/Ubuntu), `brew install openjdk@17` (macOS) or "
    "`conda install -c conda-forge openjdk=17`, then make sure `java` is on PATH or JAVA_HOME is set "
    "(or use the default engine, duckdb, which needs no Java)."
)


def java_major_version(java: str | None = None) -> int | None:
    """The major version of `java` (JAVA_HOME first, then PATH), or None when there is none."""
    if java is None:
        home = os.environ.get("JAVA_HOME")
        candidate = os.path.join(home, "bin", "java") if home else None
        java = candidate if candidate and os.path.exists(candidate) else shutil.which("java")
    if not java:
        return None
    try:
        out = subprocess.run([java, "-version"], check=False, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2)) if major == 1 and match.group(2) else major


def require_java(java: str | None = None) -> int:
    """Fail fast, with install instructions, when Java 17+ is missing (the spark engine only)."""
    major = java_major_version(java)
    if major is None:
        raise JavaNotFoundError(JAVA_HELP.format(min=MIN_JAVA, found="no `java` was found"))
    if major < MIN_JAVA:
        raise JavaNotFoundError(JAVA_HELP.format(min=MIN_JAVA, found=f"found Java {major}"))
    return major
