"""Landing: landed file names, what a warehouse holds, and which publication a run may add."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from nyc911lib.errors import MixedSourcesError
from nyc911lib.run.landing import (
    Holdings,
    check_new_publication,
    check_not_mixed,
    holdings,
    landed_files,
    publication_id,
    publication_stamp,
    requested_kind,
    source_kind_of,
)

WHERE = "the warehouse /w"
SAMPLE_ONLY = Holdings(frozenset({"sample"}))
REAL_ONLY = Holdings(frozenset({"file", "live"}))
MIXED = Holdings(frozenset({"sample", "file"}))
EMPTY = Holdings(frozenset())


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("20261126T200102123456Z__sample__nyc911_sample.csv", "sample"),
        ("20261126T200102123456Z__file__x__live__.csv", "file"),
        ("nyc911_e2e_20261126T200102Z.csv", "live"),
        ("dropped_by_hand.csv", "file"),
    ],
)
def test_source_kind_of_a_landed_file(name, kind):
    assert source_kind_of(name) == kind


@pytest.mark.parametrize(
    ("name", "stamp"),
    [
        ("20261126T200102123456Z__file__export.csv", "20261126T200102123456Z"),
        ("nyc911_e2e_20261126T200102Z.csv", "20261126T200102000000Z"),
        ("export.csv", None),
    ],
)
def test_publication_stamp_from_a_landed_name(name, stamp):
    assert publication_stamp(name) == stamp


def test_publication_ids_sort_in_landing_order():
    sha = "1a2b3c4d" + "0" * 56
    modified = dt.datetime(2026, 1, 1, 12, 0, 0, 5)
    ids = [
        publication_id("20261126T200102000001Z__file__a.csv", modified, sha),
        publication_id("nyc911_e2e_20261126T200103Z.csv", modified, sha),
        publication_id("20261126T200103000001Z__file__b.csv", modified, sha),
    ]
    assert ids == sorted(ids)
    assert ids[1] == "20261126T200103000000Z-1a2b3c4d"
    assert publication_id("by_hand.csv", modified, sha) == "20260101T120000000005Z-1a2b3c4d"


def test_holdings_are_the_kinds_of_landed_and_ingested_files(tmp_path):
    landing = tmp_path / "landing"
    assert holdings(landing) == EMPTY  # no folder yet
    landing.mkdir()
    for name in ("20261126T200102123456Z__sample__s.csv", ".nyc911_e2e_x.csv.part", "notes.txt"):
        (landing / name).write_text("x")
    assert [p.name for p in landed_files(landing)] == ["20261126T200102123456Z__sample__s.csv"]
    held = holdings(landing, {"live"})
    assert held.kinds == {"sample", "live"}
    assert (held.sample, held.real, held.mixed, held.empty) == (True, True, True, False)


@pytest.mark.parametrize(
    ("source", "held", "kind"),
    [
        (None, EMPTY, "sample"),  # a new warehouse: the built-in sample
        (None, REAL_ONLY, None),  # an existing one: nothing to land, process what is landed
        (None, SAMPLE_ONLY, None),
        ("sample", REAL_ONLY, "sample"),  # asked for explicitly (and then refused, below)
        ("live", EMPTY, "live"),
        (Path("exports/e.csv"), SAMPLE_ONLY, "file"),
        ("./live", EMPTY, "file"),  # a local file named live
    ],
)
def test_requested_kind(source, held, kind):
    assert requested_kind(source, held) == kind


@pytest.mark.parametrize(
    ("held", "kind", "message"),
    [
        (
            REAL_ONLY,
            "sample",
            "the warehouse /w holds real publications; the built-in synthetic sample is not landed in it "
            "(run without --source to process what is landed, or pass --allow-mixed-sources to add the "
            "sample anyway)",
        ),
        (
            SAMPLE_ONLY,
            "file",
            "the warehouse /w holds the built-in synthetic sample; a real export is not landed in it (use "
            "another --warehouse for real data, or pass --allow-mixed-sources to mix them)",
        ),
        (
            SAMPLE_ONLY,
            "live",
            "the warehouse /w holds the built-in synthetic sample; a real export is not landed in it (use "
            "another --warehouse for real data, or pass --allow-mixed-sources to mix them)",
        ),
    ],
)
def test_a_publication_that_would_mix_sample_and_real_is_refused(held, kind, message):
    with pytest.raises(MixedSourcesError) as err:
        check_new_publication(held, kind, WHERE)
    assert str(err.value) == message
    check_new_publication(held, kind, WHERE, allow_mixed=True)  # asked for explicitly


@pytest.mark.parametrize(
    ("held", "kind"),
    [(EMPTY, "sample"), (EMPTY, "file"), (SAMPLE_ONLY, "sample"), (REAL_ONLY, "file"), (REAL_ONLY, "live")],
)
def test_a_publication_of_the_same_kind_is_accepted(held, kind):
    check_new_publication(held, kind, WHERE)


def test_a_warehouse_that_already_mixes_them_is_refused_unless_allowed():
    with pytest.raises(MixedSourcesError) as err:
        check_not_mixed(MIXED, WHERE)
    assert str(err.value) == (
        "the warehouse /w mixes the built-in synthetic sample with real publications, so its KPIs blend "
        "both: rebuild it from the real exports (README, Weekly operation), or pass --allow-mixed-sources "
        "to process it as it is"
    )
    check_not_mixed(MIXED, WHERE, allow_mixed=True)
    for held in (EMPTY, SAMPLE_ONLY, REAL_ONLY):
        check_not_mixed(held, WHERE)
