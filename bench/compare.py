"""Compare two runs: per backend row and metric, the change, its confidence interval and a verdict.

A change is a *regression* (or an *improvement*) only when three things hold, as in pyperf and
asv: the change is statistically significant (p < ``alpha``), it is at least the metric's
threshold, and it goes in the metric's bad (or good) direction. Tests:

- latency floor: per photo, the smallest latency over its passes (``--repeats``); the change is
  the median over photos of new/base, tested with an exact sign test on the paired photos. Other
  work on the machine only adds time, so the floor is what interference moves least.
- latency p50: Mann-Whitney U on every measured latency sample of the two runs; p90: a
  permutation test on the p90 difference; both with a bootstrap interval of the relative change.
  A p50/p90 change that the floor does not confirm (significant, same direction, at least half
  the threshold) is reported as ``unstable``, not as a regression: other work on the machine, or
  a change of the tail only; rerun on a quiet machine to tell.
- digit F1: paired permutation test over photos, paired bootstrap interval.
- whole-number accuracy and error rate: exact McNemar test on the paired photos.
- cold start: one sample per run, so it is judged only against a history of past cold starts
  (robust z-score over at least :data:`MIN_HISTORY` runs); otherwise ``untested``.
- with a history of past comparable runs (nightly), latency floor/p50/p90 must also stand out from the
  past runs' values (robust z-score): both tests must reject (an intersection-union test), so
  that run-to-run noise of a shared machine, which the within-run tests cannot see, is not
  reported as a regression.
- download bytes: no noise, so any change beyond the cold-start threshold counts.

Runs are compared only like with like (same dataset, machine, run and backend options, both
complete); otherwise :func:`compare_runs` refuses with the reasons unless ``force`` is given.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from bench.errors import NotComparable, UsageError
from bench.metrics import aggregate
from bench.results.run import RowResult, Run
from bench.significance import (Interval, bootstrap_ratio, f1_counts, mann_whitney_u, mcnemar_exact, paired_f1,
                                permutation_quantile, quantile_of, sign_test)
from bench.validation import Range, typed_number

REGRESSION = "regression"
IMPROVEMENT = "improvement"
NO_CHANGE = "no change"
UNTESTED = "untested"
UNSTABLE = "unstable"
MIN_HISTORY = 5
RUN_OPTIONS_CHECKED = ("warmup", "max_megapixels")


@dataclass(frozen=True)
class Thresholds:
    """The smallest changes that matter, and the significance level.

    ``latency`` and ``cold_start`` are relative (0.10 = 10%); ``accuracy`` and ``errors`` are
    absolute shares (0.01 = 1 point).
    """

    latency: float = 0.10
    cold_start: float = 0.20
    accuracy: float = 0.01
    errors: float = 0.01
    alpha: float = 0.05
    resamples: int = 1000
    seed: int = 0

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Thresholds:
        """Thresholds from a config table (unknown keys are an error naming the known ones)."""
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(values) - known
        if unknown:
            raise UsageError(f"compare thresholds: unknown key(s) {', '.join(sorted(unknown))}; "
                             f"known: {', '.join(sorted(known))}")
        defaults, typed = cls(), {}
        for key, value in values.items():
            typed[key] = typed_number(value, type(getattr(defaults, key)), f"compare thresholds: {key} =",
                                      THRESHOLD_RANGES[key])
        return cls(**typed)


THRESHOLD_RANGES = {"latency": Range(0, None, 100), "cold_start": Range(0, None, 100), "accuracy": Range(0, None, 1),
                    "errors": Range(0, None, 1), "alpha": Range(None, 0, 0.5), "resamples": Range(100, None, 1_000_000),
                    "seed": Range(0)}
"""Where each threshold may lie (shares are fractions: latency = 0.10, accuracy = 0.01)."""


@dataclass(frozen=True)
class MetricChange:
    """One row's change in one metric, with its test and verdict.

    ``change`` is relative (``relative``: 0.2 = +20%) for latency, cold start and bytes, absolute
    (0.02 = +2 points) for shares. ``low``/``high`` bound the change at 95%.
    """

    row: str
    metric: str
    base: float | None
    new: float | None
    change: float | None
    relative: bool
    low: float | None
    high: float | None
    p_value: float | None
    test: str
    verdict: str
    reason: str
    n_base: int
    n_new: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Comparison:
    """The result of comparing a base run with a new one."""

    base: str
    new: str
    changes: list[MetricChange]
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    forced: bool = False
    thresholds: Thresholds = field(default_factory=Thresholds)

    @property
    def regressions(self) -> list[MetricChange]:
        return [c for c in self.changes if c.verdict == REGRESSION]

    @property
    def improvements(self) -> list[MetricChange]:
        return [c for c in self.changes if c.verdict == IMPROVEMENT]

    @property
    def unstable(self) -> list[MetricChange]:
        return [c for c in self.changes if c.verdict == UNSTABLE]

    def headline(self) -> str:
        """One sentence: regressions, improvements and unstable figures, or no change."""
        parts = []
        for name, found in (("regression", self.regressions), ("improvement", self.improvements),
                            ("unstable figure", self.unstable)):
            if found:
                parts.append(f"{len(found)} {name}(s): " + ", ".join(f"{c.row} {c.metric}" for c in found))
        if not parts:
            return "no change"
        return "; ".join(parts if self.regressions else ["no regression", *parts])

    def to_dict(self) -> dict[str, Any]:
        return {"base": self.base, "new": self.new, "headline": self.headline(), "problems": self.problems,
                "notes": self.notes, "forced": self.forced, "thresholds": asdict(self.thresholds),
                "changes": [c.to_dict() for c in self.changes]}


@dataclass(frozen=True)
class Metric:
    """A compared metric: its name, which way is better and its threshold's name."""

    name: str
    higher_is_better: bool
    threshold: str

    @property
    def relative(self) -> bool:
        """Whether changes are ratios (latency, cold start, bytes) rather than differences of shares."""
        return self.threshold in ("latency", "cold_start")


