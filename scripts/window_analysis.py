#!/usr/bin/env python3
"""Where a two-stage model cuts its reader's window, against each photo's true number; with a run's
predictions of that model on the same photos, whole-number accuracy by where the window fell.

    .venv/bin/python scripts/window_analysis.py --model models/digit_reader_two_stage \\
        --dataset ../shared/datasets/svhn/test-dev [--run reports/RUN --row tf]

The window is the graph's own (its locator, ``number_box`` and ``crop_window`` with the model's crop
settings). A photo's window *holds* the number when every true digit lies at least 90% inside it,
*misses* it when none lies half inside, and otherwise *cuts* it. The digits' height in the reader is
the median true digit height divided by the window's step (input pixels per reader pixel); the
reader was trained at about 40 px.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.errors import DatasetError, UsageError  # noqa: E402
from bench.model.data import load_folder  # noqa: E402
from bench.model.preprocess import letterbox  # noqa: E402
from bench.model.two_stage import CropConfig, crop_window, halve, number_box  # noqa: E402
from bench.results.folder import read_run  # noqa: E402
from bench.saved_model import read_metadata  # noqa: E402

HEIGHTS = ((0, 20), (20, 28), (28, 36), (36, 44), (44, 1e9))


@dataclass(frozen=True)
class PhotoWindow:
    """Where the window fell on one photo."""

    name: str
    window: str
    """``holds``, ``cuts`` or ``misses`` the true number."""
    reader_digit_px: float
    """The median true digit height in the reader's input."""


def windows(model: Path, dataset: Path) -> list[PhotoWindow]:
    """Per photo of ``dataset``: where ``model``'s window fell and the digits' height in the reader."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    two_stage = read_metadata(model)["two_stage"]
    crop = CropConfig(**two_stage["crop"])
    reader = two_stage["reader"]["model"]
    locator_dir = Path(two_stage["locator"]["source"])
    locator = tf.saved_model.load(str(locator_dir if locator_dir.is_absolute() else ROOT / locator_dir))
    locate = locator.signatures["serving_default"]
    samples = load_folder(dataset)
    out = []
    for start in range(0, len(samples), 32):
        part = samples[start:start + 32]
        inputs, transforms = zip(*(letterbox(s.rgb, crop.input_height, crop.input_width) for s in part))
        found = locate(input_tensor=halve(tf.constant(np.stack(inputs).astype(np.float32))))
        number = number_box(found["detection_boxes"], found["detection_scores"], crop)
        cut = crop_window(number, crop, reader["input_height"], reader["input_width"]).numpy()
        for sample, transform, (origin_y, origin_x, step) in zip(part, transforms, cut):
            digits = np.array([transform.to_model(*box) for box in sample.boxes])
            x0, y0 = digits[:, 0], digits[:, 1]
            x1, y1 = x0 + digits[:, 2], y0 + digits[:, 3]
            wx1, wy1 = origin_x + step * reader["input_width"], origin_y + step * reader["input_height"]
            overlap = (np.clip(np.minimum(x1, wx1) - np.maximum(x0, origin_x), 0, None)
                       * np.clip(np.minimum(y1, wy1) - np.maximum(y0, origin_y), 0, None))
            inside = overlap / np.maximum(digits[:, 2] * digits[:, 3], 1e-6)
            where = "holds" if (inside >= 0.9).all() else "misses" if (inside < 0.5).all() else "cuts"
            out.append(PhotoWindow(sample.name, where, float(np.median(digits[:, 3]) / step)))
    return out


def whole_number_right(run: Path, row: str) -> dict[str, bool]:
    """Photo name -> whether ``row`` of the run read its whole number (as the run scores it)."""
    rows = read_run(run).rows
    if row not in rows:
        raise ValueError(f"--row {row}: not in {run} (its rows: {', '.join(rows) or 'none'})")
    return {image: score.sequence_correct for image, score in rows[row].scores.items()}


def table(photos: list[PhotoWindow], right: dict[str, bool] | None) -> str:
    """The Markdown table: photos (and whole-number accuracy) by window and by digit height in the reader."""
    groups = [(f"window {w}", [p for p in photos if p.window == w]) for w in ("holds", "cuts", "misses")]
    held = [p for p in photos if p.window == "holds"]
    groups += [(f"holds, digits {a:g}-{b:g} px" if b < 1e9 else f"holds, digits {a:g}+ px",
                [p for p in held if a <= p.reader_digit_px < b]) for a, b in HEIGHTS]
    lines = ["| photos | count | share | whole number |", "| --- | --- | --- | --- |"]
    for name, members in groups:
        accuracy = "-"
        if right is not None and members:
            accuracy = f"{np.mean([right.get(p.name, False) for p in members]):.3f}"
        lines.append(f"| {name} | {len(members)} | {len(members) / len(photos):.1%} | {accuracy} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "digit_reader_two_stage")
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--run", type=Path, default=None, help="a `bench run` folder of this model on --dataset")
    parser.add_argument("--row", default="tf", help="the run's row to score (default tf)")
    args = parser.parse_args(argv)
    if "two_stage" not in read_metadata(args.model):
        parser.error(f"--model {args.model}: not a two-stage model (no two_stage in its metadata)")
    try:
        right = whole_number_right(args.run, args.row) if args.run else None
        print(table(windows(args.model, args.dataset), right))
    except (DatasetError, UsageError, OSError, ValueError) as exc:
        parser.error(str(exc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
