"""Elapsed time in the unit digitbench reports."""
from __future__ import annotations

import time


def ms_since(start_ns: int) -> float:
    """Milliseconds since ``start_ns``, a ``time.perf_counter_ns()`` reading."""
    return (time.perf_counter_ns() - start_ns) / 1e6