LATENCY_FLOOR = Metric("latency floor", False, "latency")
LATENCY_P50 = Metric("latency p50", False, "latency")
LATENCY_P90 = Metric("latency p90", False, "latency")
COLD_START = Metric("cold start", False, "cold_start")
DOWNLOAD = Metric("download bytes", False, "cold_start")
DIGIT_F1 = Metric("digit F1", True, "accuracy")
SEQUENCE = Metric("whole number", True, "accuracy")
ERRORS = Metric("error rate", False, "errors")


def judge(metric: Metric, change: float | None, p_value: float | None, thresholds: Thresholds) -> tuple[str, str]:
    """Verdict and reason: significant AND at least the threshold AND in a direction."""
    threshold = getattr(thresholds, metric.threshold)
    relative = metric.relative
    shown = f"{threshold:.0%}" if relative else f"{100 * threshold:g} point(s)"
    if change is None or p_value is None or math.isnan(change):
        return UNTESTED, "not enough data for a test"
    size = f"{100 * change:+.1f}%" if relative else f"{100 * change:+.2f} points"
    if p_value >= thresholds.alpha:
        return NO_CHANGE, f"{size} is not significant (p={p_value:.3g} >= {thresholds.alpha:g})"
    if abs(change) < threshold:
        return NO_CHANGE, f"{size} is significant (p={p_value:.3g}) but below the {shown} threshold"
    worse = change < 0 if metric.higher_is_better else change > 0
    return (REGRESSION if worse else IMPROVEMENT), f"{size}, p={p_value:.3g}, threshold {shown}"


