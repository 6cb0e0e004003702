"""``bench run``: measure backends on a dataset and write the run folder."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bench.commands.backend_flags import BackendFlags, add_backend_flags
from bench.commands.history import add_store_argument
from bench.errors import UsageError
from bench.photos import MAX_MEGAPIXELS
from bench.validation import markup_safe, number_argument


MAX_WARMUP = 100_000
MAX_REPEATS = 10_000
MAX_MEGAPIXELS_LIMIT = 1000.0


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
                     max_megapixels=args.max_megapixels, label=args.label)


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

    def photo_done(self, row: str, record: dict[str, Any]) -> None:
        self.errors[row] += record["error"] is not None
        self.progress.update(self.tasks[row], advance=1, errors=self.errors[row])

    def row_finished(self, row: str, summary: dict[str, Any]) -> None:
        if summary.get("status") == "failed":
            self.console.print(f"[red]{markup_safe(row)} failed:[/red] {markup_safe(summary.get('error'))}",
                               highlight=False)

    def note(self, message: str) -> None:
        self.console.print(f"[yellow]note:[/yellow] {markup_safe(message)}", highlight=False)


def handle_run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from bench.report import rich_table
    from bench.runner import default_out, run_benchmark

    console = Console(stderr=False)
    config = config_from_args(args, args.backend_flags, Path(args.out) if args.out else None)
    if config.out is None:
        config.out = default_out(config.reports_dir)
    try:
        with RichObserver(console) as observer:
            result = run_benchmark(config, observer)
    except KeyboardInterrupt:
        console.print(f"[yellow]interrupted:[/yellow] what was measured is in {markup_safe(config.out)} (run.json "
                      "status 'interrupted')")
        return 130
    console.print(rich_table(result.run))
    console.print(markup_safe(f"results: {result.out}/ (run.json, predictions.jsonl, summary.csv, report.md)"))
    if not args.no_store:
        from bench.history import record_run, resolve_store_path

        history_id = record_run(result.out, args.store)
        console.print(markup_safe(f"history: #{history_id} in {resolve_store_path(args.store)}"))
    return 0 if result.run["status"] == "complete" else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("run", help="measure backends on a dataset",
                                   description="Measure cold start, warm latency and accuracy of backends.")
    flags = add_run_arguments(parser)
    parser.add_argument("--out", help="output folder (default reports/<timestamp>-<id>)")
    add_store_argument(parser)
    parser.add_argument("--no-store", action="store_true", help="do not record the run in the history")
    parser.set_defaults(handler=handle_run, backend_flags=flags)
