"""What a row's scores are worth: its precision/recall curve, the thresholds worth knowing, coverage.

Everything here is rebuilt from the candidates (every detection above the candidates floor): at a
threshold ``t`` a row's digits are its candidates scoring at least ``t``, scored exactly as
:mod:`bench.metrics` scores the operating threshold.

- the curve: digit precision, recall, F1 and whole-number accuracy at thresholds spread over the
  candidates' scores (written to the run folder, ``curves.json``);
- ``best_threshold``: the threshold with the highest whole-number accuracy (ties: the higher F1);
- ``target_precision``: the lowest threshold whose digit precision reaches the target (the most
  recall at that precision), or ``None`` when no threshold does;
- ``coverage_98`` (Goodfellow et al. 2013, "Multi-digit Number Recognition from Street View
  Imagery"): the share of photos answered when the row rejects those whose weakest digit (at the
  operating threshold) scores below a cut, the cut chosen as low as possible so that whole-number
  accuracy on the answered photos is at least 98%; 0 when no cut reaches it.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from bench.detection import PhotoDetections
from bench.metrics import IOU_THRESHOLD, aggregate, read_number, score_photo

CURVE_POINTS = 60
COVERAGE_ACCURACY = 0.98


@dataclass(frozen=True)
class CurvePoint:
    """The row's accuracy if its operating threshold were ``threshold``."""

    threshold: float
    precision: float
    recall: float
    f1: float
    sequence_accuracy: float

    def to_json(self) -> dict[str, float]:
        return {k: round(v, 6) for k, v in asdict(self).items()}


def point_at(photos: Sequence[PhotoDetections], threshold: float, iou: float = IOU_THRESHOLD) -> CurvePoint:
    """The accuracy of the candidates scoring at least ``threshold``."""
    scores = [score_photo([c for c in p.candidates if c.score >= threshold], p.truth, p.label, p.failed, iou)
              for p in photos]
    accuracy = aggregate(scores)
    return CurvePoint(threshold, accuracy.precision, accuracy.recall, accuracy.f1, accuracy.sequence_accuracy)


def thresholds_of(photos: Sequence[PhotoDetections], points: int = CURVE_POINTS) -> list[float]:
    """At most ``points`` of the candidates' own scores, evenly spread over their ranks, lowest first."""
    values = np.unique(np.array([c.score for p in photos if not p.failed for c in p.candidates], float))
    if values.size > points:
        values = values[np.unique(np.linspace(0, values.size - 1, points).round().astype(int))]
    return [float(t) for t in values]


def curve(photos: Sequence[PhotoDetections], iou: float = IOU_THRESHOLD) -> list[CurvePoint]:
    """The precision/recall curve rebuilt from the candidates."""
    return [point_at(photos, t, iou) for t in thresholds_of(photos)]


def best_threshold(points: Sequence[CurvePoint]) -> CurvePoint | None:
    """The point with the best whole-number accuracy (ties: better F1, then the lower threshold)."""
    return max(points, key=lambda p: (p.sequence_accuracy, p.f1, -p.threshold), default=None)


def at_precision(points: Sequence[CurvePoint], target: float) -> CurvePoint | None:
    """The lowest threshold whose digit precision reaches ``target``."""
    return next((p for p in points if p.precision >= target), None)


@dataclass(frozen=True)
class Coverage:
    """The share of photos answered at ``accuracy`` or better, and the cut on the weakest digit's score."""

    coverage: float
    cut: float | None
    accuracy: float | None
    answered: int
    photos: int

    def to_json(self) -> dict[str, float | int | None]:
        return {"coverage": round(self.coverage, 6), "cut": None if self.cut is None else round(self.cut, 6),
                "accuracy": None if self.accuracy is None else round(self.accuracy, 6), "answered": self.answered,
                "photos": self.photos}


def coverage(photos: Sequence[PhotoDetections], accuracy: float = COVERAGE_ACCURACY) -> Coverage:
    """Goodfellow's coverage: answer the photos whose weakest digit scores at least a cut, the lowest cut
    keeping whole-number accuracy on the answered photos at ``accuracy`` or better."""
    answered = [(min((d.score for d in p.digits), default=0.0), read_number(p.digits) == p.label)
                for p in photos if not p.failed]
    answered.sort(key=lambda item: -item[0])
    best = Coverage(0.0, None, None, 0, len(photos))
    right = 0
    for index, (confidence, correct) in enumerate(answered):
        right += correct
        last_of_tie = index + 1 == len(answered) or answered[index + 1][0] < confidence
        if last_of_tie and right / (index + 1) >= accuracy:
            best = Coverage((index + 1) / len(photos), confidence, right / (index + 1), index + 1, len(photos))
    return best
