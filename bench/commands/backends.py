"""``bench backends``: every registered backend, whether it can run here, and why not."""
from __future__ import annotations

import argparse

from bench.options import build_options
from bench.registry import registered


def backend_status() -> list[dict[str, str]]:
    """One entry per registered backend: name, source, availability and reason."""
    rows = []
    for name, entry in registered().items():
        row = {"name": name, "target": entry.target, "distribution": entry.distribution,
               "available": "no", "reason": "", "summary": "", "default": ""}
        try:
            cls = entry.load()
            row["summary"] = cls.summary
            row["default"] = "yes" if cls.default_enabled else "no"
            reason = cls.unavailable_reason(build_options(cls.Options, name, {}))
        except Exception as exc:
            reason = str(exc)
        row["available"] = "no" if reason else "yes"
        row["reason"] = reason or ""
        rows.append(row)
    return rows


def handle_backends(args: argparse.Namespace) -> int:
    """Print every backend with its availability here and the fix when it cannot run."""
    from bench.terminal import terminal_console
    from rich.table import Table

    table = Table(title="digitbench backends")
    columns = ["name", "available", "default run", "why not / fix"]
    if args.verbose:
        columns += ["what", "from"]
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in backend_status():
        colour = "green" if row["available"] == "yes" else "red"
        cells = [row["name"], f"[{colour}]{row['available']}[/{colour}]", row["default"], row["reason"]]
        if args.verbose:
            cells += [row["summary"], f"{row['target']} ({row['distribution']})"]
        table.add_row(*cells)
    terminal_console().print(table)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``bench backends``."""
    parser = subparsers.add_parser("backends", help="list backends and whether they can run here")
    parser.add_argument("-v", "--verbose", action="store_true", help="also show what each backend is and its source")
    parser.set_defaults(handler=handle_backends)
