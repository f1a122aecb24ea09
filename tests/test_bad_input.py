"""Bad input, tried at scale: a generated export with hundreds of malformed lines of every kind
goes through a whole run; every line is accounted for and each kind is counted in the metrics.
An HTML error page saved as .csv is refused before anything is landed."""

from __future__ import annotations

import datetime as dt
import random

import pyspark.sql.functions as F
import pytest
from conftest import run_once

from nyc911lib import SourceError, land_source, read_table
from nyc911lib.schema import SOURCE_COLUMNS

pytestmark = pytest.mark.e2e

REQUIRED = [c for c in SOURCE_COLUMNS if c.required]
HEADER = [c.header for c in REQUIRED] + ["Rescued Column"]  # a column the pipeline does not know
PER_KIND = 60  # malformed lines of each kind
AGENCIES = ("EMS", "FDNY", "NYPD", "NYPD (Non-CIP)")


def _valid_fields(week: dt.date, agency: str, n: int) -> dict[str, str]:
    values = {c.header: "12.5" for c in REQUIRED}
    values.update(
        {
            "Week Start Date": f"{week:%m/%d/%Y}",
            "Agency": agency,
            "Final Incident Type": f"2. Type {n % 7}",
            "# of Incidents Calculated": str(100 + n),
            "Call to First Pickup": "4.25",
            "Rescued Column": f"extra {n}",
        }
    )
    return values


def _line(values: dict[str, str]) -> bytes:
    return (",".join(f'"{values[h]}"' if "," in values[h] else values[h] for h in HEADER) + "\n").encode()


def _generate(path) -> dict[str, int]:
    """Write the hostile export; return how many lines of each kind it holds."""
    rng = random.Random(7)
    keys = iter(
        (dt.date(2015, 1, 5) + dt.timedelta(weeks=w), a, n)
        for w in range(400)
        for n, a in enumerate(AGENCIES)
    )
    kinds: dict[str, list[bytes]] = {"valid": []}

    def good(**override: str) -> dict[str, str]:
        week, agency, n = next(keys)
        return {**_valid_fields(week, agency, n), **override}

    kinds["valid"] = [_line(good()) for _ in range(400)]
    kinds["bad_quoting"] = [_line(good()).replace(b",", b',"', 1) for _ in range(PER_KIND)]
    kinds["too_few_fields"] = [b",".join(_line(good()).split(b",")[:4]) + b"\n" for _ in range(PER_KIND)]
    kinds["too_many_fields"] = [_line(good()).rstrip(b"\n") + b",x,y\n" for _ in range(PER_KIND)]
    kinds["non_utf8"] = [
        _line(good(Agency="EMS")).replace(b"EMS", b"EMS\xff\xfe", 1) for _ in range(PER_KIND)
    ]
    kinds["impossible_date"] = [_line(good(**{"Week Start Date": "13/45/2020"})) for _ in range(PER_KIND)]
    kinds["grouped_number"] = [_line(good(**{"# of Incidents Calculated": "1,2,3"})) for _ in range(PER_KIND)]
    kinds["nan_or_inf"] = [
        _line(good(**{"Call to First Pickup": rng.choice(["NaN", "-inf", "Infinity"])}))
        for _ in range(PER_KIND)
    ]
    kinds["huge_value"] = [
        _line(good(**{"# of Incidents Calculated": "99999999999999999999999"})) for _ in range(PER_KIND)
    ]
    kinds["blank"] = [b"\n" for _ in range(PER_KIND)]
    lines = [line for block in kinds.values() for line in block]
    rng.shuffle(lines)
    path.write_bytes(_line({h: h for h in HEADER}) + b"".join(lines))
    return {kind: len(block) for kind, block in kinds.items()}


