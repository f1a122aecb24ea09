"""End to end on the real 2025 export (../shared/data; skipped when absent): gold equals an
independent pandas computation from the raw CSV, and a restated publication converges."""

from __future__ import annotations

import csv
import datetime as dt
import shutil
from dataclasses import replace

import pandas as pd
import pyspark.sql.functions as F
import pytest
from anomaly_reference import assert_same_scores
from anomaly_reference import scores as reference_scores
from conftest import (
    REAL_2023,
    REAL_2025,
    RUN_SPECIFIC,
    assert_same_rows,
    by_weeks,
    delta_frame,
    real_export,
    run_once,
    table_versions,
)
from deltalake import DeltaTable

from nyc911lib import build_gold, read_table
from nyc911lib.io.storage import last_commit_metadata, table_name, table_size_bytes
from nyc911lib.run.cli import main
from nyc911lib.run.gold_run import whole_pieces
from nyc911lib.transforms.week_spans import ALL_DAYS

pytestmark = pytest.mark.e2e
AGENCY_CODES = {"EMS": "EMS", "FDNY": "FDNY", "NYPD": "NYPD", "NYPD (Non-CIP)": "NYPD_NON_CIP"}


@pytest.fixture(scope="module")
def real_run(spark, params, tmp_path_factory):
    source = real_export(REAL_2025)
    wh = params.with_warehouse(tmp_path_factory.mktemp("real") / "warehouse")
    outcome = run_once(spark, wh, source, run_id="real-1")
    return wh, outcome.accounting, outcome.summary


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    """The raw export read by pandas, independently of the pipeline, minus the rows the quality
    rules must drop (call-to-first-pickup outside [0, 120] s: the 2 negative FDNY rows)."""
    df = pd.read_csv(real_export(REAL_2025))
    df["week"] = pd.to_datetime(df["Week Start Date"], format="%m/%d/%Y")
    df["month"] = df["week"].dt.to_period("M").dt.to_timestamp().dt.date
    df["agency"] = df["Agency"].map(AGENCY_CODES)
    return df[df["Call to First Pickup"].between(0, 120)]


def test_real_export_row_accounting(real_run):
    _, (batch,), _ = real_run
    counts = ("rows_bronze", "rows_silver", "rows_unchanged", "rows_superseded", "rows_quarantined")
    assert tuple(batch[c] for c in counts) == (11606, 11604, 0, 0, 2)


def test_the_two_negative_pickups_are_quarantined(spark, real_run):
    wh = real_run[0]
    rows = read_table(spark, wh, "silver", "quarantine").orderBy("week_start_date").collect()
    assert [(r.week_start_date, r.agency, r.final_incident_type, r.call_to_first_pickup) for r in rows] == [
        ("07/02/2018", "FDNY", "1. Structural Fires", "-46.68"),
        ("09/10/2018", "FDNY", "1. Structural Fires", "-0.16"),
    ]
    assert all(r.quarantine_reasons == ["call_to_first_pickup_within_0_120s"] for r in rows)


def test_summary_equals_pandas(real_run, raw):
    summary = real_run[2]
    weighted_pickup = (raw["Call to First Pickup"] * raw["# of Incidents Calculated"]).sum() / raw[
        "# of Incidents Calculated"
    ].sum()
    breach = raw["Call to First Pickup"] > 5
    assert summary["total_incidents"] == raw["# of Incidents Calculated"].sum() == 36_259_560
    assert summary["rows"] == len(raw) == 11_604
    assert summary["avg_call_to_first_pickup_s"] == pytest.approx(weighted_pickup, rel=1e-12)
    assert summary["sla_breach_incidents_pct"] == pytest.approx(
        100 * raw.loc[breach, "# of Incidents Calculated"].sum() / raw["# of Incidents Calculated"].sum(),
        rel=1e-12,
    )
    assert summary["sla_breach_rows_pct"] == pytest.approx(100 * breach.mean(), rel=1e-12)
    assert (summary["first_week"], summary["last_week"]) == (dt.date(2013, 11, 18), dt.date(2025, 12, 22))


