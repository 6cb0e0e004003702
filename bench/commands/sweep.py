"""``bench sweep``: measure every weight quantization on the same photos and recommend one."""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from bench.commands.history import add_store_argument
from bench.errors import UsageError
from bench.registry import lookup
from bench.tfjs_convert import QUANTIZATIONS
from bench.validation import markup_safe, number_argument

SWEPT_BACKEND = "tfjs"


def handle_sweep(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from bench.commands.run import RichObserver, config_from_args
    from bench.runner import default_out, run_benchmark
    from bench.sweep import decide, f1_intervals, sweep_table, variants_from_run, write_sweep_report

    if args.backends is None:
        args.backends = SWEPT_BACKEND
    config = config_from_args(args, args.backend_flags, Path(args.out) if args.out else None)
    if len(config.backends) != 1:
        raise UsageError("--backends: bench sweep measures one backend's quantizations; name one (default tfjs)")
    name = config.backends[0]
    if "quantization" not in {f.name for f in dataclasses.fields(lookup(name).load().Options)}:
        raise UsageError(f"--backends {name}: has no quantization option; bench sweep needs one that has (tfjs)")
    config.backend_options.setdefault(name, {}).setdefault("quantization", ",".join(QUANTIZATIONS))
    if config.out is None:
        config.out = default_out(config.reports_dir)
    console = Console()
    with RichObserver(console) as observer:
        result = run_benchmark(config, observer)
    if not args.no_store:
        from bench.history import record_run

        record_run(result.out, args.store)
    decision = decide(variants_from_run(result.run), args.max_accuracy_drop, args.accuracy_metric,
                      args.min_relative_accuracy)
    intervals = f1_intervals(result.out, decision)
    write_sweep_report(result.out, decision, result.run, intervals)
    rows = sweep_table(decision, intervals)
    table = Table(title=markup_safe(f"quantization sweep - {result.run.get('dataset', {}).get('name')} "
                                    f"({result.run.get('dataset', {}).get('photos')} photos)"))
    for title in rows[0]:
        table.add_column(title, justify="left" if title in ("variant", "decision") else "right",
                         no_wrap=title in ("variant", "decision"))
    for row in rows[1:]:
        table.add_row(*(markup_safe(cell) for cell in (*row[:-1], row[-1].split(":")[0])))
    console.print(table)
    for row in rows[1:]:
        if ":" in row[-1]:
            console.print(markup_safe(f"{row[0]}: {row[-1]}"), highlight=False)
    console.print(f"[bold]recommendation:[/bold] {markup_safe(decision.reason)}", highlight=False)
    console.print(markup_safe(f"results: {result.out}/ (sweep.md, sweep.png, run.json)"))
    return 0 if result.run["status"] == "complete" else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    from bench.commands.run import add_run_arguments

    parser = subparsers.add_parser(
        "sweep", help="compare weight quantizations and recommend one",
        description="Run the tfjs backend once per quantization on the same photos, print weights bytes, cold "
                    "start, warm p50/p90, digit F1 and whole-number accuracy against float32, and recommend the "
                    "variant with the smallest cold start whose accuracy drop stays within the bound.")
    flags = add_run_arguments(parser)
    parser.add_argument("--max-accuracy-drop", type=number_argument(float, at_least=0, at_most=100), default=0.5,
                        help="largest accepted drop against float32, in points, 0 to 100 (default 0.5)")
    parser.add_argument("--min-relative-accuracy", type=number_argument(float, more_than=0, at_most=1),
                        help="also require this share of float32's accuracy, more than 0 and at most 1 "
                             "(MLPerf closed division: 0.99)")
    parser.add_argument("--accuracy-metric", default="digit_f1", choices=("digit_f1", "sequence_accuracy"),
                        help="the accuracy the bound applies to (default digit_f1)")
    parser.add_argument("--out", help="output folder (default reports/<timestamp>-<id>)")
    add_store_argument(parser)
    parser.add_argument("--no-store", action="store_true", help="do not record the run in the history")
    parser.set_defaults(handler=handle_sweep, backend_flags=flags)