def _change(row: str, metric: Metric, base: float | None, new: float | None, interval: Interval | None,
            test: str, thresholds: Thresholds, n: tuple[int, int], reason: str | None = None) -> MetricChange:
    relative = metric.relative
    if interval is None:
        verdict, why = UNTESTED, reason or "not enough data for a test"
        change = None
        if base is not None and new is not None:
            change = (new / base - 1.0) if relative and base else (None if relative else new - base)
        return MetricChange(row, metric.name, base, new, change, relative, None, None, None, test, verdict, why, *n)
    verdict, why = judge(metric, interval.estimate, interval.p_value, thresholds)
    return MetricChange(row, metric.name, base, new, interval.estimate, relative, interval.low, interval.high,
                        interval.p_value, test, verdict, why, *n)


def history_p(past: Sequence[float], value: float) -> tuple[float, float, float]:
    """(two-sided p, centre, spread) of ``value`` against past values: a robust z-score (median, MAD)."""
    values = np.asarray([v for v in past if v is not None], float)
    centre = float(np.median(values))
    spread = max(1.4826 * float(np.median(np.abs(values - centre))), 0.01 * abs(centre), 1e-9)
    return float(math.erfc(abs(value - centre) / spread / math.sqrt(2.0))), centre, spread


def _with_history(p: float, test: str, value: float, past: Sequence[float]) -> tuple[float, str]:
    past = [v for v in past if v is not None]
    if len(past) < MIN_HISTORY:
        return p, test
    return max(p, history_p(past, value)[0]), f"{test} + z vs {len(past)} past"


def _floor_change(row: str, base: RowResult, new: RowResult, thresholds: Thresholds, rng: np.random.Generator,
                  history: Mapping[str, Sequence[float]]) -> MetricChange:
    (base_floor, base_passes), (new_floor, new_passes) = base.latency_floors(), new.latency_floors()
    images = [i for i in base_floor if i in new_floor and base_floor[i] > 0]
    n = (len(images), len(images))
    if len(images) < 2:
        return _change(row, LATENCY_FLOOR, None, None, None, "-", thresholds, n, "fewer than 2 photos timed in both")
    a = np.array([base_floor[i] for i in images])
    b = np.array([new_floor[i] for i in images])
    ratios = b / a
    boot = np.median(ratios[rng.integers(0, ratios.size, (thresholds.resamples, ratios.size))], axis=1) - 1.0
    low, high = np.quantile(boot, [0.025, 0.975])
    passes = min(base_passes, new_passes)
    p, test = _with_history(sign_test(b - a), f"sign test, min of {passes}", float(np.median(b)),
                            history.get(LATENCY_FLOOR.name, ()))
    interval = Interval(float(np.median(ratios) - 1.0), float(low), float(high), p)
    return _change(row, LATENCY_FLOOR, float(np.median(a)), float(np.median(b)), interval, test, thresholds, n)


def _confirmed_by_floor(change: MetricChange, floor: MetricChange, thresholds: Thresholds) -> MetricChange:
    """Downgrade a p50/p90 verdict to ``unstable`` unless the floor moved the same way, significantly,
    by at least half the latency threshold."""
    if change.verdict not in (REGRESSION, IMPROVEMENT) or floor.change is None or floor.p_value is None:
        return change
    if (floor.p_value < thresholds.alpha and (floor.change > 0) == (change.change > 0)
            and abs(floor.change) >= thresholds.latency / 2):
        return change
    reason = (f"{100 * change.change:+.1f}% (p={change.p_value:.3g}), but the per-photo floor moved "
              f"{100 * floor.change:+.1f}% (p={floor.p_value:.3g}): other work on the machine or a change of the "
              "tail only; rerun on a quiet machine")
    return replace(change, verdict=UNSTABLE, reason=reason)