def _pandas_month(raw: pd.DataFrame, month: dt.date, agency: str) -> dict:
    rows = raw[(raw["month"] == month) & (raw["agency"] == agency)]
    n = rows["# of Incidents Calculated"]

    def weighted(values: pd.Series) -> float:
        known = values.notna()
        return (values[known] * n[known]).sum() / n[known].sum()

    return {
        "incidents": int(n.sum()),
        "avg_call_to_first_pickup_s": weighted(rows["Call to First Pickup"]),
        "avg_dispatch_s": weighted(rows["Average Dispatch"] * 60),  # minutes in the source
        "avg_travel_s": weighted(rows["Average Travel"] * 60),
        "avg_call_to_agency_arrival_s": weighted(rows["Call to Agency Arrival"]),
        "sla_breach_rate_pct": 100 * n[rows["Call to First Pickup"] > 5].sum() / n.sum(),
    }


def _pandas_response_time(silver: pd.DataFrame, most_urgent, trailing_weeks: int) -> pd.DataFrame:
    """gold.kpi_response_time computed by pandas from silver: per series, every week of its
    calendar (a week without a row weighs nothing), sums over each period's weeks by rolling
    windows, kept for the weeks that have a row."""
    spans = {
        "week": (0, 0),
        "trailing_weeks": (-(trailing_weeks - 1), 0),
        "year_earlier": (-(trailing_weeks - 1) - 52, -52),
    }
    columns = {
        "avg_call_to_agency_arrival_s": "call_to_agency_arrival_s",
        "avg_call_to_first_pickup_s": "call_to_first_pickup_s",
        "avg_call_to_agency_dispatch_s": "call_to_agency_dispatch_s",
        "avg_travel_s": "avg_travel_s",
    }
    out = []
    for agency, kind in most_urgent:
        rows = silver[(silver["agency"] == agency) & (silver["incident_type"] == kind)].copy()
        rows.index = pd.to_datetime(rows["week_start_date"])
        calendar = pd.date_range(rows.index.min() - pd.Timedelta(weeks=104), rows.index.max(), freq="7D")
        weekly = rows.reindex(calendar)
        n = weekly["incidents"].fillna(0)
        sums = {"rows": weekly["incidents"].notna().astype(int), "incidents": n}
        for name, column in columns.items():
            known = weekly[column].notna()
            sums[f"{name}_value"] = (weekly[column] * n).where(known, 0.0)
            sums[f"{name}_weight"] = n.where(known, 0)
        for period, (first, last) in spans.items():
            held = {k: v.rolling(last - first + 1, min_periods=1).sum().shift(-last) for k, v in sums.items()}
            frame = pd.DataFrame(
                {
                    "week_start_date": [w.date() for w in rows.index],
                    "agency": agency,
                    "period": period,
                    "weeks_with_data": held["rows"].loc[rows.index].astype(int).to_numpy(),
                    "incidents": held["incidents"].loc[rows.index].astype(int).to_numpy(),
                    **{
                        name: (
                            held[f"{name}_value"] / held[f"{name}_weight"].where(held[f"{name}_weight"] > 0)
                        )
                        .loc[rows.index]
                        .to_numpy()
                        for name in columns
                    },
                }
            )
            out.append(frame)
    return pd.concat(out, ignore_index=True)


def test_response_time_headline_equals_pandas_from_silver(spark, real_run):
    """Every week and period of gold.kpi_response_time, for the three most urgent types, equals a
    pandas computation from silver; the latest week's figures are the report's headline."""
    wh = real_run[0]
    silver = delta_frame(wh, "silver", "e2e_weekly")
    expected = _pandas_response_time(silver, wh.response_time.most_urgent, wh.response_time.trailing_weeks)
    gold = delta_frame(wh, "gold", "kpi_response_time")
    assert len(gold) == len(expected) == 3 * (632 + 630 + 632)
    merged = expected.merge(gold, on=["week_start_date", "agency", "period"], suffixes=("", "_gold"))
    assert len(merged) == len(expected)
    assert (merged["incidents"] == merged["incidents_gold"]).all()
    assert (merged["weeks_with_data"] == merged["weeks_with_data_gold"]).all()
    for column in (
        "avg_call_to_agency_arrival_s",
        "avg_call_to_first_pickup_s",
        "avg_call_to_agency_dispatch_s",
    ):
        assert merged[column].astype(float).to_numpy() == pytest.approx(
            merged[f"{column}_gold"].to_numpy(), rel=1e-9, nan_ok=True
        ), column
    assert (
        merged["pickup_to_dispatch_s"]
        - (merged["avg_call_to_agency_dispatch_s"].astype(float) - merged["pickup_s"])
    ).abs().max() < 1e-9
    latest = merged[merged["week_start_date"] == dt.date(2025, 12, 22)].set_index(["agency", "period"])
    # The headline on the real export (what the report and the dashboard show), seconds:
    assert latest.loc[("NYPD", "week"), "avg_call_to_agency_arrival_s"] == pytest.approx(556.76)
    assert latest.loc[("EMS", "trailing_weeks"), "incidents"] == 535_891
    assert latest.loc[("FDNY", "year_earlier"), "weeks_with_data"] == 52
    # Arrival is call-to-dispatch plus travel within a second over the trailing year (the source's
    # own rounding), so the three segments add up to the headline.
    assert latest["arrival_minus_segments_s"].abs().max() < 0.5


