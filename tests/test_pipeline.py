"""End to end on the built-in sample, through the same layer functions the notebooks call:
land, bronze, silver (MERGE), gold; then the incremental cases."""

from __future__ import annotations

import csv
import datetime as dt
import json
import shutil
from dataclasses import replace
from pathlib import Path

import pyspark.sql.functions as F
import pytest
from conftest import (
    ENGINE,
    RUN_SPECIFIC,
    assert_same_rows,
    assert_same_summary,
    by_weeks,
    delta_frame,
    run_once,
    table_versions,
)
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from nyc911lib import (
    Landed,
    MissingColumnsError,
    ParamsError,
    QualityRule,
    QualityRuleError,
    ReportScope,
    build_gold,
    build_report,
    build_silver,
    engine,
    ingest_bronze,
    land_source,
    parse_flag,
    read_table,
    run_layers,
)
from nyc911lib.config import Params, PerformanceSettings, RetentionSettings
from nyc911lib.io import storage
from nyc911lib.io.delta_rs import commit_times, read_arrow
from nyc911lib.io.storage import (
    last_commit_metadata,
    table_exists,
    table_size_bytes,
    table_state,
    table_version,
)
from nyc911lib.report.build import report_is_current
from nyc911lib.run.gold_run import SILVER_IDS, changed_weeks, gold_is_current, weeks_pay_off
from nyc911lib.run.landing import land_file
from nyc911lib.run.layers import nothing_to_do
from nyc911lib.run.registry import table_keys
from nyc911lib.run.retention import maintain_warehouse
from nyc911lib.sample import SAMPLE_DEFECTS, sample_row_count, write_sample
from nyc911lib.transforms.week_spans import spans_of

pytestmark = pytest.mark.e2e


def delta_log(wh, layer: str, key: str) -> DeltaTable:
    """A table's Delta log as delta-rs reads it, whichever engine wrote it (history, properties)."""
    return DeltaTable(storage.table_name(wh, layer, key))


QUARANTINED = (
    SAMPLE_DEFECTS["negative_pickup"]
    + SAMPLE_DEFECTS["huge_pickup"]
    + SAMPLE_DEFECTS["unparsable_number"]
    + SAMPLE_DEFECTS["malformed_line"]
)
SILVER_ROWS = sample_row_count() - QUARANTINED - SAMPLE_DEFECTS["duplicate_key"]


@pytest.fixture(scope="module")
def sample_run(spark, params, tmp_path_factory):
    """One run on the sample: land, bronze, silver, gold."""
    wh = params.with_warehouse(tmp_path_factory.mktemp("sample") / "warehouse")
    outcome = run_once(spark, wh)
    return wh, outcome


def test_every_table_is_a_real_delta_table(spark, sample_run):
    wh = sample_run[0]
    for layer, tables in wh.tables.items():
        for key in tables:
            assert table_exists(spark, wh, layer, key), f"{layer}.{key} missing"
            assert (wh.warehouse / layer / tables[key] / "_delta_log").is_dir()


def test_the_sample_is_landed_once_and_logged(spark, sample_run):
    wh, outcome = sample_run
    (landed,) = sorted(wh.landing_dir.glob("*.csv"))
    assert landed.name.endswith("__sample__nyc911_sample.csv")
    (entry,) = outcome.ingested
    assert (entry["source_file"], entry["status"], entry["rows"]) == (
        str(landed),
        "ingested",
        sample_row_count(),
    )
    assert land_source(wh, None) is None  # the warehouse holds a publication: nothing to land
    assert land_source(wh, "sample") == Landed(landed, "sample", False)  # asked for: landed once


