"""Statistical tests used to compare two runs, in numpy only (no SciPy needed).

- :func:`mann_whitney_u`: two-sided Mann-Whitney U test (normal approximation with tie and
  continuity correction), for latency samples of two runs.
- :func:`mcnemar_exact`: two-sided exact McNemar test on paired yes/no outcomes (the same photos
  scored in two runs).
- :func:`sign_test`: two-sided exact sign test on paired differences (the same photos timed in
  two runs).
- :func:`bootstrap_ratio`: a percentile bootstrap interval of ``stat(new) / stat(base) - 1``.
- :func:`permutation_quantile`: an unpaired permutation test on a quantile difference.
- :func:`paired_f1`: the change of digit F1 on paired photos, its bootstrap interval and a
  paired permutation (swap) test.

Every function takes a ``numpy.random.Generator`` where it draws, so results are reproducible.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


def rank_average(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ranks (1-based, ties averaged) and the sizes of the tie groups."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    sizes = np.diff(np.r_[starts, ordered.size])
    average = starts + (sizes + 1) / 2.0
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = np.repeat(average, sizes)
    return ranks, sizes


def mann_whitney_u(base: np.ndarray, new: np.ndarray) -> float:
    """Two-sided p-value that ``base`` and ``new`` come from the same distribution."""
    a, b = np.asarray(base, dtype=np.float64), np.asarray(new, dtype=np.float64)
    n1, n2 = a.size, b.size
    if n1 == 0 or n2 == 0:
        return 1.0
    ranks, ties = rank_average(np.concatenate([a, b]))
    u1 = ranks[:n1].sum() - n1 * (n1 + 1) / 2.0
    n = n1 + n2
    tie_term = float((ties ** 3 - ties).sum()) / (n * (n - 1)) if n > 1 else 0.0
    variance = n1 * n2 / 12.0 * ((n + 1) - tie_term)
    if variance <= 0:
        return 1.0
    z = max(abs(u1 - n1 * n2 / 2.0) - 0.5, 0.0) / math.sqrt(variance)
    return float(math.erfc(z / math.sqrt(2.0)))


def binomial_two_sided(k: int, n: int) -> float:
    """Two-sided exact p-value of ``k`` successes in ``n`` fair coin tosses."""
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(k, n - k) + 1))
    return min(1.0, 2 * tail / 2 ** n)


def sign_test(differences: np.ndarray) -> float:
    """Two-sided exact sign test that paired differences are centred on zero (zeros dropped)."""
    d = np.asarray(differences, dtype=np.float64)
    return binomial_two_sided(int((d > 0).sum()), int((d != 0).sum()))


def mcnemar_exact(base_ok: np.ndarray, new_ok: np.ndarray) -> tuple[float, int, int]:
    """Two-sided exact McNemar p-value and the discordant counts (lost, gained).

    ``lost`` counts items right in ``base`` and wrong in ``new``; ``gained`` the reverse.
    """
    a, b = np.asarray(base_ok, dtype=bool), np.asarray(new_ok, dtype=bool)
    lost, gained = int((a & ~b).sum()), int((~a & b).sum())
    return binomial_two_sided(lost, lost + gained), lost, gained


@dataclass(frozen=True)
class Interval:
    """A point estimate with a confidence interval and a two-sided p-value."""

    estimate: float
    low: float
    high: float
    p_value: float


def bootstrap_ratio(base: np.ndarray, new: np.ndarray, stat: Callable[[np.ndarray], np.ndarray],
                    rng: np.random.Generator, resamples: int = 1000, confidence: float = 0.95) -> Interval:
    """``stat(new) / stat(base) - 1`` with a percentile bootstrap interval (runs resampled apart).

    ``stat`` maps a 2-D array (one resample per row) to one value per row. The p-value is the
    bootstrap's two-sided tail at zero change, a rough figure; prefer a proper test for verdicts.
    """
    a, b = np.asarray(base, dtype=np.float64), np.asarray(new, dtype=np.float64)
    estimate = float(stat(b[None, :])[0] / stat(a[None, :])[0] - 1.0)
    ratios = np.empty(resamples)
    chunk = max(1, 2_000_000 // max(a.size, b.size, 1))
    for start in range(0, resamples, chunk):
        count = min(chunk, resamples - start)
        sa = a[rng.integers(0, a.size, (count, a.size))]
        sb = b[rng.integers(0, b.size, (count, b.size))]
        ratios[start:start + count] = stat(sb) / stat(sa) - 1.0
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(ratios, [tail, 1.0 - tail])
    p = min(1.0, 2.0 * min(float((ratios <= 0).mean()), float((ratios >= 0).mean())))
    return Interval(estimate, float(low), float(high), p)


def quantile_of(q: float) -> Callable[[np.ndarray], np.ndarray]:
    """A row-wise quantile function for :func:`bootstrap_ratio`."""
    return lambda rows: np.quantile(rows, q, axis=1)


def permutation_quantile(base: np.ndarray, new: np.ndarray, q: float, rng: np.random.Generator,
                         permutations: int = 1000) -> float:
    """Two-sided p-value of the difference of the ``q`` quantiles, samples shuffled between runs."""
    a, b = np.asarray(base, dtype=np.float64), np.asarray(new, dtype=np.float64)
    pooled = np.concatenate([a, b])
    observed = abs(np.quantile(b, q) - np.quantile(a, q))
    chunk = max(1, 2_000_000 // max(pooled.size, 1))
    extreme = 0
    for start in range(0, permutations, chunk):
        count = min(chunk, permutations - start)
        shuffled = rng.permuted(np.tile(pooled, (count, 1)), axis=1)
        diff = np.abs(np.quantile(shuffled[:, a.size:], q, axis=1) - np.quantile(shuffled[:, :a.size], q, axis=1))
        extreme += int((diff >= observed - 1e-12).sum())
    return (extreme + 1) / (permutations + 1)


def f1_counts(scores: Mapping[str, Any], images: Sequence[str]) -> np.ndarray:
    """``[matched, predicted, true]`` digit counts per photo (a :class:`bench.metrics.PhotoScore`
    each), in the order of ``images``: what :func:`paired_f1` pairs."""
    return np.array([[scores[i].matched, scores[i].predicted, scores[i].true] for i in images], float)


def _f1(matched: np.ndarray, predicted: np.ndarray, true: np.ndarray) -> np.ndarray:
    denominator = predicted + true
    return np.divide(2.0 * matched, denominator, out=np.zeros(denominator.shape), where=denominator > 0)


def paired_f1(base: np.ndarray, new: np.ndarray, rng: np.random.Generator, resamples: int = 1000,
              confidence: float = 0.95) -> Interval:
    """Change of digit F1 (new - base) on the same photos.

    ``base`` and ``new`` are arrays of shape (photos, 3): matched, predicted and true digits per
    photo, rows aligned by photo. F1 = 2 matched / (predicted + true), summed over photos. The
    interval resamples photos (paired bootstrap); the p-value swaps the two runs' answers per
    photo at random (paired permutation test).
    """
    a, b = np.asarray(base, dtype=np.float64), np.asarray(new, dtype=np.float64)
    totals_a, totals_b = a.sum(axis=0), b.sum(axis=0)
    estimate = float(_f1(*totals_b) - _f1(*totals_a))
    n = a.shape[0]
    idx = rng.integers(0, n, (resamples, n))
    sa, sb = a[idx].sum(axis=1), b[idx].sum(axis=1)
    deltas = _f1(sb[:, 0], sb[:, 1], sb[:, 2]) - _f1(sa[:, 0], sa[:, 1], sa[:, 2])
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(deltas, [tail, 1.0 - tail])
    differ = np.flatnonzero((a != b).any(axis=1))
    if differ.size == 0:
        return Interval(estimate, float(low), float(high), 1.0)
    diff = b[differ] - a[differ]
    swaps = rng.integers(0, 2, (resamples, differ.size)).astype(bool)
    perm_b = totals_b - np.where(swaps[:, :, None], diff[None], 0.0).sum(axis=1)
    perm_a = totals_a + np.where(swaps[:, :, None], diff[None], 0.0).sum(axis=1)
    perm = np.abs(_f1(perm_b[:, 0], perm_b[:, 1], perm_b[:, 2]) - _f1(perm_a[:, 0], perm_a[:, 1], perm_a[:, 2]))
    p = (int((perm >= abs(estimate) - 1e-12).sum()) + 1) / (resamples + 1)
    return Interval(estimate, float(low), float(high), p)
