"""Notebook parameters: papermill values pass through, empty strings mean "not set", and a name
the notebook does not have stops it (papermill itself only warns)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import papermill as pm
import pytest
from deltalake import DeltaTable

from nyc911lib import notebook_args
from nyc911lib.errors import ParamsError
from nyc911lib.io.delta_rs import read_arrow
from nyc911lib.run.notebook import check_parameters, injected_parameters
from nyc911lib.run.papermill_runner import KERNEL_NAME

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def test_notebook_args_pass_values_and_blank_means_none(monkeypatch):
    monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION", raising=False)
    args = notebook_args(source="/data/e2e.csv", warehouse="", date_from=None, run_id="run-1")
    assert vars(args) == {"source": "/data/e2e.csv", "warehouse": None, "date_from": None, "run_id": "run-1"}


INJECTED = '# Parameters\nwarehous = "/data/wh"\nengine = "duckdb"\n'
OWN_CELL = '# Parameters (papermill overrides these; None means "the default").\nwarehouse = None\n'


@pytest.mark.parametrize(
    ("history", "names"),
    [
        ([OWN_CELL, INJECTED, "setup()"], ["warehous", "engine"]),  # the cell just before this one
        ([INJECTED, OWN_CELL, "setup()"], []),  # the previous notebook's injection: not this one's
        ([OWN_CELL, "setup()"], []),  # run without parameters (JupyterLab)
        (["setup()"], []),
        ([], []),
    ],
)
def test_injected_parameters_are_those_of_papermills_cell_just_before(history, names):
    assert injected_parameters(history) == names


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (["warehous"], "unknown parameter 'warehous' (did you mean 'warehouse'?)"),
        (["engine", "date_form"], "unknown parameter 'date_form' (did you mean 'date_from'?)"),
        (["colour"], "unknown parameter 'colour' (known: date_from, engine, warehouse)"),
    ],
)
def test_an_unknown_parameter_is_refused_with_the_closest_known_one(given, message):
    with pytest.raises(ParamsError) as err:
        check_parameters(given, ["warehouse", "engine", "date_from"])
    assert str(err.value) == message


def test_known_parameters_pass():
    check_parameters(["warehouse", "engine"], ["warehouse", "engine", "date_from"])


@pytest.mark.e2e
def test_under_papermill_a_misspelled_parameter_stops_the_notebook_before_anything_is_written(
    tmp_path, monkeypatch
):
    """papermill itself (which only warns of an unknown parameter) runs 02_silver with
    `warehous`: the set-up cell stops it with the one-line error, and no warehouse is written, not
    even the default one the notebook would otherwise have used."""
    default = tmp_path / "default-warehouse"
    monkeypatch.setenv("NYC911_WAREHOUSE", str(default))
    executed = tmp_path / "02_silver.ipynb"
    with pytest.raises(pm.PapermillExecutionError) as err:
        pm.execute_notebook(
            str(NOTEBOOKS / "02_silver.ipynb"),
            str(executed),
            parameters={"warehous": str(tmp_path / "wh")},
            cwd=str(NOTEBOOKS),
            progress_bar=False,
            kernel_name=KERNEL_NAME,
        )
    assert (err.value.ename, err.value.evalue) == (
        "ParamsError",
        "unknown parameter 'warehous' (did you mean 'warehouse'?)",
    )
    assert not default.exists() and not (tmp_path / "wh").exists()
    cells = [c for c in nbformat.read(executed, as_version=4).cells if c.cell_type == "code"]
    ran = [c for c in cells if c.get("execution_count")]
    assert [c.metadata.get("tags", []) for c in ran[:2]] == [["parameters"], ["injected-parameters"]]
    assert len(ran) == 3  # the set-up cell was the last to run


@pytest.fixture(scope="module")
def silver_warehouse(tmp_path_factory) -> Path:
    """A warehouse with bronze and silver of the sample (03_gold's input), built once."""
    from conftest import run_once  # noqa: PLC0415

    from nyc911lib import load_params, session  # noqa: PLC0415

    params = load_params().with_warehouse(tmp_path_factory.mktemp("nb") / "warehouse")
    run_once(session(), params)
    return params.warehouse


PAPERMILL = str(Path(sys.executable).parent / "papermill")
BAD_DATE = "ParamsError: date_from must be a date as YYYY-MM-DD, got '2024-13-01'"


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("given", "error"),
    [
        (["-y", "date_from: 2024-01-01"], None),  # YAML reads a date (papermill#345)
        (["-p", "date_from", "2024-01-01"], None),  # a string
        (["-p", "date_from", "2024-13-01"], BAD_DATE),
        (["-y", "date_from: 2024-13-01"], BAD_DATE),  # not a date to YAML either: a string
    ],
    ids=["yaml date", "string", "bad string", "bad yaml value"],
)
def test_under_papermill_dates_are_taken_as_strings_and_yaml_dates(silver_warehouse, tmp_path, given, error):
    """The papermill command runs 03_gold with a gold range: a YAML date and its text both
    recompute that range of gold; a bad value stops the notebook, naming the parameter and what
    it accepts, before anything is written."""
    gold = silver_warehouse / "gold" / "kpi_weekly"
    before = DeltaTable(str(gold)).version() if gold.is_dir() else None
    cmd = [
        PAPERMILL, "03_gold.ipynb", str(tmp_path / "03_gold.ipynb"), "--no-progress-bar",
        "-p", "warehouse", str(silver_warehouse), "-p", "reports_dir", str(tmp_path / "reports"),
        "-p", "date_to", "2024-03-31", *given,
    ]  # fmt: skip
    done = subprocess.run(cmd, cwd=NOTEBOOKS, capture_output=True, text=True, timeout=300, check=False)
    if error:
        assert done.returncode != 0
        assert error in done.stderr.splitlines()
        assert (DeltaTable(str(gold)).version() if gold.is_dir() else None) == before
        return
    assert done.returncode == 0, done.stderr[-3000:]
    table = DeltaTable(str(gold))
    last = table.history(1)[0]
    assert json.loads(last["userMetadata"])["scope"] == "range"  # a ranged rewrite, of these weeks:
    assert "2024-01-01" in last["operationParameters"]["predicate"]
    recomputed = read_arrow(gold, ["week_start_date"]).column(0).to_pylist()
    assert min(recomputed) == dt.date(2023, 1, 2)  # the other weeks are kept