def test_every_bronze_row_ends_in_exactly_one_place(spark, sample_run):
    wh, outcome = sample_run
    (entry,) = outcome.ingested
    counts = {
        name: read_table(spark, wh, layer, key).where(F.col("_batch_id") == entry["batch_id"]).count()
        for name, layer, key in [
            ("bronze", "bronze", "e2e_raw"),
            ("silver", "silver", "e2e_weekly"),
            ("quarantine", "silver", "quarantine"),
            ("superseded", "silver", "superseded"),
        ]
    }
    assert counts == {
        "bronze": sample_row_count(),
        "silver": SILVER_ROWS,
        "quarantine": QUARANTINED,
        "superseded": SAMPLE_DEFECTS["duplicate_key"],
    }
    (batch,) = outcome.accounting
    assert {k: v for k, v in batch.items() if k.startswith("rows_")} == {
        "rows_bronze": sample_row_count(),
        "rows_silver": SILVER_ROWS,
        "rows_unchanged": 0,
        "rows_superseded": SAMPLE_DEFECTS["duplicate_key"],
        "rows_quarantined": QUARANTINED,
        "rows_replaced": 0,
    }


def test_quarantine_reasons_match_the_sample_defects(spark, sample_run):
    wh = sample_run[0]
    reasons = (
        read_table(spark, wh, "silver", "quarantine")
        .select(F.explode("quarantine_reasons").alias("rule"))
        .groupBy("rule")
        .count()
        .collect()
    )
    assert {r.rule: r["count"] for r in reasons} == {
        "call_to_first_pickup_within_0_120s": SAMPLE_DEFECTS["negative_pickup"]
        + SAMPLE_DEFECTS["huge_pickup"],
        "numeric_fields_parse": SAMPLE_DEFECTS["unparsable_number"],
        "row_well_formed": SAMPLE_DEFECTS["malformed_line"],
    }
    metrics = read_table(spark, wh, "silver", "dq_metrics").where(F.col("run_id") == "run-1")
    assert metrics.count() == len(wh.quality_rules)  # no schema drift in the sample
    assert metrics.where(F.col("rule") == "row_well_formed").first().rows_failed == 1


def test_silver_keys_are_unique_and_empty_types_kept(spark, sample_run):
    wh = sample_run[0]
    silver = read_table(spark, wh, "silver", "e2e_weekly")
    assert (
        silver.groupBy("week_start_date", "agency", "incident_type").count().where("count > 1").count() == 0
    )
    assert (
        silver.where(F.col("incident_type") == "Unspecified").count() == SAMPLE_DEFECTS["empty_incident_type"]
    )
    assert silver.where(F.col("incident_type").contains("Threating")).count() == 0


def test_silver_has_change_data_feed_on(spark, sample_run):
    wh = sample_run[0]
    properties = delta_log(wh, "silver", "e2e_weekly").metadata().configuration
    assert properties["delta.enableChangeDataFeed"] == "true"


def test_gold_totals_reconcile_with_silver(spark, sample_run):
    wh, outcome = sample_run
    summary = outcome.summary
    silver_total = read_table(spark, wh, "silver", "e2e_weekly").agg(F.sum("incidents")).first()[0]
    weekly_total = read_table(spark, wh, "gold", "kpi_weekly").agg(F.sum("incidents")).first()[0]
    monthly_total = read_table(spark, wh, "gold", "kpi_monthly_agency").agg(F.sum("incidents")).first()[0]
    assert summary["total_incidents"] == weekly_total == monthly_total == silver_total
    assert summary["source_kinds"] == "sample"
    assert (summary["first_week"], summary["last_week"]) == (dt.date(2023, 1, 2), dt.date(2024, 12, 23))


def test_a_run_with_nothing_new_changes_no_table_version(spark, sample_run):
    wh = sample_run[0]
    before = table_versions(spark, wh)
    outcome = run_once(spark, wh, run_id="run-again")
    assert (outcome.ingested, outcome.accounting, outcome.gold_rebuilt) == ([], [], False)
    assert table_versions(spark, wh) == before
    assert outcome.summary["total_incidents"] == sample_run[1].summary["total_incidents"]
    assert sample_run[1].gold_rebuilt is True


def _land_a_new_file(wh: Params) -> Params:
    land_file(write_sample(wh.warehouse / "again.csv", weeks=8), wh.landing_dir, "sample")
    return wh


def _change_an_sla_rule(wh: Params) -> Params:
    (rule,) = wh.sla_rules
    return replace(wh, sla_rules=(replace(rule, threshold_s=1.0),))


def _half_create_a_gold_table(wh: Params) -> Params:
    for commit in Path(storage.table_name(wh, "gold", "sla_alerts"), "_delta_log").glob("*.json"):
        commit.unlink()
    return wh


