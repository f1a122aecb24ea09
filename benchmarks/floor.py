"""The floor: gold's headline KPIs from the raw CSV with DuckDB, in one process, no lakehouse.

`python -m benchmarks.floor SOURCE OUT.json` writes the summary (total incidents, incident-weighted
average call-to-first-pickup, SLA breach share of incidents and of rows, first/last week) and per
month x agency the incidents, the weighted pickup, dispatch, travel and arrival times and the
breach share. It mirrors the pipeline instead of
importing it (an independent cross-check; nyc911lib would also pull in pyspark):

- typing as `nyc911lib.transforms.silver.typed_e2e`: trimmed text; `Average ...` columns are minutes (x 60),
  the others seconds, rounded to 6 decimals (typed: the four durations gold's monthly table
  averages; every other one is only checked to parse); incidents are digits only; agencies,
  incident-type spelling fixes and the `Unspecified` name from params/default.yaml;
- the `drop` rules of params/quality_rules.yaml (the rule names are checked, so a rule added there
  stops this script instead of silently diverging);
- one row per (week, agency, incident type), the latest line of the file wins;
- the single SLA rule of params/sla_rules.yaml (average call-to-first-pickup above a threshold).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import yaml

PARAMS_DIR = Path(__file__).resolve().parent.parent / "params"
KEY_HEADERS = ("Week Start Date", "Agency", "Final Incident Type", "# of Incidents Calculated")
PICKUP = "Call to First Pickup"
# gold.kpi_monthly_agency's incident-weighted means and their source columns (`Average ...`: minutes)
METRICS = {
    "avg_call_to_first_pickup_s": PICKUP,
    "avg_dispatch_s": "Average Dispatch",
    "avg_travel_s": "Average Travel",
    "avg_call_to_agency_arrival_s": "Call to Agency Arrival",
}
PRIORITY_PREFIX = r"^(\d+)\.\s*(.*)$"
MIRRORED_RULES = {  # params/quality_rules.yaml name -> the SQL below that mirrors it (drop rules)
    "row_well_formed": "true",  # DuckDB's strict CSV reader fails on a malformed line instead
    "week_start_date_is_monday": "week IS NOT NULL AND isodow(week) = 1",
    "agency_known": "agency IS NOT NULL",
    "incidents_positive_integer": "incidents IS NOT NULL AND incidents > 0",
    "numeric_fields_parse": "NOT unparsable",
    "call_to_first_pickup_within_0_120s": "avg_call_to_first_pickup_s BETWEEN 0 AND 120",
}
WARN_ONLY_RULES = {"other_times_non_negative"}
MEMORY_LIMIT = "2GB"  # DuckDB spills beyond it (11.6M keys at 1,000x would take ~6 GB in memory)


def _q(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _params() -> tuple[dict[str, str], dict[str, str], str, float]:
    """Agency codes, incident-type fixes, the empty-type name and the SLA pickup threshold."""
    default = yaml.safe_load((PARAMS_DIR / "default.yaml").read_text())
    rules = yaml.safe_load((PARAMS_DIR / default["quality_rules_file"]).read_text())["quality_rules"]
    drop = {r["name"] for r in rules if r["action"] == "drop"}
    others = {r["name"] for r in rules if r["action"] != "drop"}
    if drop != set(MIRRORED_RULES) or others - WARN_ONLY_RULES:
        raise SystemExit(f"floor: quality rules changed ({sorted(drop | others)}); update MIRRORED_RULES")
    (sla,) = yaml.safe_load((PARAMS_DIR / default["sla_rules_file"]).read_text())["sla_rules"]
    if sla["metric"] != "avg_call_to_first_pickup_s" or sla.get("agencies") or sla.get("incident_types"):
        raise SystemExit(f"floor: only an unscoped pickup SLA rule is mirrored, got {sla}")
    return (
        default["agency_codes"],
        default.get("incident_type_fixes") or {},
        default["unspecified_incident_type"],
        float(sla["threshold_s"]),
    )


def kpi_sql(source: Path, headers: list[str], threshold: float) -> str:
    """The query: raw text -> typed -> valid -> latest per key -> sums per month x agency (`agg`).

    Week dates and incident types are typed once per distinct value (joined back to the rows; the
    CSV is scanned for those distinct values rather than materialized), the other durations only
    need their `numeric_fields_parse` check, and the latest line of a key wins through arg_max on
    the line number (a hash aggregate over every key: it spills beyond MEMORY_LIMIT).
    """
    agencies, fixes, unspecified, _ = _params()
    others = [h for h in headers if h not in (*KEY_HEADERS, PICKUP)]
    agency = 'CASE trim("Agency") ' + " ".join(f"WHEN {_lit(k)} THEN {_lit(v)}" for k, v in agencies.items())
    fix = " ".join(f"WHEN {_lit(k)} THEN {_lit(v)}" for k, v in fixes.items())
    prefix = _lit(PRIORITY_PREFIX)
    name = f"trim(CASE WHEN regexp_matches(ty, {prefix}) THEN regexp_extract(ty, {prefix}, 2) ELSE ty END)"
    fixed = f"CASE {name} {fix} ELSE {name} END" if fix else name

    def bad_number(column: str) -> str:  # a value was given but is not a finite number
        text = f"trim({_q(column)})"
        return f"({text} <> '' AND NOT coalesce(isfinite(try_cast({text} AS DOUBLE)), false))"

    n = 'trim("# of Incidents Calculated")'
    digits = f"(length({n}) BETWEEN 1 AND 18 AND translate({n}, '0123456789', '') = '')"

    def seconds(column: str) -> str:  # silver's typing: minutes x 60, rounded to 6 decimals
        value = f"try_cast(trim({_q(column)}) AS DOUBLE)"
        scaled = f"{value} * 60.0" if column.startswith("Average ") else value
        return f"CASE WHEN isfinite({value}) THEN round({scaled}, 6) END"

    typed = ", ".join(f"{seconds(c)} AS {m}" for m, c in METRICS.items())
    latest = "{" + ", ".join(f"{c!r}: {c}" for c in ("incidents", *METRICS)) + "}"
    weighted = ", ".join(
        f"sum({m} * incidents) AS {m}_x_n, sum(incidents) FILTER (WHERE {m} IS NOT NULL) AS {m}_n"
        for m in METRICS
    )
    valid = " AND ".join(f"({sql})" for sql in MIRRORED_RULES.values())
    sla = "avg_call_to_first_pickup_s"
    breach = f"{sla} > {threshold!r}"
    return f"""
    CREATE TEMP TABLE agg AS
    WITH src AS NOT MATERIALIZED (
      SELECT ordinality AS line, coalesce("Week Start Date", '') AS w, {agency} END AS agency,
        coalesce(trim("Final Incident Type"), '') AS ty,
        CASE WHEN {digits} THEN {n}::BIGINT END AS incidents, {typed},
        coalesce({n} <> '' AND NOT {digits}, false)
          OR coalesce({" OR ".join(bad_number(c) for c in (PICKUP, *others))}, false) AS unparsable
      FROM read_csv({_lit(str(source))}, header = true, all_varchar = true, delim = ',', quote = '"',
                    escape = '"', strict_mode = true) WITH ORDINALITY
    ), weeks AS (
      SELECT w, coalesce(try_strptime(trim(w), '%m/%d/%Y'),
                         try_strptime(substr(trim(w), 1, 10), '%Y-%m-%d'))::DATE AS week
      FROM (SELECT DISTINCT w FROM src)
    ), types AS (
      SELECT ty, CASE WHEN {fixed} = '' THEN {_lit(unspecified)} ELSE {fixed} END AS incident_type
      FROM (SELECT DISTINCT ty FROM src)
    ), current AS (
      SELECT week, agency, incident_type, arg_max({latest}, line) AS v
      FROM src JOIN weeks USING (w) JOIN types USING (ty)
      WHERE {valid}
      GROUP BY week, agency, incident_type
    ), flat AS (
      SELECT week, agency, v.* FROM current
    )
    SELECT date_trunc('month', week)::DATE AS month, agency,
           min(week) AS first_week, max(week) AS last_week,
           sum(incidents)::BIGINT AS incidents, count(*) AS rows, {weighted},
           coalesce(sum(incidents) FILTER (WHERE {breach}), 0) AS breach_incidents,
           count({sla}) AS known_rows, count(*) FILTER (WHERE {breach}) AS breach_rows
    FROM flat GROUP BY ALL
    """


def floor_kpis(source: Path, tmp_dir: Path) -> dict:
    """Compute the summary and the month x agency KPIs of `source` with DuckDB."""
    threshold = _params()[3]
    con = duckdb.connect()
    con.execute(f"SET temp_directory = {_lit(str(tmp_dir))}")
    con.execute(f"SET memory_limit = {_lit(MEMORY_LIMIT)}")  # spill the per-key dedupe, do not hoard
    describe = f"DESCRIBE SELECT * FROM read_csv({_lit(str(source))}, header = true, all_varchar = true)"
    headers = [r[0] for r in con.execute(describe).fetchall()]
    con.execute(kpi_sql(source, headers, threshold))
    summary_cols = (
        "total_incidents",
        "rows",
        "avg_call_to_first_pickup_s",
        "sla_breach_incidents_pct",
        "sla_breach_rows_pct",
        "first_week",
        "last_week",
    )
    p = "avg_call_to_first_pickup_s"
    summary = con.execute(f"""
        SELECT sum(incidents)::BIGINT, sum(rows)::BIGINT, sum({p}_x_n) / sum({p}_n),
               100.0 * sum(breach_incidents) / sum({p}_n), 100.0 * sum(breach_rows) / sum(known_rows),
               strftime(min(first_week), '%Y-%m-%d'), strftime(max(last_week), '%Y-%m-%d')
        FROM agg""").fetchone()
    means = ", ".join(f"{m}_x_n / {m}_n" for m in METRICS)
    monthly = con.execute(f"""
        SELECT strftime(month, '%Y-%m-%d'), agency, incidents, {means}, 100.0 * breach_incidents / {p}_n
        FROM agg ORDER BY month, agency""").fetchall()
    names = ("month", "agency", "incidents", *METRICS, "sla_breach_rate_pct")
    return {
        "summary": dict(zip(summary_cols, summary, strict=True)),
        "monthly": [dict(zip(names, row, strict=True)) for row in monthly],
        "duckdb_version": duckdb.__version__,
    }


def main(argv: list[str] | None = None) -> int:
    """CLI: compute the floor KPIs of a CSV export and write them as JSON."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.floor", description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--tmp-dir", type=Path, default=Path(tempfile.gettempdir()) / "nyc911-bench-duckdb")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    kpis = floor_kpis(args.source.resolve(), args.tmp_dir)
    kpis["seconds_in_process"] = time.perf_counter() - started
    args.out.write_text(json.dumps(kpis, indent=1))
    s = kpis["summary"]
    print(
        f"floor: {s['rows']:,} rows, {s['total_incidents']:,} incidents, "
        f"pickup {s['avg_call_to_first_pickup_s']:.6f} s in {kpis['seconds_in_process']:.2f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
