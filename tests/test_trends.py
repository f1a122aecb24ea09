"""Agency trends, the latest-week headline and monthly dispatch/travel by priority."""

from __future__ import annotations

import datetime as dt
import statistics

import pytest

from nyc911lib.transforms.trends import ALL_AGENCIES, kpi_agency_weekly, kpi_headline, kpi_monthly_priority

LATEST = dt.date(2025, 3, 3)  # a Monday
SCHEMA = (
    "week_start_date DATE, agency STRING, incident_type STRING, priority INT, incidents BIGINT, "
    "avg_call_to_first_pickup_s DOUBLE, avg_dispatch_s DOUBLE, avg_travel_s DOUBLE, "
    "avg_call_to_agency_arrival_s DOUBLE"
)


def weeks_back(n: int) -> dt.date:
    return LATEST - dt.timedelta(weeks=n)


@pytest.fixture(scope="module")
def weekly(spark):
    rows = []
    # EMS: two types; 20 weeks of history, plus the same week a year (52 weeks) earlier
    for n in [*range(20), 52]:
        rows.append((weeks_back(n), "EMS", "Critical", 1, 100 + n, 4.0 + n, 60.0, 300.0, None))
        rows.append((weeks_back(n), "EMS", "Serious", 2, 300, 2.0, 120.0, None, 500.0))
    # FDNY: only the latest week (no history to compare with)
    rows.append((LATEST, "FDNY", "Fires", 1, 50, 3.0, 30.0, 200.0, 400.0))
    return spark.createDataFrame(rows, SCHEMA)


def test_kpi_agency_weekly_weights_by_incidents(weekly):
    agency = {(r.agency, r.week_start_date): r for r in kpi_agency_weekly(weekly).collect()}
    ems = agency[("EMS", LATEST)]
    assert ems.incidents == 400
    assert ems.avg_call_to_first_pickup_s == pytest.approx((100 * 4.0 + 300 * 2.0) / 400)
    assert ems.avg_travel_s == pytest.approx(300.0)  # the Serious row has no travel: left out
    total = agency[(ALL_AGENCIES, LATEST)]
    assert total.incidents == 450
    assert total.avg_dispatch_s == pytest.approx((100 * 60 + 300 * 120 + 50 * 30) / 450)
    assert total.rows == 3
    assert agency[(ALL_AGENCIES, weeks_back(1))].incidents == 401


def test_kpi_headline_compares_latest_week(weekly):
    head = {(r.agency, r.metric): r for r in kpi_headline(kpi_agency_weekly(weekly)).collect()}
    pickup = head[("EMS", "avg_call_to_first_pickup_s")]

    def ems_pickup(n: int) -> float:
        return ((100 + n) * (4.0 + n) + 300 * 2.0) / (400 + n)

    assert pickup.week_start_date == LATEST
    assert pickup.value == pytest.approx(ems_pickup(0))
    assert pickup.last_year_week == weeks_back(52)
    assert pickup.last_year_value == pytest.approx(ems_pickup(52))
    trailing = statistics.median(ems_pickup(n) for n in range(1, 13))
    assert pickup.trailing_12w_median == pytest.approx(trailing)
    assert pickup.trailing_weeks == 12
    assert pickup.change_vs_last_year_pct == pytest.approx(100 * (ems_pickup(0) / ems_pickup(52) - 1))
    assert pickup.change_vs_trailing_median_pct == pytest.approx(100 * (ems_pickup(0) / trailing - 1))
    assert pickup.lower_is_better is True
    volume = head[("EMS", "incidents")]
    assert (volume.value, volume.last_year_value, volume.lower_is_better) == (400.0, 452.0, None)
    fdny = head[("FDNY", "avg_travel_s")]
    assert (fdny.value, fdny.last_year_value, fdny.trailing_12w_median, fdny.trailing_weeks) == (
        200.0,
        None,
        None,
        0,
    )
    assert fdny.change_vs_last_year_pct is None
    assert {a for a, _ in head} == {"EMS", "FDNY", ALL_AGENCIES}
    assert len(head) == 3 * 5


def test_kpi_monthly_priority(weekly):
    rows = {(r.month, r.agency, r.priority): r for r in kpi_monthly_priority(weekly).collect()}
    march = rows[(dt.date(2025, 3, 1), "EMS", 1)]
    assert (march.incidents, march.avg_dispatch_s, march.avg_travel_s, march.weeks) == (100, 60.0, 300.0, 1)
    feb = rows[(dt.date(2025, 2, 1), "EMS", 2)]
    assert (feb.incidents, feb.avg_dispatch_s, feb.avg_travel_s, feb.weeks) == (1200, 120.0, None, 4)