def test_anomalies_equal_the_reference_computation(real_run):
    """gold.anomalies on the real export: the same 1,585 flagged rows as a plain-Python computation
    of the definition from gold.kpi_weekly (tests/anomaly_reference.py), medians and MADs equal,
    scores within 1e-12."""
    wh = real_run[0]
    expected = reference_scores(delta_frame(wh, "gold", "kpi_weekly").to_dict("records"))
    found = delta_frame(wh, "gold", "anomalies")
    assert len(expected) == len(found) == 1_585
    assert_same_scores(found.to_dict("records"), expected)


def test_a_run_without_source_on_a_real_warehouse_lands_nothing_and_keeps_gold(
    spark, real_run, tmp_path, capsys, monkeypatch
):
    """The README's weekly command (`nyc911 run`, no source) on a warehouse built from the real
    export processes what is landed; it never lands the built-in sample (which replaced 1,867
    real rows and moved gold to 36,259,076 incidents / 10.18 % in an earlier version)."""
    wh = real_run[0]
    landed = sorted(wh.landing_dir.iterdir())
    versions = table_versions(spark, wh)
    monkeypatch.setenv("NYC911_REPORTS_DIR", str(tmp_path / "reports"))
    assert main(["run", "--runner", "inline", "--warehouse", str(wh.warehouse)]) == 0
    out = capsys.readouterr().out
    assert f"nothing to land: processing what is landed in {wh.landing_dir} and not processed yet" in out
    assert "  total incidents            36,259,560\n" in out
    assert "  SLA breach, incidents      10.40 %\n" in out
    assert "  source                     file\n" in out
    assert sorted(wh.landing_dir.iterdir()) == landed
    assert not (wh.warehouse / "sample").exists()
    assert table_versions(spark, wh) == versions  # nothing new: no table changed
    assert main(["run", "--runner", "inline", "--warehouse", str(wh.warehouse), "--source", "sample"]) == 1
    assert capsys.readouterr().err == (
        f"nyc911: error: the warehouse {wh.warehouse} holds real publications; the built-in synthetic "
        "sample is not landed in it (run without --source to process what is landed, or pass "
        "--allow-mixed-sources to add the sample anyway)\n"
    )
    assert sorted(wh.landing_dir.iterdir()) == landed
    summary = read_table(spark, wh, "gold", "kpi_summary").first()
    assert (summary.total_incidents, round(summary.sla_breach_incidents_pct, 2)) == (36_259_560, 10.40)
    assert summary.source_kinds == "file"


@pytest.mark.parametrize(
    ("month", "agency"),
    [
        (dt.date(2013, 11, 1), "EMS"),
        (dt.date(2018, 7, 1), "FDNY"),  # holds a quarantined negative pickup
        (dt.date(2020, 4, 1), "NYPD_NON_CIP"),
        (dt.date(2023, 1, 1), "NYPD"),
        (dt.date(2025, 12, 1), "EMS"),
    ],
)
def test_monthly_agency_kpis_equal_pandas(spark, real_run, raw, month, agency):
    wh = real_run[0]
    gold = (
        read_table(spark, wh, "gold", "kpi_monthly_agency")
        .where((F.col("month") == month) & (F.col("agency") == agency))
        .first()
        .asDict()
    )
    expected = _pandas_month(raw, month, agency)
    assert gold["incidents"] == expected.pop("incidents")
    for column, value in expected.items():
        assert gold[column] == pytest.approx(value, rel=1e-9), column


