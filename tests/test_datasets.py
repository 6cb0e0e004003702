"""Both dataset formats, the synthetic default, and annotation problems."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.dataset import load_dataset
from bench.digitstruct import read_digitstruct, write_digitstruct
from bench.errors import DatasetError, PhotoError
from bench.dataset import synthetic_dataset
from bench.synthetic import render_photo
from tests.conftest import png_bytes, write_jsonl_dataset


def test_jsonl_folder_loads_photos_labels_and_boxes(tiny_dataset: Path):
    dataset = load_dataset(tiny_dataset)
    assert len(dataset.photos) == 3
    first = dataset.photos[0]
    assert first.image == "images/1.png"
    assert first.label == "".join(str(t.label) for t in first.truth)
    assert first.load().rgb.shape[2] == 3
    assert dataset.problems == []


def test_malformed_jsonl_line_is_reported_and_skipped(tmp_path: Path):
    image = png_bytes(np.zeros((20, 40, 3), np.uint8))
    good = {"image": "images/a.png", "label": "1", "boxes": [{"label": 1, "left": 1, "top": 1, "width": 5, "height": 9}]}
    root = write_jsonl_dataset(tmp_path / "d", [good, "{not json", json.dumps({"label": "2"})], {"images/a.png": image})
    dataset = load_dataset(root)
    assert [p.image for p in dataset.photos] == ["images/a.png"]
    assert len(dataset.problems) == 2
    assert "annotations.jsonl:2: not valid JSON" in dataset.problems[0]
    assert "annotations.jsonl:3: bad annotation" in dataset.problems[1]


def test_box_outside_photo_makes_that_photo_an_error(tmp_path: Path):
    image = png_bytes(np.zeros((20, 40, 3), np.uint8))
    entry = {"image": "images/a.png", "label": "1", "width": 40, "height": 20,
             "boxes": [{"label": 1, "left": 100, "top": 1, "width": 5, "height": 9}]}
    dataset = load_dataset(write_jsonl_dataset(tmp_path / "d", [entry], {"images/a.png": image}))
    with pytest.raises(PhotoError, match="lies outside the 40x20 photo"):
        dataset.photos[0].load()


def test_missing_dataset_names_the_option_and_fix(tmp_path: Path):
    with pytest.raises(DatasetError, match=r"--dataset .*: no such file or folder"):
        load_dataset(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="found neither annotations.jsonl nor digitStruct.mat"):
        load_dataset(tmp_path / "empty")


def test_unfetched_svhn_name_says_how_to_fetch(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("DIGITBENCH_DATA", str(tmp_path))
    with pytest.raises(DatasetError, match="bench datasets fetch svhn --split test"):
        load_dataset("svhn-test")


def test_digitstruct_in_official_layout_round_trips(tmp_path: Path):
    entries = [{"image": "1.png", "boxes": [{"label": 1, "left": 246.0, "top": 77.0, "width": 81.0, "height": 219.0},
                                            {"label": 0, "left": 323.0, "top": 81.0, "width": 96.0, "height": 219.0}]},
               {"image": "2.png", "boxes": [{"label": 2, "left": 77.0, "top": 29.0, "width": 23.0, "height": 32.0}]}]
    mat = tmp_path / "digitStruct.mat"
    write_digitstruct(mat, entries)
    import h5py

    with h5py.File(mat) as f:  # the official encoding: 0 is stored as 10, one digit is a plain 1x1
        first = f[f["digitStruct/bbox"][0][0]]
        assert float(np.asarray(f[first["label"][1][0]]).ravel()[0]) == 10.0
        second = f[f["digitStruct/bbox"][1][0]]
        assert second["label"].shape == (1, 1)
    assert read_digitstruct(mat) == entries


def test_digitstruct_folder_is_a_dataset(tmp_path: Path):
    image = png_bytes(np.full((40, 60, 3), 200, np.uint8))
    (tmp_path / "1.png").write_bytes(image)
    write_digitstruct(tmp_path / "digitStruct.mat",
                      [{"image": "1.png", "boxes": [{"label": 0, "left": 5.0, "top": 5.0, "width": 10.0, "height": 20.0}]}])
    dataset = load_dataset(tmp_path)
    assert dataset.photos[0].label == "0"
    assert dataset.photos[0].load().width == 60


def test_broken_digitstruct_is_one_clear_error(tmp_path: Path):
    (tmp_path / "digitStruct.mat").write_bytes(b"MATLAB 5.0 not hdf5")
    with pytest.raises(DatasetError, match="not a MATLAB v7.3"):
        load_dataset(tmp_path)


def test_synthetic_photos_are_deterministic_and_boxes_lie_inside():
    a, b = render_photo(3, 11), render_photo(3, 11)
    assert a.png == b.png and a.truth == b.truth
    assert render_photo(3, 12).png != a.png
    dataset = synthetic_dataset(count=30, seed=5)
    labels = {p.label for p in dataset.photos}
    assert len(labels) > 20
    for photo in dataset.photos:
        loaded = photo.load()
        assert len(photo.truth) == len(photo.label)
        for digit in photo.truth:
            box = digit.box
            assert 0 <= box.left < box.right <= loaded.width
            assert 0 <= box.top < box.bottom <= loaded.height


def test_synthetic_boxes_cover_the_digit_ink():
    photo = render_photo(9, 0)
    from PIL import Image
    import io

    gray = np.asarray(Image.open(io.BytesIO(photo.png)).convert("L"), dtype=float)
    for digit in photo.truth:
        b = digit.box
        inside = gray[int(b.top):int(b.bottom), int(b.left):int(b.right)]
        assert inside.std() > 10  # ink against the background, not an empty patch
