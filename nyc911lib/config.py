"""Parameters from `params/*.yaml`: environments, table names, SLA and quality rules.

Code receives plain values from here; nothing in the library hard-codes a table name or a rule.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from nyc911lib.engine import DEFAULT_ENGINE, ENGINES
from nyc911lib.errors import ParamsError

LAYERS = ("bronze", "silver", "gold")
QUALITY_ACTIONS = ("warn", "drop", "fail")
DEFAULT_PARAMS = Path(__file__).resolve().parent.parent / "params" / "default.yaml"


@dataclass(frozen=True)
class QualityRule:
    """A data-quality expectation: a SQL condition rows must meet, and what to do when they don't."""

    name: str
    condition: str
    action: str


@dataclass(frozen=True)
class SlaRule:
    """A row breaches when `metric` (a kpi_weekly column, seconds) exceeds `threshold_s`."""

    name: str
    metric: str
    threshold_s: float
    description: str = ""
    agencies: tuple[str, ...] = ()
    incident_types: tuple[str, ...] = ()

    @property
    def flag_column(self) -> str:
        """The kpi_weekly column holding this rule's breach flag."""
        return f"sla_breach_{self.name}"


@dataclass(frozen=True)
class AlertSettings:
    """Where `nyc911 alerts` posts: the webhook URL is read from the environment variable named
    here (URLs of chat webhooks carry their secret), never from a file."""

    webhook_url_env: str = "NYC911_ALERTS_WEBHOOK"
    retries: int = 3
    backoff_s: float = 1.0
    timeout_s: float = 10.0


@dataclass(frozen=True)
class PerformanceSettings:
    """How a run sizes its Spark work to its data (see README, Performance).

    - A landed file up to `whole_file_max_mb` is read whole (one task, hashed in Spark); a larger
      one is read line by line in parallel splits by Spark's text reader and hashed on the
      driver, so a file never has to fit in one task's memory.
    - Shuffles get one partition per `shuffle_partition_mb` of bronze data, at least
      `min_shuffle_partitions`: a few partitions for the 12k-row export (200 would be 200 tiny
      tasks per shuffle), more as the data grows.
    - The spark engine starts its local driver JVM for a short run (C1 compiler only, serial GC)
      while the warehouse's landing folder and bronze stay under `quick_start_max_mb`.
    - A gold table over `zorder_min_mb` is Z-ordered by agency and week after it is rebuilt
      (OPTIMIZE), where the report's and dashboards' filters then skip files; below that the
      OPTIMIZE would cost more than it saves, and no gold table is looked at while bronze itself
      is smaller.
    - The duckdb engine's DuckDB holds at most `duckdb_memory_limit_gb` and spills the rest to
      `<warehouse>/.duckdb-spill` (DuckDB's own defaults are 80 % of the machine's memory and a
      `.tmp` folder in whatever directory the command was started from). DuckDB fills its limit
      before it spills, and about 2 GB more sit outside it at 1,000x the export (pyarrow's
      read-ahead of the Delta files it scans, delta-rs's writer): 3 GB keeps the process tree
      under 6 GB there (4 GB peaked at 6.18 GB in silver).
    - Gold recomputes only the weeks a publication reaches when silver's `e2e_weekly` holds
      `weeks_gold_min_mb` or more (0: always); below that it rebuilds all of gold, which is
      cheaper there: planning the week ranges costs more than the few rows saved (see README,
      Performance, for the measurements).
    - On the duckdb engine, a whole build computes each gold table of weekly rows (those with a
      `reach` in the registry) in pieces of consecutive weeks holding about `duckdb_gold_piece_mb`
      of silver each, one piece after the other, each from the input weeks it reads: at 1,000x the
      export the anomaly baseline's join of all weeks at once (420 M pairs) ran out of DuckDB's
      memory. Spark's shuffles spill by partition and take each table whole.
    """

    whole_file_max_mb: float = 64.0
    shuffle_partition_mb: float = 64.0
    min_shuffle_partitions: int = 4
    zorder_min_mb: float = 128.0
    quick_start_max_mb: float = 100.0
    duckdb_memory_limit_gb: float = 3.0
    weeks_gold_min_mb: float = 8.0
    duckdb_gold_piece_mb: float = 64.0


