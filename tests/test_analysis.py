"""Accuracy you can decide with (issue 13): AP and mAP, per-class and size breakdowns, curves rebuilt from
candidates, coverage, agreement between rows, latency intervals and run-length rules."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.cli import main
from bench.confidence import coverage, curve
from bench.detection import coco_ap, confusion, detections_of, per_class, size_buckets
from bench.results.folder import read_jsonl, read_run
from bench.results.records import Box, Digit, TrueDigit
from bench.stats import quantile_interval


def truth(label: int, left: float, height: float = 20.0) -> TrueDigit:
    return TrueDigit(label, Box(left, 0.0, 10.0, height))


def digit(label: int, left: float, score: float, height: float = 20.0) -> Digit:
    return Digit(label, score, left, 0.0, 10.0, height)


def hand_made():
    """Digit 1: a false detection outranks the true one (AP 0.5 at every IoU); digit 2: one detection at
    IoU 0.626 (a hit at IoU 0.50, 0.55 and 0.60 only: AP 1.0 at 0.5, 0.3 averaged over 0.5:0.95)."""
    one = detections_of("a.png", "1", [truth(1, 0)], [digit(1, 0, 0.9)], [digit(1, 0, 0.9), digit(1, 40, 0.95)],
                        failed=False)
    two = detections_of("b.png", "2", [truth(2, 0)], [digit(2, 2.3, 0.7)], [digit(2, 2.3, 0.7)], failed=False)
    return [one, two]


def test_ap_and_map_of_a_hand_made_case_are_the_known_answer():
    ap = coco_ap(hand_made())
    assert ap.ap50 == pytest.approx(0.75) and ap.coco_map == pytest.approx(0.4) and ap.from_candidates


def test_a_failed_photo_has_no_detections_and_no_truth_gives_no_ap():
    photos = hand_made()
    failed = [detections_of(p.image, p.label, p.truth, p.digits, p.candidates, failed=True) for p in photos]
    assert coco_ap(failed).ap50 == 0.0
    assert coco_ap([detections_of("c.png", "", [], [digit(1, 0, 0.9)], None, failed=False)]).ap50 is None


def test_per_class_confusion_and_size_buckets_on_a_hand_made_case():
    photo = detections_of("a.png", "17", [truth(1, 0), truth(7, 20, height=40)],
                          [digit(1, 0, 0.9), digit(1, 20, 0.8, height=40), digit(3, 60, 0.6)], None, failed=False)
    classes = per_class([photo])
    assert classes["1"] == {"n": 1, "predicted": 2, "matched": 1, "precision": 0.5, "recall": 1.0, "f1": 0.666667}
    assert classes["7"]["n"] == 1 and classes["7"]["recall"] == 0.0
    table = confusion([photo])
    assert table["1"] == {"1": 1} and table["7"] == {"1": 1} and table["extra"] == {"3": 1}
    buckets = size_buckets([photo])
    assert buckets["16-24"]["digits"] == 1 and buckets["16-24"]["recall"] == 1.0
    assert buckets["32-48"]["digits"] == 1 and buckets["32-48"]["recall"] == 0.0
    assert buckets["32-48"]["photos"] == 1 and buckets["32-48"]["sequence_accuracy"] == 0.0


def test_the_curve_rebuilds_any_threshold_from_the_candidates():
    photos = hand_made()
    points = {round(p.threshold, 2): p for p in curve(photos)}
    assert points[0.95].precision == 0.0 and points[0.95].recall == 0.0
    assert points[0.9].precision == 0.5 and points[0.9].recall == 0.5
    assert points[0.7].recall == 1.0 and points[0.7].sequence_accuracy == 0.5


def test_coverage_answers_the_confident_photos_while_accuracy_stays_at_98_percent():
    right = [detections_of(f"{i}.png", "1", [truth(1, 0)], [digit(1, 0, 0.99 - i / 1000)], None, False)
             for i in range(49)]
    wrong = [detections_of(f"w{i}.png", "1", [truth(1, 0)], [digit(7, 0, score)], None, False)
             for i, score in enumerate((0.5, 0.4))]
    low = detections_of("l.png", "1", [truth(1, 0)], [digit(1, 0, 0.1)], None, False)
    found = coverage([*right, *wrong, low])
    assert found.answered == 50 and found.coverage == pytest.approx(50 / 52) and found.cut == 0.5
    assert found.accuracy == pytest.approx(0.98)
    assert coverage(wrong).coverage == 0.0 and coverage(wrong).cut is None


def test_order_statistic_intervals_cover_the_true_quantile_about_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    inside = 0
    for _ in range(2000):
        low, high = quantile_interval(rng.uniform(size=60), 0.9)
        inside += low <= 0.9 <= high
    assert 0.93 <= inside / 2000 <= 0.995


def bench_run(tmp_path: Path, *options: str, name: str = "r") -> Path:
    out = tmp_path / name
    assert main(["run", "--no-store", "--out", str(out), "--warmup", "0", *options]) == 0
    return out


def test_run_json_carries_detection_figures_intervals_and_agreement(tiny_dataset, tmp_path):
    out = bench_run(tmp_path, "--backends", "oracle,tesseract", "--dataset", str(tiny_dataset),
                    "--oracle-miss-rate", "0.3", "--oracle-seed", "4")
    run = json.loads((out / "run.json").read_text())
    oracle = run["backends"]["oracle"]
    assert 0 < oracle["ap50"] <= 1 and oracle["coco_map"] <= oracle["ap50"]
    assert set(oracle["per_class"]) == {str(d) for d in range(10)} and "extra" in oracle["confusion"]
    assert set(oracle["latency_ms"]) >= {"p50_ci", "p90_ci", "p99_ci"}
    assert any("p99 rests on 3 samples" in w for w in oracle["warnings"])
    pair = run["agreement"]["oracle"]["tesseract"]
    assert pair["photos"] == 3 and pair["both_right"] + pair["both_wrong"] + pair["only_a_right"] + \
        pair["only_b_right"] == 3
    assert run["agreement"]["tesseract"]["oracle"]["share"] == pair["share"]
    curves = json.loads((out / "curves.json").read_text())
    assert set(curves) == {"oracle", "tesseract"} and all("threshold" in p for p in curves["oracle"])


def test_min_photos_and_min_duration_repeat_the_measured_passes(tiny_dataset, tmp_path):
    out = bench_run(tmp_path, "--backends", "oracle", "--dataset", str(tiny_dataset), "--min-photos", "10")
    assert read_run(out).rows["oracle"].repeats == 4 and len(read_jsonl(out / "repeats.jsonl")) == 9
    timed = bench_run(tmp_path, "--backends", "oracle", "--dataset", str(tiny_dataset), "--oracle-delay-ms", "20",
                      "--min-duration-s", "0.3", name="t")
    row = read_run(timed).rows["oracle"]
    walls = [r.wall_ms for r in (*row.records, *row.repeat_records)]
    assert row.repeats >= 2 and sum(walls[:-3]) < 300
    capped = bench_run(tmp_path, "--backends", "oracle", "--dataset", str(tiny_dataset), "--min-photos", "1000",
                       "--max-repeats", "3", name="c")
    assert read_run(capped).rows["oracle"].repeats == 3


def test_latency_precision_adds_passes_until_p90_is_pinned_down(tiny_dataset, tmp_path):
    out = bench_run(tmp_path, "--backends", "oracle", "--dataset", str(tiny_dataset), "--oracle-delay-ms", "2",
                    "--oracle-jitter-ms", "4", "--latency-precision", "0.02", "--max-repeats", "8")
    row = read_run(out).rows["oracle"]
    stats = row.figures.latency
    assert row.repeats > 1 and (stats.relative_halfwidth("p90") <= 0.02 or row.repeats == 8)


def test_candidates_below_the_floor_are_not_kept():
    from bench.results.records import Recognition
    from bench.results.run import PhotoRecord

    result = Recognition(digits=[digit(1, 0, 0.9)], candidates=[digit(1, 0, 0.9), digit(2, 9, 0.1),
                                                                 digit(3, 20, 0.01)])
    record = PhotoRecord.of("x", "a.png", result, 1.0, candidates_floor=0.05)
    assert [c.score for c in record.candidates] == [0.9, 0.1]
    assert PhotoRecord.from_json(record.to_json()) == record


def independent_ap(truths: dict[str, list[dict]], detections: dict[str, list[dict]], iou: float) -> float:
    """COCO's AP at one IoU, written again from its definition: per class, detections by descending score
    each take the unmatched true box of best IoU >= ``iou``; precision made monotone, read at 101 recall
    points; averaged over the classes that have true boxes."""
    def overlap(a: dict, b: dict) -> float:
        w = min(a["left"] + a["width"], b["left"] + b["width"]) - max(a["left"], b["left"])
        h = min(a["top"] + a["height"], b["top"] + b["height"]) - max(a["top"], b["top"])
        inter = max(w, 0) * max(h, 0)
        return inter / (a["width"] * a["height"] + b["width"] * b["height"] - inter)

    aps = []
    for label in range(10):
        gt = {image: [b for b in boxes if b["label"] == label] for image, boxes in truths.items()}
        total = sum(map(len, gt.values()))
        if not total:
            continue
        found = sorted(((d["score"], image, d) for image, ds in detections.items() for d in ds if d["label"] == label),
                       key=lambda item: -item[0])
        taken: set[tuple[str, int]] = set()
        hits = []
        for _, image, d in found:
            best, best_iou = None, iou
            for j, box in enumerate(gt.get(image, [])):
                value = overlap(d, box)
                if (image, j) not in taken and value >= best_iou:
                    best, best_iou = j, value
            hits.append(best is not None)
            if best is not None:
                taken.add((image, best))
        tp = np.cumsum(hits)
        precision = tp / np.arange(1, len(hits) + 1) if hits else np.array([])
        recall = tp / total if hits else np.array([])
        for k in range(len(precision) - 2, -1, -1):
            precision[k] = max(precision[k], precision[k + 1])
        points = [precision[np.searchsorted(recall, r, side="left")] if np.searchsorted(recall, r, "left") < len(recall)
                  else 0.0 for r in np.linspace(0, 1, 101)]
        aps.append(float(np.mean(points)))
    return float(np.mean(aps))


def test_run_json_ap_agrees_with_coco_ap_computed_again_from_the_run_folder(tmp_path):
    pytest.importorskip("tensorflow")
    out = bench_run(tmp_path, "--backends", "tf", "--limit", "40")
    run = json.loads((out / "run.json").read_text())["backends"]["tf"]
    truths = {t["image"]: t["boxes"] for t in read_jsonl(out / "truth.jsonl")}
    detections = {p["image"]: p.get("candidates", p["digits"]) for p in read_jsonl(out / "predictions.jsonl")}
    ap50 = independent_ap(truths, detections, 0.5)
    coco_map = float(np.mean([independent_ap(truths, detections, t) for t in np.linspace(0.5, 0.95, 10)]))
    assert run["ap50"] == pytest.approx(ap50, abs=2e-3) and run["coco_map"] == pytest.approx(coco_map, abs=2e-3)
    assert 0.3 < run["ap50"] <= 1.0
