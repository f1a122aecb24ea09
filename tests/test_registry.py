"""The registry is the one list of tables: params name exactly its tables, every input is an
earlier entry or a runner's, every write mode is known, and every runner's list derives from it."""

from __future__ import annotations

import dataclasses

import pytest

from nyc911lib import ParamsError, load_params
from nyc911lib.run import registry
from nyc911lib.run.gold_run import gold_inputs, gold_state_table
from nyc911lib.run.registry import REGISTRY, RUNNER_INPUTS, WRITE_MODES, check_params_tables, table_keys


def test_params_name_exactly_the_registry_tables():
    params = load_params()
    check_params_tables(params)  # raises on a difference
    for layer in ("bronze", "silver", "gold"):
        assert set(params.tables[layer]) == set(table_keys(layer)), layer


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda tables: tables["gold"].pop("anomalies"),
            "params tables.gold disagree with the registry: not named in params: anomalies",
        ),
        (
            lambda tables: tables["silver"].update(extra="extra"),
            "params tables.silver disagree with the registry: not in the registry: extra",
        ),
    ],
    ids=["a table missing from params", "a table unknown to the registry"],
)
def test_a_difference_between_params_and_registry_is_named(change, message):
    params = load_params()
    tables = {layer: dict(names) for layer, names in params.tables.items()}
    change(tables)
    with pytest.raises(ParamsError, match=f"^{message}$"):
        check_params_tables(dataclasses.replace(params, tables=tables))


def test_every_input_is_an_earlier_entry_or_a_runner_input():
    seen: set[str] = set()
    for entry in REGISTRY:
        unknown = [key for key in entry.inputs if key not in seen and key not in RUNNER_INPUTS]
        assert unknown == [], f"{entry.key} reads {unknown} before they are built"
        seen.add(entry.key)


def test_keys_are_unique_and_table_names_unique_across_layers():
    """A declarative pipeline names its tables without their layer (one SDP catalog schema)."""
    assert len({e.key for e in REGISTRY}) == len(REGISTRY)
    names = [n for names in load_params().tables.values() for n in names.values()]
    assert len(set(names)) == len(names)


def test_write_modes_and_merge_keys():
    assert {e.write for e in REGISTRY if e.stored} <= set(WRITE_MODES)
    merged = [e for e in REGISTRY if e.write == registry.MERGE]
    assert [(e.key, e.merge_key) for e in merged] == [
        ("e2e_weekly", ("week_start_date", "agency", "incident_type"))
    ]
    # the tables of weekly rows an incremental gold build recomputes some weeks of
    ranged = [e.key for e in REGISTRY if e.write == registry.RANGED_OVERWRITE]
    assert (
        ranged
        == [e.key for e in REGISTRY if e.reach is not None]
        == [
            "kpi_weekly",
            "restatements",
            "publication_drift",
            "kpi_agency_weekly",
            "kpi_response_time",
            "sla_breach_weekly",
            "anomalies",
        ]
    )
    assert [e.key for e in REGISTRY if e.enforces_quality] == ["e2e_valid"]


def test_gold_inputs_and_the_table_written_last_come_from_the_registry():
    assert gold_inputs() == (
        ("bronze", "ingest_log"),
        ("silver", "batch_accounting"),
        ("silver", "dq_metrics"),
        ("silver", "e2e_weekly"),
        ("silver", "superseded"),
    )
    assert gold_state_table() == "kpi_summary" == table_keys("gold")[-1]


def test_every_table_has_a_comment():
    assert [e.key for e in REGISTRY if not e.comment.strip()] == []
