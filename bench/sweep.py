"""The quantization decision: which weight quantization should the page ship?

:func:`decide` is a pure function of a run's variants (:func:`variants_from_run`: the rows of a
backend's sweep axis, see :class:`bench.backend.SweepAxis`): float32 (the axis' reference value)
is the reference; a variant is *eligible* when its accuracy drop against float32 stays within
``max_accuracy_drop`` points (and, if given, it keeps at least ``min_relative_accuracy`` of the
float32 accuracy, MLPerf's closed-division rule at 0.99); the recommendation is the eligible
variant with the smallest cold start. Cold start is one measurement per variant, so cold starts
within :data:`COLD_TIE_RELATIVE` or :data:`COLD_TIE_MS` of the fastest count as equal, and among
those the fewest weight bytes wins (the download is what a slower network stretches). :func:`write_sweep_report` writes
``sweep.md`` and ``sweep.png`` beside the run (``bench sweep`` measures the variants on the same photos).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from bench.backend import SweepAxis
from bench.errors import UsageError
from bench.plots import sweep_figure
from bench.report import markdown_table
from bench.results.run import RowResult, Run
from bench.significance import f1_counts, paired_f1

METRICS = {"digit_f1": "digit F1", "sequence_accuracy": "whole-number accuracy"}
COLD_TIE_RELATIVE = 0.10
COLD_TIE_MS = 50.0
SWEEP_MD = "sweep.md"
SWEEP_PNG = "sweep.png"


@dataclass(frozen=True)
class Variant:
    """One value of the sweep axis (one quantization) and its row's figures."""

    row: str
    quantization: str
    reference: bool
    status: str
    weights_bytes: int | None
    cold_start_ms: float | None
    p50_ms: float | None
    p90_ms: float | None
    digit_f1: float | None
    sequence_accuracy: float | None
    images: int
    errors: int

    def accuracy(self, metric: str) -> float | None:
        return getattr(self, metric)


def _value_of(row: RowResult, axis: SweepAxis) -> str | None:
    described = row.describe.get(axis.option)
    if described:
        return str(described)
    value = row.options.get(axis.option)
    if isinstance(value, (list, tuple)) and len(value) == 1:
        return str(value[0])
    if isinstance(value, str) and value:
        return value
    tail = row.row.rsplit("-", 1)[-1]
    return tail if tail in axis.values else None


def variants_from_run(run: Run, axis: SweepAxis) -> list[Variant]:
    """The rows of the run that carry a value of ``axis``, in run order."""
    variants = []
    for row in run.rows.values():
        value = _value_of(row, axis)
        if value is None:
            continue
        figures = row.figures
        latency = figures.latency if figures else None
        weights = row.describe.get("weights_bytes")
        variants.append(Variant(
            row=row.row, quantization=value, reference=value == axis.reference, status=row.status,
            weights_bytes=int(weights) if weights is not None else row.download_bytes,
            cold_start_ms=row.cold_start_total, p50_ms=latency.p50 if latency else None,
            p90_ms=latency.p90 if latency else None, digit_f1=figures.accuracy.f1 if figures else None,
            sequence_accuracy=figures.accuracy.sequence_accuracy if figures else None,
            images=figures.images if figures else 0, errors=figures.errors if figures else 0))
    return variants


MLPERF_RELATIVE_ACCURACY = 0.99
"""MLPerf's closed division accepts a quantized model that keeps at least 99% of the float32 accuracy."""


