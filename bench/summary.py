"""A backend row's figures, derived from its raw per-photo records and the truth.

The runner, ``bench compare`` and the history all call :func:`summarize_row`, so a figure is
computed in one place and can always be recomputed from ``predictions.jsonl``.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from bench.metrics import aggregate, score_photo
from bench.records import Box, Digit, TrueDigit
from bench.stats import LatencyStats


def truth_record(image: str, label: str, truth: Iterable[TrueDigit]) -> dict[str, Any]:
    """One line of ``truth.jsonl``."""
    return {"image": image, "label": label,
            "boxes": [{"label": t.label, "left": t.box.left, "top": t.box.top,
                       "width": t.box.width, "height": t.box.height} for t in truth]}


def parse_truth(record: Mapping[str, Any]) -> tuple[str, list[TrueDigit]]:
    """(number, digits) from a ``truth.jsonl`` line."""
    digits = [TrueDigit(int(b["label"]), Box(b["left"], b["top"], b["width"], b["height"])) for b in record["boxes"]]
    return str(record["label"]), digits


def parse_digits(record: Mapping[str, Any]) -> list[Digit]:
    """The digits of a ``predictions.jsonl`` line."""
    return [Digit(d["label"], d["score"], d["left"], d["top"], d["width"], d["height"]) for d in record["digits"]]


def photo_correctness(record: Mapping[str, Any], truth: Mapping[str, Any]):
    """The :class:`bench.metrics.PhotoScore` of one prediction line against its truth line."""
    label, digits = parse_truth(truth)
    return score_photo(parse_digits(record), digits, label, failed=record.get("error") is not None)


def cold_start_ms(cold: Mapping[str, Any], first_inference_ms: float | None) -> dict[str, float | None]:
    """The cold-start breakdown: library, download, init, first inference and their total."""
    library = float(cold.get("library_ms") or 0.0)
    download = float(cold.get("download_ms") or 0.0)
    init = float(cold.get("init_ms") or 0.0)
    first = first_inference_ms
    total = library + download + init + (first or 0.0)
    return {"library": round(library, 3), "download": round(download, 3), "init": round(init, 3),
            "first_inference": None if first is None else round(first, 3), "total": round(total, 3)}


def measured_latencies(records: Iterable[Mapping[str, Any]]) -> list[float]:
    """The latency of every record that succeeded and has one."""
    return [r["latency_ms"] for r in records if r.get("error") is None and r.get("latency_ms") is not None]


def summarize_row(records: list[Mapping[str, Any]], truth_by_image: Mapping[str, Mapping[str, Any]],
                  extra_latency_ms: Iterable[float] = ()) -> dict[str, Any]:
    """Accuracy and latency of one backend row from its prediction lines."""
    scores = [photo_correctness(r, truth_by_image[r["image"]]) for r in records]
    accuracy = aggregate(scores)
    latency = LatencyStats.of([*measured_latencies(records), *extra_latency_ms])
    wall = LatencyStats.of([r["wall_ms"] for r in records if r.get("error") is None and r.get("wall_ms") is not None])
    end_to_end = LatencyStats.of([r["end_to_end_ms"] for r in records
                                  if r.get("error") is None and r.get("end_to_end_ms") is not None])
    return {
        "images": len(records),
        "errors": sum(1 for r in records if r.get("error") is not None),
        "digit_precision": round(accuracy.precision, 6),
        "digit_recall": round(accuracy.recall, 6),
        "digit_f1": round(accuracy.f1, 6),
        "sequence_accuracy": round(accuracy.sequence_accuracy, 6),
        "digits_true": accuracy.true,
        "digits_predicted": accuracy.predicted,
        "digits_matched": accuracy.matched,
        "latency_ms": latency.to_dict() if latency else None,
        "wall_ms": wall.to_dict() if wall else None,
        "end_to_end_ms": end_to_end.to_dict() if end_to_end else None,
        "replayed": any(r.get("replayed") for r in records),
        "warnings": [w for w in [latency.stability_warning() if latency else None] if w],
    }