def _drop_a_silver_table(wh: Params) -> Params:
    shutil.rmtree(storage.table_name(wh, "silver", "superseded"))
    return wh


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda wh: wh, True),
        (_land_a_new_file, False),
        (_change_an_sla_rule, False),
        (_half_create_a_gold_table, False),
        (_drop_a_silver_table, False),
    ],
    ids=["unchanged", "new landed file", "sla rule changed", "half-created gold table", "silver table gone"],
)
def test_nothing_to_do_is_read_from_the_logs_and_sees_every_change(sample_run, tmp_path, change, expected):
    wh = sample_run[0]
    shutil.copytree(wh.warehouse, tmp_path / "warehouse")
    copy = change(wh.with_warehouse(tmp_path / "warehouse"))
    assert nothing_to_do(copy) is expected


def test_silver_reads_what_is_new_from_the_tables_not_from_a_checkpoint(spark, sample_run, tmp_path):
    wh = sample_run[0]
    assert not (wh.warehouse / "_checkpoints").exists()
    bronze_state = table_state(spark, wh, "bronze", "e2e_raw")
    assert last_commit_metadata(spark, wh, "silver", "batch_accounting") == {
        "bronze": bronze_state,
        "engine": ENGINE,  # every commit names the engine and the runner that wrote it
        "runner": "library",
    }
    assert build_silver(spark, wh, "run-skip") == []  # bronze is where silver last accounted for it
    # A stale mark (an earlier version's accounting has none): the batch ids silver has
    # accounted for tell that nothing is new, and nothing is written.
    shutil.copytree(wh.warehouse, tmp_path / "warehouse")
    copy = wh.with_warehouse(tmp_path / "warehouse")
    accounting = read_table(spark, copy, "silver", "batch_accounting")
    path = str(copy.warehouse / "silver" / copy.tables["silver"]["batch_accounting"])
    storage.tables(spark).write(engine.materialize(accounting), path, mode="overwrite", metadata={})
    assert "bronze" not in last_commit_metadata(spark, copy, "silver", "batch_accounting")
    before = table_versions(spark, copy)
    assert build_silver(spark, copy, "run-stale-mark") == []
    assert table_versions(spark, copy) == before


def test_the_report_is_current_until_gold_scope_or_rules_change(spark, sample_run, tmp_path):
    wh = sample_run[0]
    assert not report_is_current(spark, wh, tmp_path)  # nothing built yet
    build_report(spark, wh, tmp_path)
    html = (tmp_path / "kpi_report.html").read_text(encoding="utf-8")
    assert f"Gold computed by the {ENGINE} engine (library runner)" in html  # from gold's commit
    stamp = json.loads((tmp_path / "kpi_summary.json").read_text())["built_from"]
    assert stamp["gold_kpi_summary_version"] == table_version(spark, wh, "gold", "kpi_summary")
    assert report_is_current(spark, wh, tmp_path)
    assert not report_is_current(spark, wh, tmp_path, ReportScope(agencies=("EMS",)))
    assert not report_is_current(spark, wh, tmp_path, ReportScope(date_from=dt.date(2024, 1, 1)))
    stricter = replace(wh, sla_rules=tuple(replace(r, threshold_s=r.threshold_s - 1) for r in wh.sla_rules))
    assert not report_is_current(spark, stricter, tmp_path)
    (tmp_path / "kpi_report.html").unlink()
    assert not report_is_current(spark, wh, tmp_path)


@pytest.mark.spark  # the duckdb engine's reader has no split path (tests/test_csv_reader.py)
def test_a_file_over_the_whole_file_limit_is_read_in_splits_into_the_same_bronze(spark, params, tmp_path):
    """The built-in sample ingested whole and, as a file over the limit, in line splits: the same
    bronze rows and the same ingest log entry (bronze only: nothing after it reads files)."""
    whole = params.with_warehouse(tmp_path / "whole")
    split = replace(
        params.with_warehouse(tmp_path / "split"),
        performance=replace(params.performance, whole_file_max_mb=0.01),  # the 0.2 MB sample is "big"
    )
    entries = {}
    for wh in (whole, split):
        land_source(wh, None)
        (entries[wh.warehouse.name],) = ingest_bronze(spark, wh)
    assert [(e["rows"], e["source_sha256"], e["bytes"]) for e in entries.values()] == 2 * [
        (sample_row_count(), entries["whole"]["source_sha256"], entries["whole"]["bytes"])
    ]
    lineage = ["_batch_id", "_ingested_at", "_source_file"]
    assert_same_rows(
        read_table(spark, split, "bronze", "e2e_raw").drop(*lineage),
        read_table(spark, whole, "bronze", "e2e_raw").drop(*lineage),
    )


