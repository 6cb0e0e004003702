"""The ``bench`` command: a thin layer over the library API.

Each subcommand lives in a module of :data:`COMMAND_MODULES` that exposes
``register(subparsers)``; the parser it adds sets ``handler`` to a function taking the parsed
arguments and returning an exit code. A handler runs with native libraries' output kept off the
terminal (:mod:`bench.native_log`); ``args.native_log`` lets it save that log into a run folder.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
from collections.abc import Sequence

from bench.errors import BenchError
from bench.native_log import NativeLog, quiet_environment
from bench.validation import printable

COMMAND_MODULES = (
    "bench.commands.run",
    "bench.commands.backends",
    "bench.commands.datasets",
    "bench.model.commands",
    "bench.commands.history",
    "bench.commands.compare",
    "bench.commands.nightly",
    "bench.commands.sweep",
)


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line naming the option (and where to read more)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {printable(message)} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every command module's subcommands."""
    from bench import __version__

    parser = OneLineParser(prog="bench", description="digitbench: benchmark digit recognizers "
                                     "(cold start, warm latency, accuracy) on house-number photos.")
    parser.add_argument("--version", action="version", version=f"digitbench {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def _terminate(signum, frame):
    raise KeyboardInterrupt


@contextlib.contextmanager
def _terminations_interrupt():
    """SIGTERM and SIGHUP end the command like Ctrl-C (what is measured is kept); restored after."""
    signals = [getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)]
    previous = {signum: signal.signal(signum, _terminate) for signum in signals}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bench`` console script."""
    os.environ.setdefault("SE_OFFLINE", "true")
    os.environ.setdefault("NO_GCE_CHECK", "true")
    quiet_environment()
    with _terminations_interrupt():
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    with NativeLog() as native:
        args.native_log = native
        try:
            code = _handle(args)
        except Exception:
            _show_tail(native)
            raise
        if code not in (0, 130):
            _show_tail(native)
    return code


def _show_tail(native: NativeLog) -> None:
    if native.text():
        print("bench: native libraries said (last lines):", *native.tail(), sep="\n  ", file=sys.stderr)


def _handle(args: argparse.Namespace) -> int:
    try:
        return int(args.handler(args) or 0)
    except BenchError as exc:
        print(f"bench: error: {printable(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
