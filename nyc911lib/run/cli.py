"""`nyc911`: the command line. Every failure is one readable line on stderr and a non-zero exit."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from nyc911lib import engine
from nyc911lib.config import Params, load_params, parse_date
from nyc911lib.errors import Nyc911Error, one_line
from nyc911lib.io.fetch import fetch_csv_export
from nyc911lib.io.fetch_api import fetch_api
from nyc911lib.io.storage import RUNNER_ENV, warehouse_lock
from nyc911lib.report.alerts import alerts_markdown, alerts_payload, write_alert_files
from nyc911lib.report.webhook import post_webhook, webhook_url_from
from nyc911lib.run import landing
from nyc911lib.run.cli_args import ALERTS_FIRED, RUNNERS, parser
from nyc911lib.run.landing import land_source, plan_landing, warehouse_holdings
from nyc911lib.run.sdp import check_runner_fits, run_declarative
from nyc911lib.sample import write_sample

# The modules that import the engine's pyspark (`pipeline`, `reporting`) are imported inside the
# commands, after `_start_engine` has fixed the engine of this process.
SUMMARY_LINES = (
    ("weeks", "{first_week} .. {last_week}"),
    ("total incidents", "{total_incidents:,}"),
    ("avg call-to-first-pickup", "{avg_call_to_first_pickup_s:.2f} s (incident-weighted)"),
    ("SLA breach, incidents", "{sla_breach_incidents_pct:.2f} %"),
    ("SLA breach, rows", "{sla_breach_rows_pct:.2f} %"),
    ("source", "{source_kinds}"),
)


def _start_engine(args: argparse.Namespace, params: Params) -> str:
    """Fix this process's engine: `--engine`, else $NYC911_ENGINE, else the params' `engine`. Java
    is checked (with install help) only for the spark engine."""
    wanted = getattr(args, "engine", None) or os.environ.get(engine.ENGINE_ENV) or params.engine
    chosen = engine.resolve(wanted)
    if chosen == "spark" and not engine.is_databricks():
        engine.require_java()
    return engine.select(chosen)


def _gold_params(args: argparse.Namespace, sla_rules: Path | None = None) -> Params:
    """Params of a command that reads gold; fails clearly when there is no gold yet."""
    params = load_params(args.params, sla_rules_file=sla_rules)
    if args.warehouse:
        params = params.with_warehouse(args.warehouse)
    if params.warehouse is not None and not (params.warehouse / "gold" / "kpi_summary").is_dir():
        raise Nyc911Error(f"no gold tables in {params.warehouse}: run `nyc911 run` first")
    _start_engine(args, params)
    return params


def _report(args: argparse.Namespace) -> int:
    date_from, date_to = parse_date(args.date_from, "--from"), parse_date(args.date_to, "--to")
    if date_from and date_to and date_from > date_to:
        raise Nyc911Error(f"--from {date_from} is after --to {date_to}")
    params = _gold_params(args, args.sla_rules)  # fixes the engine: reporting imports its pyspark
    from nyc911lib.report.build import PDF_NAME, ReportScope, build_report  # noqa: PLC0415

    scope = ReportScope(date_from, date_to, tuple(args.agencies) if args.agencies else None)

    out_dir = (args.out or params.reports_dir).resolve()
    html = build_report(engine.session(params=params), params, out_dir, scope)
    print(f"report: {html}")
    if args.format == "pdf" or args.chart_png or args.png:
        from nyc911lib.report import browser  # noqa: PLC0415 - selenium is needed only here

        with browser.headless_driver() as driver:
            if args.format == "pdf":
                print(f"pdf: {browser.html_to_pdf(html, out_dir / PDF_NAME, driver=driver)}")
            if args.png:
                print(f"png: {browser.full_page_screenshot(html, args.png.resolve(), driver=driver)}")
            if args.chart_png:
                pngs = browser.chart_pngs(html, out_dir / "charts", driver=driver)
                print(f"charts: {len(pngs)} PNG files in {out_dir / 'charts'}")
    return 0


def _alerts(args: argparse.Namespace) -> int:
    params = _gold_params(args)
    from nyc911lib.report.build import latest_alerts  # noqa: PLC0415 - after the engine

    week, rows = latest_alerts(engine.session(params=params), params)
    payload = alerts_payload(
        rows,
        week=week,
        generated_at=dt.datetime.now(dt.timezone.utc),
        source=str(params.warehouse or params.catalog),
    )
    print(alerts_markdown(payload), end="")
    json_path, md_path = write_alert_files(payload, (args.out or params.reports_dir / "alerts").resolve())
    print(f"written: {json_path} and {md_path}")
    url = None if args.no_post else webhook_url_from(params.alerts.webhook_url_env, os.environ)
    if url:
        result = post_webhook(
            url,
            payload,
            retries=params.alerts.retries,
            backoff_s=params.alerts.backoff_s,
            timeout_s=params.alerts.timeout_s,
        )
        print(
            f"webhook: delivered (HTTP {result.status})"
            if result.delivered
            else f"webhook: not delivered after {result.attempts} attempts: {result.error}"
        )
    elif not args.no_post:
        print(f"webhook: not configured (set {params.alerts.webhook_url_env} to post the alerts)")
    return ALERTS_FIRED if payload["alert_count"] else 0


def _runner(args: argparse.Namespace) -> str:
    """`--runner`, or the deprecated `--engine notebooks|inline` (with a one-line note)."""
    if args.engine in RUNNERS:
        print(
            f"nyc911: note: --engine {args.engine} is now --runner {args.engine} (--engine chooses "
            f"duckdb or spark)",
            file=sys.stderr,
        )
        if args.runner and args.runner != args.engine:
            raise Nyc911Error(f"--engine {args.engine} and --runner {args.runner} disagree")
        runner, args.engine = args.engine, None
        return runner
    return args.runner or "notebooks"


def _run(args: argparse.Namespace) -> int:
    runner = _runner(args)
    params = load_params(args.params)
    if args.warehouse:
        params = params.with_warehouse(args.warehouse)
    chosen = _start_engine(args, params)
    from nyc911lib.run.layers import new_run_id  # noqa: PLC0415 - after the engine is fixed
    from nyc911lib.run.registry import check_params_tables  # noqa: PLC0415

    check_params_tables(params)

    date_from = parse_date(args.date_from, "--from")
    date_to = parse_date(args.date_to, "--to")
    if date_from and date_to and date_from > date_to:
        raise Nyc911Error(f"--from {date_from} is after --to {date_to}")
    # Every check (the source's format, what the warehouse holds) runs before anything is written,
    # and again under the lock (another process may have landed something meanwhile).
    check_runner_fits(params, runner)
    plan_landing(params, args.source, allow_mixed=args.allow_mixed)
    os.environ[RUNNER_ENV] = runner  # every commit records its engine and runner
    with warehouse_lock(params):
        landed = land_source(params, args.source, allow_mixed=args.allow_mixed)
        if landed is None:
            print(f"nothing to land: processing what is landed in {params.landing_dir} and not processed yet")
        else:
            print(f"{'landed' if landed.new else 'already landed'}: {landed.path}")
        run_id = new_run_id()
        what = f"{landed.kind} {landed.path.name}" if landed else "landed publications"
        where = params.warehouse or params.catalog
        print(f"nyc911 run {run_id}: {what} -> warehouse {where} ({chosen} engine, {runner} runner)")
        if runner == "declarative":
            print(f"tables: spark engine (Spark Declarative Pipelines); report: {chosen} engine")
            summary, report = _run_declarative(params, run_id, date_from, date_to)
        elif not (args.full_refresh or date_from or date_to) and _nothing_to_do(params):
            # Checked from the Delta logs: no engine session, no kernel, no notebook, no commit.
            print("nothing new: bronze, silver, gold and the report are current; nothing run or committed")
            summary, report = _reported_summary(params)
        elif runner == "inline":
            summary, report = _run_inline(params, run_id, args, date_from, date_to)
        else:
            from nyc911lib.run.papermill_runner import run_notebooks  # noqa: PLC0415 - papermill: this runner only

            result = run_notebooks(
                {
                    "params_file": str(params.source_file),
                    "engine": chosen,
                    "source": None,  # landed above: the notebooks process what is landed
                    "allow_mixed_sources": args.allow_mixed,
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
            print(f"executed notebooks: {result.run_dir} (.ipynb, and .html to read without Jupyter)")
        _maintain(params)
    print(f"report: {report}")
    for label, template in SUMMARY_LINES:
        try:
            print(f"  {label:<26} {template.format(**summary)}")
        except (KeyError, TypeError, ValueError):
            print(f"  {label:<26} n/a")
    return 0


def _maintain(params: Params) -> None:
    """Retention maintenance of the tables that are due (`nyc911lib.run.retention`), under the
    run's lock after its work, on every runner."""
    from nyc911lib.run.retention import maintain_warehouse  # noqa: PLC0415 - after the engine is fixed

    done = maintain_warehouse(params)
    if done:
        keep = params.retention.keep_days
        removed = sum(t.files_removed for t in done)
        print(
            f"retention: {len(done)} tables vacuumed and their logs trimmed ({removed} old files removed); "
            f"versions of the last {keep} days stay readable"
        )


