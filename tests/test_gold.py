"""Gold: incident weighting, SLA flags, monthly rollup, summary."""

from __future__ import annotations

import datetime as dt

import pyspark.sql.functions as F
import pytest
from conftest import dtypes_of

from nyc911lib import (
    SlaRule,
    incident_weighted_mean,
    kpi_monthly_agency,
    kpi_summary,
    kpi_weekly,
    publication_drift,
    restatements,
    within_weeks,
)

WEEKLY_SCHEMA = (
    "week_start_date date, agency string, incident_type string, priority int, incidents long, "
    "call_to_first_pickup_s double, call_to_agency_dispatch_s double, call_to_agency_arrival_s double, "
    "avg_dispatch_s double, avg_travel_s double, median_dispatch_s double, median_travel_s double, "
    "call_to_first_arrival_multi_agency_s double, _source_kind string"
)
PICKUP_5S = SlaRule("pickup_over_5s", "avg_call_to_first_pickup_s", 5.0)


def _silver(spark, rows):
    """rows: (week, agency, type, incidents, pickup_s, travel_s)."""
    data = [
        (dt.date.fromisoformat(w), a, t, 1, n, p, 100.0, 500.0, 60.0, tr, 50.0, 300.0, 450.0, "file")
        for w, a, t, n, p, tr in rows
    ]
    return spark.createDataFrame(data, WEEKLY_SCHEMA)


def test_incident_weighted_mean_ignores_rows_without_a_value(spark):
    df = spark.createDataFrame([(100, 4.0), (300, 8.0), (600, None)], "incidents long, v double")
    assert df.agg(incident_weighted_mean("v").alias("m")).first().m == pytest.approx(7.0)  # not 6.0, not 2.8


def test_sla_flags_respect_threshold_and_scope(spark):
    ems_only = SlaRule("ems_travel", "avg_travel_s", 400.0, agencies=("EMS",))
    silver = _silver(
        spark,
        [
            ("2024-01-01", "EMS", "A", 10, 5.0, 450.0),
            ("2024-01-01", "EMS", "B", 10, 5.01, 350.0),
            ("2024-01-01", "FDNY", "A", 10, 4.0, 900.0),
            ("2024-01-01", "FDNY", "B", 10, None, 100.0),
        ],
    )
    rows = silver.transform(kpi_weekly([PICKUP_5S, ems_only])).orderBy("agency", "incident_type").collect()
    got = [(r.sla_breach_pickup_over_5s, r.sla_breach_ems_travel, r.sla_breached) for r in rows]
    assert got == [(False, True, True), (True, False, True), (False, None, False), (None, None, None)]


def test_kpi_weekly_contract_columns(spark):
    weekly = _silver(spark, [("2024-01-01", "EMS", "A", 10, 5.0, 450.0)]).transform(kpi_weekly([PICKUP_5S]))
    assert weekly.columns[:13] == [
        "week_start_date",
        "agency",
        "incident_type",
        "priority",
        "incidents",
        "avg_call_to_first_pickup_s",
        "avg_call_to_agency_dispatch_s",
        "avg_call_to_agency_arrival_s",
        "avg_dispatch_s",
        "avg_travel_s",
        "median_dispatch_s",
        "median_travel_s",
        "avg_call_to_first_arrival_multi_agency_s",
    ]
    assert {"sla_breach_pickup_over_5s", "sla_breached"} <= set(weekly.columns)
    assert dtypes_of(weekly)["incidents"] == "bigint"


def test_monthly_rollup_weights_by_incidents_and_assigns_weeks_by_start_date(spark):
    silver = _silver(
        spark,
        [
            ("2024-01-29", "EMS", "A", 100, 4.0, 400.0),  # week spans into February: counts for January
            ("2024-01-01", "EMS", "B", 300, 8.0, 600.0),
            ("2024-02-05", "EMS", "A", 50, 3.0, None),
        ],
    )
    monthly = kpi_monthly_agency(silver.transform(kpi_weekly([PICKUP_5S]))).orderBy("month").collect()
    jan, feb = monthly
    assert (jan.month, jan.agency, jan.incidents, jan.rows, jan.weeks) == (
        dt.date(2024, 1, 1),
        "EMS",
        400,
        2,
        2,
    )
    assert jan.avg_call_to_first_pickup_s == pytest.approx(7.0)
    assert (jan.incidents_per_week, feb.incidents_per_week) == (200.0, 50.0)  # the weekly volume
    assert jan.avg_travel_s == pytest.approx(550.0)
    assert jan.sla_breach_rate_pct == pytest.approx(75.0)  # 300 of 400 incidents in breaching rows
    assert jan.sla_breach_rows_pct == pytest.approx(50.0)
    assert feb.avg_travel_s is None
    assert feb.sla_breach_rate_pct == 0.0


