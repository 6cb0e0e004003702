"""Accuracy, defined once.

- A predicted digit *matches* a true digit when their labels agree and their boxes' IoU is at
  least ``IOU_THRESHOLD`` (0.5). Matching is greedy by descending score: each prediction takes
  the unmatched true digit of the same label with the highest IoU; each true digit is matched
  at most once. Ties in score keep the backend's order.
- Digit precision = matched / predicted, recall = matched / true, F1 their harmonic mean, all
  summed over every photo of the run (micro average). A photo that failed (``error``) counts
  as zero predictions.
- Whole-number (sequence) accuracy = the share of photos whose predicted digits, ordered left
  to right by box centre, spell the true number exactly. A failed photo counts as wrong.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bench.results.records import Digit, TrueDigit

IOU_THRESHOLD = 0.5


@dataclass(frozen=True)
class PhotoScore:
    """How one photo's predictions compare with its truth."""

    predicted: int
    true: int
    matched: int
    sequence_correct: bool


@dataclass(frozen=True)
class Accuracy:
    """Accuracy over a set of photos (see the module docstring for the definitions)."""

    photos: int
    predicted: int
    true: int
    matched: int
    sequences_correct: int

    @property
    def precision(self) -> float:
        return self.matched / self.predicted if self.predicted else 0.0

    @property
    def recall(self) -> float:
        return self.matched / self.true if self.true else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def sequence_accuracy(self) -> float:
        return self.sequences_correct / self.photos if self.photos else 0.0


def match_digits(predicted: Sequence[Digit], truth: Sequence[TrueDigit],
                 iou_threshold: float = IOU_THRESHOLD) -> list[tuple[int, int]]:
    """Greedy matches as (prediction index, truth index) pairs."""
    order = sorted(range(len(predicted)), key=lambda i: -predicted[i].score)
    taken: set[int] = set()
    pairs = []
    for i in order:
        pred = predicted[i]
        best, best_iou = -1, iou_threshold
        for j, true in enumerate(truth):
            if j in taken or true.label != pred.label:
                continue
            iou = pred.box.iou(true.box)
            if iou >= best_iou:
                best, best_iou = j, iou
        if best >= 0:
            taken.add(best)
            pairs.append((i, best))
    return pairs


def read_number(predicted: Sequence[Digit]) -> str:
    """The number the predicted digits spell, read left to right by box centre."""
    return "".join(str(d.label) for d in sorted(predicted, key=lambda d: d.left + d.width / 2))


def score_photo(predicted: Sequence[Digit], truth: Sequence[TrueDigit], label: str,
                failed: bool = False, iou_threshold: float = IOU_THRESHOLD) -> PhotoScore:
    """Score one photo; a failed photo has no predictions and a wrong number."""
    if failed:
        return PhotoScore(0, len(truth), 0, False)
    matched = len(match_digits(predicted, truth, iou_threshold))
    return PhotoScore(len(predicted), len(truth), matched, read_number(predicted) == label)


def aggregate(scores: Iterable[PhotoScore]) -> Accuracy:
    """Sum photo scores into the run's accuracy."""
    photos = predicted = true = matched = correct = 0
    for s in scores:
        photos += 1
        predicted += s.predicted
        true += s.true
        matched += s.matched
        correct += int(s.sequence_correct)
    return Accuracy(photos, predicted, true, matched, correct)
