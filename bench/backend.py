"""The one protocol every recognizer implements, built-in or third-party.

A backend is a class registered in the ``digitbench.backends`` entry-point group. Its module
must import quickly: heavy libraries (TensorFlow, Selenium, the Vision client) are imported in
:meth:`Backend.open`, so that ``bench backends`` works without them.

Life of one backend row in a run::

    reason = Cls.unavailable_reason(options)      # None, or why it cannot run and the fix
    for row, row_options in Cls.rows(options):    # e.g. one row per quantization
        backend = Cls(row_options, row)
        cold = backend.open()                     # download + init, measured by the backend
        backend.recognize([photo, ...])           # -> one Recognition per photo, in order
        backend.describe()                        # versions, model hash, renderer ...
        backend.close()
"""
from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from bench.options import NoOptions, public_options
from bench.photos import LoadedPhoto
from bench.results.records import ColdStart, Recognition


@dataclass(frozen=True)
class SweepAxis:
    """An option a sweep may vary, its values, and the value the others are judged against.

    The tfjs backend declares ``SweepAxis("quantization", ("none", "float16", ...), "none")``:
    ``bench sweep`` runs one row per value and judges each against float32.
    """

    option: str
    values: tuple[str, ...]
    reference: str


class Backend(abc.ABC):
    """Base class of a recognizer. Subclasses set ``name`` and usually ``Options``."""

    name: ClassVar[str] = ""
    Options: ClassVar[type] = NoOptions
    summary: ClassVar[str] = ""
    default_enabled: ClassVar[bool] = True
    """Whether ``bench run`` without ``--backends`` includes it (when it can run here)."""

    sweep_axes: ClassVar[tuple[SweepAxis, ...]] = ()
    """The options ``bench sweep`` may vary for this backend."""

    packages: ClassVar[tuple[str, ...]] = ()
    """Distributions whose versions a run records in its environment (e.g. ``selenium``)."""

    batch_size: int = 1
    """How many photos the runner hands to one :meth:`recognize` call."""

    def __init__(self, options: Any = None, row: str | None = None) -> None:
        self.options = options if options is not None else self.Options()
        self.row = row or self.name

    @classmethod
    def unavailable_reason(cls, options: Any) -> str | None:
        """Why this backend cannot run here, with the fix; ``None`` when it can."""
        return None

    @classmethod
    def skip_by_default_reason(cls, options: Any) -> str | None:
        """Why a run without ``--backends`` leaves this backend out; defaults to unavailability."""
        return cls.unavailable_reason(options)

    @classmethod
    def runs_on_this_machine(cls, options: Any) -> bool:
        """Whether this configuration's engine runs on this machine (a remote grid or service does not):
        parallel sessions that do compete for its cores, which latency figures must say."""
        return True

    @classmethod
    def rows(cls, options: Any) -> list[tuple[str, Any]]:
        """The report rows this configuration expands to, as (row name, row options)."""
        return [(cls.name, options)]

    @abc.abstractmethod
    def open(self) -> ColdStart:
        """Get ready to recognize: load or download the model, start engines or browsers."""

    @abc.abstractmethod
    def recognize(self, photos: Sequence[LoadedPhoto]) -> list[Recognition]:
        """Recognize each photo; one result per photo, in order. Never raise for one bad photo."""

    def healthy(self) -> bool:
        """Whether the engine this backend drives still runs (a browser, a process, a connection).

        ``False`` after a :meth:`recognize` tells the runner the backend gave up on its engine (it
        could not restart it): with ``--sessions`` the runner replaces it and retries its photos.
        """
        return True

    def close(self) -> None:
        """Release everything :meth:`open` started. Safe to call more than once."""

    def describe(self) -> dict[str, Any]:
        """Facts that make results comparable: versions, model identity, hardware used."""
        return {}

    def public_options(self) -> dict[str, Any]:
        """This row's options for reports, secrets masked."""
        return public_options(self.options)

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
