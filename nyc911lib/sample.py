"""A deterministic synthetic sample in the exact portal CSV export format of "911 End-to-End Data".

The built-in default source, so the pipeline runs offline. Same 30 headers (``SOURCE_HEADERS``),
``MM/DD/YYYY`` Monday weeks, one row per week x agency x final incident type (all 18 regular
combinations every week), ``Call to ...``/``Median ...`` columns in seconds and ``Average ...``
columns in minutes, the real per-agency empty columns (``empty_columns``). Times are consistent by
construction: Average Travel = (Arrival - Dispatch) / 60, Average Pickup = Call to First Pickup / 60,
Average Calltaker Processing = (PD Calltaker Handoff - First Pickup) / 60, Average Dispatch =
(Dispatch - PD Calltaker Handoff) / 60 (FDNY fire/non-medical types: calibrated, as in the source),
and arrival > dispatch > handoff > pickup. Same parameters -> byte-identical file.

Deliberate defects, for any seed and any ``weeks >= MIN_WEEKS`` (counts in ``SAMPLE_DEFECTS``):

- ``negative_pickup`` 2: FDNY ``1. Structural Fires`` rows with a negative Call to First Pickup.
- ``huge_pickup`` 1: an NYPD (Non-CIP) ``Police Officer/Security Holding Suspect`` row whose pickup is
  150-300 s (the whole call-to chain shifts with it).
- ``empty_incident_type`` 4: extra rows with an empty Final Incident Type and a real count: 3 EMS
  (single incidents, in 3 different weeks) and 1 FDNY (80-200 incidents).
- ``duplicate_key`` 3: restatements. Three keys of the last week are repeated at the end of the
  file with a higher count and new times (the later row is the revised one).
- ``unparsable_number`` 2: one NYPD ``1. Critical`` Call to Agency Arrival with a doubled decimal point
  (``1234..56``) and one NYPD ``3. Non-Critical`` Average Travel of ``n/a``.
- ``malformed_line`` 1: an NYPD (Non-CIP) ``Shot Spotter`` line cut after 21 of its 30 fields (its key
  appears nowhere else).

Default parameters: 104 weeks from Monday 2023-01-02 -> 104 x 18 + 4 + 3 + 1 = 1,880 data rows.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import random
from pathlib import Path

from nyc911lib.io.files import atomic_file
from nyc911lib.schema import SOURCE_HEADERS

DEFAULT_WEEKS = 104
DEFAULT_START = dt.date(2023, 1, 2)
DEFAULT_SEED = 911
MIN_WEEKS = 4
SAMPLE_DEFECTS: dict[str, int] = {
    "negative_pickup": 2,
    "huge_pickup": 1,
    "empty_incident_type": 4,
    "duplicate_key": 3,
    "unparsable_number": 2,
    "malformed_line": 1,
}
MALFORMED_FIELDS = 21
EMS_COLUMNS = (
    "Call to EMS Pickup",
    "Call to Agency Job Creation",
    "Median Ems Pickup",
    "Median Ems Job Creation",
    "Average EMS Pickup",
    "Average EMS Processing",
)
FD_COLUMNS = (
    "Call to FDNY Pickup",
    "Call to FDNY Job Creation",
    "Median FDNY Pickup",
    "Median FDNY Job Creation",
    "Average FD Pickup",
    "Average FD Processing",
)
_FD_CALIBRATED = (*FD_COLUMNS[:5], "Average Dispatch")  # FDNY fire/non-medical calibrated columns
_FD_TYPES = ("1. Structural Fires", "2. Non-Structural Fires", "4. Non-Medical Emergencies")
_P, _H, _D, _A, _M = (
    "Call to First Pickup",
    "Call to PD Calltaker Handoff",
    "Call to Agency Dispatch",
    "Call to Agency Arrival",
    "Call to First Arrival (Multi-Agency Incidents)",
)
_BASE_COLUMNS = (
    _P,
    _H,
    _D,
    _A,
    _M,
    "Median Pickup",
    "Median Calltaker Handoff",
    "Median Dispatch",
    "Median Travel",
    "Median Cumulative First Arrival  (Multi-Agency Incidents)",
)

# Calibrated once (throwaway script, not committed) from the real export
# nyc911_e2e_through_2025-12-22.csv, weeks 2023-01-02 .. 2024-12-23, rounded. Per agency x type:
# mean weekly incident count, then incident-weighted means of _BASE_COLUMNS (seconds), then of
# EMS_COLUMNS or _FD_CALIBRATED (seconds, except the last two: minutes).
_CALIBRATION: dict[tuple[str, str], tuple[tuple[float, ...], tuple[float, ...]]] = {
    ("EMS", "1. Life Threating Med Emergencies"): (
        (10322, 5.26, 83.6, 213.0, 653.4, 586.9, 3, 78, 82.5, 391, 509.5),
        (90.9, 149.3, 11.5, 35, 0.15, 0.99),
    ),
    ("EMS", "2. Non-Life Threatening Med Emergencies"): (
        (12591, 5.14, 104.6, 441.3, 1136.7, 1020.2, 3, 90.5, 104.5, 557.5, 718.5),
        (114.5, 170.5, 12, 37.5, 0.21, 0.95),
    ),
    ("FDNY", "1. Structural Fires"): (
        (246, 5.18, 34.5, 101.6, 303.5, 299.7, 3, 16.5, 7.5, 195, 288),
        (35.3, 88.6, 5, 47.5, 0.09, 0.16),
    ),
    ("FDNY", "2. Non-Structural Fires"): (
        (176, 5.31, 53.5, 124.9, 406.0, 384.8, 3.5, 17, 7.5, 257, 351),
        (37.3, 94.6, 5, 45, 0.09, 0.17),
    ),
    ("FDNY", "3. Medical Emergencies"): (
        (3664, 5.29, 287.2, 320.2, 682.8, 570.8, 3, 122, 7, 331, 471),
        (83.6, 280.1, 5, 46.5, 0.09, 2.24),
    ),
    ("FDNY", "4. Non-Medical Emergencies"): (
        (2690, 5.32, 165.1, 233.7, 577.4, 525.8, 3, 29, 7, 301.5, 426),
        (56.8, 116.5, 5, 47.5, 0.09, 0.2),
    ),
    ("NYPD", "1. Critical"): ((1144, 4.97, 143.8, 278.9, 559.9, 532.1, 3, 110, 69.5, 187.5, 417), ()),
    ("NYPD", "2. Serious"): ((2726, 4.94, 135.5, 330.3, 805.9, 768.2, 3, 101, 82, 276, 525.5), ()),
    ("NYPD", "3. Non-Critical"): ((828, 5.12, 174.3, 669.6, 1746.5, 1719.9, 3, 143.5, 144, 477, 896.5), ()),
    ("NYPD (Non-CIP)", "Alarms"): (
        (2510, 4.72, 148.6, 798.3, 3295.3, 3293.1, 3, 121, 241.5, 1113, 1784.5),
        (),
    ),
    ("NYPD (Non-CIP)", "Disorderly Person/Group/Noise"): (
        (1893, 4.97, 162.0, 855.0, 3487.4, 3456.2, 3, 135.5, 232, 1186, 1879.5),
        (),
    ),
    ("NYPD (Non-CIP)", "Dispute"): (
        (5188, 4.92, 178.2, 1098.0, 4153.9, 4112.1, 3, 148, 254, 1250, 2073.5),
        (),
    ),
    ("NYPD (Non-CIP)", "Hazardous Materials/Suspicious Letters/Packages/Substances/Substances"): (
        (132, 5.33, 183.6, 602.5, 3574.0, 1809.3, 3, 154.5, 132.5, 1715.5, 519.5),
        (),
    ),
    ("NYPD (Non-CIP)", "Other Crimes (In Progress)"): (
        (2936, 5.11, 165.6, 684.5, 1647.8, 1635.4, 3, 136, 139, 414.5, 833),
        (),
    ),
    ("NYPD (Non-CIP)", "Past Crime"): (
        (4134, 5.39, 206.8, 1222.1, 6452.4, 6326.4, 3, 175, 316.5, 2841.5, 3785.5),
        (),
    ),
    ("NYPD (Non-CIP)", "Police Officer/Security Holding Suspect"): (
        (120, 6.01, 130.7, 579.5, 1735.5, 1718.6, 3.5, 99.5, 153.5, 619.5, 1096),
        (),
    ),
    ("NYPD (Non-CIP)", "Possible Crimes"): (
        (6485, 5.01, 168.9, 967.9, 4505.0, 4373.7, 3, 136, 249, 1664.5, 2360.5),
        (),
    ),
    ("NYPD (Non-CIP)", "Vehicle Accident"): (
        (286, 5.44, 194.7, 1168.4, 4855.5, 4566.1, 3, 167, 341, 1930.5, 2710.5),
        (),
    ),
}
# Same export and weeks. Seasonality: amplitude and peak day-of-year of a yearly cosine fitted to
# the agency's weekly incidents, then dispatch and travel amplitudes with their common peak day.
# Noise: weekly coefficients of variation net of seasonality (count, pickup, calltaker, dispatch, travel).
_SEASON = {
    "EMS": (0.024, 228, 0.19, 0.05, 250),
    "FDNY": (0.05, 246, 0.03, 0.01, 250),
    "NYPD": (0.09, 204, 0.145, 0.09, 230),
    "NYPD (Non-CIP)": (0.027, 203, 0.17, 0.09, 225),
}
_NOISE = {
    "EMS": (0.043, 0.22, 0.042, 0.22, 0.065),
    "FDNY": (0.098, 0.24, 0.19, 0.087, 0.022),
    "NYPD": (0.044, 0.2, 0.027, 0.083, 0.045),
    "NYPD (Non-CIP)": (0.059, 0.25, 0.028, 0.15, 0.083),
}
INCIDENT_TYPES: tuple[tuple[str, str], ...] = tuple(_CALIBRATION)
_EMS_NLT, _FDNY_NME, _NONCIP_OTHER = INCIDENT_TYPES[1], INCIDENT_TYPES[5], INCIDENT_TYPES[13]
Values = dict[str, float]


def empty_columns(agency: str, incident_type: str) -> frozenset[str]:
    """The columns the real export leaves empty for this agency and type (every row since 2023)."""
    if agency == "EMS" or (agency, incident_type) == ("FDNY", "3. Medical Emergencies"):
        return frozenset(FD_COLUMNS)
    if agency == "FDNY" and incident_type:
        return frozenset(EMS_COLUMNS)
    return frozenset(EMS_COLUMNS + FD_COLUMNS)


def sample_row_count(weeks: int = DEFAULT_WEEKS) -> int:
    """Data rows (header excluded) that `generate_sample_rows` returns for `weeks` weeks."""
    added = ("empty_incident_type", "duplicate_key", "malformed_line")  # rows on top of the grid
    return weeks * len(INCIDENT_TYPES) + sum(SAMPLE_DEFECTS[k] for k in added)


def _factor(rng: random.Random, cv: float) -> float:
    """A mean-one lognormal noise factor with coefficient of variation about `cv`."""
    return math.exp(rng.gauss(0.0, cv) - cv * cv / 2)


def _values(rng: random.Random, week: dt.date, key: tuple[str, str], n: int | None = None) -> Values:
    """Counts and times (seconds; independent averages in minutes) for one row, before derivation."""
    agency, (base, extra) = key[0], _CALIBRATION[key]
    n0, p0, h0, d0, a0, m0, *medians = base
    amp_n, peak_n, amp_d, amp_t, peak_t = _SEASON[agency]
    cv_n, cv_p, cv_c, cv_d, cv_t = _NOISE[agency]
    season_n = math.cos(2 * math.pi * (week.timetuple().tm_yday - peak_n) / 365.25)
    season_t = math.cos(2 * math.pi * (week.timetuple().tm_yday - peak_t) / 365.25)
    f_c, f_d = _factor(rng, cv_c), _factor(rng, cv_d) * (1 + amp_d * season_t)
    f_t, f_x = _factor(rng, cv_t) * (1 + amp_t * season_t), _factor(rng, 0.04)
    v: Values = {"n": n or max(1, round(n0 * (1 + amp_n * season_n) * _factor(rng, cv_n)))}
    v[_P] = p0 * _factor(rng, cv_p)
    v[_H] = v[_P] + (h0 - p0) * f_c
    v[_D] = v[_H] + (d0 - h0) * f_d
    v[_A] = v[_D] + (a0 - d0) * f_t
    v[_M] = min(v[_A], v[_A] * m0 / a0 * _factor(rng, 0.01))
    for col, med, f in zip(_BASE_COLUMNS[5:], medians, (1.0, f_c, f_d, f_t, f_t), strict=True):
        v[col] = med * f
    if extra and agency == "EMS":  # EMS: pickup and job creation follow the handoff, before dispatch
        v[EMS_COLUMNS[0]] = v[_H] + (extra[0] - h0) * f_x
        v[EMS_COLUMNS[1]] = v[EMS_COLUMNS[0]] + (extra[1] - extra[0]) * f_x
        v[_D] = max(v[_D], v[EMS_COLUMNS[1]] + 1.0)
        v[_A] = v[_D] + (a0 - d0) * f_t  # never earlier than before, so M <= A still holds
    cols = EMS_COLUMNS if key[0] == "EMS" or key[1] == "3. Medical Emergencies" else _FD_CALIBRATED
    for col, x in zip(cols, extra, strict=False):
        v.setdefault(col, x * (f_d if col == "Average Dispatch" else f_x))
    return v


def _single_incident(v: Values) -> Values:
    """Make a one-incident row exact: whole seconds, and each median equal to its segment."""
    for col in (_P, _H, _D, _A, _M, *EMS_COLUMNS[:2]):
        v[col] = float(round(v[col]))
    segments = (
        v[_P],
        v[_H] - v[_P],
        v[_D] - v[_H],
        v[_A] - v[_D],
        v[_M],
        v[EMS_COLUMNS[0]] - v[_H],
        v[EMS_COLUMNS[1]] - v[EMS_COLUMNS[0]],
    )
    for col, x in zip((*_BASE_COLUMNS[5:], *EMS_COLUMNS[2:4]), segments, strict=True):
        v[col] = x
    return v


def _format(week: dt.date, agency: str, itype: str, v: Values) -> list[str]:
    """Derive the dependent averages (minutes) and format one row like the portal export."""
    v["Average Pickup"], v["Average Travel"] = v[_P] / 60, (v[_A] - v[_D]) / 60
    v["Average Calltaker Processing"] = (v[_H] - v[_P]) / 60
    if not (agency == "FDNY" and itype in _FD_TYPES):
        v["Average Dispatch"] = (v[_D] - v[_H]) / 60
    if agency == "EMS":
        v["Average EMS Pickup"] = (v[EMS_COLUMNS[0]] - v[_H]) / 60
        v["Average EMS Processing"] = (v[EMS_COLUMNS[1]] - v[EMS_COLUMNS[0]]) / 60
    if FD_COLUMNS[0] in v:
        v["Average FD Processing"] = (v[FD_COLUMNS[1]] - v[FD_COLUMNS[0]]) / 60
    row = [week.strftime("%m/%d/%Y"), agency, itype, str(int(v["n"]))]
    for header in SOURCE_HEADERS[4:]:
        x = v.get(header)
        if x is None:
            row.append("")
        elif header.startswith("Median"):
            half = round(x * 2) / 2
            row.append(str(int(half)) if half == int(half) else f"{half:.1f}")
        else:
            row.append("0.00" if (text := f"{x:.2f}") == "-0.00" else text)  # as the portal writes
    return row


def generate_sample_rows(
    weeks: int = DEFAULT_WEEKS, start: dt.date = DEFAULT_START, seed: int = DEFAULT_SEED
) -> list[list[str]]:
    """The sample's data rows (header excluded), defects included; the malformed line is short."""
    if weeks < MIN_WEEKS:
        raise ValueError(f"weeks must be at least {MIN_WEEKS}, got {weeks}")
    if start.weekday() != 0:
        raise ValueError(f"start must be a Monday, got {start.isoformat()}")
    rng = random.Random(seed)
    days = [start + dt.timedelta(weeks=i) for i in range(weeks)]
    values = {(w, *key): _values(rng, day, key) for w, day in enumerate(days) for key in INCIDENT_TYPES}
    early = range(weeks - 1)  # every defect but the restatements avoids the last week
    for w in rng.sample(early, 2):
        values[(w, "FDNY", "1. Structural Fires")][_P] = -round(rng.uniform(0.1, 50.0), 2)
    huge = values[(rng.choice(early), "NYPD (Non-CIP)", "Police Officer/Security Holding Suspect")]
    shift = rng.uniform(150.0, 300.0) - huge[_P]
    for col in (_P, _H, _D, _A, _M):
        huge[col] += shift
    extra_rows: dict[int, list[list[str]]] = {w: [] for w in range(weeks)}
    for w in rng.sample(early, 3):
        v = _single_incident(_values(rng, days[w], _EMS_NLT, n=1))
        extra_rows[w].append(_format(days[w], "EMS", "", v))
    w = rng.choice(early)
    v = {
        k: x
        for k, x in _values(rng, days[w], _FDNY_NME, n=rng.randint(80, 200)).items()
        if k not in FD_COLUMNS
    }  # an FDNY row without a type: no FDNY or EMS segment columns
    extra_rows[w].append(_format(days[w], "FDNY", "", v))
    w = rng.choice(early)
    v = _values(rng, days[w], _NONCIP_OTHER, n=rng.randint(1, 5))
    extra_rows[w].append(_format(days[w], "NYPD (Non-CIP)", "Shot Spotter", v)[:MALFORMED_FIELDS])
    bad_arrival, bad_travel = rng.sample(early, 2)
    restated = rng.sample(INCIDENT_TYPES, 3)
    rows: list[list[str]] = []
    for (w, agency, itype), v in values.items():
        row = _format(days[w], agency, itype, v)
        if (w, agency, itype) == (bad_arrival, "NYPD", "1. Critical"):
            row[SOURCE_HEADERS.index(_A)] = row[SOURCE_HEADERS.index(_A)].replace(".", "..")
        if (w, agency, itype) == (bad_travel, "NYPD", "3. Non-Critical"):
            row[SOURCE_HEADERS.index("Average Travel")] = "n/a"
        rows.append(row)
        if (agency, itype) == INCIDENT_TYPES[-1]:
            rows.extend(extra_rows[w])
    for key in restated:
        old = values[(weeks - 1, *key)]
        n = round(old["n"] * rng.uniform(1.005, 1.03)) + 1
        rows.append(_format(days[-1], *key, _values(rng, days[-1], key, n=n)))
    return rows


def write_sample(
    path: str | Path, weeks: int = DEFAULT_WEEKS, start: dt.date = DEFAULT_START, seed: int = DEFAULT_SEED
) -> Path:
    """Write header + sample rows as UTF-8 CSV (minimal quoting, ``\\n`` line ends), atomically."""
    target = Path(path)
    rows = generate_sample_rows(weeks=weeks, start=start, seed=seed)
    with atomic_file(target) as handle:
        writer = csv.writer(handle, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        writer.writerow(SOURCE_HEADERS)
        writer.writerows(rows)
    return target