def _run_declarative(
    params: Params, run_id: str, date_from: dt.date | None, date_to: dt.date | None
) -> tuple[dict, Path]:
    """Every table rebuilt by `spark-pipelines run` from the landed files, then the report."""
    from nyc911lib.report.build import build_report  # noqa: PLC0415 - after the engine is fixed

    engine.require_java()
    scope = {"nyc911.date_from": date_from, "nyc911.date_to": date_to}
    run_dir = run_declarative(params, run_id, {k: v.isoformat() for k, v in scope.items() if v})
    print(f"declarative pipeline: {run_dir / 'spark-pipelines.log'}")
    report = build_report(engine.session(params=params), params, params.reports_dir)
    return _reported_summary(params)[0], report


def _nothing_to_do(params: Params) -> bool:
    """Whether every layer and the report are current (`pipeline.nothing_to_do`, `report_is_current`)."""
    from nyc911lib.report.build import report_is_current  # noqa: PLC0415
    from nyc911lib.run.layers import nothing_to_do  # noqa: PLC0415 - after the engine is fixed

    return nothing_to_do(params) and report_is_current(None, params, params.reports_dir)


def _reported_summary(params: Params) -> tuple[dict, Path]:
    from nyc911lib.report.build import REPORT_NAME, SUMMARY_NAME  # noqa: PLC0415 - after the engine is fixed

    summary = json.loads((params.reports_dir / SUMMARY_NAME).read_text(encoding="utf-8"))
    return summary, params.reports_dir / REPORT_NAME


