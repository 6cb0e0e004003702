"""``oracle``: a reference backend that answers from the dataset's own annotations.

It measures the harness, not a recognizer: with no options it scores 100%, and its options
inject misses, wrong labels, failures and latency, so tests and statistical checks can verify
that the harness reports exactly what happened. ``--oracle-fault`` injects the faults a real
engine can show once ``--oracle-fault-after`` photos were answered: an exception from
``recognize``, the wrong number of results, non-finite or out-of-range digits, a hard crash of the
process, a signal to itself, or a hang (``scripts/fault_corpus.py`` runs each). Not part of a
default run.
"""
from __future__ import annotations

import hashlib
import os
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from bench.backend import Backend
from bench.clock import ms_since
from bench.options import option
from bench.photos import LoadedPhoto
from bench.results.records import ColdStart, Digit, Recognition


FAULTS = ("none", "raise", "wrong-count", "nan", "bad-label", "crash", "sigterm", "sigint", "hang")
MAX_BUSY_MS = 3_600_000.0
"""An hour: the longest busy wait an option may ask for."""


@dataclass(frozen=True)
class OracleOptions:
    """Knobs that make the oracle imperfect, deterministically."""

    miss_rate: float = option(0.0, "share of true digits left out", at_least=0, at_most=1)
    wrong_label_rate: float = option(0.0, "share of digits reported with a wrong label", at_least=0, at_most=1)
    fail_rate: float = option(0.0, "share of photos answered with an error", at_least=0, at_most=1)
    delay_ms: float = option(0.0, "busy time spent on each photo, in ms", at_least=0, at_most=MAX_BUSY_MS)
    jitter_ms: float = option(0.0, "uniform extra busy time per photo, 0..jitter, in ms", at_least=0,
                              at_most=MAX_BUSY_MS)
    init_ms: float = option(0.0, "busy time spent in open(), in ms", at_least=0, at_most=MAX_BUSY_MS)
    seed: int = option(0, "seed of the injected faults and jitter", at_least=0)
    fail_open: bool = option(False, "fail in open() with an error")
    fault: str = option("none", "a fault injected once --oracle-fault-after photos were answered: raise (recognize "
                        "raises), wrong-count (one result too few), nan (non-finite digits), bad-label (label 12), "
                        "crash (the process dies at once), sigterm / sigint (sent to itself), hang (sleeps "
                        "--oracle-hang-s)", choices=FAULTS)
    fault_after: int = option(0, "photos answered (warm-up included) before --oracle-fault fires", at_least=0)
    hang_s: float = option(3600.0, "how long --oracle-fault hang sleeps, in seconds", more_than=0, at_most=86400)


def _busy(ms: float) -> None:
    end = time.perf_counter_ns() + int(ms * 1e6)
    while time.perf_counter_ns() < end:
        pass


class OracleBackend(Backend):
    """Answers with the true digits, degraded as its options say."""

    name = "oracle"
    Options = OracleOptions
    summary = "reference answers from the annotations, with injectable faults (harness checks)"
    default_enabled = False
    _struck = False
    _answered = 0

    def open(self) -> ColdStart:
        if self.options.fail_open:
            raise RuntimeError("oracle told to fail in open()")
        start = time.perf_counter_ns()
        _busy(self.options.init_ms)
        return ColdStart(init_ms=ms_since(start))

    def _rng(self, image: str) -> np.random.Generator:
        digest = hashlib.sha256(f"{self.options.seed}:{image}".encode()).digest()
        return np.random.default_rng(int.from_bytes(digest[:8], "little"))

    def _one(self, loaded: LoadedPhoto) -> Recognition:
        start = time.perf_counter_ns()
        opts = self.options
        rng = self._rng(loaded.photo.image)
        _busy(opts.delay_ms + rng.uniform(0, opts.jitter_ms))
        if rng.random() < opts.fail_rate:
            return Recognition.failed("oracle: injected failure", ms_since(start))
        digits = []
        for true in loaded.photo.truth:
            if rng.random() < opts.miss_rate:
                continue
            label = true.label
            if rng.random() < opts.wrong_label_rate:
                label = (label + 1 + int(rng.integers(9))) % 10
            box = true.box
            digits.append(Digit(label, 1.0, box.left, box.top, box.width, box.height))
        text = "".join(str(d.label) for d in digits)
        return Recognition(digits, text, ms_since(start), candidates=list(digits))

    def recognize(self, photos: Sequence[LoadedPhoto]) -> list[Recognition]:
        fault = self.options.fault
        due = fault != "none" and self._answered >= self.options.fault_after
        if due:
            self._strike(fault)
        results = [self._one(p) for p in photos]
        self._answered += len(photos)
        if due and fault == "wrong-count":
            return results[:-1]
        if due and fault in ("nan", "bad-label"):
            nan = float("nan")
            wrong = (Digit(12, 1.0, 1, 1, 5, 5) if fault == "bad-label" else Digit(1, nan, nan, 0, float("inf"), 5))
            return [replace(r, digits=[*r.digits, wrong]) if r.error is None else r for r in results]
        return results

    def _strike(self, fault: str) -> None:
        if fault == "raise":
            raise RuntimeError("oracle: injected exception in recognize()")
        if self._struck:
            return
        self._struck = True
        if fault == "crash":
            os._exit(70)
        if fault in ("sigterm", "sigint"):
            os.kill(os.getpid(), signal.SIGTERM if fault == "sigterm" else signal.SIGINT)
        if fault == "hang":
            time.sleep(self.options.hang_s)

    def describe(self) -> dict:
        return {"kind": "reference answers from annotations"}
