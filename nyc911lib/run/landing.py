"""Landing: what a warehouse holds, and which publication a run may add to it.

Every publication is an immutable file in the landing folder whose name says how it arrived:
`<UTC stamp>__<kind>__<name>` for a replayed export (`file`) or the built-in sample (`sample`),
`nyc911_e2e_<stamp>.csv` for a download (`live`), anything else for a file dropped in by hand
(`file`). A warehouse therefore records what it holds in its landing folder, and bronze's ingest
log keeps the same kinds for files that were removed from it since.

The built-in synthetic sample and real publications never mix by accident: a run without a
source lands the sample only in a new, empty warehouse; a real export is refused in a sample
warehouse and the sample in a real one, unless `allow_mixed` (the CLI's `--allow-mixed-sources`)
says the user wants exactly that.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

from nyc911lib.config import Params
from nyc911lib.errors import MixedSourcesError, ParamsError
from nyc911lib.io import storage
from nyc911lib.io.fetch import LANDED_PREFIX as FETCHED_PREFIX
from nyc911lib.io.fetch import fetch_csv_export
from nyc911lib.io.files import copy_atomic
from nyc911lib.sample import write_sample
from nyc911lib.schema import bronze_column_names, check_required_columns

SAMPLE = "sample"
REAL_KINDS = ("file", "live")
LANDED_KINDS = (SAMPLE, *REAL_KINDS)
LANDED_GLOB = "*.csv"  # hidden `.part` files of a download or copy in progress never match
ALLOW_MIXED_FLAG = "--allow-mixed-sources"
SAMPLE_SOURCE = "sample"  # `--source sample`: the built-in sample, asked for explicitly

_STAMP = re.compile(r"(\d{8}T\d{6})(\d{6})?Z")


def landed_stamp(now: dt.datetime | None = None) -> str:
    """`20261126T200102123456Z`: UTC landing time to the microsecond, sortable as text."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return f"{now.astimezone(dt.timezone.utc):%Y%m%dT%H%M%S%f}Z"


def publication_stamp(file_name: str) -> str | None:
    """The landing stamp in a landed file name, padded to microseconds; None when it has none."""
    match = _STAMP.search(file_name)
    return f"{match.group(1)}{match.group(2) or '000000'}Z" if match else None


def source_kind_of(file_name: str) -> str:
    """How a landed file arrived: `<stamp>__<kind>__<name>` (a replay or the sample), a fetched
    `nyc911_e2e_<stamp>.csv` (live), else a file dropped in by hand (file)."""
    for kind in LANDED_KINDS:
        if f"__{kind}__" in file_name:
            return kind
    return "live" if file_name.startswith(FETCHED_PREFIX) else "file"


def publication_id(file_name: str, modified: dt.datetime, sha256: str) -> str:
    """A landed file's batch id: its landing stamp (else its modification time) and content hash,
    `20261126T200102123456Z-1a2b3c4d`; ids sort in publication order."""
    stamp = publication_stamp(file_name) or f"{modified:%Y%m%dT%H%M%S%f}Z"
    return f"{stamp}-{sha256[:8]}"


def landed_files(landing_dir: Path) -> list[Path]:
    """The publications in a landing folder, by name (a missing folder holds none)."""
    return sorted(landing_dir.glob(LANDED_GLOB)) if landing_dir.is_dir() else []


@dataclass(frozen=True)
class Holdings:
    """What a warehouse holds: the kinds of its publications (landed or ingested)."""

    kinds: frozenset[str]

    @property
    def empty(self) -> bool:
        return not self.kinds

    @property
    def sample(self) -> bool:
        return SAMPLE in self.kinds

    @property
    def real(self) -> bool:
        return bool(self.kinds & set(REAL_KINDS))

    @property
    def mixed(self) -> bool:
        return self.sample and self.real


def holdings(landing_dir: Path, ingested_kinds: set[str] | frozenset[str] = frozenset()) -> Holdings:
    """The kinds of every landed file plus those bronze's ingest log lists (`ingested_kinds`)."""
    landed = {source_kind_of(p.name) for p in landed_files(landing_dir)}
    return Holdings(frozenset(landed | set(ingested_kinds)))


def check_new_publication(held: Holdings, kind: str, where: str, *, allow_mixed: bool = False) -> None:
    """Refuse a publication of `kind` that would mix the sample with real data (unless allowed).

    Raised before anything is landed or written; the message names the flag that allows it.
    """
    if allow_mixed:
        return
    if kind == SAMPLE and held.real:
        raise MixedSourcesError(
            f"{where} holds real publications; the built-in synthetic sample is not landed in it "
            f"(run without --source to process what is landed, or pass {ALLOW_MIXED_FLAG} to add the "
            "sample anyway)"
        )
    if kind in REAL_KINDS and held.sample and not held.real:
        raise MixedSourcesError(
            f"{where} holds the built-in synthetic sample; a real export is not landed in it (use "
            f"another --warehouse for real data, or pass {ALLOW_MIXED_FLAG} to mix them)"
        )


