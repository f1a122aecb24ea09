"""End to end on the built-in sample, through the same layer functions the notebooks call."""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import replace

import pyspark.sql.functions as F
import pytest

from nyc911lib import (
    MissingColumnsError,
    QualityRule,
    QualityRuleError,
    build_gold,
    build_silver,
    ingest_bronze,
    read_table,
    resolve_source,
)
from nyc911lib.sample import SAMPLE_DEFECTS, sample_row_count
from nyc911lib.storage import table_exists, table_name

pytestmark = pytest.mark.e2e

QUARANTINED = (
    SAMPLE_DEFECTS["negative_pickup"]
    + SAMPLE_DEFECTS["huge_pickup"]
    + SAMPLE_DEFECTS["unparsable_number"]
    + SAMPLE_DEFECTS["malformed_line"]
)


def _version(spark, params, layer, key):
    path = table_name(params, layer, key)
    return spark.sql(f"DESCRIBE HISTORY delta.`{path}`").agg(F.max("version")).first()[0]


@pytest.fixture(scope="module")
def sample_run(spark, params, tmp_path_factory):
    """One full run on the sample: bronze, silver, gold."""
    wh = params.with_warehouse(tmp_path_factory.mktemp("sample") / "warehouse")
    source, kind = resolve_source(wh, None)
    bronze = ingest_bronze(spark, wh, source, kind)
    accounting = build_silver(spark, wh, "run-1")
    summary = build_gold(spark, wh)
    return wh, source, bronze, accounting, summary


def test_every_table_is_a_real_delta_table(spark, sample_run):
    wh = sample_run[0]
    for layer, tables in wh.tables.items():
        for key in tables:
            assert table_exists(spark, wh, layer, key), f"{layer}.{key} missing"
            assert (wh.warehouse / layer / tables[key] / "_delta_log").is_dir()


def test_every_bronze_row_ends_in_exactly_one_place(spark, sample_run):
    wh, _, bronze, accounting, _ = sample_run
    counts = {
        name: read_table(spark, wh, layer, key).where(F.col("_batch_id") == bronze.batch_id).count()
        for name, layer, key in [
            ("bronze", "bronze", "e2e_raw"),
            ("silver", "silver", "e2e_weekly"),
            ("quarantine", "silver", "quarantine"),
            ("superseded", "silver", "superseded"),
        ]
    }
    assert counts["bronze"] == sample_row_count()
    assert counts == {
        "bronze": sample_row_count(),
        "silver": sample_row_count() - QUARANTINED - SAMPLE_DEFECTS["duplicate_key"],
        "quarantine": QUARANTINED,
        "superseded": SAMPLE_DEFECTS["duplicate_key"],
    }
    (batch,) = accounting
    assert (
        batch["rows_bronze"],
        batch["rows_silver"],
        batch["rows_quarantined"],
        batch["rows_superseded"],
    ) == (counts["bronze"], counts["silver"], counts["quarantine"], counts["superseded"])


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
    assert metrics.count() == len(wh.quality_rules)
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


def test_gold_totals_reconcile_with_silver(spark, sample_run):
    wh, _, _, _, summary = sample_run
    silver_total = read_table(spark, wh, "silver", "e2e_weekly").agg(F.sum("incidents")).first()[0]
    weekly_total = read_table(spark, wh, "gold", "kpi_weekly").agg(F.sum("incidents")).first()[0]
    monthly_total = read_table(spark, wh, "gold", "kpi_monthly_agency").agg(F.sum("incidents")).first()[0]
    assert summary["total_incidents"] == weekly_total == monthly_total == silver_total
    assert summary["source_kinds"] == "sample"
    assert (summary["first_week"], summary["last_week"]) == (dt.date(2023, 1, 2), dt.date(2024, 12, 23))


def test_same_file_again_appends_nothing(spark, sample_run):
    wh, source, first, _, _ = sample_run
    before = _version(spark, wh, "bronze", "e2e_raw")
    again = ingest_bronze(spark, wh, source, "sample")
    assert again.already_ingested
    assert again.batch_id == first.batch_id
    assert _version(spark, wh, "bronze", "e2e_raw") == before


