"""Silver: typed, every duration in seconds, canonical agency and incident type, one row per key.

Bronze text -> `typed_e2e` -> quality rules (`nyc911lib.transforms.quality`) -> each valid row's
outcome against silver (`restatement_outcomes`) -> where each publication's rows went (`batch_accounting`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from functools import reduce

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame, Window

from nyc911lib.schema import DURATION_COLUMNS, NATURAL_KEY, SOURCE_COLUMNS, SourceColumn
from nyc911lib.transforms.compat import lookup, names_where
from nyc911lib.transforms.quality import is_quarantined

LINEAGE_KEPT = ("_batch_id", "_source_file", "_source_kind", "_ingested_at", "_line_number")
_DATE_FORMATS = ("MM/dd/yyyy", "yyyy-MM-dd")  # portal CSV, SODA API (ISO, time part cut off)
_PORTAL_DATE, _ISO_DATE = r"^[0-9]{2}/[0-9]{2}/[0-9]{4}$", r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_PRIORITY_PREFIX = r"^(\d+)\.\s*(.*)$"
# A decimal number as both Spark's and DuckDB's string->double casts read it (no NaN/Infinity/hex).
_NUMBER = r"^[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?$"


def _text(present: Collection[str], column: SourceColumn) -> Column:
    """The trimmed raw text of a source column, or NULL when the export lacks that column (not in
    `present`, the bronze frame's columns: asked once, as asking re-analyses the frame's plan)."""
    if column.bronze_name in present:
        return F.trim(F.col(column.bronze_name))
    return F.lit(None).cast("string")


def parse_week_start_date(text: Column) -> Column:
    """`MM/DD/YYYY` (portal) or ISO `YYYY-MM-DD[T...]` (API) -> date; anything else -> NULL.

    The shape is checked first (two-digit month and day, four-digit year): DuckDB's parser also
    takes `1/5/2025` or `11/18/13`, Spark's does not, and both engines must agree."""
    iso = F.substring(text, 1, 10)
    return F.coalesce(
        F.when(text.rlike(_PORTAL_DATE), F.try_to_timestamp(text, F.lit(_DATE_FORMATS[0])).cast("date")),
        F.when(iso.rlike(_ISO_DATE), F.try_to_timestamp(iso, F.lit(_DATE_FORMATS[1])).cast("date")),
    )


def parse_incidents(text: Column) -> Column:
    """An incident count: digits only -> long; `12.5`, `1,234`, `-3`, `abc` -> NULL."""
    return F.when(text.rlike(r"^[0-9]{1,18}$"), text.cast("long"))


def parse_seconds(text: Column, unit: str) -> Column:
    """A duration in seconds from a `seconds` or `minutes` text value (NULL when unparsable)."""
    value = F.when(text.rlike(_NUMBER), text.cast("double"))
    finite = value.isNotNull() & ~F.isnan(value) & (F.abs(value) != float("inf"))
    seconds = value * 60.0 if unit == "minutes" else value
    return F.when(finite, F.round(seconds, 6))


def is_unparsable(text: Column, parsed: Column) -> Column:
    """True when a value was given (non-empty text) but did not parse."""
    return (F.coalesce(text, F.lit("")) != "") & parsed.isNull()


def canonical_agency(codes: Mapping[str, str]) -> Callable[[Column], Column]:
    """Source agency name -> canonical code (e.g. `NYPD (Non-CIP)` -> `NYPD_NON_CIP`); unknown -> NULL."""
    return lookup(codes)


def incident_priority(raw_type: Column) -> Column:
    """The numeric priority prefix of an incident type (`1. Critical` -> 1), else NULL."""
    return F.when(
        raw_type.rlike(_PRIORITY_PREFIX), F.regexp_extract(raw_type, _PRIORITY_PREFIX, 1).cast("int")
    )


def standard_incident_type(fixes: Mapping[str, str], unspecified: str) -> Callable[[Column], Column]:
    """Incident type without its priority prefix, misspellings fixed, empty -> `unspecified`."""
    fixed = lookup(fixes)

    def standardize(raw_type: Column) -> Column:
        text = F.coalesce(raw_type, F.lit(""))
        name = F.trim(
            F.when(text.rlike(_PRIORITY_PREFIX), F.regexp_extract(text, _PRIORITY_PREFIX, 2)).otherwise(text)
        )
        if fixes:
            name = F.coalesce(fixed(name), name)
        return F.when(name == "", F.lit(unspecified)).otherwise(name)

    return standardize


