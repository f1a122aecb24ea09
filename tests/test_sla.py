"""SLA alerts and weekly breach rates from kpi_weekly flags."""

from __future__ import annotations

import datetime as dt

import pytest

from nyc911lib.config import SlaRule
from nyc911lib.transforms.gold import kpi_weekly
from nyc911lib.transforms.sla import sla_alerts, sla_breach_weekly, sla_rules_table

PICKUP = SlaRule(name="pickup_over_5s", metric="avg_call_to_first_pickup_s", threshold_s=5)
TRAVEL_EMS = SlaRule(name="ems_travel_over_600s", metric="avg_travel_s", threshold_s=600, agencies=("EMS",))
MONDAY = dt.date(2024, 1, 1)


def week(n: int) -> dt.date:
    return MONDAY + dt.timedelta(weeks=n)


def weekly_frame(spark, rows):
    """rows: (week number, agency, incident type, incidents, pickup s, travel s) -> kpi_weekly."""
    schema = (
        "week_start_date DATE, agency STRING, incident_type STRING, priority INT, incidents BIGINT, "
        "call_to_first_pickup_s DOUBLE, avg_travel_s DOUBLE, _source_kind STRING"
    )
    data = [(week(w), a, t, 1, n, p, tr, "file") for w, a, t, n, p, tr in rows]
    silver = spark.createDataFrame(data, schema)
    unused = (
        "call_to_agency_dispatch_s",
        "call_to_agency_arrival_s",
        "avg_dispatch_s",
        "median_dispatch_s",
        "median_travel_s",
        "call_to_first_arrival_multi_agency_s",
    )
    for name in unused:
        silver = silver.withColumn(name, silver["incidents"].cast("double") * 0)
    return silver.transform(kpi_weekly([PICKUP, TRAVEL_EMS]))


@pytest.fixture(scope="module")
def weekly(spark):
    return weekly_frame(
        spark,
        [
            # EMS Critical: breaches pickup weeks 0,1,2, passes 3, breaches 5 (4 missing), 6
            (0, "EMS", "Critical", 100, 6.0, 700.0),
            (1, "EMS", "Critical", 110, 7.0, 500.0),
            (2, "EMS", "Critical", 120, 5.5, 650.0),
            (3, "EMS", "Critical", 130, 4.0, 650.0),
            (5, "EMS", "Critical", 140, 9.0, 100.0),
            (6, "EMS", "Critical", 150, 5.01, 100.0),
            # NYPD: the travel rule does not apply; pickup breach in week 6 only; NULL pickup week 5
            (5, "NYPD", "Dispute", 40, None, 900.0),
            (6, "NYPD", "Dispute", 50, 12.0, 900.0),
        ],
    )


def test_sla_alerts_rows_values_and_streaks(weekly):
    rows = weekly.transform(sla_alerts([PICKUP, TRAVEL_EMS])).orderBy("rule", "agency", "week_start_date")
    got = [
        (
            r.rule,
            r.agency,
            r.week_start_date,
            r.observed_s,
            r.threshold_s,
            r.incidents_affected,
            r.streak_start_week,
            r.streak_weeks,
        )
        for r in rows.collect()
    ]
    assert got == [
        ("ems_travel_over_600s", "EMS", week(0), 700.0, 600.0, 100, week(0), 1),
        ("ems_travel_over_600s", "EMS", week(2), 650.0, 600.0, 120, week(2), 1),
        ("ems_travel_over_600s", "EMS", week(3), 650.0, 600.0, 130, week(2), 2),
        ("pickup_over_5s", "EMS", week(0), 6.0, 5.0, 100, week(0), 1),
        ("pickup_over_5s", "EMS", week(1), 7.0, 5.0, 110, week(0), 2),
        ("pickup_over_5s", "EMS", week(2), 5.5, 5.0, 120, week(0), 3),
        ("pickup_over_5s", "EMS", week(5), 9.0, 5.0, 140, week(5), 1),
        ("pickup_over_5s", "EMS", week(6), 5.01, 5.0, 150, week(5), 2),
        ("pickup_over_5s", "NYPD", week(6), 12.0, 5.0, 50, week(6), 1),
    ]
    assert set(rows.columns) >= {"metric", "incident_type"}


def test_sla_alerts_without_rules_is_empty(weekly):
    alerts = weekly.transform(sla_alerts([]))
    assert alerts.count() == 0
    assert "streak_start_week" in alerts.columns


def test_sla_breach_weekly_rates(weekly):
    rates = weekly.transform(sla_breach_weekly([PICKUP, TRAVEL_EMS]))
    got = {
        (r.rule, r.agency, r.week_start_date): (
            r.rows_evaluated,
            r.rows_breached,
            r.incidents_evaluated,
            r.incidents_breached,
            r.breach_incidents_pct,
        )
        for r in rates.collect()
    }
    assert got[("pickup_over_5s", "EMS", week(3))] == (1, 0, 130, 0, 0.0)
    assert got[("pickup_over_5s", "NYPD", week(6))] == (1, 1, 50, 50, 100.0)
    # NULL pickup: not evaluated, so no row for NYPD week 5; travel rule never applies to NYPD
    assert ("pickup_over_5s", "NYPD", week(5)) not in got
    assert not [k for k in got if k[0] == "ems_travel_over_600s" and k[1] == "NYPD"]
    assert len(got) == 6 + 1 + 6


def test_sla_rules_table_lists_scope():
    assert sla_rules_table([TRAVEL_EMS]) == [
        {
            "rule": "ems_travel_over_600s",
            "metric": "avg_travel_s",
            "threshold_s": 600.0,
            "description": "",
            "agencies": ["EMS"],
            "incident_types": [],
        }
    ]
