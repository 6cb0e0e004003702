"""``bench compare BASE NEW``: per row and metric, the change, its interval and a verdict."""
from __future__ import annotations

import argparse
import json

from bench.commands.history import add_store_argument
from bench.validation import markup_safe, number_argument


def _share(text: str) -> float:
    """'10%' or '0.1' -> 0.1."""
    text = text.strip()
    try:
        return float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise ValueError("is not a number or a percentage like 10%") from None


def _points(text: str) -> float:
    """'1' (points) -> 0.01."""
    try:
        return float(text.strip().removesuffix("pt")) / 100
    except ValueError:
        raise ValueError("is not a number of points like 1") from None


SHARE = number_argument(float, at_least=0, at_most=100, parse=_share)
POINTS = number_argument(float, at_least=0, at_most=1, parse=_points)
ALPHA = number_argument(float, more_than=0, at_most=0.5)


def add_threshold_arguments(parser: argparse.ArgumentParser) -> None:
    """The threshold options shared by compare and nightly (defaults come from the config or Thresholds)."""
    group = parser.add_argument_group("thresholds (a change must be significant AND at least this large)")
    group.add_argument("--latency-threshold", type=SHARE, help="relative latency change, e.g. 10%% (default)")
    group.add_argument("--cold-start-threshold", type=SHARE, help="relative cold-start change (default 20%%)")
    group.add_argument("--accuracy-threshold", type=POINTS, help="accuracy change in points, 0 to 100 (default 1)")
    group.add_argument("--errors-threshold", type=POINTS, help="error-rate change in points, 0 to 100 (default 1)")
    group.add_argument("--alpha", type=ALPHA, help="significance level, more than 0 and at most 0.5 (default 0.05)")


def thresholds_from_args(args: argparse.Namespace, base: dict | None = None):
    """Thresholds from the config table ``base`` overridden by the command line."""
    from bench.compare import Thresholds

    values = dict(base or {})
    for key, dest in (("latency", "latency_threshold"), ("cold_start", "cold_start_threshold"),
                      ("accuracy", "accuracy_threshold"), ("errors", "errors_threshold"), ("alpha", "alpha")):
        if getattr(args, dest, None) is not None:
            values[key] = getattr(args, dest)
    return Thresholds.from_mapping(values)


def print_comparison(comparison, console) -> None:
    """The comparison as a rich table, its notes and its headline."""
    from rich.table import Table

    from bench.compare import IMPROVEMENT, REGRESSION, UNSTABLE, table_rows

    rows = table_rows(comparison)
    table = Table(title=markup_safe(f"{comparison.base} -> {comparison.new}"))
    for title in rows[0]:
        table.add_column(title, justify="left" if title in ("row", "metric", "test", "verdict") else "right")
    colours = {REGRESSION: "red", IMPROVEMENT: "green", UNSTABLE: "yellow"}
    for cells, change in zip(rows[1:], comparison.changes):
        colour = colours.get(change.verdict)
        verdict = markup_safe(cells[-1])
        table.add_row(*(markup_safe(cell) for cell in cells[:-1]),
                      f"[{colour}]{verdict}[/{colour}]" if colour else verdict)
    console.print(table)
    for problem in comparison.problems:
        console.print(f"[yellow]forced despite:[/yellow] {markup_safe(problem)}", highlight=False)
    for note in comparison.notes:
        console.print(f"note: {markup_safe(note)}", highlight=False)
    colour = "red" if comparison.regressions else "green"
    console.print(f"[{colour}]{markup_safe(comparison.headline())}[/{colour}]", highlight=False)


def handle_compare(args: argparse.Namespace) -> int:
    """Compare two runs and print the table or JSON; exit 1 on a regression when asked."""
    from bench.terminal import terminal_console

    from bench.compare import compare_runs
    from bench.history import open_run
    from bench.suites import load_config

    thresholds = thresholds_from_args(args, load_config(None, required=False).compare)
    base, new = open_run(args.base, args.store), open_run(args.new, args.store)
    rows = [r.strip() for r in args.rows.split(",") if r.strip()] if args.rows else None
    comparison = compare_runs(base, new, thresholds, force=args.force, rows=rows)
    if args.json:
        print(json.dumps(comparison.to_dict(), indent=2))
    else:
        print_comparison(comparison, terminal_console())
    return 1 if args.fail_on_regression and comparison.regressions else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``bench compare``."""
    parser = subparsers.add_parser(
        "compare", help="compare two runs with significance tests",
        description="Compare NEW against BASE (each a run folder or a history id): per backend row and metric "
                    "the change, its 95%% interval, a test and a verdict.")
    parser.add_argument("base", metavar="BASE", help="run folder or history id")
    parser.add_argument("new", metavar="NEW", help="run folder or history id")
    add_store_argument(parser)
    parser.add_argument("--rows", help="compare only these comma-separated rows")
    parser.add_argument("--force", action="store_true",
                        help="compare even when dataset, machine or options differ (the reasons are printed)")
    parser.add_argument("--fail-on-regression", action="store_true", help="exit 1 when any metric regressed")
    parser.add_argument("--json", action="store_true", help="print the comparison as JSON")
    add_threshold_arguments(parser)
    parser.set_defaults(handler=handle_compare)