def typed_e2e(
    agency_codes: Mapping[str, str], incident_type_fixes: Mapping[str, str], unspecified: str
) -> Callable[[DataFrame], DataFrame]:
    """Bronze text rows -> typed rows with every duration in seconds.

    Adds `unparsable_fields` (values given but not parseable) and `negative_time_fields` (durations
    below zero other than the pickup, which has its own rule) for the quality rules, and keeps the
    source text in a `_raw` struct so quarantined rows can be stored exactly as received.
    """
    to_agency = canonical_agency(agency_codes)
    to_type = standard_incident_type(incident_type_fixes, unspecified)

    def transform(bronze: DataFrame) -> DataFrame:
        by_name = {c.silver_name: c for c in SOURCE_COLUMNS}
        present = bronze.columns
        type_text = _text(present, by_name["incident_type"])
        numbers = {c.silver_name: c for c in (by_name["incidents"], *DURATION_COLUMNS)}
        source_cols = [c for c in present if not c.startswith("_")]
        lineage = [c for c in LINEAGE_KEPT if c in present]
        # Two steps, so each value is parsed once: parse (keeping the texts of the numbers), then
        # list the values given but not parsed and the negative durations, and drop the texts.
        typed = {
            "week_start_date": parse_week_start_date(_text(present, by_name["week_start_date"])),
            "agency": to_agency(_text(present, by_name["agency"])),
            "priority": incident_priority(F.coalesce(type_text, F.lit(""))),
            "incident_type": to_type(type_text),
            "incident_type_source": type_text,
            "incidents": parse_incidents(_text(present, by_name["incidents"])),
            **{c.silver_name: parse_seconds(_text(present, c), c.kind) for c in DURATION_COLUMNS},
        }
        parsed = bronze.select(
            *[value.alias(name) for name, value in typed.items()],
            F.col("_corrupt_record"),
            *lineage,
            F.struct(*[F.col(c) for c in source_cols]).alias("_raw"),
            *[_text(present, c).alias(f"_text_{name}") for name, c in numbers.items()],
        )
        unparsable = names_where(
            [(name, is_unparsable(F.col(f"_text_{name}"), F.col(name))) for name in numbers]
        )
        durations = [c.silver_name for c in DURATION_COLUMNS if c.silver_name != "call_to_first_pickup_s"]
        negative = names_where([(name, F.col(name) < 0) for name in durations])
        # Column names from this code, not from `parsed.columns`: asking for a schema analyses the
        # plan, which a declarative pipeline cannot do while it is still declaring its datasets.
        return parsed.select(
            *typed,
            unparsable.alias("unparsable_fields"),
            negative.alias("negative_time_fields"),
            "_corrupt_record",
            *lineage,
            "_raw",
        )

    return transform


# Columns that only serve the quality evaluation and the ranking; no silver table keeps them.
EVALUATION_COLUMNS = (
    "_rank",
    "_raw",
    "_corrupt_record",
    "unparsable_fields",
    "failed_rules",
    "quarantine_reasons",
    "failed_fail_rules",
)


# What a publication can revise for a key: a version differing in any of these is a restatement.
VALUE_COLUMNS = ("priority", "incident_type_source", "incidents", *(c.silver_name for c in DURATION_COLUMNS))
# The order in which versions of a key were published (the same order gold's restatements use).
PUBLICATION_ORDER = ("_ingested_at", "_batch_id", "_line_number")
OUTCOMES = ("silver", "kept", "replaced", "superseded", "unchanged")


