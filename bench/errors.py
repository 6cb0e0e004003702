"""Every exception digitbench raises on purpose, one class per meaning; each message is one line
naming what to fix.

::

    BenchError                      a problem the user can fix (exit 1)
    ├── UsageError                  a bad option or argument, found before any work (exit 2)
    │   └── NotComparable           two runs measured different things (compare refuses)
    ├── DatasetError                a dataset that cannot be read at all (exit 2)
    ├── PhotoError                  one photo that cannot be used (recorded on that photo)
    ├── BackendUnavailable          a backend cannot run or start here (exit 2 before any work;
    │                               a failed row when raised by ``open()``)
    ├── ModelError                  a model's files cannot be used (missing, malformed, short)
    ├── ConversionError             a model converter refused a model
    ├── StoreError                  the history store cannot be read or written
    └── EngineFault                 the engine a backend drives (browser, process, service) failed
        ├── EngineError             it reported an error for the work it was given
        │   └── RequestFailed       a service request failed for good, after any retries
        ├── EngineGone              it died or lost its session
        └── EngineHung              it did not answer within its timeout

    KeyboardInterrupt
    └── RunInterrupted              Ctrl-C or SIGTERM stopped a run; it carries what was measured (exit 130)
"""
from __future__ import annotations

from typing import Any


def first_line(error: object, default: str = "unknown error") -> str:
    """The first non-empty line of an error or message, stripped; ``default`` when there is none."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else default


class BenchError(Exception):
    """Base class: a problem the user can fix, reported as one line."""

    exit_code = 1


class UsageError(BenchError):
    """A bad option or argument, found before any work starts (exit 2)."""

    exit_code = 2


class NotComparable(UsageError):
    """Two runs differ in what they measured; the message lists how and offers ``--force``."""


class DatasetError(BenchError):
    """A dataset that cannot be read at all (a bad single photo is a record, not this)."""

    exit_code = 2


class EntryProblem(ValueError):
    """A value of one dataset entry that cannot be used (the message names it); recorded on its photo."""


class PhotoError(BenchError):
    """One photo that cannot be used (missing, corrupt, too large); recorded on that photo."""


class BackendUnavailable(BenchError):
    """A backend that cannot run or start on this machine; the message says why and how to fix it."""

    exit_code = 2


class ModelError(BenchError):
    """A model's files that cannot be used: missing, a malformed description, missing or short weights."""


class ConversionError(BenchError):
    """A model converter refused the model; the message names the reason (e.g. the op)."""


class StoreError(BenchError):
    """The history store cannot be read or written; the message names the file and the fix."""


class EngineFault(BenchError):
    """The engine a backend drives (a browser, a process, a remote service) failed."""


class EngineError(EngineFault):
    """The engine reported an error for the work it was given; the message is its own, on one line."""


class RequestFailed(EngineError):
    """A request to a service failed for good, after ``retries`` retries and ``total_ms`` in all.

    ``fatal`` means retrying cannot help (bad credentials, a quota of zero): the row should stop.
    """

    def __init__(self, message: str, *, fatal: bool = False, retries: int = 0, total_ms: float = 0.0) -> None:
        super().__init__(message)
        self.fatal = fatal
        self.retries = retries
        self.total_ms = total_ms


class EngineGone(EngineFault):
    """The engine died or lost its session (a crashed browser, a killed process)."""


class EngineHung(EngineFault):
    """The engine did not answer within its timeout."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped a run; ``run`` is the :class:`bench.results.run.Run` as written
    (status ``interrupted``)."""

    def __init__(self, run: Any) -> None:
        super().__init__("interrupted")
        self.run = run
