#!/usr/bin/env python3
"""Write the held-out TRAIN photos of ``bench model train`` as two datasets to choose models on:
as they are, and zoomed out to test-dev's digit scale.

    .venv/bin/python scripts/holdout_sets.py --out /tmp/holdout
    .venv/bin/bench run --backends tf --tf-model MODEL --dataset /tmp/holdout/as-is
    .venv/bin/bench run --backends tf --tf-model MODEL --dataset /tmp/holdout/zoomed-out

The held-out photos are the ones training sets aside (same ``--holdout`` share and ``--seed``), so
no model trained that way has seen them; test-dev stays for measuring the model chosen. Train
photos are framed tighter than test-dev's (median digit height 0.30 of the photo's longer side
against 0.19), so ``zoomed-out`` pads each photo with its own edge pixels to ``--zoom`` times its
size, the number where it was: the small digits in wide context that test-dev has.
"""
from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.model.commands import DEFAULT_DATA  # noqa: E402
from bench.model.data import Sample, load_folder, split_holdout  # noqa: E402

TEST_DEV_ZOOM = 0.30 / 0.19
"""Train's median digit height over test-dev's, both as a share of the photo's longer side."""


def _png(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def _entry(name: str, sample: Sample, rgb: np.ndarray, shift_x: int, shift_y: int) -> dict:
    boxes = [{"label": int(label), "left": float(box[0] + shift_x), "top": float(box[1] + shift_y),
              "width": float(box[2]), "height": float(box[3])} for box, label in zip(sample.boxes, sample.labels)]
    return {"image": name, "label": sample.label, "width": int(rgb.shape[1]), "height": int(rgb.shape[0]),
            "boxes": boxes}


def zoomed_out(rgb: np.ndarray, zoom: float) -> tuple[np.ndarray, int, int]:
    """The photo padded with its edge pixels to ``zoom`` times its size, centred; and the shift (x, y)."""
    height, width = rgb.shape[:2]
    pad_y, pad_x = int(round(height * (zoom - 1) / 2)), int(round(width * (zoom - 1) / 2))
    return np.pad(rgb, ((pad_y, pad_y), (pad_x, pad_x), (0, 0)), mode="edge"), pad_x, pad_y


def write_sets(data: Path, out: Path, holdout: float, seed: int, zoom: float) -> dict[str, int]:
    """Write ``out/as-is`` and ``out/zoomed-out``; the photo count of each."""
    _, held = split_holdout(load_folder(data), holdout, seed)
    for kind in ("as-is", "zoomed-out"):
        folder = out / kind
        (folder / "images").mkdir(parents=True, exist_ok=True)
        lines = []
        for index, sample in enumerate(held):
            rgb, shift_x, shift_y = (sample.rgb, 0, 0) if kind == "as-is" else zoomed_out(sample.rgb, zoom)
            name = f"images/{index:04d}.png"
            (folder / name).write_bytes(_png(rgb))
            lines.append(json.dumps(_entry(name, sample, rgb, shift_x, shift_y)))
        (folder / "annotations.jsonl").write_text("\n".join(lines) + "\n")
    return {"as-is": len(held), "zoomed-out": len(held)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="the training data (default: %(default)s)")
    parser.add_argument("--out", required=True, help="folder to write as-is/ and zoomed-out/ into")
    parser.add_argument("--holdout", type=float, default=0.1, help="held-out share, as training used (0.1)")
    parser.add_argument("--seed", type=int, default=0, help="training's --seed (0)")
    parser.add_argument("--zoom", type=float, default=TEST_DEV_ZOOM, help="zoom-out factor (default: %(default).2f)")
    args = parser.parse_args(argv)
    if not (Path(args.data) / "annotations.jsonl").is_file():
        print(f"holdout_sets: --data {args.data}: no annotations.jsonl there", file=sys.stderr)
        return 2
    counts = write_sets(Path(args.data), Path(args.out), args.holdout, args.seed, args.zoom)
    print(f"wrote {counts['as-is']} held-out photos to {args.out}/as-is and, zoomed out x{args.zoom:.2f}, "
          f"to {args.out}/zoomed-out")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