# Performance settings for which 0 is meaningful (the others must be positive).
PERFORMANCE_ZERO_ALLOWED = ("weeks_gold_min_mb",)


@dataclass(frozen=True)
class RetentionSettings:
    """How long a local warehouse keeps old table versions, and when `nyc911 run` cleans up.

    - Every table keeps `keep_days` of history: its Delta log entries (`delta.logRetentionDuration`)
      and the data files its older versions read (`delta.deletedFileRetentionDuration`), so any
      version committed in the last `keep_days` can be read by time travel.
    - `nyc911 run` maintains the warehouse's tables when its last maintenance (or, never
      maintained, its first publication) is `vacuum_every_days` old or older: sets those two
      properties, VACUUMs the files no version of the last `keep_days` reads, writes a checkpoint
      and removes the log entries older than `keep_days`. 0 maintains at every run; None (`null`)
      never.
    """

    keep_days: int = 30
    vacuum_every_days: int | None = 7


@dataclass(frozen=True)
class ResponseTimeSettings:
    """The end-to-end response time headline (gold.kpi_response_time): which (agency code,
    incident type) series are each agency's most urgent, and how many weeks its trailing period
    holds (compared with the same weeks 52 weeks earlier)."""

    most_urgent: tuple[tuple[str, str], ...] = (
        ("NYPD", "Critical"),
        ("FDNY", "Structural Fires"),
        ("EMS", "Life Threatening Med Emergencies"),
    )
    trailing_weeks: int = 52


def _response_time(values: Any, agency_codes: dict[str, str], path: Path) -> ResponseTimeSettings:
    """params `response_time` (most_urgent: agency code -> incident types; trailing_weeks)."""
    if values is None:
        return ResponseTimeSettings()
    if not isinstance(values, dict):
        raise ParamsError(f"{path}: response_time must be a mapping, got {values!r}")
    unknown = sorted(set(values) - {"most_urgent", "trailing_weeks"})
    if unknown:
        raise ParamsError(
            f"{path}: unknown response_time settings {unknown}; known: ['most_urgent', 'trailing_weeks']"
        )
    weeks = values.get("trailing_weeks", ResponseTimeSettings.trailing_weeks)
    if isinstance(weeks, bool) or not isinstance(weeks, int) or not 1 <= weeks <= 260:
        raise ParamsError(
            f"{path}: response_time.trailing_weeks must be a whole number from 1 to 260, got {weeks!r}"
        )
    urgent = values.get("most_urgent")
    if urgent is None:
        return ResponseTimeSettings(trailing_weeks=weeks)
    codes = sorted(set(agency_codes.values()))
    if not isinstance(urgent, dict) or not urgent:
        raise ParamsError(
            f"{path}: response_time.most_urgent must map agency codes to incident types, got {urgent!r}"
        )
    series = []
    for agency, named in urgent.items():
        if agency not in codes:
            raise ParamsError(
                f"{path}: response_time.most_urgent names the agency '{agency}', "
                f"not an agency code of agency_codes {codes}"
            )
        kinds = [named] if isinstance(named, str) else named
        if (
            not isinstance(kinds, list)
            or not kinds
            or not all(isinstance(k, str) and k.strip() for k in kinds)
        ):
            raise ParamsError(
                f"{path}: response_time.most_urgent.{agency} must list incident types, got {kinds!r}"
            )
        series += [(str(agency), k.strip()) for k in kinds]
    return ResponseTimeSettings(most_urgent=tuple(series), trailing_weeks=weeks)


# The settings of gold.anomalies that params may set (see nyc911lib/transforms/anomalies.py).
ANOMALY_SETTINGS = ("metrics", "threshold", "min_baseline_weeks", "min_incidents")


_DATASET_ID = re.compile(r"^[a-z0-9]{4}-[a-z0-9]{4}$")