@dataclass(frozen=True)
class SweepDecision:
    """The variants, the float32 reference, which are eligible and why, and the recommendation.

    ``judged_on`` says what the relative rule was applied to: the lower bound of each variant's paired
    bootstrap 95% interval (when intervals were given), else the point estimate.
    """

    variants: tuple[Variant, ...]
    reference: Variant
    metric: str
    max_accuracy_drop: float | None
    min_relative_accuracy: float | None
    judged_on: str
    verdicts: Mapping[str, str]
    eligible: tuple[str, ...]
    recommended: Variant
    reason: str

    def drop_points(self, variant: Variant) -> float | None:
        """Accuracy lost against float32, in points (positive = worse)."""
        return _drop_points(self.reference, variant, self.metric)

    @property
    def quantized_passed(self) -> list[Variant]:
        """The quantized variants that passed every gate."""
        return [v for v in self.variants if v.row in self.eligible and not v.reference]

    @property
    def rule(self) -> str:
        """The gates, in one sentence."""
        parts = []
        if self.min_relative_accuracy is not None:
            parts.append(f"keeps >= {100 * self.min_relative_accuracy:g}% of float32's {METRICS[self.metric]} "
                         f"(MLPerf closed division), judged on the {self.judged_on}")
        if self.max_accuracy_drop is not None:
            parts.append(f"loses at most {self.max_accuracy_drop:g} points of it")
        return "a quantized variant may ship when it " + " and ".join(parts or ["runs without errors"])

    def to_json(self) -> dict[str, Any]:
        """The decision as ``bench sweep --json`` prints it."""
        return {"metric": self.metric, "rule": self.rule, "max_accuracy_drop": self.max_accuracy_drop,
                "min_relative_accuracy": self.min_relative_accuracy, "judged_on": self.judged_on,
                "reference": self.reference.row, "recommended": self.recommended.row,
                "recommended_quantization": self.recommended.quantization,
                "quantized_passed": [v.row for v in self.quantized_passed], "reason": self.reason,
                "variants": [{**asdict(v), "verdict": self.verdicts.get(v.row), "drop_points": self.drop_points(v)}
                             for v in self.variants]}


def _drop_points(reference: Variant, variant: Variant, metric: str) -> float | None:
    ref, value = reference.accuracy(metric), variant.accuracy(metric)
    return None if ref is None or value is None else 100.0 * (ref - value)


def _pct(new: float | None, ref: float | None) -> str:
    if new is None or ref is None or not ref:
        return ""
    return f"{100 * (new / ref - 1):+.0f}%"


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.1f} ms"


def _bytes(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1e6:.2f} MB" if value >= 1e6 else f"{value / 1e3:.1f} KB"


def _verdict(variant: Variant, reference: Variant, metric: str, max_accuracy_drop: float | None,
             min_relative_accuracy: float | None, lower_bound: float | None) -> str | None:
    """Why ``variant`` may not ship, or ``None`` when it may."""
    drop = _drop_points(reference, variant, metric)
    ref_accuracy = reference.accuracy(metric)
    if variant.status != "complete":
        return f"the row is '{variant.status}'"
    if variant.errors:
        return f"{variant.errors} of {variant.images} photos failed"
    if drop is None:
        return "no accuracy figure"
    if variant is reference:
        return None
    if max_accuracy_drop is not None and drop > max_accuracy_drop + 1e-9:
        return f"{METRICS[metric]} drops {drop:.2f} points, more than {max_accuracy_drop:g}"
    if min_relative_accuracy is not None and ref_accuracy:
        judged = ref_accuracy + lower_bound if lower_bound is not None else variant.accuracy(metric)
        if judged < min_relative_accuracy * ref_accuracy - 1e-12:
            where = " at the lower bound of its 95% interval" if lower_bound is not None else ""
            return (f"keeps {100 * judged / ref_accuracy:.2f}% of float32's {METRICS[metric]}{where}, "
                    f"below {100 * min_relative_accuracy:g}%")
    return None