def test_loading_2023_then_2025_equals_loading_2025_alone(spark, params, real_run, tmp_path):
    """Two weekly runs, each landing one publication: silver and every gold table converge to the
    2025 export alone; restatements lists exactly the revised rows (pandas, from the raw CSVs)."""
    wh_alone = real_run[0]
    wh = by_weeks(params).with_warehouse(tmp_path / "warehouse")
    first = run_once(spark, wh, real_export(REAL_2023), run_id="real-2023")
    second = run_once(spark, wh, REAL_2025, run_id="real-2025")
    counts = ("rows_bronze", "rows_silver", "rows_unchanged", "rows_superseded", "rows_quarantined")
    ((a2023,), (a2025,)) = first.accounting, second.accounting
    assert tuple(a2023[c] for c in counts) == (8803, 8801, 0, 0, 2)
    revisions = _pandas_revisions()
    new_keys = 11604 - 8801  # weeks after 2023-01-23 (every 2023 key is still published in 2025)
    assert tuple(a2025[c] for c in counts) == (
        11606,
        new_keys + len(revisions),
        8801 - len(revisions),
        0,
        2,
    )
    assert a2025["rows_replaced"] == len(revisions) == 48
    lineage = [c for c in read_table(spark, wh, "silver", "e2e_weekly").columns if c.startswith("_")]
    assert_same_rows(
        read_table(spark, wh, "silver", "e2e_weekly").drop(*lineage),
        read_table(spark, wh_alone, "silver", "e2e_weekly").drop(*lineage),
    )
    # The second run recomputed the weeks the 2025 export reached (most of them): every gold table
    # that does not describe the publications themselves equals the 2025 export's alone.
    assert last_commit_metadata(spark, wh, "gold", "kpi_summary")["build"] == "weeks"
    of_publications = ("restatements", "publication_drift", "data_quality_batches", "data_quality_rules")
    for table in (t for t in wh.tables["gold"] if t not in of_publications):
        assert_same_rows(
            delta_frame(wh, "gold", table, drop=RUN_SPECIFIC),
            delta_frame(wh_alone, "gold", table, drop=RUN_SPECIFIC),
            label=table,
        )
    revised = read_table(spark, wh, "gold", "restatements").collect()
    batches = (first.ingested[0]["batch_id"], second.ingested[0]["batch_id"])
    assert {(r.old_batch_id, r.new_batch_id) for r in revised} == {batches}
    assert {(r.week_start_date, r.agency, r.old_incidents, r.new_incidents) for r in revised} == revisions
    count_changes = [r for r in revised if r.old_incidents != r.new_incidents]
    assert len(count_changes) == 37
    assert {r.week_start_date for r in count_changes} == {dt.date(2023, 1, d) for d in (9, 16, 23)}
    assert read_table(spark, wh_alone, "gold", "restatements").count() == 0
    drift = read_table(spark, wh, "gold", "publication_drift").where(F.col("incidents_change") != 0).collect()
    assert {r.week_start_date for r in drift} == {dt.date(2023, 1, d) for d in (9, 16, 23)}
    superseded = read_table(spark, wh, "silver", "superseded")
    assert superseded.where(F.col("superseded_by_batch_id") == batches[1]).count() == len(revisions)


GOLD_SOURCE_COLUMNS = [
    "# of Incidents Calculated",
    "Call to First Pickup",
    "Call to Agency Dispatch",
    "Call to Agency Arrival",
    "Average Dispatch",
    "Average Travel",
    "Median Dispatch",
    "Median Travel",
    "Call to First Arrival (Multi-Agency Incidents)",
]


def _pandas_revisions() -> set:
    """(week, agency, old, new incidents) of the keys whose count or a gold time differs between
    the two exports, computed from the raw CSVs."""
    key = ["Week Start Date", "Agency", "Final Incident Type"]
    old, new = (pd.read_csv(p).fillna({"Final Incident Type": ""}) for p in (REAL_2023, REAL_2025))
    both = old.merge(new, on=key, suffixes=("_old", "_new"))
    both = both[both["Call to First Pickup_old"].between(0, 120)]
    changed = pd.Series(False, index=both.index)
    for c in GOLD_SOURCE_COLUMNS:
        a, b = both[f"{c}_old"], both[f"{c}_new"]
        changed |= ~((a == b) | (a.isna() & b.isna()))
    rows = both[changed]
    return {
        (dt.datetime.strptime(w, "%m/%d/%Y").date(), AGENCY_CODES[a], int(o), int(n))
        for w, a, o, n in zip(
            rows["Week Start Date"],
            rows["Agency"],
            rows["# of Incidents Calculated_old"],
            rows["# of Incidents Calculated_new"],
            strict=True,
        )
    }


