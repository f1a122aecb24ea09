"""Notebook parameters: papermill values pass through, empty strings mean "not set", and a name
the notebook does not have stops it (papermill itself only warns)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import papermill as pm
import pytest

from nyc911lib import notebook_args
from nyc911lib.errors import ParamsError
from nyc911lib.notebook import check_parameters, injected_parameters
from nyc911lib.runner import KERNEL_NAME

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