def decide(variants: list[Variant], max_accuracy_drop: float | None = 0.5, metric: str = "digit_f1",
           min_relative_accuracy: float | None = MLPERF_RELATIVE_ACCURACY,
           lower_bounds: Mapping[str, float] | None = None) -> SweepDecision:
    """Recommend the eligible variant with the smallest cold start; see the module docstring.

    ``lower_bounds`` gives, per variant row, the lower bound of its accuracy change against float32
    (paired bootstrap, 95%): the relative rule is then judged on it, as MLPerf judges on the worst case.
    """
    if metric not in METRICS:
        raise UsageError(f"--accuracy-metric: {metric!r} is not one of {', '.join(METRICS)}")
    references = [v for v in variants if v.reference and v.status == "complete"]
    if not references:
        raise UsageError("the sweep has no complete float32 row (the reference quantization) to compare with; "
                         "include it in the quantizations swept")
    reference = references[0]
    verdicts: dict[str, str] = {}
    eligible: list[str] = []
    for variant in variants:
        why = _verdict(variant, reference, metric, max_accuracy_drop, min_relative_accuracy,
                       (lower_bounds or {}).get(variant.row))
        if why is not None:
            verdicts[variant.row] = f"rejected: {why}"
            continue
        eligible.append(variant.row)
        drop = _drop_points(reference, variant, metric)
        verdicts[variant.row] = "reference" if variant is reference else f"eligible: drop {drop:.2f} points"
    candidates = [v for v in variants if v.row in eligible]
    timed = [v.cold_start_ms for v in candidates if v.cold_start_ms is not None]
    tied = candidates
    if timed:
        limit = min(timed) + max(COLD_TIE_RELATIVE * min(timed), COLD_TIE_MS)
        tied = [v for v in candidates if v.cold_start_ms is not None and v.cold_start_ms <= limit]
    best = min(tied, key=lambda v: (v.weights_bytes if v.weights_bytes is not None else math.inf,
                                    v.cold_start_ms if v.cold_start_ms is not None else math.inf))
    verdicts[best.row] = "recommended"
    judged_on = ("lower bound of the paired bootstrap 95% interval" if lower_bounds is not None
                 else "point estimate")
    decision = SweepDecision(tuple(variants), reference, metric, max_accuracy_drop, min_relative_accuracy,
                             judged_on, verdicts, tuple(eligible), best, "")
    return replace(decision, reason=_reason(decision, best, tied))


def _reason(decision: SweepDecision, best: Variant, tied: list[Variant]) -> str:
    ref = decision.reference
    metric = METRICS[decision.metric]
    bound = "the gates"
    if decision.max_accuracy_drop is not None:
        bound = f"the {decision.max_accuracy_drop:g}-point bound on {metric}"
    if decision.min_relative_accuracy is not None:
        bound += f"{' and' if decision.max_accuracy_drop is not None else ':'} " \
                 f"{100 * decision.min_relative_accuracy:g}% of float32 (MLPerf, on the {decision.judged_on})"
    rejected = [f"{v.quantization} ({decision.verdicts[v.row].removeprefix('rejected: ')})"
                for v in decision.variants if decision.verdicts[v.row].startswith("rejected")]
    tail = f" Rejected: {'; '.join(rejected)}." if rejected else ""
    drop = decision.drop_points(best) or 0.0
    accuracy = f"{metric} {'drops' if drop >= 0 else 'rises'} {abs(drop):.2f} points"
    weights = (f"weights {_bytes(best.weights_bytes)} instead of {_bytes(ref.weights_bytes)} for float32"
               if best.weights_bytes and ref.weights_bytes else "")
    if len(tied) > 1:
        colds = [v.cold_start_ms for v in tied if v.cold_start_ms is not None]
        span = f"{_ms(min(colds))} to {_ms(max(colds))}" if colds else "no figures"
        return (f"Ship {best.quantization} ({best.row}): within {bound}, the cold starts of "
                f"{', '.join(v.quantization for v in tied)} ({span}, one measurement each) are within "
                f"{COLD_TIE_RELATIVE:.0%} or {COLD_TIE_MS:g} ms of each other, too close to call, so the smallest "
                f"download decides: {weights or 'fewest weight bytes'}; {accuracy}.{tail}")
    if best is ref:
        return (f"Ship float32 ({best.row}): no quantized variant starts faster within {bound} "
                f"(float32 cold start {_ms(ref.cold_start_ms)}).{tail}")
    saved = (1 - best.cold_start_ms / ref.cold_start_ms) if best.cold_start_ms and ref.cold_start_ms else None
    cold = (f"cold start {_ms(best.cold_start_ms)} against {_ms(ref.cold_start_ms)} for float32"
            + (f" ({100 * saved:.0f}% less)" if saved is not None else ""))
    return (f"Ship {best.quantization} ({best.row}): the smallest cold start among the variants within {bound}: "
            f"{cold}{', ' + weights if weights else ''}; {accuracy}.{tail}")


