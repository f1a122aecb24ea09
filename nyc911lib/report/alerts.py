"""SLA alerts for one week: a JSON payload, a Markdown digest and the two files.

The CLI (`nyc911 alerts`) reads the latest week's rows of gold `sla_alerts` into dicts (dates as
`datetime.date`) and passes them in. `alerts_payload` and `alerts_markdown` are pure.

Agency and incident-type names come from an external CSV and are untrusted text: in Markdown every
cell is put on one line, shortened to `MAX_CELL_CHARS`, has `& < >` written as HTML entities (no
raw HTML) and the characters | \\ ` [ ] backslash-escaped (no broken table, code span or link). Emphasis
characters are left alone: at worst they change the look of a name.

The webhook POST is `nyc911lib.report.webhook`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import unicodedata
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nyc911lib.io.files import write_atomic
from nyc911lib.schema import BREACH_COLUMNS

log = logging.getLogger("nyc911")


SCHEMA = "nyc911.sla_alerts/v1"
ALERTS_JSON = "sla_alerts.json"
ALERTS_MARKDOWN = "sla_alerts.md"
ALERT_COLUMNS = (*BREACH_COLUMNS, "streak_start_week", "streak_weeks")  # a row of gold.sla_alerts
MAX_CELL_CHARS = 120  # longer Markdown cells are cut to this many characters, ending in "…"
NA = "n/a"

_TITLE = "NYC 911 SLA alerts"
_TABLE_HEADER = (
    "| Rule | Agency | Incident type | Observed (s) | Threshold (s) | Incidents | Breaching since |",
    "| --- | --- | --- | ---: | ---: | ---: | --- |",
)
_MD_ESCAPES = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        "\\": "\\\\",
        "|": "\\|",
        "`": "\\`",
        "[": "\\[",
        "]": "\\]",
    }
)
_LINE_BREAKING = frozenset({"Cc", "Zl", "Zp"})  # control characters, line and paragraph separators


# --- Payload --------------------------------------------------------------------------------------


def alerts_payload(
    alerts: Sequence[Mapping[str, Any]], *, week: dt.date | None, generated_at: dt.datetime, source: str
) -> dict[str, Any]:
    """The JSON-ready alert document; alerts by incidents affected (desc), agency, incident type, rule.

    Floats are kept whole; NaN and infinities become None. A naive `generated_at` is taken as UTC.
    Raises ValueError naming an alert (0-based, input order) that lacks any of `ALERT_COLUMNS`.
    """
    entries = sorted((_alert_entry(i, alert) for i, alert in enumerate(alerts)), key=_sort_key)
    return {
        "schema": SCHEMA,
        "generated_at": _utc_iso(generated_at),
        "week_start_date": _iso_date(week),
        "source": source,
        "alert_count": len(entries),
        "incidents_affected": sum(entry["incidents_affected"] or 0 for entry in entries),
        "alerts": entries,
    }


def _alert_entry(index: int, alert: Mapping[str, Any]) -> dict[str, Any]:
    """One alert as plain JSON values, with `excess_s` = observed - threshold."""
    missing = [column for column in ALERT_COLUMNS if column not in alert]
    if missing:
        raise ValueError(f"alert {index} is missing {', '.join(missing)}")
    observed, threshold = _seconds(alert["observed_s"]), _seconds(alert["threshold_s"])
    excess = _seconds(observed - threshold) if observed is not None and threshold is not None else None
    return {
        "rule": _text(alert["rule"]),
        "metric": _text(alert["metric"]),
        "agency": _text(alert["agency"]),
        "incident_type": _text(alert["incident_type"]),
        "week_start_date": _iso_date(alert["week_start_date"]),
        "observed_s": observed,
        "threshold_s": threshold,
        "excess_s": excess,
        "incidents_affected": _count(alert["incidents_affected"]),
        "streak_start_week": _iso_date(alert["streak_start_week"]),
        "streak_weeks": _count(alert["streak_weeks"]),
    }


def _sort_key(entry: Mapping[str, Any]) -> tuple[int, str, str, str, str]:
    return (
        -(entry["incidents_affected"] or 0),
        entry["agency"] or "",
        entry["incident_type"] or "",
        entry["rule"] or "",
        entry["metric"] or "",
    )


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _count(value: Any) -> int | None:
    return None if value is None else int(value)


def _seconds(value: Any) -> float | None:
    """A finite float, or None (for None, NaN and infinities)."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _iso_date(value: object) -> str | None:
    """`YYYY-MM-DD` for a date, a datetime (its date) or an ISO date string; None stays None."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        return dt.date.fromisoformat(value).isoformat()
    raise TypeError(f"expected a date, got {type(value).__name__}")


def _utc_iso(moment: dt.datetime) -> str:
    """`YYYY-MM-DDTHH:MM:SSZ` in UTC (naive = UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- Markdown -------------------------------------------------------------------------------------


def alerts_markdown(payload: Mapping[str, Any]) -> str:
    """A Markdown digest of `payload`: heading, one-line summary, a table of the alerts, provenance."""
    week = payload["week_start_date"]
    alerts = payload["alerts"]
    lines = [f"# {_TITLE} — week of {md_text(week)}" if week else f"# {_TITLE}", ""]
    lines += [_summary(week, len(alerts), payload["incidents_affected"]), ""]
    if alerts:
        lines += [*_TABLE_HEADER, *(_table_row(alert) for alert in alerts), ""]
    lines.append(f"Generated {md_text(payload['generated_at'])} from {md_text(payload['source'])}.")
    return "\n".join(lines) + "\n"


def md_text(value: object) -> str:
    """Untrusted text made safe for one Markdown table cell (one line, escaped, at most MAX_CELL_CHARS)."""
    text = NA if value is None else str(value)
    text = "".join(" " if unicodedata.category(ch) in _LINE_BREAKING else ch for ch in text)
    text = " ".join(text.split())
    if len(text) > MAX_CELL_CHARS:
        text = text[: MAX_CELL_CHARS - 1] + "…"
    return text.translate(_MD_ESCAPES)


def _summary(week: str | None, count: int, incidents: int) -> str:
    if not count:
        return f"No SLA alerts for the week of {md_text(week)}" if week else "No SLA alerts"
    return f"{count:,} SLA {plural(count, 'alert')}, {incidents:,} {plural(incidents, 'incident')} affected"


def _table_row(alert: Mapping[str, Any]) -> str:
    cells = (
        alert["rule"],
        alert["agency"],
        alert["incident_type"],
        _decimal(alert["observed_s"]),
        _decimal(alert["threshold_s"]),
        _integer(alert["incidents_affected"]),
        _since(alert["streak_start_week"], alert["streak_weeks"]),
    )
    return "| " + " | ".join(md_text(cell) for cell in cells) + " |"


def _decimal(value: float | None) -> str:
    return NA if value is None else f"{value:,.1f}"


def _integer(value: int | None) -> str:
    return NA if value is None else f"{value:,}"


def _since(start: str | None, weeks: int | None) -> str:
    """`2025-11-24 (4 weeks)`: the first week of the breach streak and its length."""
    if start is None:
        return NA
    return start if weeks is None else f"{start} ({weeks:,} {plural(weeks, 'week')})"


def plural(n: int, word: str) -> str:
    return word if n == 1 else f"{word}s"


# --- Files ----------------------------------------------------------------------------------------


def write_alert_files(payload: Mapping[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """Write `sla_alerts.json` and `sla_alerts.md` into `out_dir`, each atomically; return both paths.

    Both texts are rendered before anything is written (a payload that is not strict JSON, e.g. with
    NaN, raises ValueError and touches nothing); a failed write leaves the previous file intact.
    """
    json_text = json.dumps(payload, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    markdown = alerts_markdown(payload)
    out = Path(out_dir)
    return write_atomic(out / ALERTS_JSON, json_text), write_atomic(out / ALERTS_MARKDOWN, markdown)
