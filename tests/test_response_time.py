"""The end-to-end response time headline (gold.kpi_response_time): periods, weighting, segments."""

from __future__ import annotations

import datetime as dt

import pytest

from nyc911lib.transforms.response_time import (
    PERIODS,
    kpi_response_time,
    period_day_spans,
    response_time_reach,
)
from nyc911lib.transforms.week_spans import spans_of

pytestmark = pytest.mark.both
LATEST = dt.date(2025, 3, 3)  # a Monday
SCHEMA = (
    "week_start_date DATE, agency STRING, incident_type STRING, incidents BIGINT, "
    "avg_call_to_first_pickup_s DOUBLE, avg_call_to_agency_dispatch_s DOUBLE, avg_travel_s DOUBLE, "
    "avg_call_to_agency_arrival_s DOUBLE"
)


def weeks_back(n: int) -> dt.date:
    return LATEST - dt.timedelta(weeks=n)


def ems(n: int, incidents: int, pickup: float | None, dispatch: float, travel: float, arrival: float):
    return (
        weeks_back(n),
        "EMS",
        "Life Threatening Med Emergencies",
        incidents,
        pickup,
        dispatch,
        travel,
        arrival,
    )


@pytest.fixture(scope="module")
def response_rows(spark):
    """EMS's most urgent type: weeks 0, 1 and 3 back (week 2 missing), 52 and 54 back; a less
    urgent EMS type and an NYPD type that are not chosen."""
    rows = [
        ems(0, 100, 4.0, 300.0, 500.0, 800.0),
        ems(1, 300, None, 200.0, 400.0, 600.0),  # pickup unknown: left out of the pickup mean only
        ems(3, 100, 6.0, 100.0, 300.0, 401.0),
        ems(52, 50, 5.0, 250.0, 450.0, 700.0),
        ems(54, 150, 3.0, 150.0, 350.0, 500.0),
        ems(56, 999, 9.0, 999.0, 999.0, 999.0),  # just before the year-earlier period
        (LATEST, "EMS", "Non-Life Threatening Med Emergencies", 900, 1.0, 1.0, 1.0, 2.0),
        (LATEST, "NYPD", "Serious", 900, 1.0, 1.0, 1.0, 2.0),
    ]
    frame = spark.createDataFrame(rows, SCHEMA)
    built = frame.transform(
        kpi_response_time((("EMS", "Life Threatening Med Emergencies"),), trailing_weeks=4)
    )
    return {(r.week_start_date, r.period): r.asDict() for r in built.collect()}


def test_period_spans_are_whole_weeks_a_year_apart():
    assert period_day_spans(52) == {"week": (0, 0), "trailing_weeks": (-357, 0), "year_earlier": (-721, -364)}


def test_only_the_most_urgent_series_every_week_and_period(response_rows):
    assert {k[1] for k in response_rows} == set(PERIODS)
    weeks = {k[0] for k in response_rows}
    assert weeks == {weeks_back(n) for n in (0, 1, 3, 52, 54, 56)}
    assert len(response_rows) == 6 * 3


def test_the_week_is_its_own_row(response_rows):
    week = response_rows[(LATEST, "week")]
    assert (week["period_first_week"], week["period_last_week"], week["weeks_with_data"]) == (
        LATEST,
        LATEST,
        1,
    )
    assert week["incidents"] == 100
    assert week["avg_call_to_agency_arrival_s"] == 800.0
    assert (week["pickup_s"], week["pickup_to_dispatch_s"], week["travel_s"]) == (4.0, 296.0, 500.0)
    assert week["arrival_minus_segments_s"] == 0.0


def test_trailing_weeks_are_incident_weighted_over_the_weeks_with_data(response_rows):
    trailing = response_rows[(LATEST, "trailing_weeks")]
    assert (trailing["period_first_week"], trailing["period_last_week"]) == (weeks_back(3), LATEST)
    assert (trailing["weeks_with_data"], trailing["incidents"]) == (3, 500)  # week 2 has no row
    arrival = (100 * 800 + 300 * 600 + 100 * 401) / 500
    dispatch = (100 * 300 + 300 * 200 + 100 * 100) / 500
    pickup = (100 * 4.0 + 100 * 6.0) / 200  # the week without a pickup is left out of it
    travel = (100 * 500 + 300 * 400 + 100 * 300) / 500
    assert trailing["avg_call_to_agency_arrival_s"] == pytest.approx(arrival, rel=1e-12)
    assert trailing["pickup_s"] == pytest.approx(pickup, rel=1e-12)
    assert trailing["pickup_to_dispatch_s"] == pytest.approx(dispatch - pickup, rel=1e-12)
    assert trailing["travel_s"] == pytest.approx(travel, rel=1e-12)
    assert trailing["arrival_minus_segments_s"] == pytest.approx(arrival - dispatch - travel, abs=1e-9)


def test_year_earlier_is_the_same_weeks_52_weeks_before(response_rows):
    earlier = response_rows[(LATEST, "year_earlier")]
    assert (earlier["period_first_week"], earlier["period_last_week"]) == (weeks_back(55), weeks_back(52))
    assert (earlier["weeks_with_data"], earlier["incidents"]) == (2, 200)  # not week 56
    assert earlier["avg_call_to_agency_arrival_s"] == pytest.approx((50 * 700 + 150 * 500) / 200, rel=1e-12)
    assert earlier["pickup_s"] == pytest.approx((50 * 5.0 + 150 * 3.0) / 200, rel=1e-12)
    trailing = response_rows[(LATEST, "trailing_weeks")]
    change = 100 * (trailing["avg_call_to_agency_arrival_s"] / earlier["avg_call_to_agency_arrival_s"] - 1)
    assert trailing["arrival_change_vs_year_earlier_pct"] == pytest.approx(change, rel=1e-12)
    assert earlier["arrival_change_vs_year_earlier_pct"] is None  # stated once, on the trailing row


def test_a_period_without_data_has_no_times(response_rows):
    empty = response_rows[(weeks_back(52), "year_earlier")]
    assert (empty["weeks_with_data"], empty["incidents"]) == (0, 0)
    assert empty["avg_call_to_agency_arrival_s"] is None
    assert (empty["pickup_s"], empty["pickup_to_dispatch_s"], empty["travel_s"]) == (None, None, None)
    assert response_rows[(weeks_back(52), "trailing_weeks")]["arrival_change_vs_year_earlier_pct"] is None


@pytest.mark.parametrize("trailing_weeks", [4, 52])
def test_the_reach_holds_every_week_whose_periods_read_a_changed_week(trailing_weeks):
    """For every Monday of 2018..2026: a week is recomputed when a week of one of its periods
    changed, and recomputing it reads all of its periods' weeks."""
    reach = response_time_reach(trailing_weeks)
    spans = period_day_spans(trailing_weeks).values()
    mondays = [dt.date(2018, 1, 1) + dt.timedelta(weeks=i) for i in range(470)]
    reads = {
        x: {x + dt.timedelta(days=d) for first, last in spans for d in range(first, last + 1, 7)}
        for x in mondays
    }
    for changed in mondays[::11]:
        outputs = reach.outputs(spans_of([changed]))
        affected = [x for x in mondays if changed in reads[x]]
        assert affected and all(any(lo <= x <= hi for lo, hi in outputs) for x in affected)
    for x in mondays[::7]:
        inputs = reach.inputs(spans_of([x]))
        assert all(any(lo <= day <= hi for lo, hi in inputs) for day in reads[x])