@dataclass(frozen=True)
class FetchConfig:
    """Where to download from and how patiently.

    `retries` is the number of repeats after the first attempt; the wait before repeat n (0-based)
    is ``backoff_s * 2**n``, or the server's ``Retry-After``, never more than `backoff_cap_s`.
    `timeout_s` bounds each connect and each read (a server silent that long fails the attempt).
    The app token is read from the environment variable named by `app_token_env`, never stored here.
    """

    base_url: str = "https://data.cityofnewyork.us"
    dataset_id: str = "t7p9-n9dy"
    timeout_s: float = 30.0
    retries: int = 5
    backoff_s: float = 1.0
    backoff_cap_s: float = 60.0
    page_size: int = 50_000
    app_token_env: str = "NYC911_APP_TOKEN"

    def __post_init__(self) -> None:
        checks = {
            "base_url must start with http:// or https://": self.base_url.startswith(("http://", "https://")),
            "dataset_id must look like 'abcd-1234'": bool(_DATASET_ID.match(self.dataset_id)),
            "timeout_s must be > 0": self.timeout_s > 0,
            "retries must be >= 0": self.retries >= 0,
            "backoff_s must be >= 0": self.backoff_s >= 0,
            "backoff_cap_s must be >= 0": self.backoff_cap_s >= 0,
            "page_size must be >= 1": self.page_size >= 1,
        }
        problems = [problem for problem, ok in checks.items() if not ok]
        if problems:
            raise ParamsError("fetch config: " + "; ".join(problems))


