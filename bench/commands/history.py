"""``bench history``, ``bench show RUN`` and ``bench accept RUN``: the results store from the terminal."""
from __future__ import annotations

import argparse
from pathlib import Path

from bench.errors import UsageError
from bench.validation import markup_safe, number_argument


def add_store_argument(parser: argparse.ArgumentParser) -> None:
    """``--store PATH`` as every command that reads or writes the history spells it."""
    parser.add_argument("--store", help="the history store (default $DIGITBENCH_STORE or reports/history.sqlite)")


def handle_history(args: argparse.Namespace) -> int:
    """List recorded runs, newest first, filtered as asked."""
    from bench.terminal import terminal_console
    from rich.table import Table

    from bench.history import HistoryStore, resolve_store_path

    path = resolve_store_path(args.store)
    console = terminal_console()
    if not path.exists():
        console.print(markup_safe(f"no history yet at {path}: `bench run` records every run there"))
        return 0
    with HistoryStore(path) as store:
        runs = store.runs(backend=args.backend, machine=args.machine, since=args.since, until=args.until,
                          suite=args.suite, limit=args.limit)
    table = Table(title=markup_safe(f"history {path} ({len(runs)} run(s) shown)"))
    for column in ("id", "started", "status", "rows", "dataset", "photos", "machine", "commit", "suite", "label"):
        table.add_column(column, overflow="fold", no_wrap=column in ("id", "status", "rows"))
    for run in runs:
        commit = (run.commit or "?")[:8] + ("+dirty" if run.dirty else "")
        suite = (run.suite or "") + (" (accepted)" if run.accepted else "")
        started = (run.started or "")[:16].replace("T", " ")
        cells = (str(run.id), started, run.status, ", ".join(run.rows), run.dataset_name or "",
                 str(run.photos or ""), run.machine_id or "", commit, suite, run.label or "")
        table.add_row(*(markup_safe(cell) for cell in cells))
    console.print(table)
    return 0


def handle_show(args: argparse.Namespace) -> int:
    """Show one run (folder or history id) with figures recomputed from its records; ``--html`` also
    writes its report.html, drawing the gallery from the run's photos where they can still be read."""
    from bench.history import open_run
    from bench.report import rich_table
    from bench.terminal import terminal_console

    run = open_run(args.run, args.store)
    console = terminal_console()
    console.print(rich_table(run))
    env = run.environment
    console.print(markup_safe(f"{run.label}: status {run.status}, started {run.started}, machine {env.machine_text}, "
                              f"commit {env.commit}{' +dirty' if env.dirty else ''}; "
                              "figures recomputed from the stored per-photo records"), highlight=False)
    if args.html is not None:
        from bench.dataset import reload_photos
        from bench.html_report import REPORT_HTML, write_html_report

        photos, problem = reload_photos(run.dataset, run.options.limit)
        if args.html:
            target = Path(args.html)
        elif run.folder is not None and Path(run.folder).is_dir():
            target = Path(run.folder) / REPORT_HTML
        else:
            target = Path(f"report-{run.run_id}.html")
        try:
            write_html_report(run, photos, target)
        except OSError as exc:
            raise UsageError(f"--html {target}: cannot be written ({exc.strerror or exc}); give another path") from None
        console.print(markup_safe(f"report: {target}" + (f" (gallery without photos: {problem})" if problem else "")),
                      highlight=False)
    return 0


def handle_accept(args: argparse.Namespace) -> int:
    """Mark a run as its suite's accepted baseline, or withdraw that."""
    from bench.history import HistoryStore, open_run

    run = open_run(args.run, args.store)
    with HistoryStore(args.store) as store:
        history_id = run.history_id or (store.find_folder(run.folder) if run.folder else None)
        if history_id is None:
            history_id = store.append(run)
        store.set_accepted(history_id, not args.withdraw)
    print(f"history #{history_id}: {'no longer ' if args.withdraw else ''}an accepted baseline")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``bench history``, ``bench show`` and ``bench accept``."""
    history = subparsers.add_parser("history", help="list recorded runs",
                                    description="List the runs recorded in the history store, newest first.")
    add_store_argument(history)
    history.add_argument("--backend", help="only runs with this backend or row")
    history.add_argument("--machine", help="only runs on this machine id")
    history.add_argument("--suite", help="only runs of this nightly suite")
    history.add_argument("--since", help="only runs started on or after this date (YYYY-MM-DD)")
    history.add_argument("--until", help="only runs started before this date (YYYY-MM-DD)")
    history.add_argument("--limit", type=number_argument(int, at_least=1), default=50,
                         help="at most this many runs (default 50)")
    history.set_defaults(handler=handle_history)

    show = subparsers.add_parser("show", help="show one run, recomputed from its raw records",
                                 description="Show a run (a history id or a run folder).")
    show.add_argument("run", metavar="RUN", help="history id (e.g. 12) or run folder")
    show.add_argument("--html", nargs="?", const="", metavar="FILE",
                      help="also write the run's report.html (default: into its run folder, else "
                           "./report-<run id>.html)")
    add_store_argument(show)
    show.set_defaults(handler=handle_show)

    accept = subparsers.add_parser("accept", help="mark a run as the accepted baseline of its suite",
                                   description="Mark a run as accepted: nightly compares with the last accepted run.")
    accept.add_argument("run", metavar="RUN", help="history id or run folder")
    accept.add_argument("--withdraw", action="store_true", help="withdraw the acceptance instead")
    add_store_argument(accept)
    accept.set_defaults(handler=handle_accept)
