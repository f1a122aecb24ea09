"""Source column catalog and header sanitizing."""

from __future__ import annotations

import pytest

from nyc911lib import (
    SOURCE_COLUMNS,
    SOURCE_HEADERS,
    MissingColumnsError,
    bronze_column_names,
    sanitize_column_name,
)
from nyc911lib.schema import (
    BRONZE_SOURCE_NAMES,
    REQUIRED_BRONZE_NAMES,
    check_required_columns,
    parse_header_line,
)


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("Week Start Date", "week_start_date"),
        ("# of Incidents Calculated", "of_incidents_calculated"),
        (
            "Median Cumulative First Arrival  (Multi-Agency Incidents)",
            "median_cumulative_first_arrival_multi_agency_incidents",
        ),
        ("Call to First Arrival (Multi-Agency Incidents)", "call_to_first_arrival_multi_agency_incidents"),
        ("of_incidents_calculated", "of_incidents_calculated"),
        ("\ufeffWeek Start Date", "week_start_date"),
        ("  ", "unnamed"),
    ],
)
def test_sanitize_column_name(header, name):
    assert sanitize_column_name(header) == name


def test_catalog_has_the_30_export_columns_with_units():
    assert len(SOURCE_HEADERS) == 30
    assert len(set(BRONZE_SOURCE_NAMES)) == 30
    units = {c.header: c.kind for c in SOURCE_COLUMNS}
    assert units["Average Travel"] == "minutes"
    assert units["Call to First Pickup"] == "seconds"
    assert units["Median Travel"] == "seconds"
    assert sum(kind == "minutes" for kind in units.values()) == 8
    assert all(c.silver_name.endswith("_s") for c in SOURCE_COLUMNS if c.kind in ("seconds", "minutes"))
    assert REQUIRED_BRONZE_NAMES[:4] == (
        "week_start_date",
        "agency",
        "final_incident_type",
        "of_incidents_calculated",
    )


def test_bronze_column_names_keep_repeated_and_empty_headers():
    assert bronze_column_names(["Agency", "agency", "", "AGENCY"]) == [
        "agency",
        "agency_2",
        "unnamed",
        "agency_3",
    ]


def test_missing_required_columns_are_all_named():
    present = [c for c in REQUIRED_BRONZE_NAMES if c not in ("agency", "call_to_first_pickup")]
    with pytest.raises(MissingColumnsError) as err:
        check_required_columns("e2e.csv", present)
    assert err.value.missing == ["agency", "call_to_first_pickup"]
    assert (
        str(err.value)
        == f"e2e.csv: missing required columns ['agency', 'call_to_first_pickup']; the file has {present}"
    )


def test_api_field_names_map_to_the_same_bronze_names():
    api_header = ["week_start_date", "agency", "final_incident_type", "of_incidents_calculated"]
    portal_header = ["Week Start Date", "Agency", "Final Incident Type", "# of Incidents Calculated"]
    assert bronze_column_names(api_header) == bronze_column_names(portal_header) == api_header


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            '\ufeffWeek Start Date, Agency ,"# of Incidents, Calculated"',
            ["Week Start Date", "Agency", "# of Incidents, Calculated"],
        ),
        ("", []),
        (None, []),
    ],
)
def test_parse_header_line(line, expected):
    assert parse_header_line(line) == expected
