"""The Databricks Asset Bundle (databricks.yml + resources/*.yml) and its dashboard (no Spark).

Checks the bundle parses and has its targets, that every path it references exists (resolved like
the Databricks CLI does: relative to the folder of the YAML file that names it), the job's task
order, that dev and prod differ only where allowed, the per-target catalog, and that every table
the bundle or the dashboard names is a known three-level gold table.
"""

from __future__ import annotations

import json
import os
import re
import runpy
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
BUNDLE_FILE = REPO / "databricks.yml"
PARAMS_FILE = REPO / "params" / "default.yaml"
PIPELINE_SPEC = REPO / "pipelines" / "spark-pipeline.yml"

# ${workspace.file_path} is where the bundle root is synced, so it maps to the repo root.
WORKSPACE_FILE_PATH = "${workspace.file_path}"
# Produced by the `nyc911lib` artifact build at deploy time, not committed.
BUILD_OUTPUT = REPO / "dist" / "*.whl"

NOTEBOOK_PARAMETERS = {"params_file", "source", "warehouse", "date_from", "date_to", "full_refresh", "run_id"}
REPORT_PARAMETERS = {"report_from", "report_to", "agencies", "sla_rules_file"}  # 04_kpi_report only
TASK_ORDER = [
    ("bronze", "01_bronze.ipynb", []),
    ("silver", "02_silver.ipynb", ["bronze"]),
    ("gold", "03_gold.ipynb", ["silver"]),
    ("kpi_report", "04_kpi_report.ipynb", ["gold"]),
]
PIPELINE_SOURCES = ["bronze.py", "silver.py", "gold.py"]
# Keys under targets.<name> that may differ between dev and prod; anything else (resources,
# artifacts, sync, ...) must be identical so that prod runs exactly what dev tested.
ALLOWED_TARGET_DIFFERENCES = {"mode", "default", "variables", "presets", "permissions", "run_as", "workspace"}
ALLOWED_VARIABLE_DIFFERENCES = {"catalog"}
ALLOWED_WORKSPACE_DIFFERENCES = {"root_path"}
TARGET_CATALOGS = {"dev": "nyc911_dev", "prod": "nyc911"}

FROM_JOIN = re.compile(r"\b(?:FROM|JOIN)\s+([`\w][`\w.]*)", re.IGNORECASE)
CTE = re.compile(r"(?:\bWITH|,)\s*(\w+)\s+AS\s*\(", re.I)
LAYER_TABLE = re.compile(r"\b(\w+)\.(bronze|silver|gold)\.(\w+)\b")
_MISSING = object()


def load_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path.relative_to(REPO)} must hold a mapping"
    return data


def bundle() -> dict[str, Any]:
    return load_yaml(BUNDLE_FILE)


def config_files() -> list[Path]:
    """databricks.yml plus every file its `include` globs match (relative to databricks.yml)."""
    files = [BUNDLE_FILE]
    for pattern in bundle().get("include", []):
        files.extend(sorted(BUNDLE_FILE.parent.glob(pattern)))
    return files


def resources() -> list[tuple[Path, str, str, dict[str, Any]]]:
    """(defining file, resource type, resource key, definition) for every resource."""
    found = []
    for path in config_files():
        for rtype, items in (load_yaml(path).get("resources") or {}).items():
            for key, body in (items or {}).items():
                found.append((path, rtype, key, body))
    return found


def the_resource(rtype: str) -> tuple[Path, dict[str, Any]]:
    matches = [(path, body) for path, kind, _, body in resources() if kind == rtype]
    assert len(matches) == 1, f"expected exactly one {rtype} resource, found {len(matches)}"
    return matches[0]


def resolve(base: Path, value: str) -> Path:
    """A bundle path the way the CLI resolves it: ${workspace.file_path} is the bundle root, any
    other relative path is relative to the folder of the YAML file that contains it."""
    if value.startswith(WORKSPACE_FILE_PATH):
        return Path(os.path.normpath(REPO / value[len(WORKSPACE_FILE_PATH) :].lstrip("/")))
    return Path(os.path.normpath(base / value))