def _run_inline(
    params: Params, run_id: str, args: argparse.Namespace, date_from: dt.date | None, date_to: dt.date | None
) -> tuple[dict, Path]:
    """The layers in this process, with the engine's session; no notebooks."""
    from nyc911lib.report.build import REPORT_NAME, build_report, report_is_current  # noqa: PLC0415
    from nyc911lib.run.layers import run_layers  # noqa: PLC0415 - after the engine is fixed

    spark = engine.session(params=params)
    outcome = run_layers(
        spark,
        params,
        run_id,
        full_refresh=args.full_refresh,
        date_from=date_from,
        date_to=date_to,
        allow_mixed=args.allow_mixed,
    )
    for entry in outcome.ingested:
        print(f"bronze: {Path(entry['source_file']).name} {entry['status']} ({entry['rows']} rows)")
    for a in outcome.accounting:
        print(
            f"silver: batch {a['batch_id']}: {a['rows_bronze']} rows = {a['rows_silver']} new or revised"
            f" + {a['rows_unchanged']} unchanged + {a['rows_superseded']} superseded"
            f" + {a['rows_quarantined']} quarantined"
        )
    if not outcome.gold_rebuilt and report_is_current(spark, params, params.reports_dir):
        report = params.reports_dir / REPORT_NAME
        print("gold unchanged and the report was built from it: report left as it is")
    else:
        report = build_report(spark, params, params.reports_dir)
    return _reported_summary(params)[0], report


def _fetch(args: argparse.Namespace) -> int:
    params = load_params(args.params)
    if args.warehouse:
        params = params.with_warehouse(args.warehouse)
    if args.since and not args.api:
        raise Nyc911Error("--since needs --api (the CSV export has no filter)")
    held = warehouse_holdings(params)
    where = landing.describe(params.warehouse, params.landing_dir)
    landing.check_new_publication(held, "live", where, allow_mixed=args.allow_mixed)
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
    args = parser().parse_args(argv)
    try:
        commands = {"run": _run, "fetch": _fetch, "report": _report, "alerts": _alerts, "sample": _sample}
        return commands[args.command](args)
    except Nyc911Error as exc:
        print(f"nyc911: error: {one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("nyc911: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # an engine or I/O error: one line too (NYC911_DEBUG=1 shows the traceback)
        if os.environ.get("NYC911_DEBUG"):
            raise
        print(f"nyc911: error: {type(exc).__name__}: {one_line(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
