"""Detection metrics of a row: COCO AP from its candidates, and where its digits go right and wrong.

- ``ap50`` and ``coco_map`` (mAP@[.5:.95]) are computed by pycocotools, the reference
  implementation, from every candidate of the row (every detection above the candidates floor;
  for a backend that reports no candidates, its digits at the operating threshold, which cuts the
  curve short). Categories are the ten digits; a failed photo has no detections.
- ``per_class``: for each digit 0-9, the true digits of that class, and precision, recall and F1
  of the row's digits at the operating threshold, matched as :mod:`bench.metrics` matches them.
- ``confusion``: true digit -> predicted digit for the boxes that overlap a true digit at the IoU
  threshold whatever their label (greedy by score), ``missed`` for true digits no box overlaps;
  ``extra`` counts the predicted digits that overlap no true digit.
- ``size_buckets``: the same scores by digit height in photo pixels (:data:`SIZE_BUCKETS`): recall
  by the true digit's height, precision by the predicted digit's, and whole-number accuracy by the
  photo's median true digit height.
"""
from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bench.metrics import IOU_THRESHOLD, match_digits, read_number
from bench.results.records import Digit, TrueDigit

SIZE_BUCKETS: tuple[tuple[float, float], ...] = ((0, 16), (16, 24), (24, 32), (32, 48), (48, math.inf))
"""Digit-height buckets in photo pixels (SVHN test-dev: median digit height about 30 px)."""
DIGITS = tuple(str(d) for d in range(10))


@dataclass(frozen=True)
class PhotoDetections:
    """What detection metrics need of one photo: its truth, the row's digits and candidates."""

    image: str
    label: str
    truth: tuple[TrueDigit, ...]
    digits: tuple[Digit, ...]
    candidates: tuple[Digit, ...]
    failed: bool
    has_candidates: bool = True


def _f1(matched: int, predicted: int, true: int) -> dict[str, float]:
    precision = matched / predicted if predicted else 0.0
    recall = matched / true if true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 6), "recall": round(recall, 6), "f1": round(f1, 6)}


def per_class(photos: Iterable[PhotoDetections], iou: float = IOU_THRESHOLD) -> dict[str, dict[str, float]]:
    """For each digit "0".."9": ``n`` true digits, ``predicted``, ``matched``, precision, recall, F1."""
    true = dict.fromkeys(range(10), 0)
    predicted = dict.fromkeys(range(10), 0)
    matched = dict.fromkeys(range(10), 0)
    for photo in photos:
        for digit in photo.truth:
            true[digit.label] += 1
        if photo.failed:
            continue
        for digit in photo.digits:
            predicted[digit.label] += 1
        for i, _ in match_digits(photo.digits, photo.truth, iou):
            matched[photo.digits[i].label] += 1
    return {str(d): {"n": true[d], "predicted": predicted[d], "matched": matched[d],
                     **_f1(matched[d], predicted[d], true[d])} for d in range(10)}


def confusion(photos: Iterable[PhotoDetections], iou: float = IOU_THRESHOLD) -> dict[str, dict[str, int]]:
    """``{true digit: {predicted digit or "missed": count}}`` plus ``"extra": {predicted digit: count}``."""
    table: dict[str, dict[str, int]] = {d: {} for d in DIGITS}
    extra: dict[str, int] = {}
    for photo in photos:
        digits = () if photo.failed else photo.digits
        order = sorted(range(len(digits)), key=lambda i: -digits[i].score)
        taken: set[int] = set()
        for i in order:
            best, best_iou = -1, iou
            for j, true in enumerate(photo.truth):
                overlap = digits[i].box.iou(true.box)
                if j not in taken and overlap >= best_iou:
                    best, best_iou = j, overlap
            if best < 0:
                extra[str(digits[i].label)] = extra.get(str(digits[i].label), 0) + 1
                continue
            taken.add(best)
            row = table[str(photo.truth[best].label)]
            row[str(digits[i].label)] = row.get(str(digits[i].label), 0) + 1
        for j, true in enumerate(photo.truth):
            if j not in taken:
                row = table[str(true.label)]
                row["missed"] = row.get("missed", 0) + 1
    return {**table, "extra": extra}


def _bucket(height: float) -> int:
    return next(i for i, (low, high) in enumerate(SIZE_BUCKETS) if low <= height < high)


def bucket_name(index: int) -> str:
    """``"16-24"`` or ``"48+"`` (pixels)."""
    low, high = SIZE_BUCKETS[index]
    return f"{low:g}+" if math.isinf(high) else f"{low:g}-{high:g}"


