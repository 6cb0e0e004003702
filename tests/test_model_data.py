"""Training data: the digit swap gives a photo a new number of real digits, and touches nothing else."""
from __future__ import annotations

import numpy as np

from bench.model.data import Sample, swap_digits


def _sample(shade: int, labels: list[int], name: str) -> Sample:
    rgb = np.full((40, 80, 3), shade, np.uint8)
    boxes = np.array([[10 + 20 * i, 8, 14, 24] for i in range(len(labels))], np.float32).reshape(-1, 4)
    for left, top, width, height in boxes.astype(int):
        rgb[top:top + height, left:left + width] = 255 - shade
        rgb[top + 6:top + 18, left + 4:left + 10] = shade
    return Sample(rgb, boxes, np.array(labels, np.int32), "".join(map(str, labels)), name)


def test_each_digit_takes_a_donor_digit_in_its_own_box_and_the_rest_of_the_photo_is_kept():
    target = _sample(30, [1, 2, 3], "target.png")
    donor = _sample(200, [7], "donor.png")
    swapped = swap_digits(target, [donor], np.random.default_rng(0))
    assert swapped.labels.tolist() == [7, 7, 7] and swapped.label == "777"
    assert np.array_equal(swapped.boxes, target.boxes) and target.labels.tolist() == [1, 2, 3]
    outside = np.ones(target.rgb.shape[:2], bool)
    for left, top, width, height in target.boxes.astype(int):
        outside[top:top + height, left:left + width] = False
    assert np.array_equal(swapped.rgb[outside], target.rgb[outside])
    inside = ~outside
    assert not np.array_equal(swapped.rgb[inside], target.rgb[inside])
    box = swapped.rgb[8:32, 10:24].astype(float)
    assert abs(box.mean() - target.rgb[8:32, 10:24].mean()) < 25


def test_the_number_is_read_left_to_right_and_unusable_donors_change_nothing():
    target = _sample(30, [4, 5], "target.png")
    target = Sample(target.rgb, target.boxes[::-1].copy(), target.labels[::-1].copy(), "45", target.name)
    donors = [_sample(200, [9], "nine.png")]
    swapped = swap_digits(target, donors, np.random.default_rng(1))
    assert swapped.label == "99"
    empty = Sample(np.zeros((10, 10, 3), np.uint8), np.zeros((0, 4), np.float32), np.zeros(0, np.int32), "", "e")
    kept = swap_digits(target, [empty], np.random.default_rng(2))
    assert kept.label == "45" and np.array_equal(kept.rgb, target.rgb)


def test_holdout_sets_keep_the_held_out_photos_and_their_digits_where_they_are(tiny_dataset, tmp_path):
    import json
    import sys
    from pathlib import Path

    from PIL import Image

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from holdout_sets import write_sets

    counts = write_sets(tiny_dataset, tmp_path, holdout=0.34, seed=0, zoom=1.5)
    assert counts == {"as-is": 1, "zoomed-out": 1}
    [plain] = [json.loads(line) for line in (tmp_path / "as-is" / "annotations.jsonl").read_text().splitlines()]
    [wide] = [json.loads(line) for line in (tmp_path / "zoomed-out" / "annotations.jsonl").read_text().splitlines()]
    assert plain["label"] == wide["label"] and wide["width"] > 1.4 * plain["width"]
    near = np.asarray(Image.open(tmp_path / "as-is" / plain["image"]).convert("RGB"))
    far = np.asarray(Image.open(tmp_path / "zoomed-out" / wide["image"]).convert("RGB"))
    for a, b in zip(plain["boxes"], wide["boxes"]):
        left, top = int(a["left"]), int(a["top"])
        left2, top2 = int(b["left"]), int(b["top"])
        w, h = int(a["width"]), int(a["height"])
        assert np.array_equal(near[top:top + h, left:left + w], far[top2:top2 + h, left2:left2 + w])
