"""Gold versus the DuckDB floor: the same KPIs must come out of both (rtol 1e-9, counts exact).

Gold is read without a JVM, whichever engine wrote it: the summary from the run's
`kpi_summary.json` and the month x agency table from its Delta folder (`gold/kpi_monthly_agency`)
with delta-rs (`deltalake`, a dependency of the default engine), which reads the logs of both
delta-rs and delta-spark (JSON commits, checkpoints, deletion vectors) as of their latest version.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from nyc911lib.io.delta_rs import read_arrow

RTOL = 1e-9
ATOL = 1e-12  # only for values that are 0 in one of the two (a breach rate of 0 %)
SUMMARY_EXACT = ("total_incidents", "rows", "first_week", "last_week")
SUMMARY_FLOAT = ("avg_call_to_first_pickup_s", "sla_breach_incidents_pct", "sla_breach_rows_pct")
MONTHLY_FLOAT = (
    "avg_call_to_first_pickup_s",
    "avg_dispatch_s",
    "avg_travel_s",
    "avg_call_to_agency_arrival_s",
    "sla_breach_rate_pct",
)


def read_delta(table: Path) -> list[dict[str, Any]]:
    """Every row of the latest version of a local Delta table as dicts, read with delta-rs."""
    if not (table / "_delta_log").is_dir():
        raise ValueError(f"{table}: not a Delta table (no _delta_log)")
    return read_arrow(table).to_pylist()


def _close(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(float(a), float(b), rel_tol=RTOL, abs_tol=ATOL)


def compare_summary(gold: dict, floor: dict, label: str) -> list[str]:
    """Differences between gold's kpi_summary.json and the floor's summary (empty: equal)."""
    problems = [
        f"{label}: summary {k}: gold {gold.get(k)!r} != floor {floor.get(k)!r}"
        for k in SUMMARY_EXACT
        if str(gold.get(k)) != str(floor.get(k))
    ]
    problems += [
        f"{label}: summary {k}: gold {gold.get(k)!r} != floor {floor.get(k)!r} (rtol {RTOL})"
        for k in SUMMARY_FLOAT
        if not _close(gold.get(k), floor.get(k))
    ]
    return problems


def compare_monthly(gold_rows: list[dict], floor_rows: list[dict], label: str) -> list[str]:
    """Differences between gold.kpi_monthly_agency and the floor, per month x agency."""
    gold = {(str(r["month"]), r["agency"]): r for r in gold_rows}
    floor = {(str(r["month"]), r["agency"]): r for r in floor_rows}
    problems = [f"{label}: month x agency {k} only in gold" for k in sorted(gold.keys() - floor.keys())]
    problems += [f"{label}: month x agency {k} only in the floor" for k in sorted(floor.keys() - gold.keys())]
    for key in sorted(gold.keys() & floor.keys()):
        g, f = gold[key], floor[key]
        if g["incidents"] != f["incidents"]:
            problems.append(f"{label}: {key} incidents: gold {g['incidents']} != floor {f['incidents']}")
        problems += [
            f"{label}: {key} {c}: gold {g[c]!r} != floor {f[c]!r} (rtol {RTOL})"
            for c in MONTHLY_FLOAT
            if not _close(g[c], f[c])
        ]
    return problems


def check_run(reports_dir: Path, warehouse: Path | None, floor: dict, label: str) -> tuple[list[str], str]:
    """Compare one pipeline run with the floor of its source: the summary, and the month x agency
    table when `warehouse` is given. Returns (problems, a one-line description of what was compared)."""
    summary = json.loads((reports_dir / "kpi_summary.json").read_text())
    problems = compare_summary(summary, floor["summary"], label)
    what = "summary (incidents, rows, weeks, weighted pickup, breach % of incidents and rows)"
    if warehouse is not None:
        monthly = read_delta(warehouse / "gold" / "kpi_monthly_agency")
        problems += compare_monthly(monthly, floor["monthly"], label)
        what += f" + {len(monthly)} month x agency rows (incidents, breach %, weighted pickup, dispatch,"
        what += " travel, arrival)"
    return problems, what
