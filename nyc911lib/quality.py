"""Data-quality rules as data (DLT-expectation style): warn keeps, drop quarantines, fail stops."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame

from nyc911lib.compat import names_where, struct_fields
from nyc911lib.config import QualityRule
from nyc911lib.engine import ENGINES
from nyc911lib.errors import EngineError, QualityRuleError
from nyc911lib.schema import BRONZE_SOURCE_NAMES


def rule_passes(rule: QualityRule) -> Column:
    """TRUE when a row meets the rule; a NULL condition counts as a failure (as it should for
    `incidents > 0` on a NULL count)."""
    return F.coalesce(F.expr(rule.condition), F.lit(False))


def with_quality_results(rules: Sequence[QualityRule]) -> Callable[[DataFrame], DataFrame]:
    """Evaluate every rule on every row.

    Adds `quarantine_reasons` (every failed `drop` rule), `quality_warnings` (every failed `warn`
    rule), `failed_fail_rules` (every failed `fail` rule) and `failed_rules` (all of them).

    One select over the input, so each rule appears twice (in its action's list and in
    `failed_rules`): flag columns computed first would have to be dropped again, and a drop (or
    `df.columns`) makes Spark Connect analyse the plan, which a declarative pipeline cannot do
    while it declares its datasets.
    """

    def failed(action: str | None) -> Column:
        return names_where([(r.name, ~rule_passes(r)) for r in rules if action in (None, r.action)])

    def transform(df: DataFrame) -> DataFrame:
        return df.select(
            "*",
            failed("drop").alias("quarantine_reasons"),
            failed("warn").alias("quality_warnings"),
            failed("fail").alias("failed_fail_rules"),
            failed(None).alias("failed_rules"),
        )

    return transform


def is_quarantined(df: DataFrame) -> Column:
    """Rows that failed at least one `drop` rule."""
    return F.size(df["quarantine_reasons"]) > 0


def quarantine_rows(evaluated: DataFrame) -> DataFrame:
    """Rows failing a drop rule, stored as received (source text) with every reason and lineage."""
    lineage = [c for c in evaluated.columns if c.startswith("_") and c not in ("_raw",)]
    return evaluated.where(is_quarantined(evaluated)).select(
        *struct_fields(evaluated, "_raw"),
        *lineage,
        "quarantine_reasons",
        "quality_warnings",
    )


def rule_metrics(rules: Sequence[QualityRule]) -> Callable[[DataFrame], DataFrame]:
    """Per batch and rule: rows evaluated, passed and failed (long format, one row per rule)."""

    def transform(evaluated: DataFrame) -> DataFrame:
        counts = [
            F.sum(F.array_contains("failed_rules", r.name).cast("long")).cast("long").alias(f"f{i}")
            for i, r in enumerate(rules)
        ]
        per_batch = evaluated.groupBy("_batch_id").agg(F.count(F.lit(1)).alias("rows_evaluated"), *counts)
        stacked = F.explode(
            F.array(
                *[
                    F.struct(
                        F.lit(r.name).alias("rule"),
                        F.lit(r.action).alias("action"),
                        F.lit(r.condition).alias("condition"),
                        F.col(f"f{i}").alias("rows_failed"),
                    )
                    for i, r in enumerate(rules)
                ]
            )
        ).alias("m")
        return per_batch.select(F.col("_batch_id").alias("batch_id"), "rows_evaluated", stacked).select(
            "batch_id",
            F.col("m.rule"),
            F.col("m.action"),
            F.col("m.condition"),
            "rows_evaluated",
            (F.col("rows_evaluated") - F.col("m.rows_failed")).alias("rows_passed"),
            F.col("m.rows_failed"),
        )

    return transform


SCHEMA_DRIFT_RULE = "source_schema_drift"


def schema_drift_metrics(known: Sequence[str]) -> Callable[[DataFrame], DataFrame]:
    """Bronze rows -> a `warn` metric per batch and source column the pipeline does not know:
    the column is kept in bronze (rescued), silver ignores it, and the metrics say so."""

    def transform(bronze: DataFrame) -> DataFrame:
        extra = [c for c in bronze.columns if not c.startswith("_") and c not in known]
        schema = "batch_id STRING, rule STRING, action STRING, condition STRING, rows_evaluated BIGINT, " + (
            "rows_passed BIGINT, rows_failed BIGINT"
        )
        if not extra:
            return bronze.sparkSession.createDataFrame([], schema)
        counts = bronze.groupBy(F.col("_batch_id").alias("batch_id")).agg(
            F.count(F.lit(1)).alias("rows_evaluated"),
            *[F.count(F.col(c)).alias(f"n{i}") for i, c in enumerate(extra)],
        )
        stacked = F.explode(
            F.array(
                *[
                    F.struct(
                        F.lit(f"new source column '{c}' (kept in bronze)").alias("condition"),
                        F.col(f"n{i}").alias("rows_failed"),
                    )
                    for i, c in enumerate(extra)
                ]
            )
        ).alias("m")
        return (
            counts.select("batch_id", "rows_evaluated", stacked)
            .where(F.col("m.rows_failed") > 0)
            .select(
                "batch_id",
                F.lit(SCHEMA_DRIFT_RULE).alias("rule"),
                F.lit("warn").alias("action"),
                F.col("m.condition"),
                "rows_evaluated",
                (F.col("rows_evaluated") - F.col("m.rows_failed")).alias("rows_passed"),
                F.col("m.rows_failed"),
            )
        )

    return transform


# --- Checking the rules at load -----------------------------------------------------------------
# Rules are Spark SQL run through F.expr. On the duckdb engine SQLFrame parses each condition with
# sqlglot (Spark dialect) and generates DuckDB SQL from it: a function then either means in DuckDB
# what it means in Spark, or it does not (dayofweek counts Monday as 1 there, 2 on Spark). So the
# duckdb engine runs only the operators and functions below, each verified on both engines by
# tests/test_quality.py (whose probe rows run in the duckdb and in the spark test process).

DUCKDB_OPERATORS = (
    "= == <> != < <= > >= <=> IS [NOT] DISTINCT FROM",
    "AND OR NOT",
    "IS [NOT] NULL, IS [NOT] TRUE, IS [NOT] FALSE",
    "[NOT] BETWEEN, [NOT] IN (values)",
    "[NOT] LIKE 'pattern' (a text literal without a backslash)",
    "+ - * and unary -",
    "CASE [x] WHEN ... THEN ... ELSE ... END",
    "literals: numbers, 'text', TRUE, FALSE, NULL, DATE 'yyyy-mm-dd', 1.5D, 10L",
)
DUCKDB_FUNCTIONS = (
    "abs",
    "add_months",  # with a whole-number literal count
    "array_contains",
    "array_size",
    "char_length",
    "character_length",
    "coalesce",
    "contains",
    "date_add",  # with a whole-number literal count
    "date_sub",  # with a whole-number literal count
    "datediff",
    "day",
    "dayofmonth",
    "dayofyear",
    "endswith",
    "greatest",
    "if",
    "ifnull",
    "last_day",
    "least",
    "length",
    "ltrim",
    "month",
    "nullif",
    "nvl",
    "quarter",
    "round",  # to a whole number: round(x) or round(x, 0)
    "rtrim",
    "size",
    "startswith",
    "trim",
    "trunc",  # with 'week', 'month', 'quarter' or 'year'
    "weekofyear",
    "year",
)
_TRUNC_UNITS = ("WEEK", "MONTH", "QUARTER", "YEAR")
_DATE_LITERAL = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_COMPARABLE = ("number", "string", "date", "timestamp", "boolean")
_SPARK = "or --engine spark"
_DESCRIBED = {  # a kind of value, as a message names it
    "boolean": "true/false",
    "number": "a number",
    "string": "text",
    "date": "a date",
    "timestamp": "a timestamp",
    "array<string>": "a list of text",
    "array": "a list",
    "struct": "a struct",
    "null": "NULL",
    "other": "a value of another type",
    "any": "a value",
}


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
            _DuckDBCheck(sqlglot.exp, rule, columns).condition(tree)


@functools.cache
def silver_rule_columns() -> dict[str, str]:
    """The columns a rule sees (name -> Spark type): those of `typed_e2e` applied to an empty
    bronze frame on this process's engine (worked out once per process)."""
    from nyc911lib import engine  # noqa: PLC0415 - the engine of the process, chosen by now
    from nyc911lib.silver import typed_e2e  # noqa: PLC0415

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


