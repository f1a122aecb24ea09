"""Quality rules: every default rule, quarantine reasons, metrics, actions."""

from __future__ import annotations

import pyspark.sql.functions as F
import pytest

from nyc911lib import QualityRule, quarantine_rows, rule_metrics, typed_e2e, with_quality_results
from nyc911lib.quality import schema_drift_metrics
from nyc911lib.schema import BRONZE_SOURCE_NAMES

BAD_VALUES = {
    "row_well_formed": {"_corrupt_record": "11/18/2013,EMS"},
    "week_start_date_is_monday": {"week_start_date": "11/19/2013"},
    "agency_known": {"agency": "Sanitation"},
    "incidents_positive_integer": {"of_incidents_calculated": "0"},
    "numeric_fields_parse": {"median_travel": "n/a"},
    "call_to_first_pickup_within_0_120s": {"call_to_first_pickup": "-46.68"},
    "other_times_non_negative": {"call_to_agency_dispatch": "-1"},
}


def _evaluate(bronze, params, rules=None):
    return bronze.transform(
        typed_e2e(params.agency_codes, params.incident_type_fixes, params.unspecified_incident_type)
    ).transform(with_quality_results(rules or params.quality_rules))


@pytest.mark.parametrize("rule", sorted(BAD_VALUES))
def test_each_default_rule_catches_its_defect_and_only_it(params, make_bronze, rule):
    action = {r.name: r.action for r in params.quality_rules}[rule]
    good, bad = _evaluate(make_bronze({}, BAD_VALUES[rule]), params).orderBy("_line_number").collect()
    assert good.failed_rules == []
    assert bad.failed_rules == [rule]
    assert bad.quarantine_reasons == ([rule] if action == "drop" else [])
    assert bad.quality_warnings == ([rule] if action == "warn" else [])


@pytest.mark.parametrize(
    ("pickup", "passes"), [("0", True), ("120", True), ("120.01", False), ("-0.16", False), ("", False)]
)
def test_pickup_rule_bounds_and_missing_value(params, make_bronze, pickup, passes):
    row = _evaluate(make_bronze({"call_to_first_pickup": pickup}), params).first()
    assert ("call_to_first_pickup_within_0_120s" not in row.quarantine_reasons) is passes


def test_quarantine_lists_every_failed_rule_and_keeps_source_text(params, make_bronze):
    evaluated = _evaluate(
        make_bronze(
            {"agency": "Sanitation", "week_start_date": "13/45/2020", "call_to_agency_arrival": "-3"}
        ),
        params,
    )
    (row,) = quarantine_rows(evaluated).collect()
    assert row.quarantine_reasons == ["week_start_date_is_monday", "agency_known"]
    assert row.quality_warnings == ["other_times_non_negative"]
    assert (row.week_start_date, row.agency, row.call_to_agency_arrival) == ("13/45/2020", "Sanitation", "-3")
    assert row._line_number == 2


def test_rule_metrics_count_per_batch_and_rule(params, make_bronze):
    bronze = make_bronze(
        {"_batch_id": "b1"},
        {"_batch_id": "b1", "agency": "?"},
        {"_batch_id": "b2", "agency": "?", "call_to_first_pickup": "500"},
    )
    metrics = _evaluate(bronze, params).transform(rule_metrics(params.quality_rules))
    got = {(r.batch_id, r.rule): (r.rows_evaluated, r.rows_passed, r.rows_failed) for r in metrics.collect()}
    assert got[("b1", "agency_known")] == (2, 1, 1)
    assert got[("b2", "agency_known")] == (1, 0, 1)
    assert got[("b2", "call_to_first_pickup_within_0_120s")] == (1, 0, 1)
    assert got[("b1", "row_well_formed")] == (2, 2, 0)
    assert len(got) == 2 * len(params.quality_rules)


def test_fail_action_is_reported_separately(params, make_bronze):
    rules = (QualityRule("no_ems", "agency <> 'EMS'", "fail"),)
    row = _evaluate(make_bronze({}), params, rules).first()
    assert row.failed_fail_rules == ["no_ems"]
    assert row.quarantine_reasons == []


def test_schema_drift_counts_the_values_of_unknown_columns_per_batch(make_bronze):
    bronze = make_bronze({"_batch_id": "b1"}, {"_batch_id": "b1"}, {"_batch_id": "b2"})
    bronze = bronze.withColumn("new_col", F.when(F.col("_line_number") == 2, "x"))
    rows = bronze.transform(schema_drift_metrics(BRONZE_SOURCE_NAMES)).collect()
    assert [(r.batch_id, r.rule, r.action, r.rows_evaluated, r.rows_failed) for r in rows] == [
        ("b1", "source_schema_drift", "warn", 2, 1)
    ]
    assert rows[0].condition == "new source column 'new_col' (kept in bronze)"
    assert make_bronze({}).transform(schema_drift_metrics(BRONZE_SOURCE_NAMES)).count() == 0