def _latency_changes(row: str, base: np.ndarray, new: np.ndarray, thresholds: Thresholds,
                     rng: np.random.Generator, history: Mapping[str, Sequence[float]]) -> list[MetricChange]:
    n = (int(base.size), int(new.size))
    out = []
    for metric, q in ((LATENCY_P50, 0.5), (LATENCY_P90, 0.9)):
        if base.size < 2 or new.size < 2:
            out.append(_change(row, metric, None, None, None, "-", thresholds, n, "fewer than 2 latency samples"))
            continue
        ci = bootstrap_ratio(base, new, quantile_of(q), rng, thresholds.resamples)
        if q == 0.5:
            p, test = mann_whitney_u(base, new), "Mann-Whitney"
        else:
            p, test = permutation_quantile(base, new, q, rng, thresholds.resamples), "permutation"
        p, test = _with_history(p, test, float(np.quantile(new, q)), history.get(metric.name, ()))
        interval = Interval(ci.estimate, ci.low, ci.high, p)
        out.append(_change(row, metric, float(np.quantile(base, q)), float(np.quantile(new, q)), interval, test,
                           thresholds, n))
    return out


def _paired_share(base_ok: np.ndarray, new_ok: np.ndarray, rng: np.random.Generator, resamples: int) -> Interval:
    p, _, _ = mcnemar_exact(base_ok, new_ok)
    diff = new_ok.astype(float) - base_ok.astype(float)
    means = diff[rng.integers(0, diff.size, (resamples, diff.size))].mean(axis=1)
    low, high = np.quantile(means, [0.025, 0.975])
    return Interval(float(diff.mean()), float(low), float(high), p)


def _accuracy_changes(row: str, base: RowResult, new: RowResult, thresholds: Thresholds,
                      rng: np.random.Generator) -> list[MetricChange]:
    base_scores, new_scores = base.scores, new.scores
    images = [image for image in base_scores if image in new_scores]
    n = (len(images), len(images))
    if not images:
        reason = "no photo in common"
        return [_change(row, m, None, None, None, "-", thresholds, n, reason) for m in (DIGIT_F1, SEQUENCE, ERRORS)]
    f1 = paired_f1(f1_counts(base_scores, images), f1_counts(new_scores, images), rng, thresholds.resamples)

    base_seq = np.array([base_scores[i].sequence_correct for i in images])
    new_seq = np.array([new_scores[i].sequence_correct for i in images])
    base_errors, new_errors = base.errors_by_image(), new.errors_by_image()
    base_ok = np.array([not base_errors[i] for i in images])
    new_ok = np.array([not new_errors[i] for i in images])
    seq = _paired_share(base_seq, new_seq, rng, thresholds.resamples)
    err = _paired_share(base_ok, new_ok, rng, thresholds.resamples)
    err = Interval(-err.estimate, -err.high, -err.low, err.p_value)
    return [
        _change(row, DIGIT_F1, aggregate(base_scores[i] for i in images).f1,
                aggregate(new_scores[i] for i in images).f1, f1, "paired perm.", thresholds, n),
        _change(row, SEQUENCE, float(base_seq.mean()), float(new_seq.mean()), seq, "McNemar", thresholds, n),
        _change(row, ERRORS, float(1 - base_ok.mean()), float(1 - new_ok.mean()), err, "McNemar", thresholds, n),
    ]


def _cold_changes(row: str, base: RowResult, new: RowResult, history: Sequence[float],
                  thresholds: Thresholds) -> list[MetricChange]:
    out = []
    b, w = base.cold_start_total, new.cold_start_total
    past = np.asarray([h for h in history if h is not None], float)
    if b is not None and w is not None and past.size >= MIN_HISTORY:
        p, centre, spread = history_p(past, w)
        change = w / centre - 1.0 if centre else float("nan")
        half = 1.96 * spread / centre if centre else float("nan")
        interval = Interval(change, change - half, change + half, p)
        out.append(_change(row, COLD_START, centre, w, interval, f"robust z vs median of {past.size} past",
                           thresholds, (int(past.size), 1)))
    else:
        reason = (f"one sample per run; judged only against >= {MIN_HISTORY} past runs "
                  f"(have {past.size})")
        out.append(_change(row, COLD_START, b, w, None, "-", thresholds, (1, 1), reason))
    bb, wb = base.download_bytes, new.download_bytes
    if bb and wb is not None:
        change = wb / bb - 1.0
        exact = Interval(change, change, change, 0.0 if change else 1.0)
        out.append(_change(row, DOWNLOAD, float(bb), float(wb), exact, "exact (no noise)", thresholds, (1, 1)))
    return out


