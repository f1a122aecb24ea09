"""The `nyc911` command's arguments: its subcommands and options, and their help."""

from __future__ import annotations

import argparse
from pathlib import Path

from nyc911lib import engine
from nyc911lib.run.landing import ALLOW_MIXED_FLAG
from nyc911lib.sample import DEFAULT_SEED, DEFAULT_WEEKS

RUNNERS = ("notebooks", "inline", "declarative")
ALERTS_FIRED = 3  # the exit status of `nyc911 alerts` when at least one alert fired


def parser() -> argparse.ArgumentParser:
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
        help="CSV export to land as a new publication, `live` to download the current export from NYC "
        "Open Data, or `sample` for the built-in synthetic sample (a local file named live or sample "
        "must be given as ./live, ./sample). Default: nothing new on a warehouse that holds "
        "publications (what is landed and not processed yet is processed); the sample on a new one",
    )
    run.add_argument(
        ALLOW_MIXED_FLAG,
        dest="allow_mixed",
        action="store_true",
        help="allow the built-in synthetic sample and real exports in one warehouse (refused otherwise: "
        "their KPIs would blend)",
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
        choices=(*engine.ENGINES, *RUNNERS),
        help="duckdb: the embedded engine, SQLFrame on DuckDB with delta-rs, no Java (default, or "
        "`engine` in the params); spark: PySpark with delta-spark (Java 17+; NYC911_MASTER for a cluster)",
    )
    run.add_argument(
        "--runner",
        choices=RUNNERS,
        help="notebooks: the four layer notebooks with papermill, executed copies in reports/runs/ "
        "(default); inline: the same layer functions in this process; declarative: Spark Declarative "
        "Pipelines (Java 17+), every table rebuilt from the landed files into a warehouse of its own "
        "(--from/--to then limit gold to those weeks)",
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
    fetch.add_argument(
        ALLOW_MIXED_FLAG,
        dest="allow_mixed",
        action="store_true",
        help="allow a download into a warehouse that holds the built-in synthetic sample",
    )
    report = sub.add_parser(
        "report",
        help="write the KPI report from the gold tables (HTML, or PDF through headless Chromium)",
        description="Read the gold tables of the warehouse and write reports/kpi_report.html (and "
        "kpi_report.pdf with --format pdf). Nothing is recomputed: run `nyc911 run` first.",
    )
    warehouse_options(report)
    report.add_argument("--from", dest="date_from", metavar="YYYY-MM-DD", help="first week to show")
    report.add_argument("--to", dest="date_to", metavar="YYYY-MM-DD", help="last week to show")
    report.add_argument(
        "--agency",
        dest="agencies",
        action="append",
        metavar="CODE",
        help="show only this agency (repeat for several; default: all)",
    )
    report.add_argument(
        "--sla-rules",
        type=Path,
        help="SLA rules file the report states; must be the rules gold was computed with",
    )
    report.add_argument("--format", choices=("html", "pdf"), default="html", help="html (default) or pdf")
    report.add_argument("--out", type=Path, help="output folder (default: reports_dir from params)")
    report.add_argument(
        "--png",
        type=Path,
        metavar="FILE",
        help="also write a full-page screenshot of the report to FILE (PNG, headless Chromium)",
    )
    report.add_argument(
        "--chart-png",
        action="store_true",
        help="also write each chart as a PNG (charts/chart-N.png) for slides, rendered by headless Chromium",
    )
    alerts = sub.add_parser(
        "alerts",
        help="print the latest week's SLA alerts, write them as JSON and Markdown, POST them to a webhook",
        description="Read gold.sla_alerts for the latest week of the data, print them, write "
        "alerts/sla_alerts.json and .md under the reports folder, and POST the JSON to the webhook "
        "whose URL is in the environment variable named by params (alerts.webhook_url_env). "
        f"Exit status: 0 no alert, {ALERTS_FIRED} alerts fired, 1 error. A webhook that cannot be "
        "reached is logged and does not change the exit status.",
    )
    warehouse_options(alerts)
    alerts.add_argument("--out", type=Path, help="output folder (default: <reports_dir>/alerts)")
    alerts.add_argument("--no-post", action="store_true", help="do not POST to the webhook")
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


def warehouse_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", type=Path, help="params file (default: params/default.yaml)")
    parser.add_argument("--warehouse", type=Path, help="local warehouse folder (default: from params)")
    parser.add_argument(
        "--engine", choices=engine.ENGINES, help="engine reading gold (default: `engine` in the params)"
    )