def _five_week_publication(source, out) -> tuple[list[dt.date], int, int]:
    """What `nyc911 fetch --api --since` lands weekly: the export's last four weeks, every third
    row's incident count + 1 (restated), and one new week (the last week's rows, 7 days later).
    Returns the five weeks, the number of rows and of restated rows."""
    with open(source, encoding="utf-8", newline="") as fh:
        header, *rows = list(csv.reader(fh))
    week_of = {r[0]: dt.datetime.strptime(r[0], "%m/%d/%Y").date() for r in rows}
    weeks = sorted(set(week_of.values()))[-4:]
    published = [r for r in rows if week_of[r[0]] in weeks]
    restated = [[*r[:3], str(int(r[3]) + 1), *r[4:]] if i % 3 == 0 else r for i, r in enumerate(published)]
    new_week = weeks[-1] + dt.timedelta(days=7)
    added = [[new_week.strftime("%m/%d/%Y"), *r[1:]] for r in published if week_of[r[0]] == weeks[-1]]
    with open(out, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows([header, *restated, *added])
    return [*weeks, new_week], len(restated) + len(added), len(range(0, len(published), 3))


def test_a_five_week_publication_recomputes_only_the_weeks_it_reaches(spark, real_run, tmp_path):
    """The weekly workload on the real export: gold recomputes only the five published weeks of
    kpi_weekly and the anomaly weeks they reach, rebuilds the rest of gold from them, and ends
    equal, table by table, to all of gold built again from the same silver. That whole build is
    made in four pieces of weeks (`performance.duckdb_gold_piece_mb` at a quarter of silver's
    size), as the duckdb engine builds a large silver's gold; the 2023-then-2025 test compares the
    weeks path with gold built at once."""
    shutil.copytree(real_run[0].warehouse, tmp_path / "warehouse")
    wh = by_weeks(real_run[0]).with_warehouse(tmp_path / "warehouse")
    weeks, rows, revised = _five_week_publication(REAL_2025, tmp_path / "five_weeks.csv")
    (batch,) = run_once(spark, wh, tmp_path / "five_weeks.csv", run_id="real-5w").accounting
    assert (batch["rows_bronze"], batch["rows_replaced"]) == (rows, revised)
    assert last_commit_metadata(spark, wh, "gold", "kpi_summary")["build"] == "weeks"
    week_rows = read_table(spark, wh, "gold", "kpi_weekly").where(F.col("week_start_date").isin(weeks))
    (kpi_weekly,) = DeltaTable(table_name(wh, "gold", "kpi_weekly")).history(1)
    assert kpi_weekly["operationMetrics"]["num_added_rows"] == week_rows.count() == rows
    shutil.copytree(wh.warehouse, tmp_path / "rebuilt")
    quarter_mb = table_size_bytes(spark, wh, "silver", "e2e_weekly") / 2**20 / 4
    rebuilt = replace(wh, performance=replace(wh.performance, duckdb_gold_piece_mb=quarter_mb))
    rebuilt = rebuilt.with_warehouse(tmp_path / "rebuilt")
    assert len(whole_pieces(spark, rebuilt, read_table(spark, rebuilt, "gold", "kpi_weekly"))) == 4
    assert whole_pieces(spark, wh, read_table(spark, wh, "gold", "kpi_weekly")) == (ALL_DAYS,)  # 64 MB
    build_gold(spark, rebuilt, force=True)  # all of gold from the same silver, in pieces
    assert last_commit_metadata(spark, rebuilt, "gold", "kpi_summary")["build"] == "whole"
    for key in wh.tables["gold"]:
        assert_same_rows(
            delta_frame(wh, "gold", key, drop=RUN_SPECIFIC),
            delta_frame(rebuilt, "gold", key, drop=RUN_SPECIFIC),
            label=key,
        )
