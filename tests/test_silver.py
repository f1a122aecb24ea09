"""Silver: parsing, units, canonical agency and incident type, latest-row-per-key."""

from __future__ import annotations

import datetime as dt

import pyspark.sql.functions as F
import pytest

from nyc911lib import restatement_outcomes, typed_e2e
from nyc911lib.transforms.silver import (
    canonical_agency,
    incident_priority,
    parse_incidents,
    parse_seconds,
    parse_week_start_date,
    standard_incident_type,
)


def _one(spark, value, column_fn):
    df = spark.createDataFrame([(value,)], "t string")
    return df.select(column_fn(F.col("t")).alias("out")).first().out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("11/18/2013", dt.date(2013, 11, 18)),
        ("2013-11-18T00:00:00.000", dt.date(2013, 11, 18)),
        ("13/45/2020", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_week_start_date(spark, text, expected):
    assert _one(spark, text, parse_week_start_date) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("6761", 6761), ("0", 0), ("12.5", None), ("1,234", None), ("-3", None), ("abc", None), (None, None)],
)
def test_parse_incidents_accepts_only_whole_counts(spark, text, expected):
    assert _one(spark, text, parse_incidents) == expected


@pytest.mark.parametrize(
    ("text", "unit", "expected"),
    [
        ("8.23", "minutes", 493.8),  # first EMS row: Average Travel 8.23 min = 738.73 - 244.96 s
        ("0.05", "minutes", 3.0),
        ("738.73", "seconds", 738.73),
        ("-46.68", "seconds", -46.68),
        ("NaN", "seconds", None),
        ("-inf", "minutes", None),
        ("1,2,3", "seconds", None),
        ("", "seconds", None),
    ],
)
def test_parse_seconds_converts_minutes_and_rejects_non_finite(spark, text, unit, expected):
    assert _one(spark, text, lambda c: parse_seconds(c, unit)) == expected


@pytest.mark.parametrize(
    ("agency", "code"),
    [("EMS", "EMS"), ("NYPD (Non-CIP)", "NYPD_NON_CIP"), ("Sanitation", None), (None, None)],
)
def test_canonical_agency(spark, agency, code):
    codes = {"EMS": "EMS", "NYPD (Non-CIP)": "NYPD_NON_CIP"}
    assert _one(spark, agency, canonical_agency(codes)) == code


@pytest.mark.parametrize(
    ("raw", "priority", "name"),
    [
        ("1. Life Threating Med Emergencies", 1, "Life Threatening Med Emergencies"),
        ("2. Non-Life Threatening Med Emergencies", 2, "Non-Life Threatening Med Emergencies"),
        ("3. Non-Critical", 3, "Non-Critical"),
        ("Dispute", None, "Dispute"),
        ("", None, "Unspecified"),
        (None, None, "Unspecified"),
        ("  Shot Spotter ", None, "Shot Spotter"),
    ],
)
def test_incident_type_standardized(spark, raw, priority, name):
    fixes = {"Life Threating Med Emergencies": "Life Threatening Med Emergencies"}
    df = spark.createDataFrame([(raw,)], "t string").select(F.trim("t").alias("t"))
    row = df.select(
        incident_priority(F.coalesce(F.col("t"), F.lit(""))).alias("p"),
        standard_incident_type(fixes, "Unspecified")(F.col("t")).alias("n"),
    ).first()
    assert (row.p, row.n) == (priority, name)


def test_typed_e2e_types_converts_units_and_lists_problems(spark, params, make_bronze):
    bronze = make_bronze(
        {},
        {"average_travel": "abc", "median_travel": "-5", "of_incidents_calculated": "1,2,3"},
        {"agency": "NYPD (Non-CIP)", "final_incident_type": ""},
    )
    typed = bronze.transform(
        typed_e2e(params.agency_codes, params.incident_type_fixes, params.unspecified_incident_type)
    )
    rows = typed.orderBy("_line_number").collect()
    first = rows[0]
    assert first.week_start_date == dt.date(2013, 11, 18)
    assert (first.agency, first.priority, first.incident_type) == (
        "EMS",
        1,
        "Life Threatening Med Emergencies",
    )
    assert first.incident_type_source == "1. Life Threating Med Emergencies"
    assert first.incidents == 100
    assert first.avg_travel_s == pytest.approx(363.0)
    assert first.avg_dispatch_s == pytest.approx(93.0)
    assert first.call_to_first_pickup_s == 3.18
    assert first.call_to_fdny_pickup_s is None  # empty optional column stays NULL, not an error
    assert first.unparsable_fields == []
    assert first.negative_time_fields == []
    assert first._raw.average_travel == "6.05"
    assert rows[1].unparsable_fields == ["incidents", "avg_travel_s"]
    assert rows[1].negative_time_fields == ["median_travel_s"]
    assert (rows[2].agency, rows[2].incident_type, rows[2].priority) == ("NYPD_NON_CIP", "Unspecified", None)


def test_typed_e2e_tolerates_a_missing_optional_column(spark, params, make_bronze):
    bronze = make_bronze({}).drop("average_fd_processing")
    typed = bronze.transform(typed_e2e(params.agency_codes, {}, "Unspecified")).first()
    assert typed.avg_fd_processing_s is None
    assert typed.incidents == 100


def _versions(spark, rows):
    """(origin, batch, line, incidents) versions of one key -> rows with their outcome."""
    data = [
        (dt.date(2024, 1, 1), "EMS", "X", origin, dt.datetime(2026, 1, 1), batch, line, n, None, None, 5.0)
        for origin, batch, line, n in rows
    ]
    schema = (
        "week_start_date date, agency string, incident_type string, _origin int, _ingested_at timestamp, "
        "_batch_id string, _line_number long, incidents long, priority int, incident_type_source string, "
        "call_to_first_pickup_s double"
    )
    values = ("priority", "incident_type_source", "incidents", "call_to_first_pickup_s")
    out = spark.createDataFrame(data, schema).transform(restatement_outcomes(values=values))
    return [
        (r._batch_id, r.outcome, r.superseded_by_batch_id)
        for r in out.orderBy("_origin", "_batch_id", "_line_number").collect()
    ]


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        # a new key: inserted
        ([(1, "b2", 2, 10)], [("b2", "silver", None)]),
        # republished unchanged: a no-op, the silver row stays
        ([(0, "b1", 2, 10), (1, "b2", 2, 10)], [("b1", "kept", None), ("b2", "unchanged", None)]),
        # revised: the silver row is replaced by the newer one
        ([(0, "b1", 2, 10), (1, "b2", 2, 11)], [("b1", "replaced", "b2"), ("b2", "silver", None)]),
        # two publications in one batch, as if applied one at a time
        (
            [(0, "b1", 2, 10), (1, "b2", 2, 11), (1, "b3", 2, 11)],
            [("b1", "replaced", "b2"), ("b2", "silver", None), ("b3", "unchanged", None)],
        ),
        (
            [(0, "b1", 2, 10), (1, "b2", 2, 11), (1, "b3", 2, 10)],
            [("b1", "replaced", "b2"), ("b2", "superseded", "b3"), ("b3", "silver", None)],
        ),
        # revised and then revised back within the batch: silver keeps its row
        (
            [(1, "b2", 2, 11), (1, "b2", 9, 12)],
            [("b2", "superseded", "b2"), ("b2", "silver", None)],
        ),
    ],
)
def test_restatement_outcomes_apply_publications_in_order(spark, rows, expected):
    assert _versions(spark, rows) == expected