def history_values(runs: Sequence[Run], rows: Sequence[str]) -> dict[str, dict[str, list[float]]]:
    """Per row, the cold start and latency floor/p50/p90 of past runs, recomputed from their raw samples."""
    names = (COLD_START.name, LATENCY_FLOOR.name, LATENCY_P50.name, LATENCY_P90.name)
    found: dict[str, dict[str, list[float]]] = {row: {name: [] for name in names} for row in rows}
    for run in runs:
        for row in rows:
            if row not in run.rows:
                continue
            result = run.rows[row]
            samples = np.asarray(result.latencies(), float)
            found[row][COLD_START.name].append(result.cold_start_total)
            floors = list(result.latency_floors()[0].values())
            if floors:
                found[row][LATENCY_FLOOR.name].append(float(np.median(floors)))
            if samples.size:
                found[row][LATENCY_P50.name].append(float(np.quantile(samples, 0.5)))
                found[row][LATENCY_P90.name].append(float(np.quantile(samples, 0.9)))
    return found


def _options_diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    return [f"{k} {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def _without_notes(describe: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in describe.items() if k != "notes"}


def like_with_like(base: Run, new: Run, rows: Sequence[str]) -> tuple[list[str], list[str]]:
    """(problems that make the runs incomparable, notes on what else changed)."""
    problems, notes = [], []
    for run in (base, new):
        if not run.complete:
            problems.append(f"{run.label} is '{run.status}', not complete")
    bd, nd = base.dataset, new.dataset
    if bd.fingerprint != nd.fingerprint:
        problems.append(f"datasets differ: {bd.name} ({bd.photos} photos, {bd.fingerprint}) vs "
                        f"{nd.name} ({nd.photos} photos, {nd.fingerprint})")
    be, ne = base.environment, new.environment
    if be.machine_id != ne.machine_id:
        problems.append(f"machines differ: {be.machine_text} vs {ne.machine_text}")
    bo, no = base.options, new.options
    run_diff = _options_diff({k: getattr(bo, k) for k in RUN_OPTIONS_CHECKED},
                             {k: getattr(no, k) for k in RUN_OPTIONS_CHECKED})
    if run_diff:
        problems.append("run options differ: " + "; ".join(run_diff))
    if bo.repeats != no.repeats:
        notes.append(f"repeats {bo.repeats} -> {no.repeats} (latency sample sizes differ)")
    for row in rows:
        diff = _options_diff(base.rows[row].options, new.rows[row].options)
        if diff:
            problems.append(f"{row}: backend options differ: " + "; ".join(diff))
        described = _options_diff(_without_notes(base.rows[row].describe), _without_notes(new.rows[row].describe))
        if described:
            notes.append(f"{row}: " + "; ".join(described))
    if (be.commit, be.dirty) != (ne.commit, ne.dirty):
        notes.append(f"digitbench {be.commit_text} -> {ne.commit_text}")
    loads = [run.environment.load_average for run in (base, new)]
    if all(loads) and abs(loads[0][0] - loads[1][0]) >= 0.5:
        notes.append(f"machine load {loads[0][0]:.1f} -> {loads[1][0]:.1f} (1-minute average): latency changes "
                     "may come from other work on the machine")
    for run in (base, new):
        for row in rows:
            for warning in run.rows[row].warnings:
                notes.append(f"{run.label} {row}: {warning}")
    packages = _options_diff(be.packages, ne.packages)
    if be.python != ne.python:
        packages.insert(0, f"python {be.python!r} -> {ne.python!r}")
    if packages:
        notes.append("versions: " + "; ".join(packages))
    return problems, notes


def compare_runs(base: Run, new: Run, thresholds: Thresholds | None = None, *, force: bool = False,
                 rows: Sequence[str] | None = None,
                 history: Mapping[str, Mapping[str, Sequence[float]]] | None = None) -> Comparison:
    """Compare ``new`` against ``base`` row by row; refuses unlike runs unless ``force``.

    ``history`` gives, per row and metric name (``cold start``, ``latency p50``, ``latency p90``),
    the values of past comparable runs (nightly passes the accepted runs of the suite).
    """
    thresholds = thresholds or Thresholds()
    shared = [r for r in base.row_names if r in new.rows]
    if rows:
        missing = [r for r in rows if r not in shared]
        if missing:
            raise UsageError(f"--rows: {', '.join(missing)} not in both runs; "
                             f"rows in both: {', '.join(shared) or 'none'}")
        shared = list(rows)
    problems, notes = like_with_like(base, new, shared)
    only_base = [r for r in base.row_names if r not in new.rows]
    only_new = [r for r in new.row_names if r not in base.rows]
    if only_base or only_new:
        notes.append("rows not compared: " + ", ".join([*(f"{r} (only in base)" for r in only_base),
                                                        *(f"{r} (only in new)" for r in only_new)]))
    if not shared:
        problems.append("no backend row in common")
    if problems and not force:
        raise NotComparable(f"{base.label} and {new.label} are not comparable: " + "; ".join(problems)
                            + ". Compare like with like, or pass --force to compare anyway")
    if not any(len(v) >= MIN_HISTORY for per_row in (history or {}).values() for v in per_row.values()):
        notes.append("two runs only: the tests see the noise within each run, not the spread between runs of the "
                     f"same build on this machine; a nightly history of >= {MIN_HISTORY} runs adds that")
    rng = np.random.default_rng(thresholds.seed)
    changes: list[MetricChange] = []
    for row in shared:
        past = (history or {}).get(row, {})
        old, now = base.rows[row], new.rows[row]
        floor = _floor_change(row, old, now, thresholds, rng, past)
        quantiles = _latency_changes(row, np.asarray(old.latencies(), float), np.asarray(now.latencies(), float),
                                     thresholds, rng, past)
        changes += [floor, *(_confirmed_by_floor(c, floor, thresholds) for c in quantiles)]
        changes += _cold_changes(row, old, now, past.get(COLD_START.name, ()), thresholds)
        changes += _accuracy_changes(row, old, now, thresholds, rng)
    return Comparison(base.label, new.label, changes, problems, notes, force, thresholds)


def format_value(change: MetricChange, value: float | None) -> str:
    """A metric value as text: ms, bytes or percent."""
    if value is None:
        return "-"
    if change.metric == DOWNLOAD.name:
        return f"{value / 1e3:,.1f} KB"
    if change.relative:
        return f"{value:.2f} ms" if value < 100 else f"{value:,.0f} ms"
    return f"{100 * value:.1f}%"


def format_change(change: MetricChange) -> tuple[str, str]:
    """(change, 95% interval) as text, in % for relative changes and points for shares."""
    if change.change is None:
        return "-", "-"
    if change.relative:
        text = f"{100 * change.change:+.1f}%"
        interval = "-" if change.low is None else f"[{100 * change.low:+.1f}%, {100 * change.high:+.1f}%]"
    else:
        text = f"{100 * change.change:+.2f} pt"
        interval = "-" if change.low is None else f"[{100 * change.low:+.2f}, {100 * change.high:+.2f}]"
    return text, interval


def table_rows(comparison: Comparison) -> list[list[str]]:
    """The comparison as text cells, header first (for the terminal, Markdown and HTML)."""
    table = [["row", "metric", "base", "new", "change", "95% CI", "p", "test", "verdict"]]
    for c in comparison.changes:
        text, interval = format_change(c)
        p = "-" if c.p_value is None else f"{c.p_value:.3g}"
        table.append([c.row, c.metric, format_value(c, c.base), format_value(c, c.new), text, interval, p, c.test,
                      c.verdict])
    return table
