"""``bench sweep``: measure every weight quantization on the same photos and recommend one."""
from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from bench.backend import Backend, SweepAxis
from bench.commands.history import add_store_argument
from bench.errors import RunInterrupted, UsageError
from bench.registry import lookup, registered
from bench.sweep import MLPERF_RELATIVE_ACCURACY
from bench.terminal import terminal_console
from bench.validation import markup_safe, number_argument

AXIS = "quantization"


def _axis_of(cls: type[Backend]) -> SweepAxis | None:
    return next((axis for axis in cls.sweep_axes if axis.option == AXIS), None)


def swept_backend(name: str | None) -> tuple[str, SweepAxis]:
    """The backend to sweep (``name``, else the one default backend with a quantization axis) and its axis."""
    if name is None:
        found = []
        for entry_name, entry in registered().items():
            try:
                cls = entry.load()
            except UsageError:
                continue
            if cls.default_enabled and _axis_of(cls) is not None:
                found.append(entry_name)
        if len(found) != 1:
            raise UsageError(f"--backends: name the backend to sweep (backends with quantizations: "
                             f"{', '.join(found) or 'none'})")
        name = found[0]
    axis = _axis_of(lookup(name).load())
    if axis is None:
        raise UsageError(f"--backends {name}: has no quantization option; bench sweep needs a backend that "
                         "declares one (see `bench backends`)")
    return name, axis


def handle_sweep(args: argparse.Namespace) -> int:
    """Run the sweep, record it, decide, print and write the decision."""
    from rich.table import Table

    from bench.commands.run import EXIT_FAILED, EXIT_INTERRUPTED, RichObserver, config_from_args, exit_code, record
    from bench.runner import default_out, run_benchmark
    from bench.sweep import accuracy_intervals, decide, sweep_table, variants_from_run, write_sweep_report

    config = config_from_args(args, args.backend_flags, Path(args.out) if args.out else None)
    if config.backends is not None and len(config.backends) != 1:
        raise UsageError("--backends: bench sweep measures one backend's quantizations; name one")
    name, axis = swept_backend(config.backends[0] if config.backends else None)
    options = {**config.backend_options, name: {AXIS: ",".join(axis.values), **config.backend_options.get(name, {})}}
    config = replace(config, backends=(name,), backend_options=options,
                     out=config.out or default_out(config.reports_dir))
    console = terminal_console(stderr=args.json)
    try:
        with RichObserver(console) as observer:
            run = run_benchmark(config, observer)
    except RunInterrupted as interrupted:
        if not args.no_store:
            record(interrupted.run, args.store, console)
        return EXIT_INTERRUPTED
    if not args.no_store:
        record(run, args.store, console)
    variants = variants_from_run(run, axis)
    intervals = accuracy_intervals(run, variants, args.accuracy_metric)
    relative = None if args.min_relative_accuracy == 0 else args.min_relative_accuracy
    decision = decide(variants, args.max_accuracy_drop, args.accuracy_metric, relative,
                      {row: low for row, (low, _) in intervals.items()})
    write_sweep_report(run.folder, decision, run, intervals)
    none_passed = args.fail_if_none_passes and not decision.quantized_passed
    if args.json:
        print(json.dumps({"run": str(run.folder), "status": run.status, "decision": decision.to_json(),
                          "intervals": {row: list(bounds) for row, bounds in intervals.items()}}, indent=2))
        return EXIT_FAILED if none_passed else exit_code(run)
    rows = sweep_table(decision, intervals)
    table = Table(title=markup_safe(f"quantization sweep - {run.dataset.name} ({run.dataset.photos} photos)"))
    for title in rows[0]:
        table.add_column(title, justify="left" if title in ("variant", "decision") else "right",
                         no_wrap=title in ("variant", "decision"))
    for row in rows[1:]:
        table.add_row(*(markup_safe(cell) for cell in (*row[:-1], row[-1].split(":")[0])))
    console.print(table)
    for row in rows[1:]:
        if ":" in row[-1]:
            console.print(markup_safe(f"{row[0]}: {row[-1]}"), highlight=False)
    console.print(markup_safe(f"rule: {decision.rule}"), highlight=False)
    console.print(f"[bold]recommendation:[/bold] {markup_safe(decision.reason)}", highlight=False)
    console.print(markup_safe(f"results: {run.folder}/ (sweep.md, sweep.png, run.json)"))
    if none_passed:
        console.print("[red]no quantized variant passed[/red] (--fail-if-none-passes)", highlight=False)
        return EXIT_FAILED
    return exit_code(run)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``bench sweep``."""
    from bench.commands.run import add_run_arguments

    parser = subparsers.add_parser(
        "sweep", help="compare weight quantizations and recommend one",
        description="Run a backend once per quantization it declares (default: the one default backend that "
                    "declares quantizations, tfjs here) on the same photos, print weights bytes, cold start, warm "
                    "p50/p90, digit F1 and whole-number accuracy against float32, and recommend the variant with "
                    "the smallest cold start whose accuracy drop stays within the bound.")
    flags = add_run_arguments(parser)
    parser.add_argument("--max-accuracy-drop", type=number_argument(float, at_least=0, at_most=100), default=0.5,
                        help="largest accepted drop against float32, in points, 0 to 100 (default 0.5)")
    parser.add_argument("--min-relative-accuracy", type=number_argument(float, at_least=0, at_most=1),
                        default=MLPERF_RELATIVE_ACCURACY,
                        help="also require this share of float32's accuracy at the lower bound of the paired "
                             "bootstrap 95%% interval (default 0.99: MLPerf's closed-division rule; 0 turns it off)")
    parser.add_argument("--fail-if-none-passes", action="store_true",
                        help="exit 1 when no quantized variant passes the gates")
    parser.add_argument("--json", action="store_true", help="print the decision as JSON on stdout")
    parser.add_argument("--accuracy-metric", default="digit_f1", choices=("digit_f1", "sequence_accuracy"),
                        help="the accuracy the bound applies to (default digit_f1)")
    parser.add_argument("--out", help="output folder (default reports/<timestamp>-<id>)")
    add_store_argument(parser)
    parser.add_argument("--no-store", action="store_true", help="do not record the run in the history")
    parser.set_defaults(handler=handle_sweep, backend_flags=flags)