def sweep_table(decision: SweepDecision,
                intervals: Mapping[str, tuple[float, float]] | None = None) -> list[list[str]]:
    """The decision table as text cells, header first; changes are against float32."""
    ref = decision.reference
    short = "F1" if decision.metric == "digit_f1" else "whole number"
    table = [["variant", "weights", "cold start", "warm p50", "warm p90", "digit F1", "whole number",
              f"{short} change 95% CI", "decision"]]
    for v in decision.variants:
        def acc(value: float | None, reference: float | None) -> str:
            if value is None:
                return "-"
            delta = "" if v is ref or reference is None else f" ({100 * (value - reference):+.2f} pt)"
            return f"{100 * value:.2f}%{delta}"

        def rel(text: str, new: float | None, old: float | None) -> str:
            return text if v is ref else f"{text} ({_pct(new, old)})" if _pct(new, old) else text

        bounds = (intervals or {}).get(v.row)
        interval = f"[{100 * bounds[0]:+.2f}, {100 * bounds[1]:+.2f}] pt" if bounds else None
        table.append([v.row, rel(_bytes(v.weights_bytes), v.weights_bytes, ref.weights_bytes),
                      rel(_ms(v.cold_start_ms), v.cold_start_ms, ref.cold_start_ms),
                      rel(_ms(v.p50_ms), v.p50_ms, ref.p50_ms), rel(_ms(v.p90_ms), v.p90_ms, ref.p90_ms),
                      acc(v.digit_f1, ref.digit_f1), acc(v.sequence_accuracy, ref.sequence_accuracy),
                      "-" if v is ref or not interval else interval, decision.verdicts.get(v.row, "")])
    return table


def accuracy_intervals(run: Run, variants: list[Variant], metric: str = "digit_f1",
                       seed: int = 0) -> dict[str, tuple[float, float]]:
    """Paired bootstrap 95% intervals of each variant's accuracy change against float32, over the photos
    both rows measured: digit F1 by :func:`bench.significance.paired_f1`, whole-number accuracy by
    resampling the photos' right/wrong pairs."""
    references = [v for v in variants if v.reference and v.status == "complete"]
    if not references:
        return {}
    ref = run.rows[references[0].row].scores
    rng = np.random.default_rng(seed)
    found = {}
    for v in variants:
        if v.reference:
            continue
        scores = run.rows[v.row].scores
        images = [i for i in ref if i in scores]
        if not images:
            continue
        if metric == "digit_f1":
            interval = paired_f1(f1_counts(ref, images), f1_counts(scores, images), rng)
            found[v.row] = (interval.low, interval.high)
        else:
            diff = np.array([scores[i].sequence_correct for i in images], float) - np.array(
                [ref[i].sequence_correct for i in images], float)
            means = diff[rng.integers(0, diff.size, (1000, diff.size))].mean(axis=1)
            low, high = np.quantile(means, [0.025, 0.975])
            found[v.row] = (float(low), float(high))
    return found


def write_sweep_report(out: Path, decision: SweepDecision, run: Run,
                       intervals: Mapping[str, tuple[float, float]] | None = None) -> tuple[Path, Path]:
    """``sweep.md`` (table + recommendation) and ``sweep.png`` (accuracy against cold start) in ``out``."""
    points = [(f"float32 ({v.quantization})" if v.reference else v.quantization, v.cold_start_ms,
               v.accuracy(decision.metric), v is decision.recommended)
              for v in decision.variants if v.status == "complete"]
    png = sweep_figure(points, decision.reference.accuracy(decision.metric), decision.max_accuracy_drop,
                       METRICS[decision.metric])
    (out / SWEEP_PNG).write_bytes(png)
    table = sweep_table(decision, intervals)
    network = next((row.describe["network"] for row in run.rows.values() if row.describe.get("network")), "none")
    lines = [f"# Quantization sweep {run.run_id}", "",
             f"Dataset {run.dataset.name} ({run.dataset.photos} photos, the same for every variant); "
             f"network {network}; cold start = library + download + init + first inference (a first visit), one "
             "per variant; warm "
             "latency over every photo; changes against float32 (quantization none).", "",
             *markdown_table(table)]
    lines += ["", f"**Recommendation:** {decision.reason}", "", f"![accuracy against cold start]({SWEEP_PNG})", ""]
    (out / SWEEP_MD).write_text("\n".join(lines), encoding="utf-8")
    return out / SWEEP_MD, out / SWEEP_PNG