def test_gold_tables_over_the_limit_are_zordered_and_gold_stays_current(spark, sample_run, tmp_path):
    wh = sample_run[0]
    shutil.copytree(wh.warehouse, tmp_path / "warehouse")
    copy = wh.with_warehouse(tmp_path / "warehouse")
    kpi_weekly_mb = table_size_bytes(spark, copy, "gold", "kpi_weekly") / 2**20
    low = replace(copy, performance=replace(wh.performance, zorder_min_mb=kpi_weekly_mb / 2))
    summary = build_gold(spark, low, force=True)
    last = {t: delta_log(low, "gold", t).history(1)[0] for t in table_keys("gold")}
    assert last["kpi_weekly"]["operation"] == "OPTIMIZE"
    if ENGINE == "spark":  # delta-spark records the columns, delta-rs its planner's strategy
        zorder_by = json.loads(last["kpi_weekly"]["operationParameters"]["zOrderBy"])
        assert zorder_by == ["agency", "week_start_date"]
    else:
        assert last["kpi_weekly"]["operationMetrics"]["plannerStrategy"] == "zOrder"
    assert last["sla_rules"]["operation"] == "WRITE"  # a few bytes
    assert gold_is_current(spark, low)  # the OPTIMIZE commits carry gold's state too
    assert_same_summary(summary, sample_run[1].summary)
    gold = [read_table(spark, w, "gold", "kpi_weekly") for w in (low, wh)]
    assert_same_rows(*gold)


def _copy_of(sample_run, folder: Path) -> Params:
    """A copy of the sample run's warehouse (a warehouse may be copied), for a test to change."""
    shutil.copytree(sample_run[0].warehouse, folder / "warehouse")
    return sample_run[0].with_warehouse(folder / "warehouse")


def test_the_same_content_under_another_name_is_logged_as_a_duplicate(spark, sample_run, tmp_path):
    wh, first = _copy_of(sample_run, tmp_path), sample_run[1]
    (landed,) = wh.landing_dir.glob("*.csv")
    copy = wh.landing_dir / "copied_by_hand__sample__.csv"
    shutil.copyfile(landed, copy)
    bronze_rows = read_table(spark, wh, "bronze", "e2e_raw").count()
    (entry,) = ingest_bronze(spark, wh)
    assert (entry["source_file"], entry["status"], entry["rows"]) == (str(copy), "duplicate", 0)
    assert entry["duplicate_of"] == first.ingested[0]["batch_id"]
    assert read_table(spark, wh, "bronze", "e2e_raw").count() == bronze_rows
    assert read_table(spark, wh, "bronze", "ingest_log").count() == 2


def _revise_ems_week(source, out, week="12/23/2024", extra=1000):
    """A second publication: the EMS rows of one week, with their counts revised, and one row
    republished unchanged."""
    rows = list(csv.reader(source.open(encoding="utf-8")))
    header, data = rows[0], rows[1:]
    week_rows = [r for r in data if len(r) == len(header) and r[0] == week and r[1] == "EMS"]
    revised = [[*r[:3], str(int(r[3]) + extra), *r[4:]] for r in week_rows[1:]]
    with out.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, lineterminator="\n").writerows([header, week_rows[0], *revised])
    return week_rows, revised


@pytest.fixture(scope="module")
def restated(spark, params, tmp_path_factory):
    """Two publications of one (synthetic) export, run one after the other: the sample, then its
    EMS rows of one week revised (gold recomputes by weeks). The warehouse is read only; a test
    that changes it copies it."""
    folder = tmp_path_factory.mktemp("restated")
    wh = by_weeks(params).with_warehouse(folder / "warehouse")
    source = write_sample(folder / "first.csv")
    first = run_once(spark, wh, source)
    week_rows, revised = _revise_ems_week(source, folder / "second.csv")
    second = run_once(spark, wh, folder / "second.csv", run_id="run-2")
    return wh, first, second, week_rows, revised


