"""Anomalies: seasonal robust baseline from prior years, robust z, what is scored and what is flagged."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pyspark.sql.functions as F
import pytest
from anomaly_reference import assert_same_scores, baseline_dates
from anomaly_reference import scores as reference_scores
from conftest import assert_same_rows, dtypes_of

from nyc911lib import engine
from nyc911lib.transforms.anomalies import (
    ANOMALY_COLUMNS,
    MAD_TO_SIGMA,
    baseline_reach,
    robust_z,
    weekly_anomalies,
)
from nyc911lib.transforms.week_spans import spans_of, within_spans

FIRST_WEEK = dt.date(2019, 1, 7)
WEEKS = 260  # 2019-01-07 .. 2023-12-25
HOLIDAYS = {(12, 24), (12, 25), (12, 31), (1, 1)}
KPI_SCHEMA = (
    "week_start_date date, agency string, incident_type string, priority int, incidents long, "
    "avg_call_to_first_pickup_s double, avg_dispatch_s double, avg_travel_s double, "
    "avg_call_to_agency_arrival_s double"
)
CLEAN = ("EMS", "Seasonal")
INJECTED = ("FDNY", "Injected")
NEW = ("NYPD", "New type")
# Injected into the last year of INJECTED: week -> (incidents factor, travel factor, incidents override).
SPIKE, DROP, SLOW, FEW = dt.date(2023, 6, 12), dt.date(2023, 10, 2), dt.date(2023, 3, 6), dt.date(2023, 8, 7)
INJECTIONS = {SPIKE: (3.0, 1.0, None), DROP: (0.3, 1.0, None), SLOW: (1.0, 2.0, None), FEW: (1.0, 2.0, 10)}
NEW_FROM = dt.date(2022, 3, 7)


def _holiday_days(week: dt.date) -> int:
    """How many of Dec 24, Dec 25, Dec 31 and Jan 1 fall in the week (they move between weeks)."""
    return sum(((week + dt.timedelta(d)).month, (week + dt.timedelta(d)).day) in HOLIDAYS for d in range(7))


def _seasonal(week: dt.date, i: int) -> dict[str, float]:
    """A summer peak (+-25 %), holiday dips (-12 % per holiday day in the week) and +-3 % noise."""
    season = math.cos(2 * math.pi * (week.timetuple().tm_yday - 196) / 365.25)
    holiday = 1 - 0.12 * _holiday_days(week)
    noise = ((i * 7919) % 13 - 6) / 200
    noise2 = ((i * 104729) % 11 - 5) / 200
    return {
        "incidents": round(1000 * (1 + 0.25 * season) * holiday * (1 + noise)),
        "avg_call_to_first_pickup_s": 4.0 * (1 + noise2),
        "avg_dispatch_s": 120 * (1 + 0.05 * season) * (1 + noise),
        "avg_travel_s": 600 * (1 + 0.1 * season) * (1 + noise2),
    }


def _rows() -> list[dict]:
    rows = []
    for i in range(WEEKS):
        week = FIRST_WEEK + dt.timedelta(weeks=i)
        base = _seasonal(week, i)
        rows.append({"week_start_date": week, "agency": CLEAN[0], "incident_type": CLEAN[1], **base})
        injected = dict(base)
        if week in INJECTIONS:
            volume, travel, override = INJECTIONS[week]
            injected["incidents"] = override or round(base["incidents"] * volume)
            injected["avg_travel_s"] = base["avg_travel_s"] * travel
        rows.append({"week_start_date": week, "agency": INJECTED[0], "incident_type": INJECTED[1]} | injected)
        if week >= NEW_FROM:
            spiky = {**base, "incidents": base["incidents"] * (5 if week == SPIKE else 1)}
            rows.append({"week_start_date": week, "agency": NEW[0], "incident_type": NEW[1], **spiky})
    return rows


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    return pd.DataFrame(_rows())


@pytest.fixture(scope="module")
def weekly(spark, rows):
    times = ["avg_call_to_first_pickup_s", "avg_dispatch_s", "avg_travel_s"]
    data = [
        (
            r.week_start_date,
            r.agency,
            r.incident_type,
            1,
            int(r.incidents),
            *[getattr(r, t) for t in times],
            None,
        )
        for r in rows.itertuples()
    ]
    df = engine.materialize(spark.createDataFrame(data, KPI_SCHEMA))
    yield df
    engine.release(df)


@pytest.fixture(scope="module")
def flagged(weekly) -> pd.DataFrame:
    return engine.to_pandas(weekly.transform(weekly_anomalies()))


@pytest.fixture(scope="module")
def scored(weekly) -> pd.DataFrame:
    """Every row with a baseline, scored (threshold 0, min_baseline_weeks 1)."""
    return engine.to_pandas(weekly.transform(weekly_anomalies(threshold=0.0, min_baseline_weeks=1)))


@pytest.mark.parametrize(
    ("settings", "rows_at_least"),
    [
        ({}, 4),
        ({"threshold": 0.0, "min_baseline_weeks": 1}, 1800),
        ({"threshold": 1.0, "window_weeks": 2, "prior_years": 2, "min_baseline_weeks": 3}, 20),
    ],
    ids=["defaults", "every-scored-row", "other-window"],
)
def test_every_row_equals_the_reference_computation(weekly, rows, settings, rows_at_least):
    """Rows, medians, MADs and scores equal a plain-Python computation of the definition
    (tests/anomaly_reference.py): the defaults, every scored row, another window."""
    found = engine.to_pandas(weekly.transform(weekly_anomalies(**settings)))
    expected = reference_scores(rows.to_dict("records"), **settings)
    assert len(expected) >= rows_at_least
    assert_same_scores(found.to_dict("records"), expected)


def _key(df: pd.DataFrame) -> set[tuple]:
    return set(zip(df.agency, df.incident_type, df.week_start_date, df.metric, df.direction, strict=True))


def test_output_schema(weekly):
    out = weekly.transform(weekly_anomalies())
    assert tuple(out.columns) == ANOMALY_COLUMNS
    assert dtypes_of(out) == {
        "week_start_date": "date",
        "agency": "string",
        "incident_type": "string",
        "metric": "string",
        "observed": "double",
        "baseline_median": "double",
        "baseline_mad": "double",
        "robust_z": "double",
        "direction": "string",
        "ratio": "double",
        "baseline_weeks": "bigint",
        "incidents": "bigint",
    }


def test_exactly_the_injected_weeks_are_flagged(flagged):
    assert _key(flagged) == {
        (*INJECTED, SPIKE, "incidents", "high"),
        (*INJECTED, DROP, "incidents", "low"),
        (*INJECTED, SLOW, "avg_travel_s", "high"),
        (*INJECTED, FEW, "incidents", "low"),
    }


def test_seasonal_series_with_holiday_dips_is_scored_but_never_flagged(scored, rows):
    clean = scored[(scored.agency == CLEAN[0]) & (scored.baseline_weeks >= 6)]
    assert set(clean.metric) == {"incidents", "avg_call_to_first_pickup_s", "avg_dispatch_s", "avg_travel_s"}
    assert clean.robust_z.abs().max() < 2.5
    # The holiday weeks of the scored years dip by 12-24 % and every one of them was scored.
    dips = {w for w in rows.week_start_date if w.year >= 2021 and _holiday_days(w)}
    assert len(dips) == 6
    assert dips <= set(clean[clean.metric == "incidents"].week_start_date)


@pytest.mark.parametrize(
    ("week", "metric", "ratio_range"),
    [
        (SPIKE, "incidents", (2.7, 3.3)),
        (DROP, "incidents", (0.27, 0.33)),
        (SLOW, "avg_travel_s", (1.8, 2.2)),
    ],
)
def test_flagged_row_matches_an_independent_baseline(flagged, rows, week, metric, ratio_range):
    got = flagged[(flagged.week_start_date == week) & (flagged.metric == metric)]
    assert len(got) == 1
    row = got.iloc[0]
    series = rows[(rows.agency == INJECTED[0]) & (rows.incident_type == INJECTED[1])]
    history = series.set_index("week_start_date")[metric]
    baseline = np.array([history[d] for d in baseline_dates(week)], dtype=float)
    median = float(np.median(baseline))
    mad = float(np.median(np.abs(baseline - median)))
    observed = float(history[week])
    assert row.observed == pytest.approx(observed)
    assert row.baseline_median == pytest.approx(median, rel=1e-12)
    assert row.baseline_mad == pytest.approx(mad, rel=1e-12)
    assert row.baseline_weeks == 9
    assert row.ratio == pytest.approx(observed / median, rel=1e-12)
    assert ratio_range[0] <= row.ratio <= ratio_range[1]
    assert abs(row.robust_z) >= 3.5
    if metric == "incidents":
        scale = max(MAD_TO_SIGMA * mad / median, 0.1, 1 / math.sqrt(median))
        assert row.robust_z == pytest.approx(math.log(observed / median) / scale, rel=1e-9)
        assert row.incidents == observed
    else:
        assert row.robust_z == pytest.approx((observed - median) / max(MAD_TO_SIGMA * mad, 0.1 * median, 1.0))


def test_low_incident_row_is_scored_for_volume_only(scored):
    few = scored[(scored.agency == INJECTED[0]) & (scored.week_start_date == FEW)]
    assert list(few.metric) == ["incidents"]
    assert few.iloc[0].observed == 10


def test_low_incident_rows_stay_out_of_the_time_baselines(weekly):
    """A threshold above every count leaves only `incidents` scored."""
    out = weekly.transform(weekly_anomalies(threshold=0.0, min_incidents=10_000))
    assert {r.metric for r in out.select("metric").distinct().collect()} == {"incidents"}


def test_negative_times_are_data_defects_not_anomalies(weekly):
    """A negative average dispatch (the real export has some) is neither scored nor in a baseline."""
    broken = weekly.withColumn(
        "avg_dispatch_s",
        F.when(F.col("week_start_date") == SPIKE, F.lit(-1555.2)).otherwise(F.col("avg_dispatch_s")),
    )
    out = broken.transform(weekly_anomalies(threshold=0.0, min_baseline_weeks=1))
    dispatch = out.where(F.col("metric") == "avg_dispatch_s")
    assert dispatch.where(F.col("week_start_date") == SPIKE).count() == 0
    assert dispatch.where(F.col("observed") < 0).count() == 0
    assert (
        dispatch.count()
        == weekly.transform(weekly_anomalies(threshold=0.0, min_baseline_weeks=1))
        .where(F.col("metric") == "avg_dispatch_s")
        .count()
        - weekly.where(F.col("week_start_date") == SPIKE).where(F.col("incidents") >= 20).count()
    )


def test_lower_min_incidents_scores_the_slow_low_volume_week(weekly):
    out = weekly.transform(weekly_anomalies(min_incidents=5)).where("week_start_date = DATE'2023-08-07'")
    got = {(r.metric, r.direction) for r in out.collect()}
    assert got == {("incidents", "low"), ("avg_travel_s", "high")}


def test_series_with_too_little_history_is_not_scored(scored, flagged):
    """NEW starts in March 2022: in 2023 its baseline holds one year (3 weeks), fewer than the default
    6, so its 5x spike is left alone although its z is far beyond the threshold."""
    new = scored[(scored.agency == NEW[0]) & (scored.incident_type == NEW[1])]
    spike = new[(new.week_start_date == SPIKE) & (new.metric == "incidents")].iloc[0]
    assert (spike.baseline_weeks, spike.robust_z > 10) == (3, True)
    assert new.baseline_weeks.max() == 3
    assert NEW not in set(zip(flagged.agency, flagged.incident_type, strict=True))


def test_baseline_weeks_counts_the_prior_year_windows(scored, rows):
    """Every scored row of a series counts exactly the baseline weeks that exist."""
    clean = scored[(scored.agency == CLEAN[0]) & (scored.metric == "incidents")]
    known = set(rows[rows.agency == CLEAN[0]].week_start_date)
    expected = {w: n for w in known if (n := sum(d in known for d in baseline_dates(w)))}
    assert dict(zip(clean.week_start_date, clean.baseline_weeks, strict=True)) == expected
    assert min(expected) == dt.date(2019, 12, 30)  # the first week with a prior-year neighbour


def test_min_baseline_weeks_leaves_out_short_baselines(weekly, scored):
    out = engine.to_pandas(weekly.transform(weekly_anomalies(threshold=0.0, min_baseline_weeks=9)))
    assert len(out) == (scored.baseline_weeks >= 9).sum() > 0
    assert out[out.agency == CLEAN[0]].week_start_date.min() == dt.date(2022, 1, 17)  # 3 full years back


@pytest.mark.parametrize(
    "kwargs",
    [{"threshold": -1.0}, {"min_baseline_weeks": 0}, {"prior_years": 0}, {"window_weeks": -1}],
)
def test_invalid_parameters_are_rejected(kwargs):
    with pytest.raises(ValueError):
        weekly_anomalies(**kwargs)


def test_robust_z_side_by_side(spark):
    rows = [
        (13.0, 10.0, 1.0, 0.5, 3.0 / MAD_TO_SIGMA),  # the MAD sets the scale
        (13.0, 10.0, 0.1, 1.0, 3.0),  # the floor sets the scale
        (7.0, 10.0, 2.0, 0.0, -3.0 / (2 * MAD_TO_SIGMA)),  # below the median: negative
        (10.0, 10.0, 0.0, 0.0, None),  # no spread and no floor: no score
        (None, 10.0, 1.0, 1.0, None),
        (12.0, 10.0, None, 1.0, None),
    ]
    schema = "observed double, median double, mad double, floor double, expected double"
    df = spark.createDataFrame(rows, schema)
    z = robust_z(F.col("observed"), F.col("median"), F.col("mad"), F.col("floor"))
    got = df.select("expected", z.alias("z")).collect()
    for r in got:
        assert (r.z is None and r.expected is None) or r.z == pytest.approx(r.expected, rel=1e-12)


def _covers(spans, day: dt.date) -> bool:
    return any(low <= day <= high for low, high in spans)


@pytest.mark.parametrize(("prior_years", "window_weeks"), [(3, 1), (2, 0), (1, 2)])
def test_the_baseline_reach_holds_every_week_a_changed_week_is_in_the_baseline_of(prior_years, window_weeks):
    """For every Monday of 2015..2026 (leap years included): a week is recomputed when it or a
    week of its baseline changed, and recomputing it reads its whole baseline."""
    reach = baseline_reach({"prior_years": prior_years, "window_weeks": window_weeks})
    mondays = [dt.date(2015, 1, 5) + dt.timedelta(weeks=i) for i in range(626)]
    reads = {x: {x, *baseline_dates(x, prior_years, window_weeks)} for x in mondays}
    for changed in mondays[::13]:
        outputs = reach.outputs(spans_of([changed]))
        affected = [x for x in mondays if changed in reads[x]]
        assert affected and all(_covers(outputs, x) for x in affected)
    for x in mondays[::7]:
        inputs = reach.inputs(spans_of([x]))
        assert all(_covers(inputs, b) for b in reads[x])


def test_anomalies_of_some_weeks_from_the_weeks_they_read_equal_the_whole_computation(weekly):
    """What an incremental gold build does: the weeks a change reaches, computed from the input
    weeks the reach names, give exactly the rows of the whole computation for those weeks."""
    settings = {"threshold": 0.0, "min_baseline_weeks": 1}
    changed = spans_of([FIRST_WEEK + dt.timedelta(weeks=w) for w in (60, 61, 150, WEEKS - 1)])
    outputs = baseline_reach(settings).outputs(changed)
    inputs = baseline_reach(settings).inputs(outputs)
    part = weekly.transform(within_spans(inputs)).transform(weekly_anomalies(**settings))
    whole = weekly.transform(weekly_anomalies(**settings))
    got = engine.to_pandas(part.transform(within_spans(outputs)))
    want = engine.to_pandas(whole.transform(within_spans(outputs)))
    assert len(got) > 200
    assert_same_rows(got, want, rtol=0.0)
