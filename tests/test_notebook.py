"""Notebook parameters: papermill values pass through, empty strings mean "not set"."""

from __future__ import annotations

from nyc911lib import notebook_args


def test_notebook_args_pass_values_and_blank_means_none(monkeypatch):
    monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION", raising=False)
    args = notebook_args(source="/data/e2e.csv", warehouse="", date_from=None, run_id="run-1")
    assert vars(args) == {"source": "/data/e2e.csv", "warehouse": None, "date_from": None, "run_id": "run-1"}
