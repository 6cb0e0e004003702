"""The detector on real ONNX Runtime Web in real headless Chromium: same answers as tf, conversion, options."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from backends.ortweb import OrtWebBackend
from backends.ortweb.backend import OrtWebOptions, model_problem
from bench import onnx_convert
from bench.dataset import load_dataset
from bench.onnx_convert import CONVERSION_FILE, convert_to_onnx, is_current, onnx_dir
from bench.photos import Photo
from bench.saved_model import DEFAULT_MODEL, fingerprint
from tests.conftest import SVHN_TEST_DEV


def _missing() -> str | None:
    return OrtWebBackend.unavailable_reason(OrtWebOptions())


needs_page = pytest.mark.skipif(_missing() is not None, reason=str(_missing()))


def _photos() -> list:
    """Synthetic photos always; the first real test-dev photos too when ../shared is here."""
    from bench.synthetic import render_photo

    photos = []
    for index in range(6):
        rendered = render_photo(11, index)
        photos.append(Photo(f"s{index}.png", rendered.label, rendered.truth, lambda png=rendered.png: png).load())
    if (SVHN_TEST_DEV / "annotations.jsonl").is_file():
        photos += [p.load() for p in load_dataset(SVHN_TEST_DEV).photos[:10]]
    return photos


def test_the_committed_onnx_model_is_converted_from_the_committed_savedmodel():
    record = json.loads((onnx_dir(DEFAULT_MODEL) / CONVERSION_FILE).read_text())
    assert record["source_sha256"] == fingerprint(DEFAULT_MODEL), "run `bench model onnx` and commit models/*/onnx"
    assert record["tf2onnx"] and record["opset"] == onnx_convert.OPSET


def test_rows_are_one_per_execution_provider():
    rows = OrtWebBackend.rows(OrtWebOptions(ep=("wasm", "webgl", "wasm")))
    assert [name for name, _ in rows] == ["ortweb-wasm", "ortweb-webgl"]
    assert [options.ep for _, options in rows] == [("wasm",), ("webgl",)]


def test_a_stale_model_without_a_converter_names_the_command(tmp_path: Path, monkeypatch):
    model = tmp_path / "m"
    for relative in ("saved_model.pb", "assets.extra/digitbench.json", "onnx/model.onnx"):
        (model / relative).parent.mkdir(parents=True, exist_ok=True)
        (model / relative).write_bytes(b"x")
    (model / "onnx" / CONVERSION_FILE).write_text(json.dumps({"source_sha256": "another model"}))
    monkeypatch.setattr("backends.ortweb.backend.converter_missing", lambda: "tf2onnx not importable: pip install")
    problem = model_problem(model)
    assert "stale" in problem and f"bench model onnx {model}" in problem


@needs_page
def test_same_weights_same_answers_as_tf():
    from backends.tf import TFBackend

    photos = _photos()
    tf_backend, web = TFBackend(), OrtWebBackend()
    tf_backend.open()
    cold = web.open()
    try:
        expected = tf_backend.recognize(photos)
        got = [r for start in range(0, len(photos), 8) for r in web.recognize(photos[start:start + 8])]
        facts = web.describe()
    finally:
        tf_backend.close()
        web.close()
    assert cold.download_bytes > 900_000 and cold.init_ms > 0
    assert cold.library_bytes > 1_000_000 and cold.library_ms > 0 and cold.details["runtime_refetched_bytes"] == 0
    assert facts["onnxruntime_web"] == "1.30.0" and facts["min_score"] == tf_backend.threshold
    assert sum(len(r.digits) for r in expected) > 0
    for photo, want, have in zip(photos, expected, got):
        assert have.error is None and have.latency_ms > 0
        assert len(have.candidates) == 20 and set(have.digits) <= set(have.candidates)
        assert have.text == want.text and len(have.digits) == len(want.digits), photo.photo.image
        size = max(photo.width, photo.height)
        for a, b in zip(want.digits, have.digits):
            assert a.label == b.label and abs(a.score - b.score) < 1e-4
            assert max(abs(a.left - b.left), abs(a.top - b.top), abs(a.width - b.width),
                       abs(a.height - b.height)) < 1e-3 * size


@needs_page
def test_an_unsupported_execution_provider_fails_the_row_with_one_line():
    backend = OrtWebBackend(OrtWebOptions(ep=("webgpu",)))
    try:
        with pytest.raises(Exception) as caught:
            backend.open()
    finally:
        backend.close()
    message = str(caught.value)
    if "WebGPU" not in message:
        pytest.skip(f"this browser has WebGPU: {message}")
    assert "\n" not in message


def test_conversion_writes_the_record_and_reuses_a_current_model(tmp_path: Path):
    if onnx_convert.converter_missing():
        pytest.skip(onnx_convert.converter_missing())
    from tests.test_tfjs_backend import _save_tiny_detector

    model = _save_tiny_detector(tmp_path / "tiny")
    first = convert_to_onnx(model)
    assert not first.reused and first.path == model / "onnx" / "model.onnx" and first.bytes > 1000
    record = json.loads((model / "onnx" / CONVERSION_FILE).read_text())
    assert record["source_sha256"] == fingerprint(model) and record["tf2onnx"] == "1.17.0"
    assert convert_to_onnx(model).reused
    (model / "onnx" / CONVERSION_FILE).write_text(json.dumps({**record, "source_sha256": "older"}))
    assert not is_current(model)