def _job_paths(base: Path, key: str, body: dict[str, Any]) -> list[tuple[str, Path, str]]:
    refs = []
    for task in body.get("tasks", []):
        label = f"jobs.{key}.{task['task_key']}"
        notebook = task.get("notebook_task", {})
        if "notebook_path" in notebook:
            refs.append((f"{label}.notebook_path", resolve(base, notebook["notebook_path"]), "file"))
        for name, value in notebook.get("base_parameters", {}).items():
            if str(value).startswith(WORKSPACE_FILE_PATH):
                refs.append((f"{label}.{name}", resolve(base, value), "file"))
        for i, lib in enumerate(task.get("libraries", [])):
            refs.append((f"{label}.libraries[{i}]", resolve(base, lib["whl"]), "build"))
    return refs


def _pipeline_paths(base: Path, key: str, body: dict[str, Any]) -> list[tuple[str, Path, str]]:
    label = f"pipelines.{key}"
    refs = []
    if "root_path" in body:
        refs.append((f"{label}.root_path", resolve(base, body["root_path"]), "dir"))
    for i, lib in enumerate(body.get("libraries", [])):
        for kind, spec in lib.items():
            value, check = (spec["include"], "glob") if kind == "glob" else (spec["path"], "file")
            refs.append((f"{label}.libraries[{i}]", resolve(base, value), check))
    for i, dep in enumerate(body.get("environment", {}).get("dependencies", [])):
        refs.append((f"{label}.environment[{i}]", resolve(base, dep), "build"))
    for name, value in body.get("configuration", {}).items():
        if str(value).startswith(WORKSPACE_FILE_PATH):
            refs.append((f"{label}.configuration.{name}", resolve(base, value), "file"))
    return refs


def _dashboard_paths(base: Path, key: str, body: dict[str, Any]) -> list[tuple[str, Path, str]]:
    return [(f"dashboards.{key}.file_path", resolve(base, body["file_path"]), "file")]


PATH_COLLECTORS = {"jobs": _job_paths, "pipelines": _pipeline_paths, "dashboards": _dashboard_paths}


def referenced_paths() -> list[tuple[str, Path, str]]:
    """(label, resolved path, kind) for every source path the bundle references.

    kind is "file", "dir", "glob" (must match at least one file) or "build" (an artifact output).
    """
    refs: list[tuple[str, Path, str]] = []
    for src, rtype, key, body in resources():
        assert rtype in PATH_COLLECTORS, f"no path check for resource type {rtype}"
        refs.extend(PATH_COLLECTORS[rtype](src.parent, key, body))
    return refs


def glob_files(base: Path, pattern: str) -> list[Path]:
    """Files a bundle/SDP glob matches; a trailing `**` means every file below the folder."""
    if pattern.endswith("**"):
        pattern += "/*"
    return sorted(p for p in base.glob(pattern) if p.is_file() and "__pycache__" not in p.parts)