def test_a_restated_publication_wins_and_the_old_rows_are_superseded(spark, params, tmp_path):
    wh = params.with_warehouse(tmp_path / "warehouse")
    first, _ = resolve_source(wh, None)
    rows = list(csv.reader(first.open(encoding="utf-8")))
    header, data = rows[0], rows[1:]
    revised = [r for r in data if len(r) == len(header) and r[0] == "12/23/2024" and r[1] == "EMS"]
    for r in revised:
        r[3] = str(int(r[3]) + 1000)
    second = tmp_path / "second.csv"
    with second.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, lineterminator="\n").writerows([header, *revised])
    b1 = ingest_bronze(spark, wh, first, "sample")
    b2 = ingest_bronze(spark, wh, second, "file")
    accounting = {a["batch_id"]: a for a in build_silver(spark, wh, "run-2")}
    assert accounting[b2.batch_id]["rows_silver"] == len(revised)
    assert accounting[b1.batch_id]["rows_superseded"] == SAMPLE_DEFECTS["duplicate_key"] + len(revised)
    silver = read_table(spark, wh, "silver", "e2e_weekly").where(
        (F.col("week_start_date") == dt.date(2024, 12, 23)) & (F.col("agency") == "EMS")
    )
    assert {r._batch_id for r in silver.collect()} == {b2.batch_id}
    assert sorted(r.incidents for r in silver.collect()) == sorted(int(r[3]) for r in revised)


def test_a_fail_rule_stops_silver_before_anything_is_written(spark, params, tmp_path):
    wh = params.with_warehouse(tmp_path / "warehouse")
    strict = replace(
        wh, quality_rules=(*wh.quality_rules, QualityRule("no_fdny", "agency <> 'FDNY'", "fail"))
    )
    source, kind = resolve_source(wh, None)
    ingest_bronze(spark, wh, source, kind)
    with pytest.raises(QualityRuleError) as err:
        build_silver(spark, strict, "run-3")
    fdny_rows = read_table(spark, wh, "bronze", "e2e_raw").where(F.col("agency") == "FDNY").count()
    assert str(err.value) == (
        f"quality rules with action 'fail' were violated, nothing was written: no_fdny ({fdny_rows} rows)"
    )
    assert not table_exists(spark, wh, "silver", "e2e_weekly")
    assert not table_exists(spark, wh, "silver", "dq_metrics")


def test_missing_required_columns_stop_bronze_before_anything_is_written(spark, params, tmp_path):
    wh = params.with_warehouse(tmp_path / "warehouse")
    source = tmp_path / "no_agency.csv"
    source.write_text("Week Start Date,Final Incident Type\n11/18/2013,Dispute\n", encoding="utf-8")
    with pytest.raises(MissingColumnsError) as err:
        ingest_bronze(spark, wh, source)
    assert "agency" in err.value.missing
    assert str(err.value).startswith(
        f"{source}: missing required columns ['agency', 'of_incidents_calculated'"
    )
    assert not (tmp_path / "warehouse").exists()


def test_gold_for_a_date_range_only(spark, params, tmp_path):
    wh = params.with_warehouse(tmp_path / "warehouse")
    source, kind = resolve_source(wh, None)
    ingest_bronze(spark, wh, source, kind)
    build_silver(spark, wh, "run-4")
    summary = build_gold(spark, wh, dt.date(2024, 1, 1), dt.date(2024, 3, 31))
    assert (summary["first_week"], summary["last_week"]) == (dt.date(2024, 1, 1), dt.date(2024, 3, 25))
    assert (summary["scope_from"], summary["scope_to"]) == (dt.date(2024, 1, 1), dt.date(2024, 3, 31))
    months = read_table(spark, wh, "gold", "kpi_monthly_agency").select("month").distinct().collect()
    assert sorted(m.month for m in months) == [dt.date(2024, 1, 1), dt.date(2024, 2, 1), dt.date(2024, 3, 1)]
