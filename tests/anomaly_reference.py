"""The anomaly definition (nyc911lib/transforms/anomalies.py) computed in plain Python, row by row,
independently of the engine code: the reference the engines' anomalies are compared with on the
injected-spike data (tests/test_anomalies.py) and on the real export (tests/test_real_export.py).
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections.abc import Iterable
from functools import cache

MAD_TO_SIGMA = 1.4826
TIME_METRICS = ("avg_call_to_first_pickup_s", "avg_dispatch_s", "avg_travel_s")


@cache
def baseline_dates(week: dt.date, prior_years: int = 3, window_weeks: int = 1) -> tuple[dt.date, ...]:
    """+-window weeks around the Monday nearest the same date 1..prior_years years earlier (Feb 29
    taken back to Feb 28, as adding -12 months does)."""
    dates = []
    for k in range(1, prior_years + 1):
        same_date = _years_earlier(week, k)
        offset = same_date.weekday()  # days since Monday
        monday = same_date - dt.timedelta(offset if offset <= 3 else offset - 7)
        dates += [monday + dt.timedelta(weeks=j) for j in range(-window_weeks, window_weeks + 1)]
    return tuple(dates)


def _years_earlier(day: dt.date, years: int) -> dt.date:
    year = day.year - years
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    return dt.date(year, 2, 28) if (day.month, day.day) == (2, 29) and not leap else day.replace(year=year)


def scores(
    rows: Iterable[dict],
    *,
    threshold: float = 3.5,
    min_baseline_weeks: int = 6,
    min_incidents: int = 20,
    prior_years: int = 3,
    window_weeks: int = 1,
    relative_floor: float = 0.1,
    time_floor_s: float = 1.0,
) -> dict[tuple, dict]:
    """kpi_weekly rows (dicts) -> {(week, agency, incident type, metric): {observed,
    baseline_median, baseline_mad, robust_z, baseline_weeks}} for every row whose |robust_z| >=
    threshold."""
    values: dict[tuple, float] = {}  # (agency, type, metric, week) -> usable value
    incidents: dict[tuple, int] = {}
    for r in rows:
        series = (r["agency"], r["incident_type"])
        incidents[(*series, r["week_start_date"])] = r["incidents"]
        if r["incidents"] is not None:
            values[(*series, "incidents", r["week_start_date"])] = float(r["incidents"])
        for metric in TIME_METRICS:
            v = r.get(metric)
            if v is not None and not math.isnan(v) and v >= 0 and (r["incidents"] or 0) >= min_incidents:
                values[(*series, metric, r["week_start_date"])] = float(v)
    found = {}
    for (agency, incident_type, metric, week), observed in values.items():
        baseline = [
            values[key]
            for d in baseline_dates(week, prior_years, window_weeks)
            if (key := (agency, incident_type, metric, d)) in values
        ]
        if len(baseline) < min_baseline_weeks:
            continue
        median = statistics.median(baseline)
        mad = statistics.median(abs(b - median) for b in baseline)
        if metric == "incidents":
            if observed <= 0 or median <= 0:
                continue
            scale = max(MAD_TO_SIGMA * mad / median, relative_floor, 1 / math.sqrt(median))
            z = math.log(observed / median) / scale
        else:
            scale = max(MAD_TO_SIGMA * mad, relative_floor * abs(median), time_floor_s)
            if scale <= 0:
                continue
            z = (observed - median) / scale
        if abs(z) >= threshold:
            found[(week, agency, incident_type, metric)] = {
                "observed": observed,
                "baseline_median": median,
                "baseline_mad": mad,
                "robust_z": z,
                "baseline_weeks": len(baseline),
                "incidents": incidents[(agency, incident_type, week)],
            }
    return found


def assert_same_scores(found: Iterable[dict], expected: dict[tuple, dict]) -> None:
    """The engine's anomaly rows equal the reference: the same rows (keys), counts exact, every
    float within 1e-12 (relative, or absolute near zero), direction and ratio consistent."""
    rows = {(r["week_start_date"], r["agency"], r["incident_type"], r["metric"]): r for r in found}
    assert sorted(set(rows) ^ set(expected)) == []
    for key, want in expected.items():
        got = rows[key]
        assert (got["baseline_weeks"], got["incidents"]) == (want["baseline_weeks"], want["incidents"]), key
        for column in ("observed", "baseline_median", "baseline_mad", "robust_z"):
            assert math.isclose(got[column], want[column], rel_tol=1e-12, abs_tol=1e-12), (key, column)
        assert got["direction"] == ("high" if want["robust_z"] > 0 else "low"), key