@dataclass(frozen=True)
class Params:
    """Everything a run needs to know, resolved from one params file."""

    environment: str
    warehouse: Path | None
    catalog: str | None
    schemas: dict[str, str]
    tables: dict[str, dict[str, str]]
    reports_dir: Path
    quality_rules: tuple[QualityRule, ...]
    sla_rules: tuple[SlaRule, ...]
    agency_codes: dict[str, str]
    incident_type_fixes: dict[str, str]
    unspecified_incident_type: str
    fetch: FetchConfig = field(default_factory=FetchConfig)
    landing: Path | None = None
    source_file: Path = field(default=Path("params/default.yaml"))
    anomalies: dict[str, Any] = field(default_factory=dict)
    alerts: AlertSettings = field(default_factory=AlertSettings)
    performance: PerformanceSettings = field(default_factory=PerformanceSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    response_time: ResponseTimeSettings = field(default_factory=ResponseTimeSettings)
    engine: str = DEFAULT_ENGINE  # duckdb (embedded) or spark; see nyc911lib.engine

    def with_warehouse(self, warehouse: str | Path) -> Params:
        """A copy that stores its tables under another local warehouse folder."""
        return replace(self, warehouse=Path(warehouse).resolve())

    @property
    def agency_names(self) -> dict[str, str]:
        """Agency code -> the name the source (and people) use: `agency_codes` read backwards
        (`NYPD_NON_CIP` -> `NYPD (Non-CIP)`); a code several names map to keeps the first."""
        names: dict[str, str] = {}
        for name, code in self.agency_codes.items():
            names.setdefault(code, name)
        return names

    @property
    def landing_dir(self) -> Path:
        """Where downloaded and replayed exports land: the environment's `landing_dir`, else
        `<warehouse>/landing` (so a warehouse carries its own publications)."""
        if self.landing is not None:
            return self.landing
        if self.warehouse is None:
            raise ParamsError(
                f"params: environment '{self.environment}' sets neither landing_dir nor warehouse"
            )
        return self.warehouse / "landing"


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ParamsError(f"params file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ParamsError(f"params file {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ParamsError(f"params file {path} must hold a mapping at the top level")
    return data


def _require(data: dict[str, Any], key: str, path: Path) -> Any:
    if key not in data:
        raise ParamsError(f"params file {path} lacks the key '{key}'")
    return data[key]


def parse_quality_rules(entries: list[dict[str, Any]], path: Path) -> tuple[QualityRule, ...]:
    """Validate quality-rule entries: unique names, a condition, a known action."""
    rules = []
    for entry in entries:
        name = entry.get("name")
        action = entry.get("action")
        if not name or not entry.get("condition"):
            raise ParamsError(f"{path}: every quality rule needs a name and a condition: {entry}")
        if action not in QUALITY_ACTIONS:
            raise ParamsError(
                f"{path}: quality rule '{name}' has action '{action}'; "
                f"expected one of {list(QUALITY_ACTIONS)}"
            )
        rules.append(QualityRule(str(name), str(entry["condition"]), str(action)))
    names = [r.name for r in rules]
    if len(set(names)) != len(names):
        raise ParamsError(f"{path}: quality rule names must be unique: {names}")
    return tuple(rules)


def parse_sla_rules(entries: list[dict[str, Any]], path: Path) -> tuple[SlaRule, ...]:
    """Validate SLA-rule entries: unique snake_case names, a metric and a numeric threshold."""
    rules = []
    for entry in entries:
        name = entry.get("name")
        if not name or not str(name).isidentifier():
            raise ParamsError(f"{path}: SLA rule name must be a snake_case identifier: {entry}")
        if not entry.get("metric") or not isinstance(entry.get("threshold_s"), (int, float)):
            raise ParamsError(f"{path}: SLA rule '{name}' needs a metric and a numeric threshold_s")
        rules.append(
            SlaRule(
                name=str(name),
                metric=str(entry["metric"]),
                threshold_s=float(entry["threshold_s"]),
                description=str(entry.get("description", "")),
                agencies=tuple(entry.get("agencies") or ()),
                incident_types=tuple(entry.get("incident_types") or ()),
            )
        )
    names = [r.name for r in rules]
    if len(set(names)) != len(names):
        raise ParamsError(f"{path}: SLA rule names must be unique: {names}")
    return tuple(rules)


ENVIRONMENT_KEYS = ("warehouse", "landing_dir", "catalog", "schemas")
# Settings of earlier versions, whose runs were driven by Structured Streaming checkpoints.
RETIRED_ENVIRONMENT_KEYS = ("checkpoints_dir", "ingest_format")


def _check_environment(env: dict[str, Any], name: str, path: Path) -> None:
    """Refuse an environment setting this version does not know, naming it."""
    for key in env:
        if key in RETIRED_ENVIRONMENT_KEYS:
            raise ParamsError(
                f"{path}: environment '{name}' sets {key}, which this version no longer uses (runs "
                "are driven by Delta table versions, not streaming checkpoints): remove it"
            )
        if key not in ENVIRONMENT_KEYS:
            raise ParamsError(
                f"{path}: environment '{name}' has an unknown setting '{key}'; "
                f"known: {list(ENVIRONMENT_KEYS)}"
            )


def _performance(values: dict[str, Any], path: Path) -> PerformanceSettings:
    for key, value in values.items():
        zero_allowed = key in PERFORMANCE_ZERO_ALLOWED
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or value < 0
            or (value == 0 and not zero_allowed)
        ):
            kind = "a number (0 or more)" if zero_allowed else "a positive number"
            raise ParamsError(f"{path}: performance.{key} must be {kind}, got {value!r}")
    if "min_shuffle_partitions" in values and not isinstance(values["min_shuffle_partitions"], int):
        raise ParamsError(
            f"{path}: performance.min_shuffle_partitions must be a whole number, "
            f"got {values['min_shuffle_partitions']!r}"
        )
    return PerformanceSettings(**values)


def _retention(values: dict[str, Any], path: Path) -> RetentionSettings:
    for key, value in values.items():
        allowed = value is None and key == "vacuum_every_days"
        if not allowed and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ParamsError(
                f"{path}: retention.{key} must be a whole number of days (0 or more), got {value!r}"
            )
    return RetentionSettings(**values)


def load_params(path: str | Path | None = None, sla_rules_file: str | Path | None = None) -> Params:
    """Load a params file (default: the project's `params/default.yaml`).

    Relative paths inside it are resolved against its folder. The environment variables
    ``NYC911_WAREHOUSE`` and ``NYC911_REPORTS_DIR`` override the local warehouse and the reports
    folder (tests and notebooks under nbval use them); ``NYC911_ENVIRONMENT`` picks the environment
    and ``NYC911_CATALOG`` the Unity Catalog catalog of a catalog environment (a dev deployment).
    """
    path = Path(path).resolve() if path else DEFAULT_PARAMS
    data = _read_yaml(path)
    base = path.parent
    environment = os.environ.get("NYC911_ENVIRONMENT") or _require(data, "environment", path)
    envs = _require(data, "environments", path)
    if environment not in envs:
        raise ParamsError(f"{path}: environment '{environment}' is not in {sorted(envs)}")
    env = envs[environment] or {}
    _check_environment(env, environment, path)
    warehouse_value = os.environ.get("NYC911_WAREHOUSE") or env.get("warehouse")
    warehouse = (base / warehouse_value).resolve() if warehouse_value else None
    tables = _require(data, "tables", path)
    for layer in LAYERS:
        if layer not in tables:
            raise ParamsError(f"{path}: tables lacks the layer '{layer}'")
    fetch_values = data.get("fetch") or {}
    unknown = sorted(set(fetch_values) - set(FetchConfig.__dataclass_fields__))
    if unknown:
        raise ParamsError(f"{path}: unknown fetch settings {unknown}")
    landing_value = os.environ.get("NYC911_LANDING_DIR") or env.get("landing_dir")
    anomalies = dict(data.get("anomalies") or {})
    alerts = dict(data.get("alerts") or {})
    performance = dict(data.get("performance") or {})
    retention = dict(data.get("retention") or {})
    for section, values, known in (
        ("anomalies", anomalies, ANOMALY_SETTINGS),
        ("alerts", alerts, tuple(AlertSettings.__dataclass_fields__)),
        ("performance", performance, tuple(PerformanceSettings.__dataclass_fields__)),
        ("retention", retention, tuple(RetentionSettings.__dataclass_fields__)),
    ):
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ParamsError(f"{path}: unknown {section} settings {unknown}; known: {sorted(known)}")
    if "metrics" in anomalies:
        anomalies["metrics"] = tuple(anomalies["metrics"])
    quality_path = base / _require(data, "quality_rules_file", path)
    sla_path = (
        Path(sla_rules_file).resolve() if sla_rules_file else base / _require(data, "sla_rules_file", path)
    )
    agency_codes = dict(_require(data, "agency_codes", path))
    engine = str(data.get("engine", DEFAULT_ENGINE))
    if engine not in ENGINES:
        raise ParamsError(f"{path}: engine must be one of {list(ENGINES)}, got '{engine}'")
    return Params(
        engine=engine,
        environment=environment,
        warehouse=warehouse,
        catalog=(os.environ.get("NYC911_CATALOG") or env.get("catalog")) if "catalog" in env else None,
        schemas=dict(env.get("schemas") or {}),
        tables={layer: dict(tables[layer]) for layer in LAYERS},
        reports_dir=Path(
            os.environ.get("NYC911_REPORTS_DIR") or (base / data.get("reports_dir", "../reports"))
        ).resolve(),
        quality_rules=parse_quality_rules(
            _require(_read_yaml(quality_path), "quality_rules", quality_path), quality_path
        ),
        sla_rules=parse_sla_rules(_require(_read_yaml(sla_path), "sla_rules", sla_path), sla_path),
        agency_codes=agency_codes,
        incident_type_fixes=dict(data.get("incident_type_fixes") or {}),
        unspecified_incident_type=str(data.get("unspecified_incident_type", "Unspecified")),
        fetch=FetchConfig(**fetch_values),
        landing=(base / landing_value).resolve() if landing_value else None,
        source_file=path,
        anomalies=anomalies,
        alerts=AlertSettings(**alerts),
        performance=_performance(performance, path),
        retention=_retention(retention, path),
        response_time=_response_time(data.get("response_time"), agency_codes, path),
    )


def parse_date(value: str | dt.date | None, name: str) -> dt.date | None:
    """A `YYYY-MM-DD` parameter as a date (None stays None); a clear error otherwise."""
    if value is None or isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as exc:
        raise ParamsError(f"{name} must be a date as YYYY-MM-DD, got '{value}'") from exc


def parse_flag(value: str | bool | None, name: str) -> bool:
    """A yes/no parameter (a bool, or `true`/`false` text from a Databricks widget)."""
    if value is None or isinstance(value, bool):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no", ""):
        return False
    raise ParamsError(f"{name} must be true or false, got '{value}'")
