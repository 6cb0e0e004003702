"""Latency statistics, computed in one place from raw samples (milliseconds)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

UNSTABLE_CV = 0.10
"""A spread (std / mean) at or above this is reported as unstable, as pyperf does."""


@dataclass(frozen=True)
class LatencyStats:
    """Summary of a latency distribution in ms; percentiles use linear interpolation."""

    n: int
    p50: float
    p90: float
    p99: float
    mean: float
    std: float
    min: float
    max: float
    iqr: float

    @classmethod
    def of(cls, samples_ms: Sequence[float]) -> LatencyStats | None:
        """Statistics of the samples, or ``None`` when there are none."""
        values = np.asarray([s for s in samples_ms if s is not None], dtype=np.float64)
        if values.size == 0:
            return None
        p25, p50, p75, p90, p99 = np.percentile(values, [25, 50, 75, 90, 99])
        std = float(values.std(ddof=1)) if values.size > 1 else 0.0
        return cls(n=int(values.size), p50=float(p50), p90=float(p90), p99=float(p99),
                   mean=float(values.mean()), std=std, min=float(values.min()),
                   max=float(values.max()), iqr=float(p75 - p25))

    def to_dict(self, digits: int = 3) -> dict[str, float | int]:
        return {k: (round(v, digits) if isinstance(v, float) else v) for k, v in asdict(self).items()}

    def stability_warning(self) -> str | None:
        """A sentence with a remedy when the spread is large or the sample small."""
        if self.n < 5:
            return f"only {self.n} latency samples: use more photos or --repeats"
        if self.mean > 0 and self.std / self.mean >= UNSTABLE_CV:
            return (f"unstable: std is {100 * self.std / self.mean:.0f}% of the mean; close other work, "
                    "add --warmup or --repeats")
        return None
