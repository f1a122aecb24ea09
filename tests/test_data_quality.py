"""The gold data-quality tables built from the bronze and silver run logs."""

from __future__ import annotations

import datetime as dt

from nyc911lib.run.registry import INGEST_LOG_FILES
from nyc911lib.transforms.data_quality import data_quality_batches, data_quality_rules

T0 = dt.datetime(2026, 1, 5, 10, 0)
ACCOUNTING_SCHEMA = (
    "run_id STRING, evaluated_at TIMESTAMP, batch_id STRING, rows_bronze BIGINT, rows_silver BIGINT, "
    "rows_unchanged BIGINT, rows_superseded BIGINT, rows_quarantined BIGINT, rows_replaced BIGINT"
)
METRICS_SCHEMA = (
    "run_id STRING, evaluated_at TIMESTAMP, batch_id STRING, rule STRING, action STRING, "
    "condition STRING, rows_evaluated BIGINT, rows_passed BIGINT, rows_failed BIGINT"
)


def test_data_quality_batches_accounts_every_file(spark):
    log = spark.createDataFrame(
        [
            ("b1", "/l/a.csv", "file", "s1", 10, "ingested", None, T0, 100),
            ("b2", "/l/b.csv", "file", "s1", 10, "duplicate", "b1", T0, 0),
            ("b3", "/l/c.csv", "live", "s3", 10, "ingested", None, T0, 50),
        ],
        INGEST_LOG_FILES + ", rows BIGINT",
    )
    accounting = spark.createDataFrame(
        [
            ("r1", T0, "b1", 100, 97, 0, 0, 3, 0),
            # b3 logged twice (a replay after a crash): the later entry is kept, counts equal
            ("r2", T0, "b3", 49, 40, 5, 1, 3, 2),
            ("r3", T0 + dt.timedelta(hours=1), "b3", 50, 40, 6, 1, 3, 2),
        ],
        ACCOUNTING_SCHEMA,
    )
    rows = {r.batch_id: r for r in data_quality_batches(log, accounting).collect()}
    assert len(rows) == 3
    assert (rows["b1"].rows_landed, rows["b1"].rows_silver, rows["b1"].rows_quarantined) == (100, 97, 3)
    assert rows["b1"].rows_accounted is True
    assert (rows["b2"].status, rows["b2"].duplicate_of, rows["b2"].rows_bronze) == ("duplicate", "b1", None)
    assert rows["b2"].rows_accounted is True
    assert (rows["b3"].rows_bronze, rows["b3"].rows_unchanged, rows["b3"].rows_accounted) == (50, 6, True)


def test_data_quality_batches_flags_unaccounted_rows(spark):
    entry = ("b1", "/l/a.csv", "file", "s1", 10, "ingested", None, T0, 100)
    log = spark.createDataFrame([entry], INGEST_LOG_FILES + ", rows BIGINT")
    accounting = spark.createDataFrame([("r1", T0, "b1", 99, 96, 0, 0, 3, 0)], ACCOUNTING_SCHEMA)
    (row,) = data_quality_batches(log, accounting).collect()
    assert row.rows_accounted is False


def test_data_quality_rules_keeps_latest_entry_per_batch_and_rule(spark):
    metrics = spark.createDataFrame(
        [
            ("r1", T0, "b1", "agency_known", "drop", "agency IS NOT NULL", 100, 98, 2),
            ("r2", T0 + dt.timedelta(hours=1), "b1", "agency_known", "drop", "agency", 100, 97, 3),
            ("r1", T0, "b1", "other_times_non_negative", "warn", "c", 100, 99, 1),
        ],
        METRICS_SCHEMA,
    )
    got = sorted((r.batch_id, r.rule, r.action, r.rows_failed) for r in data_quality_rules(metrics).collect())
    assert got == [("b1", "agency_known", "drop", 3), ("b1", "other_times_non_negative", "warn", 1)]
