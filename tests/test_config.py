"""Params loading: defaults, overrides and the exact errors for broken files."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from nyc911lib import ParamsError, load_params
from nyc911lib.config import (
    DEFAULT_PARAMS,
    PerformanceSettings,
    ResponseTimeSettings,
    RetentionSettings,
    parse_quality_rules,
    parse_sla_rules,
)

REPO = Path(__file__).resolve().parents[1]


def test_default_params_resolve_paths_and_rules():
    params = load_params()
    assert params.environment == "local"
    assert params.warehouse == REPO / "warehouse"
    assert params.reports_dir == REPO / "reports"
    assert params.tables["gold"]["kpi_weekly"] == "kpi_weekly"
    assert [r.name for r in params.sla_rules] == ["pickup_over_5s"]
    assert params.sla_rules[0].metric == "avg_call_to_first_pickup_s"
    assert params.sla_rules[0].threshold_s == 5.0
    assert {r.action for r in params.quality_rules} == {"warn", "drop"}
    assert params.agency_codes["NYPD (Non-CIP)"] == "NYPD_NON_CIP"


def test_environment_variables_override_warehouse_reports_and_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("NYC911_WAREHOUSE", str(tmp_path / "wh"))
    monkeypatch.setenv("NYC911_REPORTS_DIR", str(tmp_path / "rep"))
    monkeypatch.setenv("NYC911_ENVIRONMENT", "databricks")
    params = load_params()
    assert params.warehouse == tmp_path / "wh"
    assert params.reports_dir == tmp_path / "rep"
    assert params.catalog == "nyc911"
    assert params.schemas == {"bronze": "bronze", "silver": "silver", "gold": "gold"}


def test_missing_params_file_is_named(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ParamsError) as err:
        load_params(missing)
    assert str(err.value) == f"params file not found: {missing}"


def test_unknown_environment_is_named(tmp_path):
    text = DEFAULT_PARAMS.read_text().replace("environment: local", "environment: staging")
    path = tmp_path / "p.yaml"
    path.write_text(text)
    (tmp_path / "sla_rules.yaml").write_text("sla_rules: []\n")
    (tmp_path / "quality_rules.yaml").write_text("quality_rules: []\n")
    with pytest.raises(ParamsError) as err:
        load_params(path)
    assert str(err.value) == f"{path}: environment 'staging' is not in ['databricks', 'local']"


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (
            [{"name": "r", "condition": "x > 0", "action": "explode"}],
            "q.yaml: quality rule 'r' has action 'explode'; expected one of ['warn', 'drop', 'fail']",
        ),
        (
            [{"name": "r", "action": "warn"}],
            "q.yaml: every quality rule needs a name and a condition: {'name': 'r', 'action': 'warn'}",
        ),
        (
            [
                {"name": "r", "condition": "a", "action": "warn"},
                {"name": "r", "condition": "b", "action": "drop"},
            ],
            "q.yaml: quality rule names must be unique: ['r', 'r']",
        ),
    ],
)
def test_bad_quality_rules_are_refused(entries, message):
    with pytest.raises(ParamsError) as err:
        parse_quality_rules(entries, Path("q.yaml"))
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (
            [{"name": "slow pickup", "metric": "m", "threshold_s": 5}],
            "s.yaml: SLA rule name must be a snake_case",
        ),
        (
            [{"name": "slow", "metric": "m", "threshold_s": "5s"}],
            "s.yaml: SLA rule 'slow' needs a metric and",
        ),
    ],
)
def test_bad_sla_rules_are_refused(entries, message):
    with pytest.raises(ParamsError, match=f"^{message}"):
        parse_sla_rules(entries, Path("s.yaml"))


def test_sla_rule_scope_and_flag_column():
    (rule,) = parse_sla_rules(
        [{"name": "ems_travel", "metric": "avg_travel_s", "threshold_s": 600, "agencies": ["EMS"]}],
        Path("s.yaml"),
    )
    assert rule.agencies == ("EMS",)
    assert rule.flag_column == "sla_breach_ems_travel"


def _params_with_section(tmp_path: Path, block: str) -> Path:
    """The default params with the section `block` starts (up to its blank line) replaced by it."""
    section = block.split(":", 1)[0]
    text = DEFAULT_PARAMS.read_text()
    start = text.index(f"\n{section}:\n") + 1
    end = text.index("\n\n", start)
    path = tmp_path / "p.yaml"
    path.write_text(text[:start] + block + text[end:])
    (tmp_path / "sla_rules.yaml").write_text((REPO / "params" / "sla_rules.yaml").read_text())
    (tmp_path / "quality_rules.yaml").write_text((REPO / "params" / "quality_rules.yaml").read_text())
    return path


def test_performance_settings_are_read_and_default(tmp_path):
    assert load_params().performance == PerformanceSettings(64.0, 64.0, 4, 128.0, 100.0, 3.0, 8.0)
    path = _params_with_section(tmp_path, "performance:\n  weeks_gold_min_mb: 0\n  zorder_min_mb: 64")
    assert load_params(path).performance == PerformanceSettings(zorder_min_mb=64.0, weeks_gold_min_mb=0.0)


def test_retention_settings_are_read_and_default(tmp_path):
    assert load_params().retention == RetentionSettings(keep_days=30, vacuum_every_days=7)
    path = _params_with_section(tmp_path, "retention:\n  keep_days: 90\n  vacuum_every_days: null")
    assert load_params(path).retention == RetentionSettings(keep_days=90, vacuum_every_days=None)


def test_agency_names_read_the_agency_codes_backwards():
    params = load_params()
    assert params.agency_names == {
        code: name for name, code in params.agency_codes.items()
    }  # one name per code in the defaults
    assert params.agency_names["NYPD_NON_CIP"] == "NYPD (Non-CIP)"
    doubled = replace(params, agency_codes={"NYPD (Non-CIP)": "NYPD_NON_CIP", "NYPD Non CIP": "NYPD_NON_CIP"})
    assert doubled.agency_names == {"NYPD_NON_CIP": "NYPD (Non-CIP)"}  # the first name wins


def test_response_time_settings_are_read_and_default(tmp_path):
    assert load_params().response_time == ResponseTimeSettings(
        (("NYPD", "Critical"), ("FDNY", "Structural Fires"), ("EMS", "Life Threatening Med Emergencies")), 52
    )
    path = _params_with_section(
        tmp_path,
        "response_time:\n  most_urgent:\n    EMS: Life Threatening Med Emergencies\n"
        "    NYPD: [Critical, Serious]",
    )
    assert load_params(path).response_time == ResponseTimeSettings(
        (("EMS", "Life Threatening Med Emergencies"), ("NYPD", "Critical"), ("NYPD", "Serious")), 52
    )


@pytest.mark.parametrize(
    ("block", "message"),
    [
        (
            "performance:\n  whole_file_mb: 10",
            "unknown performance settings ['whole_file_mb']; known: "
            "['duckdb_gold_piece_mb', 'duckdb_memory_limit_gb', 'min_shuffle_partitions', "
            "'quick_start_max_mb', 'shuffle_partition_mb', 'weeks_gold_min_mb', 'whole_file_max_mb', "
            "'zorder_min_mb']",
        ),
        (
            "performance:\n  weeks_gold_min_mb: -1",
            "performance.weeks_gold_min_mb must be a number (0 or more), got -1",
        ),
        (
            "performance:\n  whole_file_max_mb: 0",
            "performance.whole_file_max_mb must be a positive number, got 0",
        ),
        (
            "performance:\n  shuffle_partition_mb: big",
            "performance.shuffle_partition_mb must be a positive number, got 'big'",
        ),
        (
            "performance:\n  min_shuffle_partitions: 2.5",
            "performance.min_shuffle_partitions must be a whole number, got 2.5",
        ),
        (
            "retention:\n  keep: 3",
            "unknown retention settings ['keep']; known: ['keep_days', 'vacuum_every_days']",
        ),
        (
            "retention:\n  keep_days: -1",
            "retention.keep_days must be a whole number of days (0 or more), got -1",
        ),
        (
            "retention:\n  keep_days: null",
            "retention.keep_days must be a whole number of days (0 or more), got None",
        ),
        (
            "retention:\n  vacuum_every_days: 1.5",
            "retention.vacuum_every_days must be a whole number of days (0 or more), got 1.5",
        ),
        (
            "response_time:\n  most_urgent:\n    NYPD (Non-CIP): [Dispute]",
            "response_time.most_urgent names the agency 'NYPD (Non-CIP)', not an agency code of agency_codes "
            "['EMS', 'FDNY', 'NYPD', 'NYPD_NON_CIP']",
        ),
        (
            "response_time:\n  most_urgent:\n    EMS: []",
            "response_time.most_urgent.EMS must list incident types, got []",
        ),
        (
            "response_time:\n  most_urgent: [NYPD]",
            "response_time.most_urgent must map agency codes to incident types, got ['NYPD']",
        ),
        (
            "response_time:\n  trailing_weeks: 0",
            "response_time.trailing_weeks must be a whole number from 1 to 260, got 0",
        ),
        (
            "response_time:\n  weeks: 52",
            "unknown response_time settings ['weeks']; known: ['most_urgent', 'trailing_weeks']",
        ),
    ],
)
def test_bad_settings_of_a_section_are_refused(tmp_path, block, message):
    path = _params_with_section(tmp_path, block)
    with pytest.raises(ParamsError) as err:
        load_params(path)
    assert str(err.value) == f"{path}: {message}"