def test_a_restated_publication_is_merged_and_the_old_rows_are_superseded(spark, restated):
    wh, first, second, week_rows, revised = restated
    (batch,) = second.accounting
    rows = {k: v for k, v in batch.items() if k.startswith("rows_")}
    assert rows == {
        "rows_bronze": len(week_rows),
        "rows_silver": len(revised),
        "rows_unchanged": 1,
        "rows_superseded": 0,
        "rows_quarantined": 0,
        "rows_replaced": len(revised),
    }
    week = (F.col("week_start_date") == dt.date(2024, 12, 23)) & (F.col("agency") == "EMS")
    silver = read_table(spark, wh, "silver", "e2e_weekly").where(week).collect()
    new_batch = second.ingested[0]["batch_id"]
    assert sorted((r.incidents, r._batch_id) for r in silver) == sorted(
        [(int(week_rows[0][3]), first.ingested[0]["batch_id"])] + [(int(r[3]), new_batch) for r in revised]
    )
    old = read_table(spark, wh, "silver", "superseded").where(F.col("superseded_by_batch_id") == new_batch)
    assert sorted(r.incidents for r in old.collect()) == sorted(int(r[3]) for r in week_rows[1:])
    changes = storage.tables(spark).changes(str(wh.warehouse / "silver" / "e2e_weekly"), 1)
    assert sorted(r._change_type for r in changes.collect()) == sorted(
        ["update_preimage", "update_postimage"] * len(revised)
    )
    restated = (
        read_table(spark, wh, "gold", "restatements").where(F.col("new_batch_id") == new_batch).collect()
    )
    assert sorted((r.old_incidents, r.new_incidents) for r in restated) == sorted(
        (int(r[3]), int(r[3]) + 1000) for r in week_rows[1:]
    )


def test_a_warehouse_maintained_between_publications_gives_the_same_tables(spark, restated, tmp_path):
    """Retention maintenance (keep no old version at all) after each publication of `restated`:
    every table ends equal to the unmaintained warehouse's, the run still finds nothing to do,
    and the old files and versions are gone (a maintained table's version stays its data's)."""
    wh = replace(
        restated[0].with_warehouse(tmp_path / "warehouse"),
        retention=RetentionSettings(keep_days=0, vacuum_every_days=7),
    )
    folder = restated[0].warehouse.parent
    first = run_once(spark, wh, folder / "first.csv")
    started = max(at for _, at in commit_times(storage.table_name(wh, "bronze", "e2e_raw")))
    assert maintain_warehouse(wh, now=started + dt.timedelta(days=6)) == []  # not due yet
    versions = table_versions(spark, wh)
    assert {t.files_removed for t in maintain_warehouse(wh, now=started + dt.timedelta(days=7))} == {0}
    assert table_versions(spark, wh) == versions
    assert delta_log(wh, "gold", "kpi_weekly").version() > versions["gold.kpi_weekly"]  # commits were added
    assert nothing_to_do(wh)
    run_once(spark, wh, folder / "second.csv", run_id="run-2")
    # Keeping no version expired the batch list gold was built with: gold was rebuilt whole.
    assert last_commit_metadata(spark, wh, "gold", "kpi_summary")["build"] == "whole"
    assert maintain_warehouse(wh, now=started + dt.timedelta(days=13)) == []  # 6 days after the last
    done = maintain_warehouse(wh, now=started + dt.timedelta(days=14))
    removed = {t.table: t.files_removed for t in done}
    assert len(removed) == sum(len(t) for t in wh.tables.values())
    assert removed["silver.e2e_weekly"] > 0 and removed["gold.kpi_weekly"] > 0
    assert removed["bronze.e2e_raw"] == 0  # appended to, never rewritten
    assert nothing_to_do(wh)
    for layer in ("bronze", "silver", "gold"):
        for key in wh.tables[layer]:
            assert_same_rows(
                delta_frame(wh, layer, key, drop=RUN_SPECIFIC),
                delta_frame(restated[0], layer, key, drop=RUN_SPECIFIC),
                label=f"{layer}.{key}",
            )
    assert first.accounting[0]["rows_bronze"] == restated[1].accounting[0]["rows_bronze"]
    with pytest.raises(TableNotFoundError, match="No files in log segment"):  # version 0 is gone
        read_arrow(storage.table_name(wh, "gold", "kpi_weekly"), version=0)


