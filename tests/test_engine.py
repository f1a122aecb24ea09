"""nyc911lib.engine: what the duckdb engine changes in SQLFrame (the default engine's process)."""

from __future__ import annotations

import collections
import copy
import zlib
from dataclasses import replace

import pyspark.sql.functions as F
import pytest
from sqlframe.base.dataframe import BaseDataFrame

from nyc911lib import engine

# Two frames over the view `one_row` whose CTEs SQLFrame 4.10.0 names alike: it names the CTE
# `SELECT v, <tag> AS tag FROM t38106901` "t" + CRC32 cut to 8 digits, "t35122057" for both tags
# (found by trying tags 1, 2, 3, ...).
COLLIDING_TAGS = (14627, 20563)


def _tagged_union(spark):
    engine.connection().execute("CREATE OR REPLACE VIEW one_row AS SELECT 1 AS v")
    one = spark.table("one_row")
    tagged = [one.withColumn("tag", F.lit(tag)).where(F.col("v") > 0) for tag in COLLIDING_TAGS]
    return tagged[0].union(tagged[1])


def test_the_colliding_tags_collide_under_sqlframe_s_own_naming():
    names = {
        f"t{zlib.crc32(f'SELECT v, {tag} AS tag FROM t38106901'.encode())}"[:9] for tag in COLLIDING_TAGS
    }
    assert names == {"t35122057"}


@pytest.mark.parametrize(
    ("naming", "tags"),
    [("sqlframe", [14627, 14627]), ("engine", [14627, 20563])],
    ids=["sqlframe's-own-names-answer-from-the-wrong-cte", "the-engine's-names"],
)
def test_two_ctes_whose_sqlframe_names_collide_are_kept_apart(spark, monkeypatch, naming, tags):
    if naming == "sqlframe":  # the defect the engine's naming fixes, with SQLFrame's own naming
        monkeypatch.setattr(BaseDataFrame, "_create_hash_from_expression", engine.sqlframe_cte_hash)
    assert sorted(row.tag for row in _tagged_union(spark).collect()) == tags


def test_equal_ctes_still_share_one_name(spark):
    one = spark.createDataFrame([(1,)], "v int")
    sql = one.union(one).sql(optimize=False)
    assert sql.count(" AS (") == 2, sql  # the VALUES frame once, and the union
    assert engine.cte_name("SELECT 1") == engine.cte_name("SELECT 1") != engine.cte_name("SELECT 2")
    assert len(engine.cte_name("SELECT 1")) == 1 + 2 * engine.CTE_NAME_BYTES


@pytest.mark.parametrize(
    "value",
    [
        {"display_name": "agency"},
        {"line": 1, "col": 7, "start": 0, "end": 6},
        {},
        ["a comment", None, 2, 2.5, True],
        [],
        {"nested": ["a"]},
        [["a"]],
        collections.OrderedDict(a=1),
        ("a", "tuple"),
    ],
    ids=lambda v: type(v).__name__ + str(len(v)),
)
def test_fast_deepcopy_gives_what_deepcopy_gives(value):
    copied = engine.fast_deepcopy(value)
    assert copied == copy.deepcopy(value) and type(copied) is type(value)
    if isinstance(value, (dict, list)):  # a container of its own, down to the nested ones
        assert copied is not value
        inner = [(a, b) for a, b in zip(_items(copied), _items(value), strict=True) if isinstance(b, list)]
        assert all(a is not b for a, b in inner)


def _items(value):
    return list(value.values()) if isinstance(value, dict) else list(value)


def _plan(spark):
    rows = spark.createDataFrame([("EMS", 3), ("FDNY", None)], "agency string, incidents long")
    return (
        rows.withColumn("doubled", F.col("incidents") * 2)
        .where(F.col("agency") != "NYPD")
        .groupBy("agency")
        .agg(F.sum("doubled").alias("total"))
        .select("agency", F.coalesce("total", F.lit(0)).alias("total"))
    )


def test_plans_are_copied_cheaply_on_the_checked_versions(spark):
    import sqlglot.expressions.core as sqlglot_core  # noqa: PLC0415

    assert sqlglot_core.deepcopy is engine.fast_deepcopy, (
        "the plan-copy speed-ups are off: check nyc911lib.engine._copy_plans_without_waste against "
        "this sqlglot/SQLFrame and update PLAN_COPY_CHECKED"
    )
    plan = _plan(spark).expression
    copied = plan.copy()
    assert copied == plan and copied.sql() == plan.sql()
    pairs = list(zip(copied.walk(), plan.walk(), strict=True))
    assert any(b._meta for _, b in pairs)  # the plan's nodes carry meta: it was copied
    for a, b in pairs:
        assert a is not b and a.meta == b.meta
        assert b._meta is None or a._meta is not b._meta  # a copy's meta is its own


def test_a_frame_copy_keeps_the_new_plan_and_copies_the_rest(spark):
    frame = _plan(spark)
    plan = frame.expression.where(F.col("total").expression > 1)
    ours = frame.copy(expression=plan)
    sqlframe_s = engine.sqlframe_frame_copy(frame, expression=plan)
    assert ours.expression is plan  # given: not copied only to be replaced
    assert ours.sql(optimize=False) == sqlframe_s.sql(optimize=False)
    assert sorted(r.agency for r in ours.collect()) == ["EMS"]
    kept = ours.copy()
    assert kept.expression is not ours.expression and kept.expression == ours.expression


def test_duckdb_memory_limit_and_spill_folder_come_from_the_params(spark, params, tmp_path):
    """DuckDB's own defaults are 80 % of the machine's memory and a `.tmp` folder in the current
    directory; the session takes `performance.duckdb_memory_limit_gb` and the warehouse's folder."""
    limited = replace(
        params.with_warehouse(tmp_path / "it's a warehouse"),
        performance=replace(params.performance, duckdb_memory_limit_gb=1.5),
    )
    settings = "SELECT current_setting('memory_limit'), current_setting('temp_directory')"
    try:
        engine.session(params=limited)
        assert engine.connection().execute(settings).fetchall()[0] == (
            "1.5 GiB",
            str(tmp_path / "it's a warehouse" / ".duckdb-spill"),
        )
    finally:
        engine.session(params=params)
    assert engine.connection().execute(settings).fetchall()[0][0] == "3.0 GiB"
