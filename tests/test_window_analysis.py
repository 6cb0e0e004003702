"""scripts/window_analysis.py: where the shipped two-stage model's window falls against the true number."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("tensorflow")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))


def test_the_window_holds_rendered_numbers_and_misses_a_number_annotated_elsewhere(tiny_dataset: Path,
                                                                                  tmp_path: Path):
    from window_analysis import table, windows

    model = Path(__file__).resolve().parents[1] / "models" / "digit_reader_two_stage"
    photos = windows(model, tiny_dataset)
    assert [p.window for p in photos] == ["holds"] * 3
    assert all(15 < p.reader_digit_px < 60 for p in photos)

    entries = [json.loads(line) for line in (tiny_dataset / "annotations.jsonl").read_text().splitlines()]
    first = entries[0]
    # the same photo, its digits claimed to be in a corner away from where the number is drawn
    far_x = 0 if first["boxes"][0]["left"] > first["width"] / 2 else first["width"] - 6
    far_y = 0 if first["boxes"][0]["top"] > first["height"] / 2 else first["height"] - 6
    first["boxes"] = [{**b, "left": far_x, "top": far_y, "width": 5, "height": 5} for b in first["boxes"][:1]]
    first["label"] = first["label"][:1]
    (tiny_dataset / "annotations.jsonl").write_text("\n".join(json.dumps(e) for e in entries) + "\n")
    moved = windows(model, tiny_dataset)
    assert moved[0].window == "misses" and [p.window for p in moved[1:]] == ["holds"] * 2

    text = table(moved, {moved[0].name: True, moved[1].name: False, moved[2].name: True})
    assert "| window holds | 2 | 66.7% | 0.500 |" in text and "| window misses | 1 | 33.3% | 1.000 |" in text
