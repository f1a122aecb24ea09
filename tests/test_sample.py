"""The built-in synthetic sample: exact export format, determinism, consistency, documented defects."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from nyc911lib.sample import (
    DEFAULT_START,
    DEFAULT_WEEKS,
    INCIDENT_TYPES,
    MALFORMED_FIELDS,
    SAMPLE_DEFECTS,
    empty_columns,
    generate_sample_rows,
    sample_row_count,
    write_sample,
)
from nyc911lib.schema import SOURCE_HEADERS

REAL_2025 = Path(__file__).resolve().parents[2] / "shared" / "data" / "nyc911_e2e_through_2025-12-22.csv"
COL = {h: i for i, h in enumerate(SOURCE_HEADERS)}
P, H, D, A, M = (
    "Call to First Pickup",
    "Call to PD Calltaker Handoff",
    "Call to Agency Dispatch",
    "Call to Agency Arrival",
    "Call to First Arrival (Multi-Agency Incidents)",
)
EMS_COLS = {
    "Call to EMS Pickup",
    "Call to Agency Job Creation",
    "Median Ems Pickup",
    "Median Ems Job Creation",
    "Average EMS Processing",
    "Average EMS Pickup",
}
FD_COLS = {
    "Call to FDNY Pickup",
    "Call to FDNY Job Creation",
    "Median FDNY Pickup",
    "Median FDNY Job Creation",
    "Average FD Pickup",
    "Average FD Processing",
}
FD_FIRE_TYPES = {"1. Structural Fires", "2. Non-Structural Fires", "4. Non-Medical Emergencies"}
EXPECTED_TYPES = {
    "EMS": {"1. Life Threating Med Emergencies", "2. Non-Life Threatening Med Emergencies"},
    "FDNY": {
        "1. Structural Fires",
        "2. Non-Structural Fires",
        "3. Medical Emergencies",
        "4. Non-Medical Emergencies",
    },
    "NYPD": {"1. Critical", "2. Serious", "3. Non-Critical"},
    "NYPD (Non-CIP)": {
        "Alarms",
        "Disorderly Person/Group/Noise",
        "Dispute",
        "Hazardous Materials/Suspicious Letters/Packages/Substances/Substances",
        "Other Crimes (In Progress)",
        "Past Crime",
        "Police Officer/Security Holding Suspect",
        "Possible Crimes",
        "Vehicle Accident",
    },
}


@pytest.fixture(scope="module")
def rows() -> list[list[str]]:
    return generate_sample_rows()


def _num(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _week(row: list[str]) -> dt.date:
    return dt.datetime.strptime(row[0], "%m/%d/%Y").date()


def _clean(rows: list[list[str]]) -> list[list[str]]:
    """Well-formed rows whose every non-empty numeric cell parses."""
    full = [r for r in rows if len(r) == len(SOURCE_HEADERS)]
    return [r for r in full if all(c == "" or _num(c) is not None for c in r[3:])]


def _empty(row: list[str]) -> set[str]:
    """The value columns (after the three key columns) a row leaves empty."""
    return {h for h, c in zip(SOURCE_HEADERS[3:], row[3:], strict=True) if c == ""}


def _defect_counts(rows: list[list[str]]) -> dict[str, int]:
    full = [r for r in rows if len(r) == len(SOURCE_HEADERS)]
    pickups = [_num(r[COL[P]]) for r in full]
    keys = Counter(tuple(r[:3]) for r in full)
    return {
        "negative_pickup": sum(1 for p in pickups if p is not None and p < 0),
        "huge_pickup": sum(1 for p in pickups if p is not None and p > 120),
        "empty_incident_type": sum(1 for r in full if r[2] == ""),
        "duplicate_key": sum(n - 1 for n in keys.values()),
        "unparsable_number": sum(1 for r in full for c in r[3:] if c and _num(c) is None),
        "malformed_line": len(rows) - len(full),
    }


def test_default_row_count(rows):
    assert len(rows) == 1880 == sample_row_count() == DEFAULT_WEEKS * 18 + 8


@pytest.mark.parametrize("weeks", [4, 13, 60])
def test_row_count_scales_with_weeks(weeks):
    assert len(generate_sample_rows(weeks=weeks)) == sample_row_count(weeks) == weeks * 18 + 8


def test_written_file_format(tmp_path):
    path = write_sample(tmp_path / "deep" / "er" / "sample.csv")
    assert path == tmp_path / "deep" / "er" / "sample.csv"
    data = path.read_bytes()
    assert b"\r" not in data and data.endswith(b"\n")
    text = data.decode("utf-8")
    assert text.splitlines()[0] == ",".join(SOURCE_HEADERS)
    parsed = list(csv.reader(io.StringIO(text, newline="")))
    assert parsed[0] == list(SOURCE_HEADERS)
    assert parsed[1:] == generate_sample_rows()
    assert [p.name for p in path.parent.iterdir()] == ["sample.csv"]  # no temp file left behind


@pytest.mark.parametrize(("seed_a", "seed_b", "same"), [(911, 911, True), (7, 7, True), (911, 912, False)])
def test_determinism(tmp_path, seed_a, seed_b, same):
    a = write_sample(str(tmp_path / "a.csv"), seed=seed_a).read_bytes()
    b = write_sample(tmp_path / "b.csv", seed=seed_b).read_bytes()
    assert (a == b) is same


def test_failed_write_keeps_previous_file(tmp_path):
    path = write_sample(tmp_path / "s.csv", weeks=4)
    before = path.read_bytes()
    with pytest.raises(ValueError, match="Monday"):
        write_sample(path, start=dt.date(2023, 1, 3))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["s.csv"]


@pytest.mark.parametrize(("weeks", "start"), [(3, DEFAULT_START), (10, dt.date(2024, 6, 5))])
def test_invalid_parameters(weeks, start):
    with pytest.raises(ValueError):
        generate_sample_rows(weeks=weeks, start=start)


@pytest.mark.parametrize(("weeks", "start"), [(DEFAULT_WEEKS, DEFAULT_START), (9, dt.date(2019, 12, 30))])
def test_weeks_are_mondays_in_range(weeks, start):
    rows = generate_sample_rows(weeks=weeks, start=start)
    assert all(re.fullmatch(r"\d\d/\d\d/\d{4}", r[0]) for r in rows)
    dates = {_week(r) for r in rows}
    assert dates == {start + dt.timedelta(weeks=i) for i in range(weeks)}
    assert all(d.weekday() == 0 for d in dates)


def test_agencies_and_types(rows):
    typed = {(r[1], r[2]) for r in rows if len(r) == len(SOURCE_HEADERS) and r[2]}
    assert typed == {(a, t) for a, types in EXPECTED_TYPES.items() for t in types}
    assert set(INCIDENT_TYPES) == typed
    per_week = defaultdict(set)
    for r in rows:
        if len(r) == len(SOURCE_HEADERS) and r[2]:
            per_week[r[0]].add((r[1], r[2]))
    assert len(per_week) == DEFAULT_WEEKS and all(combos == typed for combos in per_week.values())


@pytest.mark.parametrize(
    ("agency", "itype", "expected"),
    [
        ("EMS", "1. Life Threating Med Emergencies", FD_COLS),
        ("EMS", "", FD_COLS),
        ("FDNY", "3. Medical Emergencies", FD_COLS),
        ("FDNY", "1. Structural Fires", EMS_COLS),
        ("FDNY", "4. Non-Medical Emergencies", EMS_COLS),
        ("FDNY", "", EMS_COLS | FD_COLS),
        ("NYPD", "2. Serious", EMS_COLS | FD_COLS),
        ("NYPD (Non-CIP)", "Dispute", EMS_COLS | FD_COLS),
    ],
)
def test_empty_columns_rule(rows, agency, itype, expected):
    assert empty_columns(agency, itype) == expected
    matching = [r for r in rows if len(r) == len(SOURCE_HEADERS) and (r[1], r[2]) == (agency, itype)]
    assert matching
    for r in matching:
        assert _empty(r) == expected


def test_empty_columns_rule_holds_on_real_export():
    if not REAL_2025.is_file():
        pytest.skip(f"real export not available: {REAL_2025}")
    with REAL_2025.open(newline="", encoding="utf-8") as handle:
        real = [r for r in list(csv.reader(handle))[1:] if _week(r) >= dt.date(2023, 1, 2)]
    agree = sum(_empty(r) == empty_columns(r[1], r[2]) for r in real)
    assert agree == len(real)  # every row since 2023 follows the rule


def test_number_formats(rows):
    for r in _clean(rows):
        assert re.fullmatch(r"[1-9]\d*", r[COL["# of Incidents Calculated"]])
        for h, c in zip(SOURCE_HEADERS[4:], r[4:], strict=True):
            if c and h.startswith("Median"):
                assert re.fullmatch(r"\d+(\.5)?", c), (h, c)
            elif c:
                assert re.fullmatch(r"-?\d+\.\d\d", c), (h, c)


def test_times_are_consistent(rows):
    checked = 0
    for r in _clean(rows):
        v = {h: _num(c) for h, c in zip(SOURCE_HEADERS, r, strict=True) if c}
        assert v[A] > v[D] > v[H] > v[P] and v[M] <= v[A]
        assert abs(v["Average Travel"] * 60 - (v[A] - v[D])) <= 1.0
        assert abs(v["Average Pickup"] * 60 - v[P]) <= 1.0
        assert abs(v["Average Calltaker Processing"] * 60 - (v[H] - v[P])) <= 1.0
        if not (r[1] == "FDNY" and r[2] in FD_FIRE_TYPES):  # those carry the source's own dispatch
            assert abs(v["Average Dispatch"] * 60 - (v[D] - v[H])) <= 1.0
        if "Average FD Processing" in v:
            fd = v["Call to FDNY Job Creation"] - v["Call to FDNY Pickup"]
            assert abs(v["Average FD Processing"] * 60 - fd) <= 1.0
        checked += 1
    assert checked == len(rows) - 3  # all but the malformed line and the two unparsable numbers


@pytest.mark.parametrize("seed", [911, 1, 2024])
def test_defect_counts(seed):
    rows = generate_sample_rows(seed=seed)
    expected = {
        "negative_pickup": 2,
        "huge_pickup": 1,
        "empty_incident_type": 4,
        "duplicate_key": 3,
        "unparsable_number": 2,
        "malformed_line": 1,
    }
    assert _defect_counts(rows) == expected == SAMPLE_DEFECTS


def test_defect_details(rows):
    full = [r for r in rows if len(r) == len(SOURCE_HEADERS)]
    negative = [r for r in full if float(r[COL[P]]) < 0]
    assert {(r[1], r[2]) for r in negative} == {("FDNY", "1. Structural Fires")}
    empty = [r for r in full if r[2] == ""]
    assert Counter(r[1] for r in empty) == {"EMS": 3, "FDNY": 1}
    assert all(int(r[3]) > 0 for r in empty)
    bad = sorted(c for r in full for c in r[3:] if c and _num(c) is None)
    assert bad[-1] == "n/a" and ".." in bad[0]
    malformed = [r for r in rows if len(r) != len(SOURCE_HEADERS)]
    assert [len(r) for r in malformed] == [MALFORMED_FIELDS]
    assert malformed[0][1:3] == ["NYPD (Non-CIP)", "Shot Spotter"]
    last_week = max(_week(r) for r in full)
    restated, firsts = full[-3:], {tuple(r[:3]): r for r in reversed(full[:-3])}
    for r in restated:  # the restatement repeats a key of the last week, later in the file, revised
        assert _week(r) == last_week and tuple(r[:3]) in firsts
        assert int(r[3]) > int(firsts[tuple(r[:3])][3]) and r[4:] != firsts[tuple(r[:3])][4:]


def test_seasonality_summer_above_winter(rows):
    weekly = defaultdict(int)
    for r in _clean(rows):
        if r[1] == "NYPD":
            weekly[_week(r)] += int(r[3])
    summer = [n for w, n in weekly.items() if w.month in (7, 8)]
    winter = [n for w, n in weekly.items() if w.month in (1, 2)]
    assert sum(summer) / len(summer) > 1.08 * sum(winter) / len(winter)  # NYPD peaks in late July


def _weighted_pickup(rows: list[list[str]]) -> dict[str, float]:
    total, weight = defaultdict(float), defaultdict(float)
    for r in _clean(rows):
        n = int(r[3])
        total[r[1]] += float(r[COL[P]]) * n
        weight[r[1]] += n
    return {a: total[a] / weight[a] for a in total}


@pytest.mark.parametrize("agency", sorted(EXPECTED_TYPES))
def test_calibrated_to_real_export(rows, agency):
    if not REAL_2025.is_file():
        pytest.skip(f"real export not available: {REAL_2025}")
    first, last = DEFAULT_START, DEFAULT_START + dt.timedelta(weeks=DEFAULT_WEEKS - 1)
    with REAL_2025.open(newline="", encoding="utf-8") as handle:
        real = [r for r in list(csv.reader(handle))[1:] if first <= _week(r) <= last]
    sample_mean, real_mean = _weighted_pickup(rows)[agency], _weighted_pickup(real)[agency]
    assert 4.0 < real_mean < 6.5
    assert sample_mean == pytest.approx(real_mean, rel=0.05)
    sample_n = sum(int(r[3]) for r in _clean(rows) if r[1] == agency) / DEFAULT_WEEKS
    real_n = sum(int(r[3]) for r in real if r[1] == agency) / DEFAULT_WEEKS
    assert sample_n == pytest.approx(real_n, rel=0.05)
