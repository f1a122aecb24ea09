"""Delta tables on the spark engine (delta-spark): what only this backend does."""

from __future__ import annotations

import datetime as dt

import pytest

from nyc911lib.io.delta_spark import replace_predicate
from nyc911lib.io.tables import DateRange

pytestmark = pytest.mark.spark


@pytest.mark.parametrize(
    ("date_from", "date_to", "predicate"),
    [
        (dt.date(2024, 1, 1), None, "`week_start_date` >= DATE'2024-01-01'"),
        (None, dt.date(2024, 3, 31), "`week_start_date` <= DATE'2024-03-31'"),
        (
            dt.date(2024, 1, 1),
            dt.date(2024, 3, 31),
            "`week_start_date` >= DATE'2024-01-01' AND `week_start_date` <= DATE'2024-03-31'",
        ),
    ],
)
def test_a_date_range_as_a_replace_where_predicate(date_from, date_to, predicate):
    assert replace_predicate(DateRange("week_start_date", date_from, date_to)) == predicate