@pytest.fixture(scope="module")
def hostile_run(spark, params, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    counts = _generate(tmp / "hostile.csv")
    wh = params.with_warehouse(tmp / "warehouse")
    outcome = run_once(spark, wh, tmp / "hostile.csv", run_id="hostile")
    return wh, counts, outcome


def test_every_line_is_accounted_for(spark, hostile_run):
    wh, counts, outcome = hostile_run
    lines = sum(counts.values())
    (batch,) = outcome.accounting
    assert read_table(spark, wh, "bronze", "e2e_raw").count() == lines
    assert batch["rows_bronze"] == lines
    assert batch["rows_silver"] == read_table(spark, wh, "silver", "e2e_weekly").count()
    assert batch["rows_quarantined"] == read_table(spark, wh, "silver", "quarantine").count()
    assert (
        batch["rows_silver"] + batch["rows_quarantined"] + batch["rows_superseded"] + batch["rows_unchanged"]
        == lines
    )
    assert batch["rows_silver"] == counts["valid"]  # only the valid lines reach silver
    # the valid lines took the first keys: agency index n = i % 4, incidents 100 + n
    assert outcome.summary["total_incidents"] == sum(100 + i % 4 for i in range(counts["valid"]))


def _failed(spark, wh, rule: str) -> int:
    metric = read_table(spark, wh, "silver", "dq_metrics").where(F.col("rule") == rule).first()
    return metric.rows_failed


def test_each_kind_is_counted_in_the_quality_metrics(spark, hostile_run):
    wh, counts, _ = hostile_run
    malformed = counts["bad_quoting"] + counts["too_few_fields"] + counts["too_many_fields"] + counts["blank"]
    assert _failed(spark, wh, "row_well_formed") == malformed
    quarantine = read_table(spark, wh, "silver", "quarantine").where(F.col("_corrupt_record").isNull())

    def reasons_of(condition) -> list[tuple[str, ...]]:
        return sorted({tuple(r.quarantine_reasons) for r in quarantine.where(condition).collect()})

    assert quarantine.where(F.col("agency").contains("\ufffd")).count() == counts["non_utf8"]
    assert reasons_of(F.col("agency").contains("\ufffd")) == [("agency_known",)]
    assert reasons_of(F.col("week_start_date") == "13/45/2020") == [("week_start_date_is_monday",)]
    assert reasons_of(F.col("of_incidents_calculated") == "1,2,3") == [
        ("incidents_positive_integer", "numeric_fields_parse")
    ]
    assert reasons_of(F.col("call_to_first_pickup").isin("NaN", "-inf", "Infinity")) == [
        ("numeric_fields_parse", "call_to_first_pickup_within_0_120s")
    ]
    well_formed_bad = {
        "agency_known": counts["non_utf8"],
        "week_start_date_is_monday": counts["impossible_date"],
        "incidents_positive_integer": counts["grouped_number"] + counts["huge_value"],
        "numeric_fields_parse": counts["grouped_number"] + counts["huge_value"] + counts["nan_or_inf"],
        "call_to_first_pickup_within_0_120s": counts["nan_or_inf"],
    }
    corrupt = read_table(spark, wh, "silver", "quarantine").where(F.col("_corrupt_record").isNotNull())
    for rule, n in well_formed_bad.items():
        also_malformed = corrupt.where(F.array_contains("quarantine_reasons", rule)).count()
        assert _failed(spark, wh, rule) == n + also_malformed, rule


def test_the_unknown_column_is_kept_in_bronze_and_reported_as_drift(spark, hostile_run):
    wh, counts, _ = hostile_run
    bronze = read_table(spark, wh, "bronze", "e2e_raw")
    assert bronze.where(F.col("rescued_column").startswith("extra ")).count() >= counts["valid"]
    drift = (
        read_table(spark, wh, "silver", "dq_metrics").where(F.col("rule") == "source_schema_drift").collect()
    )
    (metric,) = drift
    assert (metric.action, metric.condition) == (
        "warn",
        "new source column 'rescued_column' (kept in bronze)",
    )
    assert metric.rows_failed == bronze.where(F.col("rescued_column").isNotNull()).count()


def test_an_html_error_page_saved_as_csv_is_refused_before_landing(params, tmp_path):
    wh = params.with_warehouse(tmp_path / "warehouse")
    page = tmp_path / "export.csv"
    page.write_text("<!DOCTYPE html>\n<html><body><h1>503 Service Unavailable</h1></body></html>\n")
    with pytest.raises(SourceError) as err:
        land_source(wh, page)
    assert str(err.value) == f"source file {page} is an HTML/XML page, not a CSV export"
    assert not wh.landing_dir.exists()
