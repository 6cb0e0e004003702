"""``bench nightly``: run a configured suite, compare with its baseline, write the HTML report."""
from __future__ import annotations

import argparse
from pathlib import Path

from bench.commands.compare import add_threshold_arguments, print_comparison, thresholds_from_args
from bench.commands.history import add_store_argument
from bench.errors import UsageError
from bench.results.folder import dumps
from bench.validation import markup_safe, report_date


def _date(text: str) -> str:
    try:
        return report_date(text, "")
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc).strip()) from None


def handle_nightly(args: argparse.Namespace) -> int:
    """Run a suite (or list them), print the comparison with its baseline and where the report is."""
    from bench.commands.run import EXIT_FAILED, EXIT_OK, RichObserver, keep_native_log
    from bench.nightly import load_config, run_nightly
    from bench.terminal import terminal_console

    config = load_config(args.config)
    console = terminal_console(stderr=args.json)
    if args.list:
        for name, suite in config.suites.items():
            marker = " (default)" if name == config.default_suite else ""
            console.print(markup_safe(f"{name}{marker}: backends {', '.join(suite.backends)}, "
                                      f"dataset {suite.dataset or 'synthetic'}, limit {suite.limit}, "
                                      f"repeats {suite.repeats}"), highlight=False)
        return 0
    suite = config.suite(args.suite)
    thresholds = thresholds_from_args(args, config.compare)
    with RichObserver(console) as observer:
        result = run_nightly(config, suite.name, store_path=args.store, reports_dir=Path(args.reports),
                             day=args.date, thresholds=thresholds, observer=observer)
    if result.comparison is not None:
        print_comparison(result.comparison, console)
    elif result.refused:
        console.print(f"[red]not compared:[/red] {markup_safe(result.refused)}", highlight=False)
    else:
        console.print(f"first run of suite {markup_safe(suite.name)} on this machine: accepted as the baseline")
    console.print(markup_safe(f"history #{result.history_id} ({'accepted' if result.accepted else 'not accepted'}); "
                              f"report: {result.report_dir / 'index.html'}"), highlight=False)
    keep_native_log(args, result.run, console)
    regressed = result.comparison is not None and bool(result.comparison.regressions)
    if not result.run.complete:
        console.print(f"[red]the run is '{markup_safe(result.status)}':[/red] not accepted as a baseline",
                      highlight=False)
        code = EXIT_FAILED
    else:
        code = EXIT_FAILED if args.fail_on_regression and (regressed or result.refused) else EXIT_OK
    if args.json:
        print(dumps(nightly_json(result, code), indent=2))
    return code


def nightly_json(result, exit_code: int) -> dict:
    """What ``bench nightly --json`` prints: the verdict, the comparison and the run's summary."""
    from bench.report import summary_json

    return {"suite": result.suite.name, "history_id": result.history_id, "baseline_id": result.baseline_id,
            "accepted": result.accepted, "refused": result.refused,
            "regressions": len(result.comparison.regressions) if result.comparison else 0,
            "exit_code": exit_code, "report": str(result.report_dir / "index.html"),
            "comparison": result.comparison.to_dict() if result.comparison else None,
            "run": summary_json(result.run)}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``bench nightly``."""
    parser = subparsers.add_parser(
        "nightly", help="run a configured suite and compare it with its baseline",
        description="Run a suite from [tool.digitbench.suites.NAME] (pyproject.toml) or bench.toml, record it, "
                    "compare it with the last accepted run of the suite on this machine, and write "
                    "reports/nightly/<date>/index.html and report.md.")
    parser.add_argument("--suite", help="the suite to run (default: [tool.digitbench.nightly] default)")
    parser.add_argument("--config", help="a bench.toml or pyproject.toml (default: the nearest one)")
    parser.add_argument("--list", action="store_true", help="list the configured suites and exit")
    parser.add_argument("--reports", default="reports", help="reports folder (default reports)")
    parser.add_argument("--date", type=_date, help="the date folder of the report (default today, YYYY-MM-DD)")
    parser.add_argument("--fail-on-regression", action="store_true",
                        help="exit 1 on a regression or a refused comparison too (a run that is not complete "
                             "always exits 1)")
    parser.add_argument("--json", action="store_true",
                        help="print the verdict, the comparison and the run's summary as JSON on stdout "
                             "(progress and tables go to stderr)")
    add_store_argument(parser)
    add_threshold_arguments(parser)
    parser.set_defaults(handler=handle_nightly)
