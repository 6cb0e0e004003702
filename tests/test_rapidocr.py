"""The real RapidOCR (PP-OCRv4 on ONNX Runtime, models from its wheel) on rendered and real photos."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backends.rapidocr import RapidOcrBackend, RapidOcrOptions, TextLine, line_digits
from tests.conftest import ROOT, loaded_photo, rendered_line

needs_rapidocr = pytest.mark.skipif(importlib.util.find_spec("rapidocr_onnxruntime") is None,
                                    reason="rapidocr-onnxruntime not installed (make setup installs it)")


@pytest.fixture(scope="module")
def engine():
    backend = RapidOcrBackend(RapidOcrOptions(threads=1))
    backend.open()
    yield backend
    backend.close()


def test_importing_the_backend_does_not_import_the_library():
    code = ("import sys, backends.rapidocr; "
            "print([m for m in ('rapidocr_onnxruntime', 'onnxruntime', 'cv2') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@needs_rapidocr
@pytest.mark.parametrize("text,size", [("4071", 40), ("258", 16)])
def test_reads_a_number_with_a_box_on_each_digit(engine, text, size):
    rgb, extents = rendered_line(text, size)
    result = engine.recognize([loaded_photo(rgb)])[0]
    assert result.error is None and result.latency_ms > 0
    assert [d.label for d in result.digits] == [int(c) for c in text]
    for digit, (x0, x1) in zip(result.digits, extents):
        assert x0 - 2 <= digit.left + digit.width / 2 <= x1 + 2
        assert 0 <= digit.top and digit.top + digit.height <= rgb.shape[0] + 1
        assert 0.0 < digit.score <= 1.0
    assert {"det_ms", "rec_ms"} <= set(result.details)
    assert engine.describe()["split_box_digits"] == 0


@needs_rapidocr
def test_a_photo_without_text_gives_no_digits_and_no_error(engine):
    result = engine.recognize([loaded_photo(np.full((60, 120, 3), 200, np.uint8))])[0]
    assert result.error is None and result.digits == [] and result.text == ""


@needs_rapidocr
def test_min_score_drops_digits(engine):
    rgb, _ = rendered_line("36", 30)
    strict = RapidOcrBackend(RapidOcrOptions(min_score=1.01, threads=1))
    strict.open()
    try:
        assert strict.recognize([loaded_photo(rgb)])[0].digits == []
    finally:
        strict.close()
    assert [d.label for d in engine.recognize([loaded_photo(rgb)])[0].digits] == [3, 6]


@needs_rapidocr
def test_cold_start_splits_the_library_import_from_engine_init():
    backend = RapidOcrBackend(RapidOcrOptions(threads=1))
    cold = backend.open()
    backend.close()
    assert cold.download_bytes == 0 and cold.init_ms > 0
    assert cold.library_ms > 0 and cold.library_bytes == 0
    assert cold.details["model_bytes"] > 10_000_000


def test_a_line_without_character_boxes_is_split_evenly():
    line = TextLine("N 12", 0.8, [[10, 5], [50, 5], [50, 25], [10, 25]], [], [], [])
    digits, split = line_digits(line, 0.0)
    assert split
    assert [(d.label, d.left, d.width) for d in digits] == [(1, 30.0, 10.0), (2, 40.0, 10.0)]
    assert all(d.top == 5 and d.height == 20 and d.score == 0.8 for d in digits)


def test_character_boxes_keep_digits_only_and_their_own_scores():
    quads = [[[x, 0], [x + 9, 0], [x + 9, 20], [x, 20]] for x in (0, 10, 20)]
    line = TextLine("4A7", 0.9, [[0, 0], [30, 0], [30, 20], [0, 20]], quads, ["4", "A", "7"], [0.9, 0.8, 0.4])
    digits, split = line_digits(line, 0.5)
    assert not split
    assert [(d.label, d.left, d.score) for d in digits] == [(4, 0.0, 0.9)]


@needs_rapidocr
def test_a_run_on_real_photos(svhn_test_dev: Path, tmp_path: Path):
    out = tmp_path / "run"
    subprocess.run([sys.executable, "-m", "bench.cli", "run", "--backends", "rapidocr", "--rapidocr-threads", "1",
                    "--dataset", str(svhn_test_dev), "--limit", "4", "--warmup", "1", "--out", str(out)], cwd=ROOT,
                   check=True, capture_output=True, text=True)
    row = json.loads((out / "run.json").read_text())["backends"]["rapidocr"]
    assert row["status"] == "complete" and row["errors"] == 0 and row["images"] == 4
    assert row["cold_start_ms"]["first_inference"] > 0
    assert row["describe"]["rapidocr-onnxruntime"] == "1.4.4"
    predictions = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert any(p["digits"] for p in predictions)


def _network_namespace_works() -> bool:
    try:
        return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0
    except OSError:
        return False


@needs_rapidocr
@pytest.mark.skipif(not _network_namespace_works(), reason="`unshare -n` (a process without network) not allowed here")
def test_the_engine_starts_and_reads_with_no_network_at_all():
    code = ("from backends.rapidocr import RapidOcrBackend; from tests.conftest import loaded_photo, rendered_line; "
            "b = RapidOcrBackend(); b.open(); print(b.recognize([loaded_photo(rendered_line('52', 30)[0])])[0].text)")
    out = subprocess.run(["unshare", "-n", sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-500:]
    assert out.stdout.strip().endswith("52")
