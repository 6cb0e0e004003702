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
    from rich.console import Console
    from rich.table import Table

    table = Table(title="digitbench backends")
    for column in ("name", "available", "in default run", "why not / fix", "what", "from"):
        table.add_column(column, overflow="fold")
    for row in backend_status():
        colour = "green" if row["available"] == "yes" else "red"
        table.add_row(row["name"], f"[{colour}]{row['available']}[/{colour}]", row["default"], row["reason"],
                      row["summary"], f"{row['target']} ({row['distribution']})")
    Console().print(table)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("backends", help="list backends and whether they can run here")
    parser.set_defaults(handler=handle_backends)
