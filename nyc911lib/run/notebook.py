"""A layer notebook's set-up: its parameters (from papermill, `nyc911 run` or Databricks job
parameters), checked, then the params and the engine's session, in one call (`notebook_setup`)."""

from __future__ import annotations

import ast
import difflib
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

from nyc911lib.config import Params, load_params
from nyc911lib.engine import is_databricks, session
from nyc911lib.errors import ParamsError

# papermill's injected-parameters cell starts with exactly this line (its `# Parameters` comment),
# which the notebooks' own parameters cell does not (`# Parameters (papermill overrides ...`).
INJECTED_MARKER = "# Parameters\n"


def _databricks_widget(name: str) -> str | None:
    """A Databricks widget's value, or None when the job defines no such parameter."""
    from pyspark.dbutils import DBUtils  # noqa: PLC0415 - exists only on Databricks
    from pyspark.sql import SparkSession  # noqa: PLC0415

    try:
        return DBUtils(SparkSession.getActiveSession()).widgets.get(name)
    except Exception:  # Databricks raises a wrapped Java InputWidgetNotDefined
        return None


def injected_parameters(history: Sequence[str]) -> list[str]:
    """The names papermill injected into the notebook being run, from the kernel's input history
    (`In`, the current cell last): the assignments of the cell run just before the current one when
    it is papermill's injected-parameters cell, else none. Only that cell counts: one kernel runs
    all four notebooks, so the kernel's variables include the previous notebook's."""
    if len(history) < 2 or not history[-2].startswith(INJECTED_MARKER):
        return []
    return [
        target.id
        for node in ast.parse(history[-2]).body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    ]


def check_parameters(given: Sequence[str], known: Sequence[str]) -> None:
    """Refuse a parameter the notebook does not have, with one line naming it and the closest
    known one (papermill itself only warns, and the notebook would run with the default)."""
    for name in given:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"known: {', '.join(sorted(known))}"
            raise ParamsError(f"unknown parameter '{name}' ({hint})")


def _kernel_history() -> list[str]:
    """The input history of the IPython kernel running this code (empty outside IPython)."""
    try:
        from IPython import get_ipython  # noqa: PLC0415 - only inside a kernel
    except ImportError:
        return []
    shell = get_ipython()
    return list(shell.user_ns.get("In", [])) if shell is not None else []


def notebook_args(**defaults: Any) -> SimpleNamespace:
    """The notebook's parameters: papermill injects them as variables (passed in here, and every
    injected name must be one of them); on Databricks job parameters arrive as widgets and take
    precedence. An empty string means None."""
    check_parameters(injected_parameters(_kernel_history()), list(defaults))
    values = dict(defaults)
    if is_databricks():
        for name in values:
            widget = _databricks_widget(name)
            if widget is not None:
                values[name] = widget
    return SimpleNamespace(**{k: (None if v == "" else v) for k, v in values.items()})


def notebook_setup(**parameters: Any) -> tuple[SimpleNamespace, Any, Params]:
    """A layer notebook's set-up in one call: (its checked arguments, the engine's session, the
    params), with `run_id` set (a new one unless given) and the warehouse printed. The session
    fixes the kernel's engine, so the notebook imports `pyspark` only after this call."""
    args = notebook_args(**parameters)
    params = load_params(args.params_file, sla_rules_file=getattr(args, "sla_rules_file", None))
    if args.warehouse:
        params = params.with_warehouse(args.warehouse)
    spark = session(args.engine, params)
    from nyc911lib.run.layers import new_run_id  # noqa: PLC0415 - imports pyspark: after the session
    from nyc911lib.run.registry import check_params_tables  # noqa: PLC0415

    check_params_tables(params)
    if not args.run_id:
        args.run_id = new_run_id()
    print(f"warehouse: {params.warehouse or params.catalog}")
    return args, spark, params