def test_gold_finds_the_weeks_a_new_publication_changed_in_silver(spark, restated, tmp_path):
    """After silver applied a publication revising one week, the weeks gold recomputes are that
    week's (the weeks of silver's rows carrying a batch gold was not built with); with nothing
    new, none; and None (rebuild whole) when silver or the rules are not what gold recorded."""
    shutil.copytree(restated[0].warehouse, tmp_path / "warehouse")
    wh = restated[0].with_warehouse(tmp_path / "warehouse")
    built = last_commit_metadata(spark, wh, "gold", "kpi_summary")
    assert built["build"] == "weeks"  # the second publication's
    assert changed_weeks(spark, wh, built) == ()
    _revise_ems_week(restated[0].warehouse.parent / "first.csv", tmp_path / "third.csv", week="06/03/2024")
    land_source(wh, tmp_path / "third.csv")
    ingest_bronze(spark, wh)
    build_silver(spark, wh, "run-3")
    assert changed_weeks(spark, wh, built) == spans_of([dt.date(2024, 6, 3)])
    other_silver = {**built, SILVER_IDS: {**built[SILVER_IDS], "e2e_weekly": "another-table"}}
    assert changed_weeks(spark, wh, other_silver) is None
    assert changed_weeks(spark, wh, {**built, "sla_rules": []}) is None


@pytest.mark.parametrize(
    ("of_silver", "pays_off"), [(0.0, True), (0.5, True), (1.0, True), (2.0, False), (None, False)]
)
def test_gold_recomputes_by_weeks_from_a_silver_of_the_minimum_size(spark, restated, of_silver, pays_off):
    """`weeks_pay_off` with performance.weeks_gold_min_mb at a multiple of silver's size (None: the
    default 8 MB, over the sample's silver): 0 means always."""
    wh = restated[0]
    size_mb = storage.table_size_bytes(spark, wh, "silver", "e2e_weekly") / 2**20
    assert 0 < size_mb < PerformanceSettings().weeks_gold_min_mb
    default = PerformanceSettings()
    settings = default if of_silver is None else replace(default, weeks_gold_min_mb=size_mb * of_silver)
    assert weeks_pay_off(spark, replace(wh, performance=settings)) is pays_off


def test_full_refresh_equals_the_incremental_result(spark, restated, tmp_path):
    shutil.copytree(restated[0].warehouse, tmp_path / "warehouse")
    wh, week_rows = restated[0].with_warehouse(tmp_path / "warehouse"), restated[3]
    # Every silver and gold table, the run logs too: the accounting counts as if the publications
    # were applied one at a time, however they are batched. Only the run's id and time differ.
    per_run = ("run_id", "evaluated_at")

    def rows(layer: str, key: str):
        table = read_table(spark, wh, layer, key)
        return table.drop(*[c for c in per_run if c in table.columns])

    tables = [("silver", k) for k in wh.tables["silver"]] + [("gold", k) for k in wh.tables["gold"]]
    incremental = {(layer, key): engine.to_pandas(rows(layer, key)) for layer, key in tables}
    refreshed = run_layers(spark, wh, "run-refresh", full_refresh=True)
    assert [a["rows_bronze"] for a in refreshed.accounting] == [sample_row_count(), len(week_rows)]
    for (layer, key), before in incremental.items():
        assert_same_rows(rows(layer, key), before)


