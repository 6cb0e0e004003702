"""A real run on the SVHN test-dev photos of ../shared, rescored by an independent scorer."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bench.cli import main


def independent_score(predictions: list[dict], annotations: dict[str, dict]) -> tuple[float, float]:
    """Digit F1 and whole-number accuracy written from the README's definitions, not bench.metrics."""
    tp = n_pred = n_true = exact = 0
    for record in predictions:
        truth = annotations[record["image"]]
        boxes = [(b["label"], b["left"], b["top"], b["left"] + b["width"], b["top"] + b["height"]) for b in truth["boxes"]]
        n_true += len(boxes)
        digits = [] if record["error"] else record["digits"]
        n_pred += len(digits)
        used = set()
        for d in sorted(digits, key=lambda d: -d["score"]):
            x0, y0, x1, y1 = d["left"], d["top"], d["left"] + d["width"], d["top"] + d["height"]
            best, best_iou = None, 0.5
            for k, (label, a0, b0, a1, b1) in enumerate(boxes):
                if k in used or label != d["label"]:
                    continue
                iw, ih = min(x1, a1) - max(x0, a0), min(y1, b1) - max(y0, b0)
                inter = max(iw, 0) * max(ih, 0)
                union = (x1 - x0) * (y1 - y0) + (a1 - a0) * (b1 - b0) - inter
                iou = inter / union if union > 0 else 0
                if iou >= best_iou:
                    best, best_iou = k, iou
            if best is not None:
                used.add(best)
                tp += 1
        read = "".join(str(d["label"]) for d in sorted(digits, key=lambda d: d["left"] + d["width"] / 2))
        exact += read == truth["label"]
    precision = tp / n_pred if n_pred else 0
    recall = tp / n_true if n_true else 0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0
    return f1, exact / len(predictions)


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract not installed")
def test_tesseract_on_real_svhn_scores_match_an_independent_scorer(svhn_test_dev: Path, tmp_path: Path):
    out = tmp_path / "run"
    assert main(["run", "--backends", "tesseract", "--dataset", str(svhn_test_dev), "--limit", "25",
                 "--warmup", "1", "--out", str(out)]) == 0
    run = json.loads((out / "run.json").read_text())
    predictions = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    annotations = {a["image"]: a for a in map(json.loads, (svhn_test_dev / "annotations.jsonl").read_text().splitlines())}
    assert len(predictions) == 25 and all(p["backend"] == "tesseract" for p in predictions)
    f1, whole = independent_score(predictions, annotations)
    row = run["backends"]["tesseract"]
    assert row["digit_f1"] == pytest.approx(f1, abs=1e-6)
    assert row["sequence_accuracy"] == pytest.approx(whole, abs=1e-9)
    assert row["images"] == 25 and row["latency_ms"]["n"] == 25 - row["errors"]
    assert run["dataset"]["photos"] == 25


def test_oracle_on_real_svhn_is_perfect_and_independently_so(svhn_test_dev: Path, tmp_path: Path):
    out = tmp_path / "oracle"
    assert main(["run", "--backends", "oracle", "--oracle-wrong-label-rate", "0.1", "--dataset", str(svhn_test_dev),
                 "--out", str(out)]) == 0
    run = json.loads((out / "run.json").read_text())
    predictions = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    annotations = {a["image"]: a for a in map(json.loads, (svhn_test_dev / "annotations.jsonl").read_text().splitlines())}
    f1, whole = independent_score(predictions, annotations)
    assert len(predictions) == 500
    assert run["backends"]["oracle"]["digit_f1"] == pytest.approx(f1, abs=1e-6)
    assert run["backends"]["oracle"]["sequence_accuracy"] == pytest.approx(whole)
    assert 0.8 < f1 < 0.95
