"""Column helpers written so both engines run them identically: Spark, and SQLFrame on DuckDB.

Each replaces a construct one engine lacks or handles differently (measured on SQLFrame 4.10,
DuckDB 2.0, Spark 4.2; tests/test_compat.py runs every helper on both engines):

- `lookup`: a CASE chain instead of `create_map(...)[key]`. SQLFrame turns a map lookup into a
  bracket expression, for which it type-annotates the whole plan every time it generates SQL.
- `names_where`: an empty array typed `array<string>` without `F.array()` (SQLFrame cannot build
  an empty array).
- `struct_fields`: the fields of a struct column as columns, instead of `select("s.*")` (SQLFrame
  cannot expand a struct star).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame


def lookup(mapping: Mapping[Any, Any], value_type: str = "string") -> Callable[[Column], Column]:
    """A value -> the one `mapping` gives it, cast to `value_type`; NULL when it has none."""

    def apply(value: Column) -> Column:
        chain = None
        for key, mapped in mapping.items():
            result = F.lit(mapped).cast(value_type)
            chain = (
                F.when(value == F.lit(key), result)
                if chain is None
                else chain.when(value == F.lit(key), result)
            )
        return chain if chain is not None else F.lit(None).cast(value_type)

    return apply


def names_where(flags: Sequence[tuple[str, Column]]) -> Column:
    """An `array<string>` of the names whose flag is TRUE, in order (empty when none is)."""
    tagged = [F.when(flag, F.lit(name)) for name, flag in flags] or [F.lit(None).cast("string")]
    return F.filter(F.array(*tagged), lambda name: name.isNotNull())


def struct_fields(df: DataFrame, column: str) -> list[Column]:
    """The fields of the struct `column` of `df`, each as a column named after the field."""
    struct = next(f.dataType for f in df.schema.fields if f.name == column)
    return [F.col(column).getField(name).alias(name) for name in struct.fieldNames()]