def restatement_outcomes(
    key: Sequence[str] = NATURAL_KEY,
    values: Sequence[str] = VALUE_COLUMNS,
    columns: Sequence[str] | None = None,
) -> Callable[[DataFrame], DataFrame]:
    """Versions of keys -> each version's `outcome` when applied to silver in publication order.

    Input: the current silver rows of the keys a batch touches (`_origin` 0) and the batch's valid
    rows (`_origin` 1). The result is exactly what applying the batch's publications one at a time
    would give, even when one batch holds several publications:

    - `silver`: a batch row that is the key's new current version (insert or update);
    - `kept`: a silver row that stays (nothing newer differs from it);
    - `replaced`: a silver row a newer, different version replaces (it moves to superseded);
    - `superseded`: a batch row that a later row of the same batch replaces;
    - `unchanged`: a batch row identical to the version before it (a no-op: republished as is).

    Replaced and superseded rows get `superseded_by_batch_id`/`_line_number`: the version after them.
    `columns`: the input's columns, when the caller knows them (a declarative pipeline on Spark
    Connect cannot ask a frame for them while it declares it).
    """

    def transform(versions: DataFrame) -> DataFrame:
        order = (
            Window.partitionBy(*key)
            .orderBy("_origin", *PUBLICATION_ORDER)
            .rowsBetween(Window.unboundedPreceding, Window.currentRow)
        )
        value = F.struct(*[F.col(c) for c in values])
        previous = F.lag(value).over(Window.partitionBy(*key).orderBy("_origin", *PUBLICATION_ORDER))
        changed = F.coalesce(~value.eqNullSafe(previous), F.lit(True))
        later = (
            Window.partitionBy(*key)
            .orderBy("_origin", *PUBLICATION_ORDER)
            .rowsBetween(1, Window.unboundedFollowing)
        )
        flagged = versions.withColumn("_changed", changed)
        runs = flagged.select(
            "*",
            F.sum(F.col("_changed").cast("int")).over(order).alias("_run"),
            F.first_value(F.when(F.col("_changed"), F.col("_batch_id")), True)
            .over(later)
            .alias("superseded_by_batch_id"),
            F.first_value(F.when(F.col("_changed"), F.col("_line_number")), True)
            .over(later)
            .alias("superseded_by_line_number"),
        )
        last = F.max("_run").over(Window.partitionBy(*key)) == F.col("_run")
        from_silver = F.col("_origin") == 0
        outcome = (
            F.when(from_silver & last, "kept")
            .when(from_silver, "replaced")
            .when(~F.col("_changed"), "unchanged")
            .when(last, "silver")
            .otherwise("superseded")
        )
        kept = columns if columns is not None else versions.columns
        return runs.select(
            *kept, "superseded_by_batch_id", "superseded_by_line_number", outcome.alias("outcome")
        )

    return transform


# Where a publication's rows go besides quarantine (`batch_accounting`).
ACCOUNTING_OUTCOMES = ("silver", "unchanged", "superseded")


def batch_accounting(evaluated: DataFrame, outcomes: DataFrame) -> DataFrame:
    """Per publication in a micro-batch: where each of its rows went, and how many silver rows it
    replaced. rows_bronze = rows_silver + rows_unchanged + rows_superseded + rows_quarantined.

    Counted as if the publications were applied one at a time, so the accounting does not depend
    on how they were batched (a run per publication, a full refresh, or a declarative pipeline's
    one pass over bronze): a row that a later publication of the same batch restates did become
    silver's row (rows_silver) and that publication replaced it (rows_replaced), as when each
    publication has a run of its own. `rows_superseded` is then a row a later line of the same
    publication restates (a key given twice in one file).
    """
    restated_later = (F.col("outcome") == "superseded") & (
        F.col("superseded_by_batch_id") != F.col("_batch_id")
    )
    incoming = (
        outcomes.where(F.col("_origin") == 1)
        .select(
            "_batch_id", F.when(restated_later, F.lit("silver")).otherwise(F.col("outcome")).alias("outcome")
        )
        .unionByName(
            evaluated.where(is_quarantined(evaluated)).select(
                "_batch_id", F.lit("quarantined").alias("outcome")
            )
        )
    )
    replaced = (
        outcomes.where((F.col("outcome") == "replaced") | restated_later)
        .groupBy(F.col("superseded_by_batch_id").alias("_batch_id"))
        .agg(F.count(F.lit(1)).alias("rows_replaced"))
    )
    counts = (
        incoming.groupBy("_batch_id")
        .agg(
            *[
                F.count(F.when(F.col("outcome") == o, 1)).alias(o)
                for o in (*ACCOUNTING_OUTCOMES, "quarantined")
            ]
        )
        .join(replaced, "_batch_id", "left")
    )
    parts = [F.col(c) for c in (*ACCOUNTING_OUTCOMES, "quarantined")]
    return counts.select(
        F.col("_batch_id").alias("batch_id"),
        reduce(lambda a, b: a + b, parts).alias("rows_bronze"),
        F.col("silver").alias("rows_silver"),
        F.col("unchanged").alias("rows_unchanged"),
        F.col("superseded").alias("rows_superseded"),
        F.col("quarantined").alias("rows_quarantined"),
        F.coalesce(F.col("rows_replaced"), F.lit(0)).cast("long").alias("rows_replaced"),
    )
