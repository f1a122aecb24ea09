"""Checking the quality rules before they run: every engine parses each condition as Spark SQL and
checks its columns; the duckdb engine also refuses what DuckDB would compute differently from
Spark (`nyc911lib.rules.duckdb`). Called by silver before it reads anything."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any

from nyc911lib.config import QualityRule
from nyc911lib.engine import ENGINES
from nyc911lib.errors import EngineError, QualityRuleError
from nyc911lib.rules.duckdb import DuckDBCheck
from nyc911lib.schema import BRONZE_SOURCE_NAMES

# --- Checking the rules at load -----------------------------------------------------------------
# Rules are Spark SQL run through F.expr. On the duckdb engine SQLFrame parses each condition with
# sqlglot (Spark dialect) and generates DuckDB SQL from it: a function then either means in DuckDB
# what it means in Spark, or it does not (dayofweek counts Monday as 1 there, 2 on Spark). So the
# duckdb engine runs only the operators and functions below, each verified on both engines by
# tests/test_quality.py (whose probe rows run in the duckdb and in the spark test process).


def check_quality_rules(
    rules: Sequence[QualityRule],
    engine_name: str,
    columns: Mapping[str, str] | Sequence[str] | None = None,
) -> None:
    """Refuse a rule the engine cannot run as Spark would, with a `QualityRuleError` of one line
    naming the rule, the construct and what to do. `build_silver` calls it before it reads anything.

    Every engine: the condition must parse as one Spark SQL expression (sqlglot in the Spark
    dialect: the parser SQLFrame uses for F.expr), and every column it names must be one the rules
    see, ignoring case as Spark does: `columns` (name -> Spark type such as `bigint`, or only
    names), by default `silver_rule_columns()`; `_raw.<field>` must be a field of `_raw`.

    duckdb engine, deny by default: every node of the condition must be one of `DUCKDB_OPERATORS`
    or `DUCKDB_FUNCTIONS`, each verified to give Spark's results there (NULLs included), given
    arguments of the types it takes. DuckDB does not convert types implicitly as Spark does
    (`length(incidents)` is text on Spark, an error there; `NOT incidents` an error on Spark, a
    value there), so a function gets the kind of value it takes, and a comparison two values of one
    kind, or a number or a date and a text literal (`week_start_date >= '2020-01-01'`), which both
    engines convert alike. The known traps get their own hint: dayofweek, weekday, `/`,
    lower/upper, floor/ceil, substring, round to digits, casts, regular expressions, LIKE with a
    backslash, isnull(), the clock.

    spark engine: Spark is the reference, so only the parse and the column check run, and only
    where sqlglot is installed (it comes with SQLFrame; a Databricks cluster may lack it, and
    Spark then reports a bad rule itself when it analyses the silver frame, before any write).
    """
    if engine_name not in ENGINES:
        raise EngineError(f"unknown engine '{engine_name}'; expected one of {list(ENGINES)}")
    try:
        import sqlglot  # noqa: PLC0415 - comes with SQLFrame, which the spark engine does not need
    except ImportError:
        if engine_name == "spark":
            return
        raise
    if columns is None:
        columns = silver_rule_columns()
    elif not isinstance(columns, Mapping):
        columns = dict.fromkeys(columns, "")
    for rule in rules:
        tree = _parse_condition(sqlglot, rule)
        _check_columns(sqlglot.exp, rule, tree, columns)
        if engine_name == "duckdb":
            DuckDBCheck(sqlglot.exp, rule, columns).condition(tree)


@functools.cache
def silver_rule_columns() -> dict[str, str]:
    """The columns a rule sees (name -> Spark type): those of `typed_e2e` applied to an empty
    bronze frame on this process's engine (worked out once per process)."""
    from nyc911lib import engine  # noqa: PLC0415 - the engine of the process, chosen by now
    from nyc911lib.transforms.silver import typed_e2e  # noqa: PLC0415

    text = (*BRONZE_SOURCE_NAMES, "_corrupt_record", "_source_file", "_source_kind", "_batch_id")
    ddl = ", ".join(f"{c} string" for c in text) + ", _ingested_at timestamp, _line_number bigint"
    typed = engine.session().createDataFrame([], ddl).transform(typed_e2e({}, {}, ""))
    return {f.name: f.dataType.simpleString() for f in typed.schema.fields}


def _parse_condition(sqlglot: Any, rule: QualityRule) -> Any:
    """The condition as a sqlglot expression, or a one-line refusal with the parser's first line."""

    def refused(reason: str) -> QualityRuleError:
        return QualityRuleError(
            f"quality rule '{rule.name}': its condition does not parse as Spark SQL: {reason}"
        )

    exp = sqlglot.exp
    try:
        tree = sqlglot.parse_one(rule.condition, read="spark")
    except sqlglot.errors.SqlglotError as exc:
        lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in str(exc).splitlines()]
        raise refused(next((line for line in lines if line), type(exc).__name__)) from None
    if isinstance(tree, exp.Alias):  # `incidents > 0 ok` reads as `incidents > 0 AS ok`
        raise refused(f"unexpected '{tree.alias}' after `{tree.this.sql('spark')}`")
    if not isinstance(tree, exp.Condition) or isinstance(tree, exp.Query):
        raise refused(f"one expression expected, got `{tree.sql('spark')}`")
    return tree


def _check_columns(exp: Any, rule: QualityRule, tree: Any, columns: Mapping[str, str]) -> None:
    """Every column the condition names is one of `columns` (a struct's field: one of its fields)."""
    types = {name.lower(): kind for name, kind in columns.items()}
    for column in tree.find_all(exp.Column):
        parts = [part.name for part in column.parts]
        kind = types.get(parts[0].lower())
        if kind is None or (len(parts) > 1 and not kind.startswith("struct<")):
            raise QualityRuleError(
                f"quality rule '{rule.name}' refers to column '{'.'.join(parts)}', which silver rows do "
                f"not have; they have: {list(columns)}"
            )
        fields = _struct_fields(kind) if len(parts) > 1 else []
        if fields and (len(parts) > 2 or parts[1].lower() not in {f.lower() for f in fields}):
            raise QualityRuleError(
                f"quality rule '{rule.name}' refers to column '{'.'.join(parts)}', which silver rows do "
                f"not have; the fields of {parts[0]} are: {fields}"
            )


def _struct_fields(kind: str) -> list[str]:
    """The field names of a type string `struct<a:string, b:array<string>>` (top level)."""
    body, fields, depth, start = kind[len("struct<") : -1], [], 0, 0
    for i, char in enumerate(f"{body},"):
        if char in "<(":
            depth += 1
        elif char in ">)":
            depth -= 1
        elif char == "," and depth == 0:
            fields.append(body[start:i].split(":", 1)[0].strip())
            start = i + 1
    return fields
