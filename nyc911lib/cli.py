"""`nyc911`: the command line. Every failure is one readable line on stderr and a non-zero exit."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from nyc911lib.config import Params, load_params
from nyc911lib.errors import Nyc911Error
from nyc911lib.fetch import fetch_api, fetch_csv_export
from nyc911lib.pipeline import (
    SUMMARY_NAME,
    build_report,
    land_source,
    new_run_id,
    parse_date,
    resolve_source,
    run_layers,
)
from nyc911lib.runner import run_notebooks
from nyc911lib.sample import DEFAULT_SEED, DEFAULT_WEEKS, write_sample
from nyc911lib.spark import get_spark, require_java
from nyc911lib.storage import warehouse_lock

SUMMARY_LINES = (
    ("weeks", "{first_week} .. {last_week}"),
    ("total incidents", "{total_incidents:,}"),
    ("avg call-to-first-pickup", "{avg_call_to_first_pickup_s:.2f} s (incident-weighted)"),
    ("SLA breach, incidents", "{sla_breach_incidents_pct:.2f} %"),
    ("SLA breach, rows", "{sla_breach_rows_pct:.2f} %"),
    ("source", "{source_kinds}"),
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nyc911", description="NYC 911 End-to-End data: Bronze -> Silver -> Gold on Delta Lake."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run",
        help="land an export and process what is new: bronze, silver, gold and the HTML report",
        description="Land a CSV export (default: the built-in synthetic sample) as a new publication in "
        "the warehouse's landing folder, then process incrementally: bronze ingests the landed files it "
        "has not seen, silver MERGEs them (a newer publication wins), gold is recomputed when silver "
        "changed, and reports/kpi_report.html is written. Executed notebooks go to reports/runs/<run>/.",
    )
    run.add_argument("--params", type=Path, help="params file (default: params/default.yaml)")
    run.add_argument(
        "--source",
        type=Path,
        help="CSV export to ingest, or `live` to download the current export from NYC Open Data first "
        "(default: the built-in sample; a local file named live must be given as ./live)",
    )
    run.add_argument("--warehouse", type=Path, help="local warehouse folder (default: from params)")
    run.add_argument(
        "--from",
        dest="date_from",
        metavar="YYYY-MM-DD",
        help="recompute gold for weeks from this date only",
    )
    run.add_argument(
        "--to", dest="date_to", metavar="YYYY-MM-DD", help="recompute gold for the weeks up to this date only"
    )
    run.add_argument(
        "--full-refresh",
        action="store_true",
        help="rebuild silver and gold from all of bronze (after a rule change; bronze is kept)",
    )
    run.add_argument(
        "--engine",
        choices=("notebooks", "inline"),
        default="notebooks",
        help="notebooks: the four layer notebooks with papermill (default); "
        "inline: the same layer functions in this process (faster, no executed notebooks)",
    )
    fetch = sub.add_parser(
        "fetch",
        help="download the dataset from NYC Open Data into the landing folder",
        description="Download the 911 End-to-End export (CSV, or the SODA JSON API with --api) into the "
        "landing folder as an immutable timestamped file; a partial or invalid download never lands. "
        "An app token is read from the environment variable named in params (NYC911_APP_TOKEN).",
    )
    fetch.add_argument("--params", type=Path, help="params file (default: params/default.yaml)")
    fetch.add_argument(
        "--warehouse", type=Path, help="local warehouse whose landing/ folder receives the file"
    )
    fetch.add_argument(
        "--api", action="store_true", help="use the paged SODA JSON API instead of the CSV export"
    )
    fetch.add_argument("--since", metavar="YYYY-MM-DD", help="with --api: only weeks starting on or after")
    sample = sub.add_parser(
        "sample",
        help="write the built-in synthetic sample CSV",
        description="Write the deterministic synthetic sample in the exact portal export format.",
    )
    sample.add_argument("--out", type=Path, required=True, help="CSV file to write")
    sample.add_argument("--weeks", type=int, default=DEFAULT_WEEKS, help=f"weeks (default {DEFAULT_WEEKS})")
    sample.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})"
    )
    return parser


def _run(args: argparse.Namespace) -> int:
    params = load_params(args.params)
    if args.warehouse:
        params = params.with_warehouse(args.warehouse)
    date_from = parse_date(args.date_from, "--from")
    date_to = parse_date(args.date_to, "--to")
    if date_from and date_to and date_from > date_to:
        raise Nyc911Error(f"--from {date_from} is after --to {date_to}")
    require_java()
    live = args.source == Path("live")
    if not live:
        resolve_source(params, args.source)  # a bad source fails here, before the warehouse is touched
    with warehouse_lock(params):
        if live:
            source, kind = fetch_csv_export(params.fetch, params.landing_dir), "live"
            print(f"landed {source}")
        else:
            source, kind, new = land_source(params, args.source)
            print(f"{'landed' if new else 'already landed'}: {source}")
        run_id = new_run_id()
        print(f"nyc911 run {run_id}: {kind} {source.name} -> warehouse {params.warehouse or params.catalog}")
        if args.engine == "inline":
            summary, report = _run_inline(params, run_id, args.full_refresh, date_from, date_to)
        else:
            result = run_notebooks(
                {
                    "params_file": str(params.source_file),
                    "source": str(source),
                    "warehouse": str(params.warehouse) if params.warehouse else None,
                    "reports_dir": str(params.reports_dir),
                    "date_from": date_from.isoformat() if date_from else None,
                    "date_to": date_to.isoformat() if date_to else None,
                    "full_refresh": args.full_refresh,
                    "run_id": run_id,
                },
                run_dir=params.reports_dir / "runs" / run_id,
                reports_dir=params.reports_dir,
            )
            summary, report = result.summary, result.report_path
            print(f"executed notebooks: {result.run_dir}")
    print(f"report: {report}")
    for label, template in SUMMARY_LINES:
        try:
            print(f"  {label:<26} {template.format(**summary)}")
        except (KeyError, TypeError, ValueError):
            print(f"  {label:<26} n/a")
    return 0


def _run_inline(
    params: Params, run_id: str, full_refresh: bool, date_from: dt.date | None, date_to: dt.date | None
) -> tuple[dict, Path]:
    """The layers in this process: one Spark session, no notebooks."""
    spark = get_spark()
    outcome = run_layers(
        spark, params, run_id, full_refresh=full_refresh, date_from=date_from, date_to=date_to
    )
    for entry in outcome.ingested:
        print(f"bronze: {Path(entry['source_file']).name} {entry['status']} ({entry['rows']} rows)")
    for a in outcome.accounting:
        print(
            f"silver: batch {a['batch_id']}: {a['rows_bronze']} rows = {a['rows_silver']} new or revised"
            f" + {a['rows_unchanged']} unchanged + {a['rows_superseded']} superseded"
            f" + {a['rows_quarantined']} quarantined"
        )
    report = build_report(spark, params, params.reports_dir)
    return json.loads((params.reports_dir / SUMMARY_NAME).read_text(encoding="utf-8")), report


def _fetch(args: argparse.Namespace) -> int:
    params = load_params(args.params)
    if args.warehouse:
        params = params.with_warehouse(args.warehouse)
    if args.since and not args.api:
        raise Nyc911Error("--since needs --api (the CSV export has no filter)")
    if args.api:
        landed = fetch_api(params.fetch, params.landing_dir, since=parse_date(args.since, "--since"))
        if landed is None:
            print(f"nothing new since {args.since}")
            return 0
    else:
        landed = fetch_csv_export(params.fetch, params.landing_dir)
    print(f"landed {landed}")
    return 0


def _sample(args: argparse.Namespace) -> int:
    try:
        path = write_sample(args.out, weeks=args.weeks, seed=args.seed)
    except ValueError as exc:
        raise Nyc911Error(str(exc)) from None
    print(f"wrote the synthetic sample to {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `nyc911` command."""
    args = _parser().parse_args(argv)
    try:
        return {"run": _run, "fetch": _fetch, "sample": _sample}[args.command](args)
    except Nyc911Error as exc:
        print(f"nyc911: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("nyc911: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
