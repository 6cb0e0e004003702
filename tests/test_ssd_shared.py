"""The trained OD API SSD MobileNet V2 of ../shared/models/ssd_mobilenet_v2_svhn in ``tf`` and ``tfjs``.

Skipped with the reason when ../shared is absent. SSD MobileNet is slow in a browser on this kind
of machine, so these use a few photos.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import SHARED, SVHN_TEST_DEV
from tests.test_tfjs_backend import _backend, _same_detections, _tf_candidates, needs_browser

SSD = SHARED / "models" / "ssd_mobilenet_v2_svhn"


@pytest.fixture
def ssd() -> Path:
    if not (SSD / "saved_model" / "saved_model.pb").is_file() or not (SVHN_TEST_DEV / "annotations.jsonl").is_file():
        pytest.skip(f"the OD API SSD or the SVHN photos are not in {SHARED} (../shared is absent on this machine)")
    pytest.importorskip("tensorflow")
    return SSD


def _photos(count: int):
    from bench.dataset import load_dataset

    return [p.load() for p in load_dataset(str(SVHN_TEST_DEV)).limited(count).photos]


@needs_browser
@pytest.mark.slow
def test_the_float32_ssd_gives_the_same_detections_in_tf_and_tfjs(ssd):
    photos = _photos(3)
    expected = _tf_candidates(ssd / "saved_model", photos)
    backend = _backend(ssd / "tfjs" / "none", min_score="0")
    try:
        backend.open()
        results = backend.recognize(photos)
    finally:
        backend.close()
    for photo, want, result in zip(photos, expected, results):
        assert result.error is None and want
        _same_detections(want, result.candidates, photo)


@needs_browser
@pytest.mark.slow
def test_tf_and_tfjs_rows_of_the_ssd_need_no_class_flag(ssd, tmp_path):
    from bench.cli import main

    code = main(["run", "--backends", "tf,tfjs", "--tf-model", str(ssd / "saved_model"), "--tfjs-model",
                 str(ssd / "tfjs" / "uint8"), "--dataset", str(SVHN_TEST_DEV),
                 "--limit", "4", "--warmup", "0", "--out", str(tmp_path / "run")])
    assert code == 0
    rows = json.loads((tmp_path / "run" / "run.json").read_text())["backends"]
    assert set(rows) == {"tf", "tfjs-wasm-uint8"}
    for row in rows.values():
        assert row["errors"] == 0 and row["digit_f1"] > 0
        assert row["describe"]["classes"].startswith("label map")
        assert not any("not digits" in note for note in row["describe"]["notes"])
