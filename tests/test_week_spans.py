"""Week spans: the weeks an incremental gold build recomputes (`nyc911lib.transforms.week_spans`)."""

from __future__ import annotations

import datetime as dt

import pytest

from nyc911lib.transforms.week_spans import (
    ALL_DAYS,
    WeekReach,
    merged,
    pieces,
    plus_years,
    spans_of,
    within_spans,
)

D = dt.date


@pytest.mark.parametrize(
    ("weeks", "spans"),
    [
        ([], ()),
        ([D(2025, 1, 6)], ((D(2025, 1, 6), D(2025, 1, 6)),)),
        ([D(2025, 1, 20), D(2025, 1, 6), D(2025, 1, 13), D(2025, 1, 13)], ((D(2025, 1, 6), D(2025, 1, 20)),)),
        (
            [D(2025, 1, 6), D(2025, 1, 20), D(2025, 3, 3)],
            (
                (D(2025, 1, 6), D(2025, 1, 6)),
                (D(2025, 1, 20), D(2025, 1, 20)),
                (D(2025, 3, 3), D(2025, 3, 3)),
            ),
        ),
    ],
    ids=["none", "one", "consecutive-unsorted-repeated", "apart"],
)
def test_weeks_become_spans_joined_only_when_consecutive(weeks, spans):
    assert spans_of(weeks) == spans


def test_overlapping_and_adjacent_spans_merge_and_others_stay_apart():
    spans = [
        (D(2025, 1, 1), D(2025, 1, 10)),
        (D(2025, 1, 11), D(2025, 1, 20)),
        (D(2025, 1, 5), D(2025, 1, 8)),
    ]
    assert merged(spans) == ((D(2025, 1, 1), D(2025, 1, 20)),)
    assert merged([(D(2025, 1, 1), D(2025, 1, 10)), (D(2025, 1, 17), D(2025, 1, 17))]) == (
        (D(2025, 1, 1), D(2025, 1, 10)),
        (D(2025, 1, 17), D(2025, 1, 17)),
    )


W1, W2, W3, W4 = D(2024, 1, 1), D(2024, 1, 8), D(2024, 1, 15), D(2024, 1, 22)
FIRST, LAST = ALL_DAYS


@pytest.mark.parametrize(
    ("rows_per_week", "count", "expected"),
    [
        ({W1: 10, W2: 10, W3: 10, W4: 10}, 1, (ALL_DAYS,)),
        ({}, 3, (ALL_DAYS,)),
        ({W4: 10, W1: 10, W3: 10, W2: 10}, 2, ((FIRST, D(2024, 1, 14)), (W3, LAST))),
        (
            {W1: 10, W2: 10, W3: 10, W4: 10},
            9,
            ((FIRST, D(2024, 1, 7)), (W2, D(2024, 1, 14)), (W3, D(2024, 1, 21)), (W4, LAST)),
        ),
        ({W1: 100, W2: 1, W3: 1, W4: 1}, 2, ((FIRST, D(2024, 1, 7)), (W2, LAST))),
        ({W1: 1, W2: 1, W3: 1, W4: 100}, 2, ((FIRST, D(2024, 1, 21)), (W4, LAST))),
    ],
    ids=["one", "no-rows", "halves-unsorted", "at-most-one-per-week", "heavy-first", "heavy-last"],
)
def test_pieces_cover_every_day_in_consecutive_spans_of_about_equal_rows(rows_per_week, count, expected):
    assert pieces(rows_per_week, count) == expected


@pytest.mark.parametrize(
    ("day", "years", "expected"),
    [
        (D(2025, 3, 3), 1, D(2026, 3, 3)),
        (D(2025, 3, 3), -3, D(2022, 3, 3)),
        (D(2024, 2, 29), 1, D(2025, 2, 28)),
        (D(2024, 2, 29), -4, D(2020, 2, 29)),
    ],
)
def test_plus_years_is_the_calendar_date(day, years, expected):
    assert plus_years(day, years) == expected


def test_a_reach_of_the_week_itself_recomputes_and_reads_the_changed_weeks_only():
    changed = spans_of([D(2025, 1, 6), D(2025, 1, 13), D(2025, 6, 2)])
    assert WeekReach().outputs(changed) == changed
    assert WeekReach().inputs(changed) == changed


def test_a_reach_of_prior_years_recomputes_the_later_weeks_and_reads_the_earlier_ones():
    """The week itself and +-7 days around the same date a year earlier (widened by a day for 29
    February)."""
    reach = WeekReach(((0, 0, 0), (1, -7, 7)))
    assert reach.outputs(spans_of([D(2024, 1, 8)])) == (
        (D(2024, 1, 8), D(2024, 1, 8)),
        (D(2024, 12, 31), D(2025, 1, 16)),
    )
    assert reach.inputs(spans_of([D(2025, 1, 6)])) == (
        (D(2023, 12, 29), D(2024, 1, 14)),
        (D(2025, 1, 6), D(2025, 1, 6)),
    )


def test_a_reach_of_trailing_days_recomputes_the_weeks_after_and_reads_the_weeks_before():
    reach = WeekReach(((0, -14, 0),))  # the week and the two before it
    assert reach.outputs(spans_of([D(2025, 1, 6)])) == ((D(2025, 1, 6), D(2025, 1, 20)),)
    assert reach.inputs(spans_of([D(2025, 1, 20)])) == ((D(2025, 1, 6), D(2025, 1, 20)),)


def test_within_spans_keeps_the_rows_of_the_spans(spark):
    weeks = [D(2025, 1, 6), D(2025, 1, 13), D(2025, 1, 20), D(2025, 1, 27)]
    frame = spark.createDataFrame([(w, i) for i, w in enumerate(weeks)], "week_start_date date, i int")
    spans = ((D(2025, 1, 6), D(2025, 1, 6)), (D(2025, 1, 19), D(2025, 1, 27)))
    assert sorted(r.i for r in frame.transform(within_spans(spans)).collect()) == [0, 2, 3]
    assert frame.transform(within_spans(())).count() == 0
