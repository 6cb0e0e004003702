"""``bench run``: measure backends on a dataset and write the run folder."""
from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.commands.backend_flags import BackendFlags, add_backend_flags
from bench.commands.history import add_store_argument
from bench.errors import RunInterrupted, UsageError
from bench.metrics import IOU_THRESHOLD
from bench.photos import MAX_MEGAPIXELS
from bench.results.folder import dumps
from bench.results.run import DEFAULT_TARGET_PRECISION, FAILED, PhotoRecord, RowResult, Run
from bench.runner import DEFAULT_CANDIDATES_FLOOR, DEFAULT_MAX_ERROR_RATE, DEFAULT_MAX_REPEATS
from bench.validation import markup_safe, number_argument

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
"""Exit codes of every command that runs a benchmark: all rows ran; a row could not run or failed too
many photos (``--max-error-rate``); a usage error found before any work; interrupted (Ctrl-C, SIGTERM)."""


MAX_WARMUP = 100_000
MAX_REPEATS = 10_000
MAX_MEGAPIXELS_LIMIT = 1000.0
MAX_SESSIONS = 64


def add_run_arguments(parser: argparse.ArgumentParser) -> BackendFlags:
    """The options shared by every command that runs a benchmark (run, nightly, sweep)."""
    parser.add_argument("--backends", help="comma-separated backend names (default: every default backend "
                        "that can run here; see `bench backends`)")
    parser.add_argument("--dataset", help="a dataset folder (annotations.jsonl or digitStruct.mat), "
                        "'synthetic' (the default) or a fetched name like svhn-test")
    parser.add_argument("--limit", type=number_argument(int, at_least=1),
                        help="use only the first N photos (1 or more; default all)")
    parser.add_argument("--warmup", type=number_argument(int, at_least=0, at_most=MAX_WARMUP), default=3,
                        help="warm-up calls after the first inference, not measured (default 3)")
    parser.add_argument("--repeats", type=number_argument(int, at_least=1, at_most=MAX_REPEATS), default=1,
                        help="measured passes over the photos; accuracy uses the first (default 1)")
    parser.add_argument("--max-megapixels", default=MAX_MEGAPIXELS,
                        type=number_argument(float, more_than=0, at_most=MAX_MEGAPIXELS_LIMIT),
                        help=f"refuse photos larger than this (default {MAX_MEGAPIXELS:g})")
    parser.add_argument("--label", help="a free-text label stored with the run")
    parser.add_argument("--max-error-rate", type=number_argument(float, at_least=0, at_most=1),
                        default=DEFAULT_MAX_ERROR_RATE,
                        help="a row whose photos fail more often than this share fails, and so does the run "
                             f"(exit 1; default {DEFAULT_MAX_ERROR_RATE:g}; 0 = any failed photo)")
    parser.add_argument("--sessions", type=number_argument(int, at_least=1, at_most=MAX_SESSIONS), default=1,
                        help="run each row in this many sessions at once (for tfjs: browsers, local or on the "
                             "grid at --webdriver-url), photos dealt across them, records merged in dataset order "
                             "(default 1)")
    length = parser.add_argument_group("run length (MLPerf LoadGen's rules: passes repeat until every one is met)")
    length.add_argument("--min-photos", type=number_argument(int, at_least=0), default=0,
                        help="at least this many measured latency samples per row (default 0)")
    length.add_argument("--min-duration-s", type=number_argument(float, at_least=0), default=0.0,
                        help="measure each row for at least this long (default 0)")
    length.add_argument("--latency-precision", type=number_argument(float, more_than=0, at_most=1),
                        help="add passes until p90's 95%% interval is within +-this share of p90 (e.g. 0.05)")
    length.add_argument("--max-repeats", type=number_argument(int, at_least=1, at_most=MAX_REPEATS),
                        default=DEFAULT_MAX_REPEATS,
                        help=f"the most measured passes these rules may add up to (default {DEFAULT_MAX_REPEATS})")
    accuracy = parser.add_argument_group("accuracy analysis")
    accuracy.add_argument("--iou", type=number_argument(float, more_than=0, at_most=1), default=IOU_THRESHOLD,
                          help=f"a predicted digit matches a true one at this IoU or more (default {IOU_THRESHOLD:g})")
    accuracy.add_argument("--candidates-floor", type=number_argument(float, at_least=0, at_most=1),
                          default=DEFAULT_CANDIDATES_FLOOR,
                          help="keep every detection scoring at least this as a candidate, so any threshold, curve "
                               f"or AP can be rebuilt from the run folder (default {DEFAULT_CANDIDATES_FLOOR:g})")
    accuracy.add_argument("--target-precision", type=number_argument(float, more_than=0, at_most=1),
                          default=DEFAULT_TARGET_PRECISION,
                          help="report the threshold at which digit precision reaches this "
                               f"(default {DEFAULT_TARGET_PRECISION:g})")
    return add_backend_flags(parser)


