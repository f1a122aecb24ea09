"""Retention of a local warehouse: old table versions kept for `retention.keep_days`, then cleaned.

Bronze keeps every publication by design, but each run adds versions and files to the tables it
writes (gold is rewritten on every change of silver): without cleanup a warehouse grows by its
size every few weeks. `nyc911 run` therefore maintains every table of a local warehouse on the
schedule the params set (`RetentionSettings`: every `vacuum_every_days`, counted from the last
maintenance, which the warehouse's `.nyc911-retention.json` records), with delta-rs whichever
engine wrote it (both write the same Delta tables): retention properties, VACUUM, checkpoint and
log cleanup (`nyc911lib.io.delta_rs.maintain`).

What time travel remains: any version committed in the last `keep_days` (its log entry and its
files are kept). An older version may still be listed but not read. The data is never affected:
VACUUM deletes only files that no version within the retention reads.

On Databricks the platform maintains its tables (Lakeflow pipelines run their own maintenance;
predictive optimization VACUUMs managed tables), so nothing is done for a catalog here.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from nyc911lib.config import LAYERS, Params
from nyc911lib.io import delta_rs, storage
from nyc911lib.io.files import write_atomic
from nyc911lib.run.registry import table_keys

HOUR_S = 3600


def retention_properties(keep_days: int) -> dict[str, str]:
    """The Delta table properties that keep `keep_days` of versions readable."""
    interval = f"interval {keep_days} days"
    return {"delta.logRetentionDuration": interval, "delta.deletedFileRetentionDuration": interval}


@dataclass(frozen=True)
class TableMaintenance:
    """One maintained table: `layer.key`, and what `delta_rs.maintain` did."""

    table: str
    properties_set: bool
    files_removed: int


STATE_FILE = ".nyc911-retention.json"  # in the local warehouse: when it was last maintained


def last_maintained(params: Params) -> dt.datetime | None:
    """When the warehouse was last maintained (its state file) or, never maintained, when its
    first publication was ingested (the oldest commit of bronze.e2e_raw in its log); None when it
    holds no table yet. (A VACUUM that deletes nothing writes no commit, so the tables' logs
    cannot tell.)"""
    state = params.warehouse / STATE_FILE
    if state.is_file():
        return dt.datetime.fromisoformat(json.loads(state.read_text(encoding="utf-8"))["maintained_at"])
    bronze = storage.table_name(params, "bronze", "e2e_raw")
    if not storage.has_commit(bronze):
        return None
    return min(at for _, at in delta_rs.commit_times(bronze))


def is_due(since: dt.datetime | None, every_days: int | None, now: dt.datetime) -> bool:
    """Whether a warehouse last maintained (or started) at `since` is due for maintenance."""
    return every_days is not None and since is not None and now - since >= dt.timedelta(days=every_days)


def maintain_warehouse(params: Params, now: dt.datetime | None = None) -> list[TableMaintenance]:
    """Maintain every table of the local warehouse when it is due (`is_due`); return what was
    done, in registry order (empty: not due, a catalog, or `vacuum_every_days: null`). The time is
    recorded in the warehouse's state file after the last table (a run stopped before redoes it)."""
    settings = params.retention
    if params.catalog or params.warehouse is None or settings.vacuum_every_days is None:
        return []
    now = now or dt.datetime.now(dt.timezone.utc)
    if not is_due(last_maintained(params), settings.vacuum_every_days, now):
        return []
    properties = retention_properties(settings.keep_days)
    done = []
    for layer in LAYERS:
        for key in table_keys(layer):
            path = storage.table_name(params, layer, key)
            if storage.has_commit(path):
                result = delta_rs.maintain(path, properties, retain_hours=settings.keep_days * 24)
                done.append(TableMaintenance(f"{layer}.{key}", result.properties_set, result.files_removed))
    state = {
        "maintained_at": now.isoformat(),
        "keep_days": settings.keep_days,
        "files_removed": {t.table: t.files_removed for t in done},
    }
    write_atomic(params.warehouse / STATE_FILE, json.dumps(state, indent=2) + "\n")
    return done
