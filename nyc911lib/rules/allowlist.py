"""What the duckdb engine runs of a quality rule: the operators and functions whose results on
DuckDB are Spark's (each verified on both engines by tests/test_quality.py), and the kinds of value
the check reasons about."""

from __future__ import annotations

import re

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
TRUNC_UNITS = ("WEEK", "MONTH", "QUARTER", "YEAR")
DATE_LITERAL = re.compile(r"^\d{4}-\d{2}-\d{2}$")
COMPARABLE = ("number", "string", "date", "timestamp", "boolean")
SPARK = "or --engine spark"
DESCRIBED = {  # a kind of value, as a message names it
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


KINDS = {
    **dict.fromkeys(("tinyint", "smallint", "int", "integer", "bigint", "long"), "number"),
    **dict.fromkeys(("float", "double", "decimal"), "number"),
    **dict.fromkeys(("string", "varchar", "char"), "string"),
    **dict.fromkeys(("timestamp", "timestamp_ntz", "timestamp_ltz"), "timestamp"),
    "date": "date",
    "boolean": "boolean",
    "array<string>": "array<string>",
    "": "any",  # only the column's name was given
}


def value_kind(spark_type: str) -> str:
    """A Spark type string as the kind of value the duckdb check reasons about."""
    base = spark_type.lower().split("(", 1)[0].strip()
    if base in KINDS:
        return KINDS[base]
    return {"array<": "array", "struct<": "struct"}.get(base[: base.find("<") + 1], "other")