def check_not_mixed(held: Holdings, where: str, *, allow_mixed: bool = False) -> None:
    """Refuse to process a warehouse that already mixes the sample with real publications (an
    earlier version landed the sample into real warehouses): its KPIs would blend both."""
    if held.mixed and not allow_mixed:
        raise MixedSourcesError(
            f"{where} mixes the built-in synthetic sample with real publications, so its KPIs blend "
            f"both: rebuild it from the real exports (README, Weekly operation), or pass "
            f"{ALLOW_MIXED_FLAG} to process it as it is"
        )


def describe(warehouse: Path | None, landing_dir: Path) -> str:
    """How errors name a warehouse (or, on Databricks, its landing folder)."""
    return f"the warehouse {warehouse}" if warehouse else f"the landing folder {landing_dir}"


def requested_kind(source: str | Path | None, held: Holdings) -> str | None:
    """The kind of publication a run asks to land: `None` = nothing to land.

    No source lands the built-in sample only in a new, empty warehouse; on a warehouse that holds
    publications it lands nothing (the run processes what is landed and not processed yet).
    """
    if source is None:
        return SAMPLE if held.empty else None
    if str(source) == SAMPLE_SOURCE:
        return SAMPLE
    if str(source) == "live":
        return "live"
    return "file"


def sample_source_path(warehouse: Path | None) -> Path:
    """Where a run lands the built-in synthetic sample from (written on first use)."""
    if warehouse is None:
        raise ParamsError("the built-in sample needs a local warehouse; pass a source instead")
    return warehouse / "sample" / "nyc911_sample.csv"


def land_file(source: Path, landing_dir: Path, kind: str) -> tuple[Path, bool]:
    """Copy an export into the landing folder as `<stamp>__<kind>__<name>`, unless a file with the
    same content is already there. Returns (landed path, whether it is new).

    The copy is atomic (`io.files.copy_atomic`: a hidden part file, then renamed), so a partial
    copy never appears as a landed file.
    """
    sha = storage.file_sha256(source)
    landing_dir.mkdir(parents=True, exist_ok=True)
    for existing in sorted(landing_dir.glob(LANDED_GLOB)):
        if existing.stat().st_size == source.stat().st_size and storage.file_sha256(existing) == sha:
            return existing, False
    return copy_atomic(source, landing_dir / f"{landed_stamp()}__{kind}__{source.name}"), True


def new_batch_id(sha256: str, now: dt.datetime | None = None) -> str:
    """A batch id that sorts by ingestion time and names the file content: `20261126T200102Z-1a2b3c4d`."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return f"{now:%Y%m%dT%H%M%S%f}Z-{sha256[:8]}"


@dataclass(frozen=True)
class Landed:
    """A publication a run landed (or found already landed with the same content)."""

    path: Path
    kind: str
    new: bool


def warehouse_holdings(params: Params) -> Holdings:
    """What the warehouse holds: the kinds of its landed files and of bronze's ingest log."""
    return holdings(params.landing_dir, storage.ingested_kinds(params))


def plan_landing(
    params: Params, source: str | Path | None = None, *, allow_mixed: bool = False
) -> str | None:
    """Check what a run asks to land, writing nothing; return its kind (None: nothing to land).

    - No source: the built-in sample in a new, empty warehouse; nothing in one that holds
      publications (the run then processes what is landed and not processed yet).
    - `sample`: the built-in sample; `live`: a download of the current export; else a CSV export,
      checked here (exists, not empty, not HTML, required columns).
    - The sample is refused where real publications are, a real export where the sample is, and
      a warehouse that already mixes them is refused too, unless `allow_mixed`.
    """
    held = warehouse_holdings(params)
    where = describe(params.warehouse, params.landing_dir)
    kind = requested_kind(source, held)
    if kind == "file":
        resolve_source(params, source)
    if kind is not None:
        check_new_publication(held, kind, where, allow_mixed=allow_mixed)
    check_not_mixed(held, where, allow_mixed=allow_mixed)
    return kind


def land_source(
    params: Params, source: str | Path | None = None, *, allow_mixed: bool = False
) -> Landed | None:
    """Land what a run asks for (see `plan_landing`, whose checks all pass first), or nothing.

    A refused source raises before anything is landed or written. A file whose content is already
    in the landing folder is not landed twice (`Landed.new` is False).
    """
    kind = plan_landing(params, source, allow_mixed=allow_mixed)
    if kind is None:
        return None
    if kind == "live":
        return Landed(fetch_csv_export(params.fetch, params.landing_dir), kind, True)
    path, _ = resolve_source(params, source)
    landed, new = land_file(path, params.landing_dir, kind)
    return Landed(landed, kind, new)


def resolve_source(params: Params, source: str | Path | None) -> tuple[Path, str]:
    """The file to ingest and its kind: a given export (`file`) or, for None or `sample`, the
    built-in sample (`sample`), written on first use. The source is checked (exists, not empty,
    required columns) here, so a bad source fails before any Spark work."""
    if source is None or str(source) == SAMPLE_SOURCE:
        path = sample_source_path(params.warehouse)
        if not path.is_file():
            write_sample(path)
        kind = SAMPLE
    else:
        path, kind = Path(source).resolve(), "file"
    header = storage.read_source_header(path)
    check_required_columns(str(path), bronze_column_names(header))
    return path, kind
