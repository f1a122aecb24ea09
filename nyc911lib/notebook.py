"""Notebook parameters that work under papermill and as Databricks job parameters."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from nyc911lib.engine import is_databricks


def _databricks_widget(name: str) -> str | None:
    """A Databricks widget's value, or None when the job defines no such parameter."""
    from pyspark.dbutils import DBUtils  # noqa: PLC0415 - exists only on Databricks
    from pyspark.sql import SparkSession  # noqa: PLC0415

    try:
        return DBUtils(SparkSession.getActiveSession()).widgets.get(name)
    except Exception:  # Databricks raises a wrapped Java InputWidgetNotDefined
        return None


def notebook_args(**defaults: Any) -> SimpleNamespace:
    """The notebook's parameters: papermill injects them as variables (passed in here); on
    Databricks job parameters arrive as widgets and take precedence. An empty string means None."""
    values = dict(defaults)
    if is_databricks():
        for name in values:
            widget = _databricks_widget(name)
            if widget is not None:
                values[name] = widget
    return SimpleNamespace(**{k: (None if v == "" else v) for k, v in values.items()})
