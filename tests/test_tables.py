"""The engine-independent part of the Delta table protocol (`nyc911lib.io.tables`)."""

from __future__ import annotations

import datetime as dt

import pytest

from nyc911lib.io.delta_rs import _quote as datafusion_quote
from nyc911lib.io.tables import DateRange, replace_predicate

JAN, MAR = dt.date(2024, 1, 1), dt.date(2024, 3, 31)
W = "w"


@pytest.mark.parametrize(
    ("replace", "predicate"),
    [
        (DateRange(W, JAN), "`w` >= DATE '2024-01-01'"),
        (DateRange(W, high=MAR), "`w` <= DATE '2024-03-31'"),
        (DateRange(W, JAN, MAR), "`w` >= DATE '2024-01-01' AND `w` <= DATE '2024-03-31'"),
        (DateRange(W), "true"),
        ((DateRange(W, JAN, JAN),), "`w` >= DATE '2024-01-01' AND `w` <= DATE '2024-01-01'"),
        (
            (DateRange(W, JAN, JAN), DateRange(W, MAR)),
            "(`w` >= DATE '2024-01-01' AND `w` <= DATE '2024-01-01') OR (`w` >= DATE '2024-03-31')",
        ),
        ((), "false"),
    ],
)
def test_a_ranged_overwrite_as_a_predicate(replace, predicate):
    assert replace_predicate(replace, lambda column: f"`{column}`") == predicate
    assert replace_predicate(replace, datafusion_quote) == predicate.replace("`", '"')
