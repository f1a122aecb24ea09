"""Quality rules: every default rule, quarantine reasons, metrics, actions, and the check made at
load (`check_quality_rules`).

The module is marked `both`: `make test` runs it in the duckdb test process and again in the spark
one (`NYC911_ENGINE=spark pytest -m "spark or both"`), so every default rule, and every function the
duckdb engine accepts in a rule (the probe rows below, with values hard-coded once and so the same
on both engines), is evaluated on both engines.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import sys
from decimal import Decimal

import pyspark.sql.functions as F
import pytest
from conftest import ENGINE, run_once, table_versions

from nyc911lib import QualityRule, quarantine_rows, rule_metrics, typed_e2e, with_quality_results
from nyc911lib.errors import QualityRuleError
from nyc911lib.rules.allowlist import DUCKDB_FUNCTIONS
from nyc911lib.rules.check import check_quality_rules, silver_rule_columns
from nyc911lib.schema import BRONZE_SOURCE_NAMES
from nyc911lib.transforms.quality import schema_drift_metrics

pytestmark = pytest.mark.both

BAD_VALUES = {
    "row_well_formed": {"_corrupt_record": "11/18/2013,EMS"},
    "week_start_date_is_monday": {"week_start_date": "11/19/2013"},
    "agency_known": {"agency": "Sanitation"},
    "incidents_positive_integer": {"of_incidents_calculated": "0"},
    "numeric_fields_parse": {"median_travel": "n/a"},
    "call_to_first_pickup_within_0_120s": {"call_to_first_pickup": "-46.68"},
    "other_times_non_negative": {"call_to_agency_dispatch": "-1"},
}


def _evaluate(bronze, params, rules=None):
    return bronze.transform(
        typed_e2e(params.agency_codes, params.incident_type_fixes, params.unspecified_incident_type)
    ).transform(with_quality_results(rules or params.quality_rules))


def test_each_default_rule_catches_its_defect_and_only_it(params, make_bronze):
    """One evaluation of a good row and one row per rule carrying that rule's defect (one query:
    on Spark each evaluation costs seconds of planning)."""
    actions = {r.name: r.action for r in params.quality_rules}
    rules = sorted(BAD_VALUES)
    good, *bad = (
        _evaluate(make_bronze({}, *[BAD_VALUES[r] for r in rules]), params).orderBy("_line_number").collect()
    )
    assert good.failed_rules == []
    got = {
        rule: (row.failed_rules, row.quarantine_reasons, row.quality_warnings)
        for rule, row in zip(rules, bad, strict=True)
    }
    expected = {
        rule: ([rule], [rule] if actions[rule] == "drop" else [], [rule] if actions[rule] == "warn" else [])
        for rule in rules
    }
    assert got == expected


def test_every_default_rule_has_its_defect_above(params):
    assert sorted(BAD_VALUES) == sorted(r.name for r in params.quality_rules)


@pytest.mark.parametrize("rule", sorted(BAD_VALUES))
def test_each_default_rule_passes_the_check_of_this_engine(params, rule):
    check_quality_rules([r for r in params.quality_rules if r.name == rule], ENGINE)


PICKUP_BOUNDS = {"0": True, "120": True, "120.01": False, "-0.16": False, "": False}  # value -> passes


def test_pickup_rule_bounds_and_missing_value(params, make_bronze):
    bronze = make_bronze(*[{"call_to_first_pickup": value} for value in PICKUP_BOUNDS])
    rows = _evaluate(bronze, params).orderBy("_line_number").collect()
    got = {
        v: "call_to_first_pickup_within_0_120s" not in r.quarantine_reasons
        for v, r in zip(PICKUP_BOUNDS, rows, strict=True)
    }
    assert got == PICKUP_BOUNDS


def test_quarantine_lists_every_failed_rule_and_keeps_source_text(params, make_bronze):
    evaluated = _evaluate(
        make_bronze(
            {"agency": "Sanitation", "week_start_date": "13/45/2020", "call_to_agency_arrival": "-3"}
        ),
        params,
    )
    (row,) = quarantine_rows(evaluated).collect()
    assert row.quarantine_reasons == ["week_start_date_is_monday", "agency_known"]
    assert row.quality_warnings == ["other_times_non_negative"]
    assert (row.week_start_date, row.agency, row.call_to_agency_arrival) == ("13/45/2020", "Sanitation", "-3")
    assert row._line_number == 2


def test_rule_metrics_count_per_batch_and_rule(params, make_bronze):
    bronze = make_bronze(
        {"_batch_id": "b1"},
        {"_batch_id": "b1", "agency": "?"},
        {"_batch_id": "b2", "agency": "?", "call_to_first_pickup": "500"},
    )
    metrics = _evaluate(bronze, params).transform(rule_metrics(params.quality_rules))
    got = {(r.batch_id, r.rule): (r.rows_evaluated, r.rows_passed, r.rows_failed) for r in metrics.collect()}
    assert got[("b1", "agency_known")] == (2, 1, 1)
    assert got[("b2", "agency_known")] == (1, 0, 1)
    assert got[("b2", "call_to_first_pickup_within_0_120s")] == (1, 0, 1)
    assert got[("b1", "row_well_formed")] == (2, 2, 0)
    assert len(got) == 2 * len(params.quality_rules)


def test_fail_action_is_reported_separately(params, make_bronze):
    rules = (QualityRule("no_ems", "agency <> 'EMS'", "fail"),)
    row = _evaluate(make_bronze({}), params, rules).first()
    assert row.failed_fail_rules == ["no_ems"]
    assert row.quarantine_reasons == []


def test_schema_drift_counts_the_values_of_unknown_columns_per_batch(make_bronze):
    bronze = make_bronze({"_batch_id": "b1"}, {"_batch_id": "b1"}, {"_batch_id": "b2"})
    bronze = bronze.withColumn("new_col", F.when(F.col("_line_number") == 2, "x"))
    rows = bronze.transform(schema_drift_metrics(BRONZE_SOURCE_NAMES)).collect()
    assert [(r.batch_id, r.rule, r.action, r.rows_evaluated, r.rows_failed) for r in rows] == [
        ("b1", "source_schema_drift", "warn", 2, 1)
    ]
    assert rows[0].condition == "new source column 'new_col' (kept in bronze)"
    assert make_bronze({}).transform(schema_drift_metrics(BRONZE_SOURCE_NAMES)).count() == 0


# --- The duckdb engine's functions: verified to give the same values on both engines ------------
# Each probe expression over the probe rows, with the values both engines give (hard-coded, so the
# module passing in both processes shows they agree). Every function of DUCKDB_FUNCTIONS has one.

D = dt.date
PROBE_COLUMNS = {
    "i": "bigint",
    "d": "date",
    "d2": "date",
    "n": "bigint",
    "m": "bigint",
    "x": "double",
    "y": "double",
    "s": "string",
    "t": "string",
    "arr": "array<string>",
}
PROBE_ROWS = [
    (1, D(2013, 11, 18), D(2013, 11, 25), 100, 3, 3.18, 2.675, "EMS", "abc", ["a", "b"]),
    (2, D(2021, 1, 1), D(2020, 12, 31), 0, -7, -2.5, 0.5, "nypd", "  x\t", []),
    (3, D(2024, 2, 29), D(2024, 1, 31), -5, 0, 120.0, -0.5, "Straße", "\u00c9", ["x"]),
    (4, None, None, None, None, None, None, None, None, None),
    (5, D(2024, 12, 30), D(2000, 3, 1), 7, 2, 1e20, 2.5, "a_b", "a%b", ["a", "x"]),
    (6, D(2022, 1, 2), D(2023, 1, 1), 9, 3, 0.49999999999999994, 1.005, "\u0130x", "e\u0301", ["b"]),
]
PROBES = [
    ("n = m", [False, False, False, None, False, False]),
    ("n == m", [False, False, False, None, False, False]),
    ("n <=> m", [False, False, False, True, False, False]),
    ("n != m", [True, True, True, None, True, True]),
    ("n <> m", [True, True, True, None, True, True]),
    ("n < m", [False, False, True, None, False, False]),
    ("n <= m", [False, False, True, None, False, False]),
    ("n > m", [True, True, False, None, True, True]),
    ("n >= m", [True, True, False, None, True, True]),
    ("s < t", [True, False, True, None, False, False]),
    ("d < d2", [True, False, False, None, False, True]),
    ("n IS DISTINCT FROM m", [True, True, True, False, True, True]),
    ("n IS NOT DISTINCT FROM m", [False, False, False, True, False, False]),
    ("NOT (n > m)", [False, False, True, None, False, False]),
    ("n > 0 AND m > 0", [True, False, False, None, True, True]),
    ("n > 0 OR m > 0", [True, False, False, None, True, True]),
    ("n IS NULL", [False, False, False, True, False, False]),
    ("n IS NOT NULL", [True, True, True, False, True, True]),
    ("(n > 0) IS TRUE", [True, False, False, False, True, True]),
    ("(n > 0) IS NOT FALSE", [True, False, False, True, True, True]),
    ("(n > 0) IS FALSE", [False, True, True, False, False, False]),
    ("(n > 0) IS NOT TRUE", [False, True, True, True, False, False]),
    ("x BETWEEN 0 AND 120", [True, False, True, None, False, True]),
    ("n NOT BETWEEN m AND 50", [True, False, True, None, False, False]),
    ("n IN (0, 7, 100)", [True, True, False, None, True, False]),
    ("n NOT IN (0, 7)", [True, False, True, None, False, True]),
    ("s IN ('EMS', NULL)", [True, None, None, None, None, None]),
    ("s NOT IN ('EMS', NULL)", [False, None, None, None, None, None]),
    ("s LIKE 'a_b'", [False, False, False, None, True, False]),
    ("s LIKE '%S%'", [True, False, True, None, False, False]),
    ("s NOT LIKE 'E%'", [False, True, True, None, True, True]),
    ("s LIKE '%ß%'", [False, False, True, None, False, False]),
    ("n + m", [103, -7, -5, None, 9, 12]),
    ("n - m", [97, 7, -5, None, 5, 6]),
    ("n * m", [300, 0, 0, None, 14, 27]),
    ("x * 2", [6.36, -5.0, 240.0, None, 2e20, 0.9999999999999999]),
    ("-n", [-100, 0, 5, None, -7, -9]),
    ("x + n", [103.18, -2.5, 115.0, None, 1e20, 9.5]),
    ("n * 2.5", [250.0, 0.0, -12.5, None, 17.5, 22.5]),
    ("CASE WHEN n > 0 THEN 'p' WHEN n < 0 THEN 'm' ELSE 'z' END", ["p", "z", "m", "z", "p", "p"]),
    ("CASE n WHEN 100 THEN 'h' WHEN 0 THEN 'z' END", ["h", "z", None, None, None, None]),
    ("d = DATE '2013-11-18'", [True, False, False, None, False, False]),
    ("d < '2021-01-01'", [True, False, False, None, False, False]),
    ("n > '7'", [True, False, False, None, False, True]),
    ("x = 3.18", [True, False, False, None, False, False]),
    ("x = 1.5D", [False, False, False, None, False, False]),
    ("n = 100L", [True, False, False, None, False, False]),
    ("s = 'EM' 'S'", [True, False, False, None, False, False]),
    ('s = "EMS"', [True, False, False, None, False, False]),
    ("TRUE", [True, True, True, True, True, True]),
    ("NULL", [None, None, None, None, None, None]),
    ("if(n > 0, 'p', 'q')", ["p", "q", "q", "q", "p", "p"]),
    ("coalesce(n, m, -1)", [100, 0, -5, -1, 7, 9]),
    ("nvl(n, 0)", [100, 0, -5, 0, 7, 9]),
    ("ifnull(s, 'z')", ["EMS", "nypd", "Straße", "z", "a_b", "\u0130x"]),
    ("nullif(n, 0)", [100, None, -5, None, 7, 9]),
    ("greatest(n, m, 50)", [100, 50, 50, 50, 50, 50]),
    ("least(x, y)", [2.675, -2.5, -0.5, None, 2.5, 0.49999999999999994]),
    ("abs(m)", [3, 7, 0, None, 2, 3]),
    ("abs(x)", [3.18, 2.5, 120.0, None, 1e20, 0.49999999999999994]),
    ("round(x)", [3.0, -3.0, 120.0, None, 1e20, 0.0]),
    ("round(y)", [3.0, 1.0, -1.0, None, 3.0, 1.0]),
    ("round(y, 0)", [3.0, 1.0, -1.0, None, 3.0, 1.0]),
    ("size(arr)", [2, 0, 1, None, 2, 1]),
    ("array_size(arr)", [2, 0, 1, None, 2, 1]),
    ("array_contains(arr, 'a')", [True, False, False, None, True, False]),
    ("NOT array_contains(arr, 'a')", [False, True, True, None, False, True]),
    (
        "trunc(d, 'week')",
        [D(2013, 11, 18), D(2020, 12, 28), D(2024, 2, 26), None, D(2024, 12, 30), D(2021, 12, 27)],
    ),
    ("trunc(d, 'WEEK') = d", [True, False, False, None, True, False]),
    (
        "trunc(d, 'month')",
        [D(2013, 11, 1), D(2021, 1, 1), D(2024, 2, 1), None, D(2024, 12, 1), D(2022, 1, 1)],
    ),
    (
        "trunc(d, 'quarter')",
        [D(2013, 10, 1), D(2021, 1, 1), D(2024, 1, 1), None, D(2024, 10, 1), D(2022, 1, 1)],
    ),
    ("trunc(d, 'year')", [D(2013, 1, 1), D(2021, 1, 1), D(2024, 1, 1), None, D(2024, 1, 1), D(2022, 1, 1)]),
    ("year(d)", [2013, 2021, 2024, None, 2024, 2022]),
    ("month(d)", [11, 1, 2, None, 12, 1]),
    ("day(d)", [18, 1, 29, None, 30, 2]),
    ("dayofmonth(d)", [18, 1, 29, None, 30, 2]),
    ("quarter(d)", [4, 1, 1, None, 4, 1]),
    ("dayofyear(d)", [322, 1, 60, None, 365, 2]),
    ("weekofyear(d)", [47, 53, 9, None, 1, 52]),
    ("datediff(d, d2)", [-7, 1, 29, None, 9070, -364]),
    ("date_add(d, 7)", [D(2013, 11, 25), D(2021, 1, 8), D(2024, 3, 7), None, D(2025, 1, 6), D(2022, 1, 9)]),
    ("date_add(d, 7) = d2", [True, False, False, None, False, False]),
    (
        "date_sub(d, 7)",
        [D(2013, 11, 11), D(2020, 12, 25), D(2024, 2, 22), None, D(2024, 12, 23), D(2021, 12, 26)],
    ),
    (
        "add_months(d, 1)",
        [D(2013, 12, 18), D(2021, 2, 1), D(2024, 3, 29), None, D(2025, 1, 30), D(2022, 2, 2)],
    ),
    (
        "add_months(d, -12)",
        [D(2012, 11, 18), D(2020, 1, 1), D(2023, 2, 28), None, D(2023, 12, 30), D(2021, 1, 2)],
    ),
    ("last_day(d)", [D(2013, 11, 30), D(2021, 1, 31), D(2024, 2, 29), None, D(2024, 12, 31), D(2022, 1, 31)]),
    ("length(s)", [3, 4, 6, None, 3, 2]),
    ("length(t)", [3, 4, 1, None, 3, 2]),
    ("char_length(t)", [3, 4, 1, None, 3, 2]),
    ("character_length(s)", [3, 4, 6, None, 3, 2]),
    ("trim(t)", ["abc", "x\t", "\u00c9", None, "a%b", "e\u0301"]),
    ("ltrim(t)", ["abc", "x\t", "\u00c9", None, "a%b", "e\u0301"]),
    ("rtrim(t)", ["abc", "  x\t", "\u00c9", None, "a%b", "e\u0301"]),
    ("startswith(s, 'E')", [True, False, False, None, False, False]),
    ("endswith(s, 'b')", [False, False, False, None, True, False]),
    ("contains(s, 'S')", [True, False, True, None, False, False]),
]


def _plain(value):
    """DuckDB gives trunc, date_add, date_sub and add_months as a timestamp at midnight, Spark as a
    date: the same day, and the same in any comparison a rule makes. Spark types `2.5` DECIMAL."""
    if isinstance(value, dt.datetime) and value.time() == dt.time(0):
        return value.date()
    return float(value) if isinstance(value, Decimal) else value


@pytest.fixture(scope="module")
def probe_values(spark):
    """Every probe expression over the probe rows, in one query: expression -> values by row."""
    schema = ", ".join(f"{name} {kind}" for name, kind in PROBE_COLUMNS.items())
    frame = spark.createDataFrame(PROBE_ROWS, schema)
    probes = [F.expr(expression).alias(f"p{k}") for k, (expression, _) in enumerate(PROBES)]
    rows = frame.select("i", *probes).orderBy("i").collect()
    return {expression: [_plain(row[f"p{k}"]) for row in rows] for k, (expression, _) in enumerate(PROBES)}


def test_every_duckdb_function_has_a_probe():
    probed = " ".join(expression for expression, _ in PROBES).lower()
    assert [name for name in DUCKDB_FUNCTIONS if not re.search(rf"\b{name}\(", probed)] == []


@pytest.mark.parametrize(("expression", "expected"), PROBES, ids=[e for e, _ in PROBES])
def test_duckdb_function_gives_the_same_values_on_both_engines(probe_values, expression, expected):
    rule = QualityRule("probe", f"({expression}) IS NOT NULL", "warn")
    check_quality_rules([rule], "duckdb", PROBE_COLUMNS)  # accepted by the duckdb engine
    assert probe_values[expression] == expected


# --- Refusals: one line naming the rule, the construct and what to do ---------------------------
# The check itself is sqlglot only, so each case runs in both processes; {columns} and {fields}
# stand for the silver columns and the fields of _raw.

REFUSED = [
    (
        "week_is_monday",
        "dayofweek(week_start_date) = 2",
        "duckdb",
        "quality rule 'week_is_monday' uses dayofweek(), which the duckdb engine evaluates differently from "
        "Spark (Monday = 1 there, 2 on Spark): use trunc(week_start_date, 'week') = week_start_date, or "
        "--engine spark",
    ),
    (
        "week_is_monday",
        "weekday(week_start_date) = 0",
        "duckdb",
        "quality rule 'week_is_monday' uses weekday(), which the duckdb engine evaluates differently from "
        "Spark (Monday = 1 there, 0 on Spark): use trunc(week_start_date, 'week') = week_start_date, or "
        "--engine spark",
    ),
    (
        "agency_set",
        "agncy IS NOT NULL",
        "duckdb",
        "quality rule 'agency_set' refers to column 'agncy', which silver rows do not have; they have: "
        "{columns}",
    ),
    (
        "agency_set",
        "agncy IS NOT NULL",
        "spark",
        "quality rule 'agency_set' refers to column 'agncy', which silver rows do not have; they have: "
        "{columns}",
    ),
    (
        "raw_agency_set",
        "_raw.agncy IS NOT NULL",
        "spark",
        "quality rule 'raw_agency_set' refers to column '_raw.agncy', which silver rows do not have; the "
        "fields of _raw are: {fields}",
    ),
    (
        "positive",
        "incidents > 0)",
        "duckdb",
        "quality rule 'positive': its condition does not parse as Spark SQL: Invalid expression / Unexpected "
        "token. Line 1, Col: 14.",
    ),
    (
        "positive",
        "incidents > 0)",
        "spark",
        "quality rule 'positive': its condition does not parse as Spark SQL: Invalid expression / Unexpected "
        "token. Line 1, Col: 14.",
    ),
    (
        "positive",
        "incidents > 0 ok",
        "spark",
        "quality rule 'positive': its condition does not parse as Spark SQL: unexpected 'ok' after "
        "`incidents > 0`",
    ),
    (
        "travel_per_incident",
        "avg_travel_s / incidents < 60",
        "duckdb",
        "quality rule 'travel_per_incident' uses the / operator, which the duckdb engine evaluates "
        "differently from Spark (a zero divisor gives NULL there and stops the run on Spark): multiply "
        "instead (a > 2 * b rather than a / b > 2), or --engine spark",
    ),
    (
        "agency_lower",
        "lower(agency) = 'ems'",
        "duckdb",
        "quality rule 'agency_lower' uses lower(), which the duckdb engine evaluates differently from Spark "
        "(non-ASCII letters change differently: upper('ß') is 'ẞ' there, 'SS' on Spark): compare with each "
        "spelling, e.g. agency IN ('EMS', 'ems'), or --engine spark",
    ),
    (
        "whole_seconds",
        "floor(avg_travel_s) >= 0",
        "duckdb",
        "quality rule 'whole_seconds' uses floor(), which the duckdb engine evaluates differently from Spark "
        "(a double there, a bigint on Spark, which caps values beyond 2^63): compare the value itself "
        "(x >= 3 rather than floor(x) >= 3), or --engine spark",
    ),
    (
        "agency_prefix",
        "substring(agency, 0, 2) = 'EM'",
        "duckdb",
        "quality rule 'agency_prefix' uses substring(), which the duckdb engine evaluates differently from "
        "Spark (a start position of 0 counts as a character there, Spark reads it as 1): use startswith(), "
        "endswith() or contains(), or --engine spark",
    ),
    (
        "rounded",
        "round(avg_travel_s, 2) >= 0",
        "duckdb",
        "quality rule 'rounded' uses round() to decimal digits, which the duckdb engine evaluates "
        "differently from Spark (round(2.675, 2) is 2.67 there, 2.68 on Spark): compare unrounded values, "
        "or round to a whole number with round(x), or --engine spark",
    ),
    (
        "as_double",
        "cast(incidents AS double) > 0",
        "duckdb",
        "quality rule 'as_double' uses cast(), which the duckdb engine evaluates differently from Spark "
        "(cast(2.7 AS bigint) is 3 there, 2 on Spark, and a value that does not convert gives NULL there but "
        "stops the run on Spark): compare the typed silver columns directly, with DATE 'yyyy-mm-dd' for a "
        "date, or --engine spark",
    ),
    (
        "agency_pattern",
        "agency RLIKE '^[A-Z_]+$'",
        "duckdb",
        "quality rule 'agency_pattern' uses RLIKE, which the duckdb engine evaluates differently from Spark "
        "(RE2 regular expressions there, Java's on Spark): use LIKE, IN, startswith(), endswith() or "
        "contains(), or --engine spark",
    ),
    (
        "agency_like",
        "agency LIKE 'NYPD\\\\_%'",
        "duckdb",
        "quality rule 'agency_like' uses LIKE with a backslash in its pattern, which the duckdb engine "
        "evaluates differently from Spark (the backslash is an ordinary character there, an escape on "
        "Spark): match the character with _ instead, or --engine spark",
    ),
    (
        "agency_set",
        "isnull(agency) = false",
        "duckdb",
        "quality rule 'agency_set' uses isnull(), which the duckdb engine does not have: write agency IS "
        "NULL, or --engine spark",
    ),
    (
        "recent",
        "week_start_date > date_sub(current_date(), 3650)",
        "duckdb",
        "quality rule 'recent' uses current_date(), whose value depends on when the run happens: compare "
        "with a literal such as DATE '2024-01-01', or --engine spark",
    ),
    (
        "month_start",
        "trunc(week_start_date, 'mm') <= week_start_date",
        "duckdb",
        "quality rule 'month_start' uses trunc() with unit 'mm', which the duckdb engine does not accept: "
        "write 'week', 'month', 'quarter' or 'year', or --engine spark",
    ),
    (
        "later",
        "date_add(week_start_date, incidents) > week_start_date",
        "duckdb",
        "quality rule 'later' uses date_add() with a count that is not a whole-number literal (`incidents`), "
        "which the duckdb engine does not check as Spark does: write the count as a number, e.g. "
        "date_add(week_start_date, 7), or --engine spark",
    ),
    (
        "incidents_length",
        "length(incidents) > 0",
        "duckdb",
        "quality rule 'incidents_length' gives length() a number (`incidents`) where it takes text, which "
        "the duckdb engine does not convert as Spark does: give it text, or --engine spark",
    ),
    (
        "agency_number",
        "agency = 1",
        "duckdb",
        "quality rule 'agency_number' compares text (`agency`) with a number (`1`), which the duckdb engine "
        "does not convert as Spark does: compare values of one kind (DATE 'yyyy-mm-dd' for a date), or "
        "--engine spark",
    ),
    (
        "not_a_test",
        "incidents",
        "duckdb",
        "quality rule 'not_a_test' has a condition that gives a number, not true/false: write a test such as "
        "`incidents > 0` or `incidents IS NOT NULL`",
    ),
    (
        "root",
        "sqrt(incidents) > 1",
        "duckdb",
        "quality rule 'root' uses sqrt(), which the duckdb engine is not verified to evaluate as Spark does: "
        "use the operators and functions listed in params/quality_rules.yaml, or --engine spark",
    ),
]


@pytest.mark.parametrize(
    ("name", "condition", "engine_name", "message"), REFUSED, ids=[f"{e}-{c}" for _, c, e, _ in REFUSED]
)
def test_rule_the_engine_cannot_run_identically_is_refused(name, condition, engine_name, message):
    with pytest.raises(QualityRuleError) as refused:
        check_quality_rules([QualityRule(name, condition, "drop")], engine_name)
    expected = message.format(columns=list(silver_rule_columns()), fields=list(BRONZE_SOURCE_NAMES))
    assert str(refused.value) == expected


DUCKDB_ONLY = sorted(
    {c for _, c, e, m in REFUSED if e == "duckdb" and "silver rows" not in m and "parse" not in m}
)


@pytest.mark.parametrize("condition", DUCKDB_ONLY)
def test_spark_engine_checks_only_parse_and_columns(condition):
    check_quality_rules([QualityRule("r", condition, "drop")], "spark")


@pytest.mark.spark
def test_dayofweek_is_accepted_on_spark_where_monday_is_2(params, make_bronze):
    rule = QualityRule("week_is_monday", "dayofweek(week_start_date) = 2", "drop")
    check_quality_rules([rule], "spark")
    bronze = make_bronze({}, {"week_start_date": "11/19/2013"})  # a Monday, a Tuesday
    monday, tuesday = _evaluate(bronze, params, (rule,)).orderBy("_line_number").collect()
    assert (monday.failed_rules, tuesday.failed_rules) == ([], ["week_is_monday"])


def test_without_sqlglot_only_the_spark_engine_skips_the_check(monkeypatch):
    monkeypatch.setitem(sys.modules, "sqlglot", None)  # `import sqlglot` -> ImportError
    rules = [QualityRule("r", "agncy >", "drop")]
    check_quality_rules(rules, "spark")
    with pytest.raises(ImportError):
        check_quality_rules(rules, "duckdb")


@pytest.mark.e2e
def test_refused_rule_stops_silver_before_it_writes(spark, warehouse_params):
    rule = QualityRule("agency_set", "agncy IS NOT NULL", "warn")
    params = dataclasses.replace(warehouse_params, quality_rules=(*warehouse_params.quality_rules, rule))
    with pytest.raises(QualityRuleError, match=r"^quality rule 'agency_set' refers to column 'agncy'"):
        run_once(spark, params)
    written = {key for key, version in table_versions(spark, params).items() if version is not None}
    assert "bronze.e2e_raw" in written  # bronze, written first, does not use the rules
    assert {key for key in written if not key.startswith("bronze.")} == set()