def size_buckets(photos: Iterable[PhotoDetections], iou: float = IOU_THRESHOLD) -> dict[str, dict[str, float]]:
    """Per digit-height bucket: true digits, recall, predicted digits, precision, F1, photos and
    whole-number accuracy (photos by their median true digit height)."""
    counts = [{"true": 0, "found": 0, "predicted": 0, "correct_predictions": 0, "photos": 0, "read": 0}
              for _ in SIZE_BUCKETS]
    for photo in photos:
        digits = () if photo.failed else photo.digits
        pairs = match_digits(digits, photo.truth, iou)
        found = {j for _, j in pairs}
        right = {i for i, _ in pairs}
        for j, true in enumerate(photo.truth):
            bucket = counts[_bucket(true.box.height)]
            bucket["true"] += 1
            bucket["found"] += j in found
        for i, digit in enumerate(digits):
            bucket = counts[_bucket(digit.height)]
            bucket["predicted"] += 1
            bucket["correct_predictions"] += i in right
        if photo.truth:
            heights = sorted(t.box.height for t in photo.truth)
            bucket = counts[_bucket(heights[len(heights) // 2])]
            bucket["photos"] += 1
            bucket["read"] += (not photo.failed) and read_number(digits) == photo.label
    out = {}
    for index, c in enumerate(counts):
        recall = c["found"] / c["true"] if c["true"] else 0.0
        precision = c["correct_predictions"] / c["predicted"] if c["predicted"] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[bucket_name(index)] = {"digits": c["true"], "recall": round(recall, 6), "predicted": c["predicted"],
                                   "precision": round(precision, 6), "f1": round(f1, 6), "photos": c["photos"],
                                   "sequence_accuracy": round(c["read"] / c["photos"], 6) if c["photos"] else None}
    return out


@dataclass(frozen=True)
class CocoAp:
    """COCO average precision of a row: at IoU 0.5, and averaged over IoU 0.5:0.95."""

    ap50: float | None
    coco_map: float | None
    detections: int
    from_candidates: bool


def coco_ap(photos: Sequence[PhotoDetections]) -> CocoAp:
    """AP50 and mAP@[.5:.95] by pycocotools' COCOeval over every photo's candidates."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, annotations, results = [], [], []
    for image_id, photo in enumerate(photos, 1):
        images.append({"id": image_id, "file_name": photo.image})
        for digit in photo.truth:
            box = digit.box
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": digit.label + 1,
                                "bbox": [box.left, box.top, box.width, box.height], "area": box.width * box.height,
                                "iscrowd": 0})
        if not photo.failed:
            results += [{"image_id": image_id, "category_id": c.label + 1, "score": float(c.score),
                         "bbox": [c.left, c.top, c.width, c.height]} for c in photo.candidates]
    from_candidates = any(p.has_candidates for p in photos)
    if not annotations:
        return CocoAp(None, None, len(results), from_candidates)
    if not results:
        return CocoAp(0.0, 0.0, 0, from_candidates)
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO()
        truth.dataset = {"images": images, "annotations": annotations,
                         "categories": [{"id": d + 1, "name": str(d)} for d in range(10)]}
        truth.createIndex()
        found = truth.loadRes(results)
        evaluation = COCOeval(truth, found, "bbox")
        evaluation.params.maxDets = [1, 10, max(100, max(len(p.candidates) for p in photos))]
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    coco_map, ap50 = (float(v) for v in evaluation.stats[:2])
    return CocoAp(round(max(ap50, 0.0), 6), round(max(coco_map, 0.0), 6), len(results), from_candidates)


def detections_of(image: str, label: str, truth: Sequence[TrueDigit], digits: Sequence[Digit],
                  candidates: Sequence[Digit] | None, failed: bool) -> PhotoDetections:
    """A photo's detections; without candidates the digits stand in for them."""
    digits = tuple(digits)
    return PhotoDetections(image, label, tuple(truth), digits, digits if candidates is None else tuple(candidates),
                           failed, candidates is not None)


def detection_figures(photos: Sequence[PhotoDetections], iou: float = IOU_THRESHOLD) -> dict[str, object]:
    """Every figure of this module for a row, as ``run.json`` holds them."""
    ap = coco_ap(photos)
    return {"ap50": ap.ap50, "coco_map": ap.coco_map, "ap_from": "candidates" if ap.from_candidates else "digits",
            "per_class": per_class(photos, iou), "confusion": confusion(photos, iou),
            "size_buckets": size_buckets(photos, iou)}


__all__ = ["SIZE_BUCKETS", "CocoAp", "PhotoDetections", "bucket_name", "coco_ap", "confusion", "detection_figures",
           "detections_of", "per_class", "size_buckets"]
