"""The rich console every command prints through: a terminal's own width, else ``$COLUMNS``, else wide
enough that a table in a CI log keeps every cell whole instead of folding it into 80 columns."""
from __future__ import annotations

import os
import sys

WIDE = 1000
"""The width of a console that is not a terminal and has no ``$COLUMNS``: tables take their natural width."""


def console_width(stream) -> int | None:
    """The width to give a console on ``stream``: ``None`` (rich asks the terminal) on a terminal,
    else ``$COLUMNS``, else :data:`WIDE`."""
    try:
        if stream.isatty():
            return None
    except (AttributeError, ValueError):
        pass
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) > 0 else WIDE


def terminal_console(stderr: bool = False):
    """A rich Console on stdout (or stderr), sized by :func:`console_width`."""
    from rich.console import Console

    return Console(stderr=stderr, width=console_width(sys.stderr if stderr else sys.stdout))
