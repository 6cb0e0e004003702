"""Latency statistics, computed in one place from raw samples (milliseconds)."""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

UNSTABLE_CV = 0.10
"""A spread (std / mean) at or above this is reported as unstable, as pyperf does."""
P99_MIN_SAMPLES = 100
"""Fewer samples than this and p99 is the largest value or close to it: said in the row's notes."""
CONFIDENCE = 0.95


def quantile_interval(values: np.ndarray, q: float, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """A distribution-free ``confidence`` interval of the ``q`` quantile from order statistics.

    The ranks come from the binomial distribution of how many samples fall below the true quantile
    (as MLPerf LoadGen's and pyperf's percentile intervals do); with few samples the interval reaches
    the smallest or largest value.
    """
    from scipy.stats import binom

    ordered = np.sort(values)
    n = ordered.size
    tail = (1.0 - confidence) / 2
    low = int(binom.ppf(tail, n, q))
    high = int(binom.ppf(1.0 - tail, n, q))
    return float(ordered[max(low - 1, 0)]), float(ordered[min(high, n - 1)])


@dataclass(frozen=True)
class LatencyStats:
    """Summary of a latency distribution in ms; percentiles use linear interpolation, and p50/p90/p99
    come with a 95% interval from order statistics."""

    n: int
    p50: float
    p90: float
    p99: float
    mean: float
    std: float
    min: float
    max: float
    iqr: float
    p50_ci: tuple[float, float] = (math.nan, math.nan)
    p90_ci: tuple[float, float] = (math.nan, math.nan)
    p99_ci: tuple[float, float] = (math.nan, math.nan)

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
                   max=float(values.max()), iqr=float(p75 - p25), p50_ci=quantile_interval(values, 0.50),
                   p90_ci=quantile_interval(values, 0.90), p99_ci=quantile_interval(values, 0.99))

    def relative_halfwidth(self, quantile: str = "p90") -> float:
        """The larger side of the quantile's interval as a share of the quantile (0.05 = within +-5%)."""
        value = getattr(self, quantile)
        low, high = getattr(self, f"{quantile}_ci")
        return max(value - low, high - value) / value if value > 0 else math.inf

    def to_dict(self, digits: int = 3) -> dict[str, float | int | list[float]]:
        return {"n": self.n, **{k: round(getattr(self, k), digits) for k in
                                ("p50", "p90", "p99", "mean", "std", "min", "max", "iqr")},
                **{f"{k}_ci": [round(v, digits) for v in getattr(self, f"{k}_ci")] for k in ("p50", "p90", "p99")}}

    def stability_warning(self) -> str | None:
        """A sentence with a remedy when the spread is large or the sample small."""
        if self.n < 5:
            return f"only {self.n} latency samples: use more photos or --repeats"
        if self.mean > 0 and self.std / self.mean >= UNSTABLE_CV:
            return (f"unstable: std is {100 * self.std / self.mean:.0f}% of the mean; close other work, "
                    "add --warmup or --repeats")
        return None

    def p99_note(self) -> str | None:
        """A note when p99 rests on fewer than :data:`P99_MIN_SAMPLES` samples."""
        if self.n < P99_MIN_SAMPLES:
            return (f"p99 rests on {self.n} samples (< {P99_MIN_SAMPLES}): it is close to the maximum; "
                    "use --min-photos or --repeats for a tail figure")
        return None