def test_a_date_range_recomputes_only_those_weeks_of_gold(spark, sample_run, tmp_path):
    wh = _copy_of(sample_run, tmp_path)
    before = engine.materialize(read_table(spark, wh, "gold", "kpi_weekly"))
    total_before = before.agg(F.sum("incidents")).first()[0]
    (rule,) = wh.sla_rules
    stricter = replace(wh, sla_rules=(replace(rule, threshold_s=1.0),))  # the SLA threshold changed
    summary = build_gold(spark, stricter, dt.date(2024, 1, 1), dt.date(2024, 3, 31))
    after = read_table(spark, wh, "gold", "kpi_weekly")
    in_range = F.col("week_start_date").between(dt.date(2024, 1, 1), dt.date(2024, 3, 31))
    assert after.count() == before.count()
    recomputed = after.where(in_range).select(
        F.col(rule.flag_column).eqNullSafe(F.col(rule.metric) > 1.0).alias("ok")
    )
    assert recomputed.count() > 0
    assert {r.ok for r in recomputed.collect()} == {True}
    assert_same_rows(after.where(~in_range), before.where(~in_range))
    assert (
        after.where(in_range).where(F.col("sla_breached")).count()
        > before.where(in_range).where(F.col("sla_breached")).count()
    )
    monthly = read_table(spark, wh, "gold", "kpi_monthly_agency")
    assert monthly.agg(F.sum("incidents")).first()[0] == summary["total_incidents"] == total_before
    assert (summary["first_week"], summary["last_week"]) == (dt.date(2023, 1, 2), dt.date(2024, 12, 23))


def test_a_fail_rule_stops_silver_before_anything_is_written(spark, params, tmp_path):
    wh = params.with_warehouse(tmp_path / "warehouse")
    strict = replace(
        wh, quality_rules=(*wh.quality_rules, QualityRule("no_fdny", "agency <> 'FDNY'", "fail"))
    )
    land_source(wh, None)
    ingest_bronze(spark, wh)
    with pytest.raises(QualityRuleError) as err:
        run_layers(spark, strict, "run-3")
    fdny_rows = read_table(spark, wh, "bronze", "e2e_raw").where(F.col("agency") == "FDNY").count()
    assert str(err.value) == (
        f"quality rules with action 'fail' were violated, nothing was written: no_fdny ({fdny_rows} rows)"
    )
    for table in ("e2e_weekly", "dq_metrics", "quarantine", "superseded", "batch_accounting"):
        assert not table_exists(spark, wh, "silver", table), table
    outcome = run_layers(spark, wh, "run-4")  # the rule relaxed: the same bronze rows go through
    assert outcome.accounting[0]["rows_silver"] == SILVER_ROWS


def test_missing_required_columns_stop_the_run_before_anything_is_landed(spark, params, tmp_path):
    wh = params.with_warehouse(tmp_path / "warehouse")
    source = tmp_path / "no_agency.csv"
    source.write_text("Week Start Date,Final Incident Type\n11/18/2013,Dispute\n", encoding="utf-8")
    with pytest.raises(MissingColumnsError) as err:
        land_source(wh, source)
    assert "agency" in err.value.missing
    assert str(err.value).startswith(
        f"{source}: missing required columns ['agency', 'of_incidents_calculated'"
    )
    assert not (tmp_path / "warehouse").exists()


def test_a_bad_file_dropped_in_the_landing_folder_stops_bronze_with_its_name(spark, params, tmp_path):
    wh = params.with_warehouse(tmp_path / "warehouse")
    wh.landing_dir.mkdir(parents=True)
    bad = wh.landing_dir / "by_hand.csv"
    bad.write_text("Week Start Date,Agency\n11/18/2013,EMS\n", encoding="utf-8")
    with pytest.raises(MissingColumnsError) as err:
        ingest_bronze(spark, wh)
    assert str(err.value).startswith(f"{bad}: missing required columns ['final_incident_type'")
    assert not table_exists(spark, wh, "bronze", "e2e_raw")
    assert not table_exists(spark, wh, "bronze", "ingest_log")


@pytest.mark.parametrize(
    ("value", "flag"), [(None, False), (True, True), ("true", True), ("False", False), ("", False)]
)
def test_parse_flag(value, flag):
    assert parse_flag(value, "full_refresh") == flag


def test_parse_flag_names_a_bad_value():
    with pytest.raises(ParamsError, match=r"^full_refresh must be true or false, got 'maybe'$"):
        parse_flag("maybe", "full_refresh")