def test_summary_totals_weighting_and_both_breach_rates(spark):
    silver = _silver(
        spark,
        [
            ("2024-01-01", "EMS", "A", 100, 4.0, 1.0),
            ("2024-01-08", "FDNY", "A", 300, 8.0, 1.0),
            ("2024-01-15", "FDNY", "B", 600, None, 1.0),
        ],
    )
    weekly = silver.transform(kpi_weekly([PICKUP_5S]))
    s = weekly.transform(kpi_summary(dt.date(2024, 1, 1), None)).first()
    assert (s.first_week, s.last_week, s.total_incidents, s.rows, s.agencies) == (
        dt.date(2024, 1, 1),
        dt.date(2024, 1, 15),
        1000,
        3,
        2,
    )
    assert s.avg_call_to_first_pickup_s == pytest.approx(7.0)
    assert s.sla_breach_incidents_pct == pytest.approx(75.0)  # the 600 without a pickup are not evaluated
    assert s.sla_breach_rows_pct == pytest.approx(50.0)
    assert (s.scope_from, s.scope_to, s.source_kinds) == (dt.date(2024, 1, 1), None, "file")


def test_summary_per_agency_weights_each_agency_by_its_incidents(spark):
    """What a report's per-agency tiles show: the summary's figures for each agency alone."""
    silver = _silver(
        spark,
        [
            ("2024-01-01", "EMS", "A", 100, 4.0, 1.0),
            ("2024-01-08", "EMS", "A", 300, 8.0, 1.0),  # weighted 7.0, not the plain mean 6.0
            ("2024-01-01", "NYPD", "A", 50, 3.0, 1.0),
            ("2024-01-08", "NYPD", "A", 150, None, 1.0),  # no pickup: left out, not a zero
        ],
    )
    weekly = silver.transform(kpi_weekly([PICKUP_5S]))
    per_agency = kpi_summary(dt.date(2024, 1, 1), None, by=("agency",))
    rows = weekly.transform(per_agency).orderBy("agency").collect()
    assert list(rows[0].asDict())[:2] == ["agency", "scope_from"]
    got = {
        r.agency: (r.total_incidents, r.rows, r.avg_call_to_first_pickup_s, r.sla_breach_incidents_pct)
        for r in rows
    }
    assert got == {"EMS": (400, 2, pytest.approx(7.0), pytest.approx(75.0)), "NYPD": (200, 2, 3.0, 0.0)}
    assert [(r.first_week, r.last_week, r.agencies) for r in rows] == 2 * [
        (dt.date(2024, 1, 1), dt.date(2024, 1, 8), 1)
    ]


def test_within_weeks_bounds_are_inclusive(spark):
    silver = _silver(
        spark, [(w, "EMS", "A", 1, 1.0, 1.0) for w in ("2024-01-01", "2024-01-08", "2024-01-15")]
    )
    kept = silver.transform(within_weeks(dt.date(2024, 1, 8), dt.date(2024, 1, 15)))
    assert sorted(r[0].isoformat() for r in kept.select("week_start_date").collect()) == [
        "2024-01-08",
        "2024-01-15",
    ]
    assert silver.transform(within_weeks(None, None)).count() == 3
    assert kept.where(F.col("agency") != "EMS").count() == 0


VERSION_SCHEMA = (
    "week_start_date date, agency string, incident_type string, incidents long, "
    "call_to_first_pickup_s double, call_to_agency_dispatch_s double, call_to_agency_arrival_s double, "
    "avg_dispatch_s double, avg_travel_s double, median_dispatch_s double, median_travel_s double, "
    "call_to_first_arrival_multi_agency_s double, "
    "_ingested_at timestamp, _batch_id string, _line_number long, _source_file string"
)


def _versions(spark, rows):
    """rows: (agency, incidents, pickup_s, publication day); one week, type A."""
    return spark.createDataFrame(
        [
            (
                dt.date(2023, 1, 9),
                a,
                "A",
                n,
                p,
                1.0,
                2.0,
                3.0,
                4.0,
                5.0,
                6.0,
                7.0,
                dt.datetime(2026, 1, day),
                f"b{day}",
                2,
                f"f{day}.csv",
            )
            for a, n, p, day in rows
        ],
        VERSION_SCHEMA,
    )


def test_restatements_list_changes_between_consecutive_publications(spark):
    versions = _versions(
        spark,
        [
            ("EMS", 100, 3.0, 1),
            ("EMS", 100, 3.0, 2),
            ("EMS", 120, 3.5, 3),
            ("FDNY", 50, 4.0, 1),
            ("NYPD", 9, 1.0, 2),
            ("NYPD", 9, 1.0, 3),
        ],
    )
    rows = restatements(versions).collect()
    assert [
        (
            r.agency,
            r.old_batch_id,
            r.new_batch_id,
            r.old_incidents,
            r.new_incidents,
            r.old_avg_call_to_first_pickup_s,
            r.new_avg_call_to_first_pickup_s,
            r.changed_columns,
        )
        for r in rows
    ] == [("EMS", "b2", "b3", 100, 120, 3.0, 3.5, ["incidents", "call_to_first_pickup_s"])]


def test_publication_drift_compares_first_published_with_current(spark):
    versions = _versions(spark, [("EMS", 100, 3.0, 1), ("EMS", 120, 3.5, 3), ("FDNY", 50, 4.0, 1)])
    rows = {r.agency: r for r in publication_drift(versions).collect()}
    ems = rows["EMS"]
    assert (ems.first_published_incidents, ems.current_incidents, ems.incidents_change) == (100, 120, 20)
    assert ems.incidents_change_pct == pytest.approx(20.0)
    assert ems.avg_call_to_first_pickup_change_s == pytest.approx(0.5)
    assert (rows["FDNY"].incidents_change, rows["FDNY"].first_published_rows) == (0, 1)
