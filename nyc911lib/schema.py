"""The source format of NYC Open Data "911 End-to-End Data" (t7p9-n9dy) and its silver names.

One entry per source column: the header exactly as the portal's CSV export writes it, the silver
column it becomes, and the unit it arrives in. ``Call to ...`` and ``Median ...`` columns arrive in
seconds, ``Average ...`` (segment averages) in minutes; silver holds every duration in seconds.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass

from nyc911lib.errors import MissingColumnsError


@dataclass(frozen=True)
class SourceColumn:
    """One column of the export: its header, silver name, kind and whether a run needs it."""

    header: str
    silver_name: str
    kind: str  # "key", "count", "seconds" or "minutes"
    required: bool

    @property
    def bronze_name(self) -> str:
        """The sanitized snake_case name bronze stores the raw text under (the API's field name)."""
        return sanitize_column_name(self.header)


def sanitize_column_name(header: str) -> str:
    """Turn a source header into a snake_case column name.

    ``# of Incidents Calculated`` -> ``of_incidents_calculated`` (the SODA API's field name style),
    ``Median Cumulative First Arrival  (Multi-Agency Incidents)`` ->
    ``median_cumulative_first_arrival_multi_agency_incidents``. API field names pass unchanged.
    """
    name = re.sub(r"[^0-9a-zA-Z]+", "_", header.strip()).strip("_").lower()
    return name or "unnamed"


SOURCE_COLUMNS: tuple[SourceColumn, ...] = (
    SourceColumn("Week Start Date", "week_start_date", "key", True),
    SourceColumn("Agency", "agency", "key", True),
    SourceColumn("Final Incident Type", "incident_type", "key", True),
    SourceColumn("# of Incidents Calculated", "incidents", "count", True),
    SourceColumn("Call to First Pickup", "call_to_first_pickup_s", "seconds", True),
    SourceColumn("Call to PD Calltaker Handoff", "call_to_pd_calltaker_handoff_s", "seconds", False),
    SourceColumn("Call to FDNY Pickup", "call_to_fdny_pickup_s", "seconds", False),
    SourceColumn("Call to FDNY Job Creation", "call_to_fdny_job_creation_s", "seconds", False),
    SourceColumn("Call to EMS Pickup", "call_to_ems_pickup_s", "seconds", False),
    SourceColumn("Call to Agency Job Creation", "call_to_agency_job_creation_s", "seconds", False),
    SourceColumn("Call to Agency Dispatch", "call_to_agency_dispatch_s", "seconds", True),
    SourceColumn("Call to Agency Arrival", "call_to_agency_arrival_s", "seconds", True),
    SourceColumn(
        "Call to First Arrival (Multi-Agency Incidents)",
        "call_to_first_arrival_multi_agency_s",
        "seconds",
        True,
    ),
    SourceColumn("Median Pickup", "median_pickup_s", "seconds", False),
    SourceColumn("Median Calltaker Handoff", "median_calltaker_handoff_s", "seconds", False),
    SourceColumn("Median FDNY Pickup", "median_fdny_pickup_s", "seconds", False),
    SourceColumn("Median FDNY Job Creation", "median_fdny_job_creation_s", "seconds", False),
    SourceColumn("Median Ems Pickup", "median_ems_pickup_s", "seconds", False),
    SourceColumn("Median Ems Job Creation", "median_ems_job_creation_s", "seconds", False),
    SourceColumn("Median Dispatch", "median_dispatch_s", "seconds", True),
    SourceColumn("Median Travel", "median_travel_s", "seconds", True),
    SourceColumn(
        "Median Cumulative First Arrival  (Multi-Agency Incidents)",
        "median_first_arrival_multi_agency_s",
        "seconds",
        False,
    ),
    SourceColumn("Average Travel", "avg_travel_s", "minutes", True),
    SourceColumn("Average Dispatch", "avg_dispatch_s", "minutes", True),
    SourceColumn("Average EMS Processing", "avg_ems_processing_s", "minutes", False),
    SourceColumn("Average EMS Pickup", "avg_ems_pickup_s", "minutes", False),
    SourceColumn("Average Calltaker Processing", "avg_calltaker_processing_s", "minutes", False),
    SourceColumn("Average Pickup", "avg_pickup_s", "minutes", False),
    SourceColumn("Average FD Pickup", "avg_fd_pickup_s", "minutes", False),
    SourceColumn("Average FD Processing", "avg_fd_processing_s", "minutes", False),
)

SOURCE_HEADERS: tuple[str, ...] = tuple(c.header for c in SOURCE_COLUMNS)
BRONZE_SOURCE_NAMES: tuple[str, ...] = tuple(c.bronze_name for c in SOURCE_COLUMNS)
REQUIRED_BRONZE_NAMES: tuple[str, ...] = tuple(c.bronze_name for c in SOURCE_COLUMNS if c.required)
DURATION_COLUMNS: tuple[SourceColumn, ...] = tuple(
    c for c in SOURCE_COLUMNS if c.kind in ("seconds", "minutes")
)
NATURAL_KEY: tuple[str, ...] = ("week_start_date", "agency", "incident_type")

# Lineage columns bronze adds to every row (leading underscore: not from the source).
LINEAGE_COLUMNS: tuple[str, ...] = (
    "_source_file",
    "_source_kind",
    "_batch_id",
    "_ingested_at",
    "_line_number",
    "_corrupt_record",
)


def bronze_column_names(header: Sequence[str]) -> list[str]:
    """Sanitized, unique snake_case names for a source header (portal headers or API field names).

    A repeated or empty header gets a numeric suffix rather than silently overwriting a column.
    """
    names: list[str] = []
    for raw in header:
        base = sanitize_column_name(raw)
        name, n = base, 2
        while name in names:
            name, n = f"{base}_{n}", n + 1
        names.append(name)
    return names


def check_required_columns(source: str, names: Sequence[str]) -> None:
    """Raise MissingColumnsError naming every required column the header lacks."""
    missing = [c for c in REQUIRED_BRONZE_NAMES if c not in names]
    if missing:
        raise MissingColumnsError(source, missing, list(names))


def parse_header_line(line: str | None) -> list[str]:
    """The column names of a CSV header line (byte-order mark and surrounding spaces removed)."""
    if not line:
        return []
    return [h.strip() for h in next(csv.reader([line.lstrip("\ufeff")]), [])]


# The columns of a breach row of gold.sla_alerts before its streak (`transforms.sla`), named here so
# no transform asks a frame for its columns (a declarative pipeline on Spark Connect cannot analyse
# a plan while declaring it) and the alerts payload checks the same names (`report.alerts`).
BREACH_COLUMNS = (
    "rule",
    "metric",
    "agency",
    "incident_type",
    "week_start_date",
    "observed_s",
    "threshold_s",
    "incidents_affected",
)