def flatten(value: Any, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    """Leaf path -> value of a nested mapping (lists are compared as whole values)."""
    if isinstance(value, dict) and value:
        flat: dict[tuple[str, ...], Any] = {}
        for key, sub in value.items():
            flat.update(flatten(sub, (*prefix, str(key))))
        return flat
    return {prefix: value}


def params() -> dict[str, Any]:
    return load_yaml(PARAMS_FILE)


def databricks_env() -> dict[str, Any]:
    return params()["environments"]["databricks"]


def dashboard_files() -> list[Path]:
    return [
        resolve(path.parent, body["file_path"]) for path, kind, _, body in resources() if kind == "dashboards"
    ]


def dataset_sql(dataset: dict[str, Any]) -> str:
    return "".join(dataset["queryLines"]) if "queryLines" in dataset else dataset["query"]


def used_table_names() -> list[tuple[str, str]]:
    """(where, name) for every table named in a dashboard query or anywhere in the bundle YAML."""
    names = []
    for path in dashboard_files():
        for dataset in json.loads(path.read_text(encoding="utf-8"))["datasets"]:
            sql = dataset_sql(dataset)
            ctes = set(CTE.findall(sql))  # a query's own named subqueries are not tables
            for name in FROM_JOIN.findall(sql):
                if name not in ctes:
                    names.append((f"{path.name}:{dataset['name']}", name))
    for path in config_files():
        for leaf, value in flatten(load_yaml(path)).items():
            if isinstance(value, str):
                for match in LAYER_TABLE.finditer(value):
                    names.append((f"{path.name}:{'.'.join(leaf)}", match.group(0)))
    return names


# --------------------------------------------------------------------------- structure


def test_bundle_and_resource_files_parse():
    files = config_files()
    assert [p.relative_to(REPO).as_posix() for p in files] == [
        "databricks.yml",
        "resources/nyc911_dashboard.yml",
        "resources/nyc911_job.yml",
        "resources/nyc911_pipeline.yml",
    ]
    for path in files:
        load_yaml(path)


def test_bundle_name_and_targets():
    config = bundle()
    assert config["bundle"]["name"] == "nyc911_lakehouse"
    assert set(config["targets"]) == {"dev", "prod"}


@pytest.mark.parametrize(
    ("target", "mode", "is_default"),
    [("dev", "development", True), ("prod", "production", False)],
)
def test_target_modes(target, mode, is_default):
    spec = bundle()["targets"][target]
    assert spec["mode"] == mode
    assert spec.get("default", False) is is_default


def test_no_workspace_host_or_token_in_the_bundle():
    for path in config_files():
        flat = flatten(load_yaml(path))
        assert not [k for k in flat if k[-1] in {"host", "token", "password", "client_secret"}], path.name


def test_resources_are_the_job_pipeline_and_dashboard():
    assert sorted((rtype, key) for _, rtype, key, _ in resources()) == [
        ("dashboards", "nyc911_kpis"),
        ("jobs", "nyc911_layers"),
        ("pipelines", "nyc911_pipeline"),
    ]


# --------------------------------------------------------------------------- referenced paths


@pytest.mark.parametrize(
    ("label", "path", "kind"),
    [ref for ref in referenced_paths() if ref[2] != "build"],
    ids=[ref[0] for ref in referenced_paths() if ref[2] != "build"],
)
def test_referenced_path_exists(label, path, kind):
    assert path.is_relative_to(REPO), f"{label} points outside the bundle root: {path}"
    shown = path.relative_to(REPO)
    if kind == "file":
        assert path.is_file(), f"{label}: {shown} does not exist"
    elif kind == "dir":
        assert path.is_dir(), f"{label}: folder {shown} does not exist"
    else:
        assert glob_files(REPO, shown.as_posix()), f"{label}: glob {shown} matches no file"


@pytest.mark.parametrize(
    ("label", "path"),
    [ref[:2] for ref in referenced_paths() if ref[2] == "build"],
    ids=[ref[0] for ref in referenced_paths() if ref[2] == "build"],
)
def test_wheel_references_point_at_the_artifact_output(label, path):
    assert path == BUILD_OUTPUT, label


def test_artifact_builds_the_project_wheel_into_dist():
    artifact = bundle()["artifacts"]["nyc911lib"]
    assert artifact["type"] == "whl"
    project_dir = resolve(BUNDLE_FILE.parent, artifact["path"])
    assert project_dir == REPO
    assert 'name = "nyc911lib"' in (project_dir / "pyproject.toml").read_text(encoding="utf-8")
    assert artifact["build"] == "python3 -m pip wheel --no-deps --wheel-dir dist ."
    assert project_dir / "dist" / "*.whl" == BUILD_OUTPUT


# --------------------------------------------------------------------------- job


def job_tasks() -> list[dict[str, Any]]:
    _, job = the_resource("jobs")
    return job["tasks"]


def test_job_runs_the_four_notebooks_in_order():
    tasks = job_tasks()
    assert [t["task_key"] for t in tasks] == [key for key, _, _ in TASK_ORDER]
    assert [Path(t["notebook_task"]["notebook_path"]).name for t in tasks] == [nb for _, nb, _ in TASK_ORDER]
    deps = {t["task_key"]: [d["task_key"] for d in t.get("depends_on", [])] for t in tasks}
    assert deps == {key: upstream for key, _, upstream in TASK_ORDER}


@pytest.mark.parametrize("task_key", [key for key, _, _ in TASK_ORDER])
def test_task_passes_the_papermill_parameters(task_key):
    task = next(t for t in job_tasks() if t["task_key"] == task_key)
    parameters = task["notebook_task"]["base_parameters"]
    report = REPORT_PARAMETERS if task_key == "kpi_report" else set()
    assert set(parameters) == NOTEBOOK_PARAMETERS | report
    assert all(parameters[name] == "" for name in report)
    assert all(isinstance(v, str) for v in parameters.values()), "notebook widgets take strings only"
    assert parameters["params_file"] == "${workspace.file_path}/params/default.yaml"
    assert parameters["run_id"] == "{{job.run_id}}"
    assert parameters["source"] == "/Volumes/${var.catalog}/${var.bronze_schema}/landing/${var.source_file}"
    assert parameters["warehouse"] == parameters["date_from"] == parameters["date_to"] == ""
    assert parameters["full_refresh"] == "false"
    assert task["libraries"] == [{"whl": "../dist/*.whl"}]


def test_job_cluster_selects_the_databricks_params_environment():
    _, job = the_resource("jobs")
    [cluster] = job["job_clusters"]
    assert {t["job_cluster_key"] for t in job["tasks"]} == {cluster["job_cluster_key"]}
    assert cluster["new_cluster"]["spark_env_vars"]["NYC911_ENVIRONMENT"] == "databricks"
    assert "databricks" in params()["environments"]


# --------------------------------------------------------------------------- pipeline


def test_pipeline_definition():
    path, pipeline = the_resource("pipelines")
    assert pipeline["catalog"] == "${var.catalog}"
    assert pipeline["schema"] == "${var.gold_schema}"
    assert "target" not in pipeline, "`target` is the deprecated legacy publishing mode"
    assert pipeline["serverless"] is True
    assert pipeline["channel"] == "CURRENT"
    assert pipeline["configuration"]["nyc911.params"] == "${workspace.file_path}/params/default.yaml"
    assert pipeline["configuration"]["nyc911.environment"] == "databricks"
    assert pipeline["environment"]["dependencies"] == ["../dist/*.whl"]
    files = [resolve(path.parent, lib["file"]["path"]) for lib in pipeline["libraries"]]
    assert files == [REPO / "pipelines" / "transformations" / name for name in PIPELINE_SOURCES]


def test_spark_pipeline_spec_uses_the_same_sources():
    """One definition for both engines: pipelines/spark-pipeline.yml (open-source SDP) must name
    exactly the transformation files the Databricks pipeline runs."""
    assert PIPELINE_SPEC.is_file(), f"{PIPELINE_SPEC.relative_to(REPO)} does not exist"
    spec = load_yaml(PIPELINE_SPEC)
    spec_files: set[Path] = set()
    for lib in spec.get("libraries", []):
        if "glob" in lib:
            spec_files.update(glob_files(PIPELINE_SPEC.parent, lib["glob"]["include"]))
        if "file" in lib:
            spec_files.add(resolve(PIPELINE_SPEC.parent, lib["file"]["path"]))
    path, pipeline = the_resource("pipelines")
    bundle_files = {resolve(path.parent, lib["file"]["path"]) for lib in pipeline["libraries"]}
    assert spec_files == bundle_files


# --------------------------------------------------------------------------- targets and catalog


def test_dev_and_prod_differ_only_in_allowed_keys():
    targets = bundle()["targets"]
    dev, prod = flatten(targets["dev"]), flatten(targets["prod"])
    differing = {p for p in dev.keys() | prod.keys() if dev.get(p, _MISSING) != prod.get(p, _MISSING)}
    assert {p[0] for p in differing} <= ALLOWED_TARGET_DIFFERENCES
    assert {p[1] for p in differing if p[0] == "variables"} <= ALLOWED_VARIABLE_DIFFERENCES
    assert {p[1] for p in differing if p[0] == "workspace"} <= ALLOWED_WORKSPACE_DIFFERENCES
    # The variables that make the targets different really are set per target.
    assert {p for p in differing if p[0] == "variables"} == {("variables", "catalog")}


@pytest.mark.parametrize(("target", "catalog"), sorted(TARGET_CATALOGS.items()))
def test_target_catalog(target, catalog):
    assert bundle()["targets"][target]["variables"]["catalog"] == catalog


def test_variable_defaults_match_params():
    variables = bundle()["variables"]
    env = databricks_env()
    assert variables["catalog"]["default"] == env["catalog"] == TARGET_CATALOGS["prod"]
    for layer, schema in env["schemas"].items():
        assert variables[f"{layer}_schema"]["default"] == schema


def test_dashboard_warehouse_comes_from_a_variable():
    _, dashboard = the_resource("dashboards")
    assert dashboard["warehouse_id"] == "${var.warehouse_id}"
    assert "default" not in bundle()["variables"]["warehouse_id"], "no workspace-specific id in git"


# --------------------------------------------------------------------------- table names


def test_bundle_and_dashboard_name_some_tables():
    assert used_table_names(), "the dashboard must query gold tables by name"


@pytest.mark.parametrize(
    ("where", "name"), used_table_names(), ids=[f"{w}:{n}" for w, n in used_table_names()]
)
def test_table_name_is_a_known_three_level_name(where, name):
    parts = name.replace("`", "").split(".")
    assert len(parts) == 3, f"{where}: {name} is not catalog.schema.table"
    catalog, schema, table = parts
    env = databricks_env()
    assert catalog == env["catalog"], f"{where}: {name}"
    layer = {s: layer for layer, s in env["schemas"].items()}.get(schema)
    assert layer is not None, f"{where}: {name}: unknown schema {schema}"
    assert table in params()["tables"][layer].values(), f"{where}: {name}: no such {layer} table"


# --------------------------------------------------------------------------- dashboard content


def dashboard() -> dict[str, Any]:
    [path] = dashboard_files()
    return json.loads(path.read_text(encoding="utf-8"))


def widgets() -> list[dict[str, Any]]:
    return [item["widget"] for page in dashboard()["pages"] for item in page["layout"]]


def test_dashboard_weighted_measures():
    """Pickup and SLA figures are ratios of incident sums, never an average of averages."""
    datasets = {d["name"]: d for d in dashboard()["datasets"]}
    weighted = datasets["weighted_components"]
    sql = " ".join(dataset_sql(weighted).split())
    for component in (
        "SUM(CASE WHEN avg_call_to_first_pickup_s IS NOT NULL"
        " THEN avg_call_to_first_pickup_s * incidents END) AS pickup_s_x_incidents",
        "SUM(CASE WHEN avg_call_to_first_pickup_s IS NOT NULL THEN incidents END) AS pickup_known_incidents",
        "SUM(CASE WHEN sla_breached THEN incidents ELSE 0 END) AS sla_breached_incidents",
        "SUM(CASE WHEN sla_breached IS NOT NULL THEN incidents END) AS sla_evaluated_incidents",
    ):
        assert component in sql
    assert {c["displayName"]: c["expression"] for c in weighted["columns"]} == {
        "avg_call_to_first_pickup_s": (
            "SUM(`pickup_s_x_incidents`) / NULLIF(SUM(`pickup_known_incidents`), 0)"
        ),
        "sla_breach_rate_pct": (
            "100 * SUM(`sla_breached_incidents`) / NULLIF(SUM(`sla_evaluated_incidents`), 0)"
        ),
    }
    assert "AVG(" not in json.dumps(dashboard()).upper()


def test_dashboard_has_the_four_visuals_and_the_agency_filter():
    kinds = {w["name"]: w["spec"]["widgetType"] for w in widgets() if "spec" in w}
    assert kinds == {
        "agency_filter": "filter-multi-select",
        "total_incidents": "counter",
        "sla_breach_rate": "counter",
        "response_time_by_segment": "bar",
        "monthly_volume_by_agency": "bar",
        "pickup_trend_by_agency": "line",
    }


def test_dashboard_headline_is_gold_response_time_at_its_latest_week():
    """The dashboard's headline query, run by DuckDB on a gold.kpi_response_time of two weeks: the
    latest week only, each series x period split into its three segments as gold states them."""
    import duckdb  # noqa: PLC0415 - the default engine's database, here only to run the query
    import pandas as pd  # noqa: PLC0415

    datasets = {d["name"]: d for d in dashboard()["datasets"]}
    sql = dataset_sql(datasets["response_time"])
    assert "FROM nyc911.gold.kpi_response_time" in sql
    rows = []
    for week, arrival in (("2025-12-15", 500.0), ("2025-12-22", 556.76)):
        for period in ("week", "trailing_weeks", "year_earlier"):
            rows.append(
                {
                    "week_start_date": pd.Timestamp(week).date(),
                    "agency": "NYPD",
                    "incident_type": "Critical",
                    "period": period,
                    "period_last_week": pd.Timestamp(week).date(),
                    "avg_call_to_agency_arrival_s": arrival,
                    "pickup_s": 3.33,
                    "pickup_to_dispatch_s": 259.26,
                    "travel_s": 294.0 if week == "2025-12-22" else 1.0,
                }
            )
    con = duckdb.connect()
    con.register("kpi_response_time", pd.DataFrame(rows))
    out = con.sql(sql.replace("nyc911.gold.kpi_response_time", "kpi_response_time")).fetchall()
    assert len(out) == 3 * 3
    assert {r[1] for r in out} == {
        "NYPD: Critical | 1 week of 2025-12-22",
        "NYPD: Critical | 2 weeks to 2025-12-22",
        "NYPD: Critical | 3 a year earlier, to 2025-12-22",
    }
    by_segment = {r[2]: r[3] for r in out if r[1].endswith("1 week of 2025-12-22")}
    assert by_segment == {"1 pickup": 3.33, "2 pickup to dispatch": 259.26, "3 travel": 294.0}
    assert {r[4] for r in out} == {556.76}


def test_agency_filter_applies_to_every_dataset():
    datasets = {d["name"] for d in dashboard()["datasets"]}
    [flt] = [w for w in widgets() if w["name"] == "agency_filter"]
    bound = {q["query"]["datasetName"] for q in flt["queries"]}
    assert bound == datasets
    assert {f["queryName"] for f in flt["spec"]["encodings"]["fields"]} == {q["name"] for q in flt["queries"]}


def test_widget_fields_resolve():
    """Every widget reads an existing dataset, and every encoding names a field of its query."""
    datasets = {d["name"]: d for d in dashboard()["datasets"]}
    for widget in widgets():
        fields: set[str] = set()
        for query in widget.get("queries", []):
            dataset = datasets[query["query"]["datasetName"]]
            measures = {c["displayName"] for c in dataset.get("columns", [])}
            for field in query["query"]["fields"]:
                fields.add(field["name"])
                for ref in re.findall(r"MEASURE\(`([^`]+)`\)", field["expression"]):
                    assert ref in measures, f"{widget['name']}: unknown measure {ref}"
        encodings = widget.get("spec", {}).get("encodings", {})
        names = [e["fieldName"] for e in encodings.get("fields", [])]
        names += [e["fieldName"] for k, e in encodings.items() if k != "fields"]
        assert set(names) <= fields, widget["name"]


# --------------------------------------------------------------------------- every table declared


GOLD_READ = re.compile(r"""(?:\bgold\(|"gold",\s*)"(\w+)"\)?""")


def tables_read_by(*modules: str) -> set[str]:
    """The gold table keys a module of nyc911lib reads (`gold("x")`, `read_table(..., "gold", "x")`)."""
    found = set()
    for module in modules:
        source = (REPO / "nyc911lib" / f"{module.replace('.', '/')}.py").read_text(encoding="utf-8")
        found.update(GOLD_READ.findall(source))
    return found


@pytest.fixture
def declared(tmp_path, monkeypatch) -> dict[str, dict]:
    """Every dataset the bundle's pipeline sources declare, by name, as Databricks would see them:
    each source run with a stand-in `dlt` module (recording the declarations) and the pipeline's
    configuration, its landing volume holding the sample."""
    from types import SimpleNamespace  # noqa: PLC0415

    from nyc911lib import write_sample  # noqa: PLC0415
    from nyc911lib.run.declarative import EXPECTATION_DECORATORS  # noqa: PLC0415

    path, pipeline = the_resource("pipelines")
    landing = tmp_path / "landing"
    write_sample(landing / "20260105T000000000000Z__sample__nyc911_sample.csv")
    conf = {
        **pipeline["configuration"],
        "nyc911.params": str(REPO / "params" / "default.yaml"),
        "nyc911.catalog": databricks_env()["catalog"],
        "nyc911.landing_dir": str(landing),
    }
    datasets: dict[str, dict] = {}

    def dataset(**options):
        return lambda query: datasets.setdefault(options["name"], options)

    def expectation(name):
        return lambda rules: lambda query: datasets.setdefault(f"expectations:{name}", rules) and query

    dlt = SimpleNamespace(
        materialized_view=dataset,
        temporary_view=dataset,
        **{name: expectation(name) for name in EXPECTATION_DECORATORS.values()},
    )
    spark = SimpleNamespace(conf=SimpleNamespace(get=lambda key, default=None: conf.get(key, default)))
    monkeypatch.setitem(__import__("sys").modules, "dlt", dlt)
    monkeypatch.setenv("NYC911_ENVIRONMENT", "databricks")  # run_config sets it for its process
    for lib in pipeline["libraries"]:
        runpy.run_path(str(resolve(path.parent, lib["file"]["path"])), init_globals={"spark": spark})
    return datasets


def test_the_pipeline_declares_every_table_of_params(declared):
    env = databricks_env()
    expected = {
        f"{env['catalog']}.{env['schemas'][layer]}.{name}"
        for layer, names in params()["tables"].items()
        for name in names.values()
    }
    assert {name for name in declared if name.count(".") == 2} == expected


def test_the_pipeline_declares_what_the_dashboard_report_and_alerts_read(declared):
    env = databricks_env()
    gold = params()["tables"]["gold"]
    read = {
        "dashboard": {
            n.replace("`", "") for w, n in used_table_names() if w.endswith(".json") or ".json:" in w
        },
        # `nyc911 alerts` reads gold through report.build's latest_alerts.
        "report and alerts": {
            f"{env['catalog']}.{env['schemas']['gold']}.{gold[k]}"
            for k in tables_read_by("report.build", "report.alerts")
        },
    }
    assert read["dashboard"] and len(read["report and alerts"]) >= 10
    for reader, names in read.items():
        assert names <= set(declared), f"{reader} reads tables the pipeline does not declare"


def test_the_pipeline_enforces_the_quality_rules_as_expectations(declared):
    rules = yaml.safe_load((REPO / "params" / "quality_rules.yaml").read_text(encoding="utf-8"))
    names = {r["name"] for r in rules["quality_rules"]}
    declared_rules = {n for k, by_name in declared.items() if k.startswith("expectations:") for n in by_name}
    assert declared_rules == names
