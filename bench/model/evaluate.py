"""Score the detector on held-out TRAIN photos with the harness's own metrics (bench.metrics).

Used during training (progress) and to choose the default score threshold; never on test-dev.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from bench.metrics import aggregate, score_photo
from bench.model.data import Sample
from bench.model.preprocess import Transform, letterbox
from bench.results.records import Box, Digit, TrueDigit

THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.1, 0.81, 0.05))


@dataclass(frozen=True)
class Score:
    """Accuracy at one score threshold."""

    threshold: float
    precision: float
    recall: float
    f1: float
    sequence_accuracy: float

    def to_dict(self) -> dict:
        return {k: round(v, 4) for k, v in self.__dict__.items()}


def to_digits(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, transform: Transform,
              threshold: float, class_offset: int = 0) -> list[Digit]:
    """Detections above ``threshold`` as photo-pixel digits (``class - class_offset`` = digit)."""
    digits = []
    for box, score, cls in zip(boxes, scores, classes):
        if score < threshold:
            continue
        left, top, width, height = transform.to_photo(box)
        digits.append(Digit(int(round(float(cls))) - class_offset, float(score), left, top, width, height))
    return digits


def detect_all(predict: Callable[[np.ndarray], tuple[np.ndarray, ...]], samples: Sequence[Sample],
               height: int, width: int, batch: int = 64) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, Transform]]:
    """Run ``predict`` (float32 batch -> boxes, scores, classes) over letterboxed photos."""
    results = []
    for start in range(0, len(samples), batch):
        chunk = [letterbox(s.rgb, height, width) for s in samples[start:start + batch]]
        boxes, scores, classes = predict(np.stack([c[0] for c in chunk]))
        for i, (_, transform) in enumerate(chunk):
            results.append((boxes[i], scores[i], classes[i], transform))
    return results


def sweep(detections, samples: Sequence[Sample], thresholds: Sequence[float] = THRESHOLDS) -> list[Score]:
    """Accuracy of the detections at each threshold."""
    truths = [[TrueDigit(int(l), Box(*map(float, b))) for b, l in zip(s.boxes, s.labels)] for s in samples]
    scores = []
    for t in thresholds:
        acc = aggregate(score_photo(to_digits(b, sc, c, tr, t), truth, s.label)
                        for (b, sc, c, tr), truth, s in zip(detections, truths, samples))
        scores.append(Score(float(t), acc.precision, acc.recall, acc.f1, acc.sequence_accuracy))
    return scores


def best(scores: Sequence[Score]) -> Score:
    """The threshold with the best whole-number accuracy, then F1."""
    return max(scores, key=lambda s: (s.sequence_accuracy, s.f1))