_KINDS = {
    **dict.fromkeys(("tinyint", "smallint", "int", "integer", "bigint", "long"), "number"),
    **dict.fromkeys(("float", "double", "decimal"), "number"),
    **dict.fromkeys(("string", "varchar", "char"), "string"),
    **dict.fromkeys(("timestamp", "timestamp_ntz", "timestamp_ltz"), "timestamp"),
    "date": "date",
    "boolean": "boolean",
    "array<string>": "array<string>",
    "": "any",  # only the column's name was given
}


def _category(spark_type: str) -> str:
    """A Spark type string as the kind of value the duckdb check reasons about."""
    base = spark_type.lower().split("(", 1)[0].strip()
    if base in _KINDS:
        return _KINDS[base]
    return {"array<": "array", "struct<": "struct"}.get(base[: base.find("<") + 1], "other")


class _DuckDBCheck:
    """The duckdb engine's allowlist for one rule: `kind` gives the kind of value an allowed node
    gives (checking its arguments), and refuses any other node with the rule's one-line error."""

    def __init__(self, exp: Any, rule: QualityRule, columns: Mapping[str, str]) -> None:
        self.exp, self.rule = exp, rule
        self.types = {name.lower(): kind for name, kind in columns.items()}
        e = exp
        comparisons = (e.EQ, e.NEQ, e.GT, e.GTE, e.LT, e.LTE, e.NullSafeEQ, e.NullSafeNEQ)
        of_a_date = (e.Year, e.Month, e.Day, e.DayOfMonth, e.DayOfYear, e.WeekOfYear, e.Quarter)
        # (node classes, the child expressions they may have, the kind of value they give)
        self.allowed: list[tuple[Any, set[str] | None, Callable[[Any], str]]] = [
            (e.Paren, {"this"}, lambda n: self.kind(n.this)),
            (e.Column, None, self._column),
            (e.Null, set(), lambda n: "null"),
            (e.Boolean, set(), lambda n: "boolean"),
            (e.Literal, set(), lambda n: "string" if n.is_string else "number"),
            (e.Concat, {"expressions"}, self._adjacent_literals),
            (e.Cast, {"this", "to"}, self._typed_literal),  # TryCast too
            (comparisons, {"this", "expression"}, lambda n: self._compare(n, n.this, n.expression)),
            (
                e.Between,
                {"this", "low", "high"},
                lambda n: self._compare(n, n.this, n.args["low"], n.args["high"]),
            ),
            (e.In, {"this", "expressions"}, lambda n: self._compare(n, n.this, *n.expressions)),
            ((e.And, e.Or), {"this", "expression"}, lambda n: self._take(n, "boolean", n.this, n.expression)),
            (e.Not, {"this"}, lambda n: self._take(n, "boolean", n.this)),
            (e.Is, {"this", "expression"}, self._is),
            (e.Like, {"this", "expression"}, self._like),
            (
                (e.Add, e.Sub, e.Mul),
                {"this", "expression"},
                lambda n: self._take(n, "number", n.this, n.expression),
            ),
            (e.Neg, {"this"}, lambda n: self._take(n, "number", n.this)),
            (e.Case, {"this", "ifs", "default"}, self._case),
            (e.If, {"this", "true", "false"}, self._if),
            (
                (e.Coalesce, e.Greatest, e.Least),
                {"this", "expressions"},
                lambda n: self._one_kind(n, n.this, *n.expressions),
            ),
            (e.Nullif, {"this", "expression"}, lambda n: self._one_kind(n, n.this, n.expression)),
            (e.Abs, {"this"}, lambda n: self._take(n, "number", n.this)),
            (e.Round, {"this", "decimals"}, self._round),
            (e.ArraySize, {"this"}, lambda n: self._gives("number", self._take(n, "array<string>", n.this))),
            (e.ArrayContains, {"this", "expression"}, self._array_contains),
            (e.DateTrunc, {"this", "unit"}, self._trunc),
            (
                of_a_date,
                {"this"},
                lambda n: self._gives("number", self._take(n, "date", self._date_of(n.this))),
            ),
            (e.DateDiff, {"this", "expression"}, self._datediff),
            ((e.TsOrDsAdd, e.AddMonths), {"this", "expression", "unit"}, self._add),
            (e.LastDay, {"this"}, lambda n: self._take(n, "date", n.this)),
            (e.Length, {"this"}, lambda n: self._gives("number", self._take(n, "string", n.this))),
            (e.Trim, {"this"}, lambda n: self._take(n, "string", n.this)),
            ((e.StartsWith, e.EndsWith, e.Contains), {"this", "expression"}, self._text_test),
        ]

    def condition(self, tree: Any) -> None:
        """Check a whole condition: allowed nodes only, and true/false (or NULL) as its value."""
        kind = self.kind(tree)
        if kind not in ("boolean", "null", "any"):
            raise self._error(
                f"has a condition that gives {_DESCRIBED[kind]}, not true/false: write a test such as "
                f"`{tree.sql('spark')} > 0` or `{tree.sql('spark')} IS NOT NULL`"
            )

    def kind(self, node: Any) -> str:
        """The kind of value `node` gives, once its arguments are checked; refuses unlisted nodes."""
        for classes, children, kind_of in self.allowed:
            if isinstance(node, classes):
                if children is not None and not self._children(node) <= children:
                    break
                return kind_of(node)
        raise self._unlisted(node)

    def _children(self, node: Any) -> set[str]:
        return {
            key
            for key, value in node.args.items()
            if not key.startswith("_") and value and isinstance(value, (self.exp.Expression, list))
        }

    # --- refusals --------------------------------------------------------------------------------

    def _error(self, text: str) -> QualityRuleError:
        return QualityRuleError(f"quality rule '{self.rule.name}' {text}")

    def _differs(self, construct: str, why: str, hint: str) -> QualityRuleError:
        return self._error(
            f"uses {construct}, which the duckdb engine evaluates differently from Spark ({why}): "
            f"{hint}, {_SPARK}"
        )

    def _name(self, node: Any) -> str:
        """How a message names a construct: `dayofweek()`, `the / operator`, `RLIKE`."""
        e = self.exp
        operators = (
            (e.Div, "the / operator"),
            (e.Mod, "the % operator"),
            (e.IntDiv, "div"),
            (e.RegexpLike, "RLIKE"),
            (e.ILike, "ILIKE"),
            (e.Like, "LIKE"),
            (e.Escape, "LIKE ... ESCAPE"),
            (e.Interval, "INTERVAL"),
            (e.Bracket, "[...] subscripts"),
            (e.Window, "a window (OVER)"),
            (e.Subquery, "a subquery"),
            (e.Add, "the + operator"),
            (e.Sub, "the - operator"),
            (e.Mul, "the * operator"),
            (e.Neg, "unary -"),
            (e.Not, "NOT"),
            (e.And, "AND"),
            (e.Or, "OR"),
            (e.Is, "IS"),
            (e.Between, "BETWEEN"),
            (e.Case, "CASE"),
        )
        if isinstance(node, e.In):
            return "IN (SELECT ...)" if node.args.get("query") else "IN"
        for cls, name in operators:
            if isinstance(node, cls):
                return name
        if isinstance(node, e.Anonymous):
            return f"{node.name.lower()}()"
        if isinstance(node, e.TsOrDsAdd) and self._negated(node.expression) is not None:
            return "date_sub()"
        match = re.match(r"([A-Za-z_][A-Za-z_0-9]*)(\(|$)", node.sql("spark"))
        return (
            f"{match.group(1).lower()}()" if isinstance(node, e.Func) and match else f"`{node.sql('spark')}`"
        )

    def _unlisted(self, node: Any) -> QualityRuleError:  # noqa: PLR0911 - one hint per known trap
        e, name = self.exp, self._name(node)
        inner = node.this.this if isinstance(node.this, e.TsOrDsToDate) else node.this  # year(to_date(x))
        arguments = node.expressions if isinstance(node, e.Anonymous) else [inner]
        first = arguments[0].sql("spark") if arguments and isinstance(arguments[0], e.Expression) else "x"
        if isinstance(node, e.DayOfWeek) or name == "weekday()":
            monday = 2 if isinstance(node, e.DayOfWeek) else 0
            return self._differs(
                name, f"Monday = 1 there, {monday} on Spark", f"use trunc({first}, 'week') = {first}"
            )
        if isinstance(node, e.Div):
            return self._differs(
                name,
                "a zero divisor gives NULL there and stops the run on Spark",
                "multiply instead (a > 2 * b rather than a / b > 2)",
            )
        if isinstance(node, (e.Lower, e.Upper)):
            return self._differs(
                name,
                "non-ASCII letters change differently: upper('ß') is 'ẞ' there, 'SS' on Spark",
                "compare with each spelling, e.g. agency IN ('EMS', 'ems')",
            )
        if isinstance(node, (e.Floor, e.Ceil)):
            return self._differs(
                name,
                "a double there, a bigint on Spark, which caps values beyond 2^63",
                "compare the value itself (x >= 3 rather than floor(x) >= 3)",
            )
        if isinstance(node, e.Substring):
            return self._differs(
                name,
                "a start position of 0 counts as a character there, Spark reads it as 1",
                "use startswith(), endswith() or contains()",
            )
        if isinstance(node, e.Round):
            return self._differs(
                "round() to decimal digits",
                "round(2.675, 2) is 2.67 there, 2.68 on Spark",
                "compare unrounded values, or round to a whole number with round(x)",
            )
        if isinstance(node, e.Cast):
            return self._differs(
                name,
                "cast(2.7 AS bigint) is 3 there, 2 on Spark, and a value that does not convert gives "
                "NULL there but stops the run on Spark",
                "compare the typed silver columns directly, with DATE 'yyyy-mm-dd' for a date",
            )
        if isinstance(node, (e.RegexpLike, e.RegexpExtract, e.RegexpReplace)) or name.startswith("regexp"):
            return self._differs(
                name,
                "RE2 regular expressions there, Java's on Spark",
                "use LIKE, IN, startswith(), endswith() or contains()",
            )
        if name in ("isnull()", "isnotnull()"):
            test = "IS NULL" if name == "isnull()" else "IS NOT NULL"
            return self._error(
                f"uses {name}, which the duckdb engine does not have: write {first} {test}, {_SPARK}"
            )
        if isinstance(node, (e.CurrentDate, e.CurrentTimestamp, e.Rand)):
            return self._error(
                f"uses {name}, whose value depends on when the run happens: compare with a literal such as "
                f"DATE '2024-01-01', {_SPARK}"
            )
        return self._error(
            f"uses {name}, which the duckdb engine is not verified to evaluate as Spark does: use the "
            f"operators and functions listed in params/quality_rules.yaml, {_SPARK}"
        )

    def _mismatch(self, node: Any, got: str, part: Any, expected: str) -> QualityRuleError:
        return self._error(
            f"gives {self._name(node)} {_DESCRIBED[got]} (`{part.sql('spark')}`) where it takes "
            f"{_DESCRIBED[expected]}, which the duckdb engine does not convert as Spark does: give it "
            f"{_DESCRIBED[expected]}, {_SPARK}"
        )

    # --- kinds of values -------------------------------------------------------------------------

    @staticmethod
    def _gives(kind: str, _checked: str) -> str:
        return kind

    def _take(self, node: Any, expected: str, *parts: Any) -> str:
        """`node` takes `expected` in each of `parts` (NULL too); it gives that kind."""
        for part in parts:
            got = self.kind(part)
            if got not in (expected, "null", "any"):
                raise self._mismatch(node, got, part, expected)
        return expected

    def _one_kind(self, node: Any, *parts: Any) -> str:
        """coalesce() and the like: every part of one kind (numbers of any type count as one)."""
        kinds = [(part, self.kind(part)) for part in parts if part is not None]
        typed = [(part, kind) for part, kind in kinds if kind not in ("null", "any")]
        for part, kind in typed[1:]:
            if kind != typed[0][1]:
                raise self._mismatch(node, kind, part, typed[0][1])
        if typed:
            return typed[0][1]
        return "any" if any(kind == "any" for _, kind in kinds) else "null"

    def _compare(self, node: Any, first: Any, *others: Any) -> str:
        left = (first, self.kind(first))
        for other in others:
            right = (other, self.kind(other))
            if not self._comparable(left, right):
                raise self._error(
                    f"compares {_DESCRIBED[left[1]]} (`{first.sql('spark')}`) with {_DESCRIBED[right[1]]} "
                    f"(`{other.sql('spark')}`), which the duckdb engine does not convert as Spark does: "
                    f"compare values of one kind (DATE 'yyyy-mm-dd' for a date), {_SPARK}"
                )
        return "boolean"

    def _comparable(self, left: tuple[Any, str], right: tuple[Any, str]) -> bool:
        kinds = {left[1], right[1]} - {"null", "any"}
        if len(kinds) <= 1:
            return kinds <= set(_COMPARABLE)
        # A number or a date against a text literal: both engines convert the literal alike.
        return any(
            isinstance(node, self.exp.Literal) and node.is_string and other[1] in ("number", "date")
            for node, other in ((left[0], right), (right[0], left))
        )

    def _column(self, node: Any) -> str:
        parts = [part.name.lower() for part in node.parts]
        kind = self.types.get(parts[0], "")
        return "string" if len(parts) > 1 else _category(kind)  # a field of _raw: the source text

    def _adjacent_literals(self, node: Any) -> str:
        """'it''s' parses as the adjacent literals 'it' 's', which Spark joins: 'its'."""
        if all(isinstance(part, self.exp.Literal) and part.is_string for part in node.expressions):
            return "string"
        raise self._unlisted(node)

    def _typed_literal(self, node: Any) -> str:
        """Casts: only the typed literals DATE 'yyyy-mm-dd', 1.5D (double) and 10L (bigint)."""
        e, value, to = self.exp, node.this, node.args["to"].this
        is_text = isinstance(value, e.Literal) and value.is_string
        if is_text and to == e.DataType.Type.DATE:
            if _DATE_LITERAL.match(value.this):
                return "date"
            raise self._error(
                f"uses DATE '{value.this}', which is not written yyyy-mm-dd, the form both engines read "
                f"alike: write it as DATE '2024-01-05', {_SPARK}"
            )
        number = isinstance(value, e.Literal) and not is_text
        if number and (
            to == e.DataType.Type.DOUBLE or (to == e.DataType.Type.BIGINT and value.this.isdigit())
        ):
            return "number"
        raise self._unlisted(node)

    def _is(self, node: Any) -> str:
        if isinstance(node.expression, self.exp.Null):
            self.kind(node.this)
            return "boolean"
        if isinstance(node.expression, self.exp.Boolean):
            return self._take(node, "boolean", node.this)
        raise self._unlisted(node)

    def _like(self, node: Any) -> str:
        pattern = node.expression
        if not (isinstance(pattern, self.exp.Literal) and pattern.is_string):
            raise self._error(
                f"uses LIKE with a pattern that is not a text literal (`{pattern.sql('spark')}`), which the "
                "duckdb engine is not verified to evaluate as Spark does: write the pattern as 'text%', "
                f"{_SPARK}"
            )
        if "\\" in pattern.this:
            raise self._differs(
                "LIKE with a backslash in its pattern",
                "the backslash is an ordinary character there, an escape on Spark",
                "match the character with _ instead",
            )
        return self._gives("boolean", self._take(node, "string", node.this))

    def _case(self, node: Any) -> str:
        branches = node.args.get("ifs") or []
        for branch in branches:
            if node.this is not None:  # CASE x WHEN value THEN ...
                self._compare(node, node.this, branch.this)
            else:
                self._take(node, "boolean", branch.this)
        return self._one_kind(node, *[branch.args["true"] for branch in branches], node.args.get("default"))

    def _if(self, node: Any) -> str:
        self._take(node, "boolean", node.this)
        return self._one_kind(node, node.args["true"], node.args.get("false"))

    def _round(self, node: Any) -> str:
        digits = node.args.get("decimals")
        if digits is not None and not (isinstance(digits, self.exp.Literal) and digits.this == "0"):
            raise self._unlisted(node)
        return self._take(node, "number", node.this)

    def _array_contains(self, node: Any) -> str:
        self._take(node, "array<string>", node.this)
        return self._gives("boolean", self._take(node, "string", node.expression))

    def _date_of(self, argument: Any) -> Any:
        """year(x), datediff(x, y) and the like parse as year(to_date(x)): the date is x."""
        if isinstance(argument, self.exp.TsOrDsToDate):
            if argument.args.get("format") is not None:
                raise self._unlisted(argument)
            return argument.this
        return argument

    def _trunc(self, node: Any) -> str:
        unit = node.args["unit"]
        text = unit.name.upper() if isinstance(unit, (self.exp.Literal, self.exp.Var)) else unit.sql("spark")
        if text not in _TRUNC_UNITS:
            raise self._error(
                f"uses trunc() with unit '{text.lower()}', which the duckdb engine does not accept: write "
                f"'week', 'month', 'quarter' or 'year', {_SPARK}"
            )
        return self._take(node, "date", node.this)

    def _datediff(self, node: Any) -> str:
        self._take(node, "date", self._date_of(node.this), self._date_of(node.expression))
        return "number"

    def _negated(self, count: Any) -> Any:
        """date_sub(d, n) parses as date_add(d, n * -1): n, else None."""
        e = self.exp
        if isinstance(count, e.Mul) and isinstance(count.expression, e.Neg):
            one = count.expression.this
            if isinstance(one, e.Literal) and one.this == "1":
                return count.this
        return None

    def _add(self, node: Any) -> str:
        """date_add, date_sub, add_months: a date and a whole-number literal count."""
        e, count = self.exp, node.expression
        unit = node.args.get("unit")
        if unit is not None and unit.name.upper() != "DAY":
            raise self._unlisted(node)
        count = self._negated(count) or count
        count = count.this if isinstance(count, e.Neg) else count
        if not (isinstance(count, e.Literal) and not count.is_string and count.this.isdigit()):
            raise self._error(
                f"uses {self._name(node)} with a count that is not a whole-number literal "
                f"(`{node.expression.sql('spark')}`), which the duckdb engine does not check as Spark does: "
                f"write the count as a number, e.g. date_add(week_start_date, 7), {_SPARK}"
            )
        return self._take(node, "date", self._date_of(node.this))

    def _text_test(self, node: Any) -> str:
        return self._gives("boolean", self._take(node, "string", node.this, node.expression))