def config_from_args(args: argparse.Namespace, flags: BackendFlags, out: Path | None = None):
    """A :class:`bench.runner.RunConfig` from parsed arguments."""
    from bench.runner import RunConfig

    backends = None
    if args.backends is not None:
        backends = tuple(dict.fromkeys(b.strip() for b in args.backends.split(",") if b.strip()))
        if not backends:
            raise UsageError(f"--backends {args.backends!r}: give at least one backend name (see `bench backends`), "
                             "or leave the option out for the default backends")
    return RunConfig(backends=backends, dataset=args.dataset, limit=args.limit, out=out,
                     warmup=args.warmup, repeats=args.repeats, backend_options=flags.values(args),
                     max_megapixels=args.max_megapixels, label=args.label, max_error_rate=args.max_error_rate,
                     iou=args.iou, target_precision=args.target_precision, candidates_floor=args.candidates_floor,
                     min_photos=args.min_photos, min_duration_s=args.min_duration_s,
                     latency_precision=args.latency_precision, max_repeats=args.max_repeats, sessions=args.sessions)


class RichObserver:
    """Progress bars and notes on the terminal."""

    def __init__(self, console) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = console
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("errors {task.fields[errors]}"), TimeElapsedColumn(),
                                 console=console, transient=False)
        self.tasks: dict[str, Any] = {}
        self.errors: dict[str, int] = {}

    def __enter__(self) -> RichObserver:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.tasks:
            self.progress.stop()

    def row_started(self, row: str, photos: int) -> None:
        if not self.tasks:
            self.progress.start()
        self.tasks[row] = self.progress.add_task(markup_safe(row), total=photos, errors=0)
        self.errors[row] = 0

    def photo_done(self, row: str, record: PhotoRecord) -> None:
        self.errors[row] += record.failed
        self.progress.update(self.tasks[row], advance=1, errors=self.errors[row])

    def row_finished(self, row: str, result: RowResult) -> None:
        if result.status == FAILED:
            self.console.print(f"[red]{markup_safe(row)} failed:[/red] {markup_safe(result.error)}", highlight=False)

    def note(self, message: str) -> None:
        self.console.print(f"[yellow]note:[/yellow] {markup_safe(message)}", highlight=False)


def handle_run(args: argparse.Namespace) -> int:
    """Run the benchmark, show the table (or print its summary as JSON with ``--json``), record the run."""
    from bench.report import dataset_caveat, rich_table, summary_json
    from bench.runner import default_out, run_benchmark
    from bench.terminal import terminal_console

    console = terminal_console(stderr=args.json)
    config = config_from_args(args, args.backend_flags, Path(args.out) if args.out else None)
    if config.out is None:
        config = replace(config, out=default_out(config.reports_dir))
    try:
        with RichObserver(console) as observer:
            run = run_benchmark(config, observer)
    except RunInterrupted as interrupted:
        console.print(f"[yellow]interrupted:[/yellow] what was measured is in {markup_safe(config.out)} (run.json "
                      "status 'interrupted')")
        run = interrupted.run
        if not args.no_store:
            run = record(run, args.store, console)
        keep_native_log(args, run, console)
        if args.json:
            print(dumps(summary_json(run), indent=2))
        return EXIT_INTERRUPTED
    console.print(rich_table(run))
    caveat = dataset_caveat(run)
    if caveat:
        console.print(f"[yellow]note:[/yellow] {markup_safe(caveat)}", highlight=False)
    console.print(markup_safe(f"results: {run.folder}/ (report.html, report.md, run.json, predictions.jsonl, "
                              "summary.csv, *.parquet)"), highlight=False)
    if not args.no_store:
        run = record(run, args.store, console)
    keep_native_log(args, run, console)
    if args.json:
        print(dumps(summary_json(run), indent=2))
    return exit_code(run)


def keep_native_log(args: argparse.Namespace, run: Run, console) -> None:
    """Save what native libraries wrote during the command into the run folder, and say where."""
    native = getattr(args, "native_log", None)
    path = native.save(run.folder) if native is not None else None
    if path is not None:
        console.print(markup_safe(f"native libraries' messages: {path}"), highlight=False, style="dim")


def exit_code(run: Run) -> int:
    """0 when every row ran (``complete``), 1 when a row could not run or failed too many photos."""
    return EXIT_OK if run.complete else EXIT_FAILED


def record(run: Run, store: str | None, console) -> Run:
    """Record the run in the history, say where, and return it as the history knows it."""
    from bench.history import record_run, resolve_store_path

    history_id = record_run(run, store)
    console.print(f"history: #{history_id} ({run.status}) in {resolve_store_path(store)}", highlight=False)
    return run.stored_as(history_id)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``bench run``."""
    parser = subparsers.add_parser("run", help="measure backends on a dataset",
                                   description="Measure cold start, warm latency and accuracy of backends.")
    flags = add_run_arguments(parser)
    parser.add_argument("--out", help="output folder (default reports/<timestamp>-<id>)")
    add_store_argument(parser)
    parser.add_argument("--no-store", action="store_true", help="do not record the run in the history")
    parser.add_argument("--json", action="store_true",
                        help="print the run's summary as JSON on stdout (progress and the table go to stderr)")
    parser.set_defaults(handler=handle_run, backend_flags=flags)
