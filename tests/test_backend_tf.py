"""The ``tf`` backend: any OD API-style SavedModel, clear errors, batch throughput, class maps."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backends.tf import DEFAULT_MODEL, TFBackend, TFOptions
from bench.errors import BackendUnavailable
from bench.od_api import ClassMap
from bench.model.architecture import ModelConfig
from bench.photos import LoadedPhoto, Photo

ROOT = Path(__file__).resolve().parent.parent
SMALL = ModelConfig(input_height=48, input_width=64, stem=4, stages=((8, 0), (8, 0), (8, 0)), neck=8,
                    max_detections=6)


def _photo(height: int, width: int, seed: int = 0) -> LoadedPhoto:
    rgb = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return LoadedPhoto(photo=Photo(image=f"p{seed}.png", label="1", truth=[], read_bytes=bytes), rgb=rgb, encoded=b"")


@pytest.fixture(scope="module")
def tf():
    return pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def small_model(tf, tmp_path_factory) -> Path:
    """An untrained detector exported with our signature at a different input size (48x64)."""
    from bench.model.architecture import build_network
    from bench.model.export import export_network

    out = tmp_path_factory.mktemp("small") / "model"
    export_network(build_network(SMALL), SMALL, out, threshold=0.0)
    return out


@pytest.fixture(scope="module")
def od_api_style_model(tf, tmp_path_factory) -> Path:
    """A uint8, any-size, 1-based-class model like TF OD API exports: one fixed detection."""

    class Fixed(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.uint8, name="input_tensor")])
        def serve(self, input_tensor):
            return {"detection_boxes": tf.constant([[[0.25, 0.5, 0.75, 1.0], [0.0, 0.0, 0.1, 0.1]]]),
                    "detection_scores": tf.constant([[0.9, 0.05]]) + 0 * tf.reduce_mean(tf.cast(input_tensor, tf.float32)),
                    "detection_classes": tf.constant([[3.0, 1.0]]),
                    "num_detections": tf.constant([2.0])}

    out = tmp_path_factory.mktemp("odapi") / "model"
    module = Fixed()
    tf.saved_model.save(module, str(out), signatures={"serving_default": module.serve})
    return out


def test_importing_the_backend_does_not_import_tensorflow():
    code = "import sys, backends.tf; print('tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize(("value", "classes", "digit"), [
    (0.0, "zero-based", 0), (9.0, "zero-based", 9), (1.0, "one-based", 0), (10.0, "one-based", 9),
    (10.0, "svhn", 0), (4.0, "svhn", 4), (11.0, "zero-based", None), (0.0, "one-based", None)])
def test_classes_map_to_digits(value, classes, digit):
    assert ClassMap(classes, "test").digit(value) == digit


def test_a_missing_model_folder_is_one_clear_line(tmp_path: Path):
    reason = TFBackend.unavailable_reason(TFOptions(model=str(tmp_path / "nope")))
    assert reason and "no such folder" in reason and "\n" not in reason
    reason = TFBackend.unavailable_reason(TFOptions(model=str(tmp_path)))
    assert reason and "saved_model.pb" in reason
    with pytest.raises(BackendUnavailable, match="no such folder"):
        TFBackend(TFOptions(model=str(tmp_path / "nope"))).open()


def test_a_corrupt_savedmodel_is_one_clear_line(tf, tmp_path: Path):
    (tmp_path / "saved_model.pb").write_bytes(b"not a protobuf")
    with pytest.raises(BackendUnavailable, match="not a loadable SavedModel") as caught:
        TFBackend(TFOptions(model=str(tmp_path))).open()
    assert "\n" not in str(caught.value)


def test_a_savedmodel_without_the_od_api_outputs_is_refused(tf, tmp_path: Path):
    class Classifier(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, 8, 8, 3], tf.float32)])
        def serve(self, x):
            return {"logits": tf.reduce_mean(x, axis=[1, 2])}

    module = Classifier()
    tf.saved_model.save(module, str(tmp_path / "m"), signatures={"serving_default": module.serve})
    backend = TFBackend(TFOptions(model=str(tmp_path / "m")))
    with pytest.raises(BackendUnavailable, match="lacks detection_boxes.*Object Detection API"):
        backend.open()
    with pytest.raises(BackendUnavailable, match="no signature 'other'"):
        TFBackend(TFOptions(model=str(tmp_path / "m"), signature="other")).open()


def test_a_model_with_another_input_size_runs(small_model: Path):
    backend = TFBackend(TFOptions(model=str(small_model), threshold=0.0))
    cold = backend.open()
    assert cold.init_ms > 0 and "import_ms" in cold.details
    results = backend.recognize([_photo(30, 90, 1), _photo(120, 50, 2)])
    assert len(results) == 2 and all(r.error is None and r.latency_ms > 0 for r in results)
    for result, (height, width) in zip(results, [(30, 90), (120, 50)]):
        assert result.digits
        for d in result.digits:
            assert 0 <= d.left <= d.left + d.width <= width + 1e-6
            assert 0 <= d.top <= d.top + d.height <= height + 1e-6
    facts = backend.describe()
    assert facts["input"] == {"name": "input_tensor", "dtype": "float32", "height": 48, "width": 64}
    assert len(facts["model_sha256"]) == 64
    backend.close()


def test_the_default_threshold_is_the_model_s_own_else_the_fallback(small_model: Path, od_api_style_model: Path):
    from bench.od_api import FALLBACK_THRESHOLD

    ours = TFBackend(TFOptions(model=str(small_model)))
    ours.open()
    assert ours.threshold == 0.0 and ours.describe()["threshold"] == 0.0
    theirs = TFBackend(TFOptions(model=str(od_api_style_model)))
    theirs.open()
    assert theirs.threshold == FALLBACK_THRESHOLD
    assert any("no default_threshold" in note and "--tf-threshold" in note for note in theirs.describe()["notes"])
    assert not any("default_threshold" in note for note in ours.describe()["notes"])
    explicit = TFBackend(TFOptions(model=str(small_model), threshold=0.7))
    explicit.open()
    assert explicit.threshold == 0.7


def test_batch_size_reports_throughput_separately(small_model: Path):
    backend = TFBackend(TFOptions(model=str(small_model), batch_size=3))
    assert backend.batch_size == 3
    backend.open()
    results = backend.recognize([_photo(40, 80, i) for i in range(3)])
    batch = results[0].details["batch"]
    assert batch["size"] == 3 and batch["photos_per_s"] > 0
    assert all(r.latency_ms is not None for r in results)
    assert backend.describe()["batch_photos_per_s"] > 0


def test_an_od_api_style_uint8_any_size_model_with_one_based_classes(od_api_style_model: Path):
    backend = TFBackend(TFOptions(model=str(od_api_style_model), classes="one-based", threshold=0.5))
    backend.open()
    [result] = backend.recognize([_photo(40, 100)])
    assert result.text == "2"
    [digit] = result.digits
    assert (digit.left, digit.top, digit.width, digit.height) == pytest.approx((50, 10, 50, 20))
    assert backend.describe()["input"]["dtype"] == "uint8"


@pytest.mark.skipif(not (DEFAULT_MODEL / "saved_model.pb").is_file(), reason="models/digit_reader_two_stage not exported yet")
def test_the_shipped_model_reads_a_rendered_house_number(tf):
    from bench.photos import decode_rgb
    from bench.synthetic import render_photo

    backend = TFBackend()
    backend.open()
    photos = []
    for index in range(8):
        rendered = render_photo(11, index)
        photos.append((rendered.label, LoadedPhoto(Photo(f"{index}.png", rendered.label, list(rendered.truth), bytes),
                                                   decode_rgb(rendered.png, "synthetic"), rendered.png)))
    results = backend.recognize([p for _, p in photos])
    correct = sum(r.text == label for (label, _), r in zip(photos, results))
    assert correct >= 5, [(label, r.text) for (label, _), r in zip(photos, results)]


def _od_api_photos():
    from tests.od_api_fixture import photo

    return [LoadedPhoto(Photo(f"{seed}.png", "", [], bytes), photo(seed, 40 + 10 * seed, 70), b"") for seed in range(3)]


def test_an_od_api_export_runs_unchanged_and_its_label_map_decides(od_api_export: Path):
    from tests.od_api_fixture import CLASSES

    tf = pytest.importorskip("tensorflow")
    backend = TFBackend(TFOptions(model=str(od_api_export / "saved_model"), threshold=0.0))
    backend.open()
    photos = _od_api_photos()
    results = backend.recognize(photos)
    facts = backend.describe()
    backend.close()
    assert facts["classes"].startswith("label map (") and facts["input"]["dtype"] == "uint8"
    assert facts["input"]["height"] is None and not any("not digits" in n for n in facts["notes"])
    serve = tf.saved_model.load(str(od_api_export / "saved_model")).signatures["serving_default"]
    for photo, result in zip(photos, results):
        raw = {k: v.numpy()[0] for k, v in serve(input_tensor=tf.constant(photo.rgb[None])).items()}
        expected = sorted(((int(c) % CLASSES, float(s)) for c, s in zip(raw["detection_classes"], raw["detection_scores"])),
                          key=lambda pair: -pair[1])
        assert [(d.label, round(d.score, 5)) for d in result.candidates] == [(c, round(s, 5)) for c, s in expected]
        box = raw["detection_boxes"][0]
        first = next(d for d in result.candidates if d.score == pytest.approx(float(raw["detection_scores"][0])))
        assert (first.left, first.top) == pytest.approx((box[1] * photo.width, box[0] * photo.height), abs=1e-3)
        assert result.digits == result.candidates and result.end_to_end_ms >= result.latency_ms > 0


def test_zero_based_on_a_one_based_model_is_noted(od_api_export: Path):
    backend = TFBackend(TFOptions(model=str(od_api_export / "saved_model"), classes="zero-based", threshold=0.0))
    backend.open()
    backend.recognize(_od_api_photos())
    notes = " ".join(backend.describe()["notes"])
    backend.close()
    assert "classes 10 (" in notes and "not digits under zero-based (--tf-classes)" in notes


def test_the_two_output_export_scores_by_its_best_non_background_column(od_api_two_output: Path):
    tf = pytest.importorskip("tensorflow")
    backend = TFBackend(TFOptions(model=str(od_api_two_output / "saved_model"), threshold=0.0))
    backend.open()
    photos = _od_api_photos()[:1]
    [result] = backend.recognize(photos)
    assert backend.describe()["outputs"] == ["detection_boxes", "detection_multiclass_scores"]
    backend.close()
    serve = tf.saved_model.load(str(od_api_two_output / "saved_model")).signatures["serving_default"]
    multiclass = serve(input_tensor=tf.constant(photos[0].rgb[None]))["detection_multiclass_scores"].numpy()[0]
    best = multiclass[:, 1:].max(axis=1)
    assert sorted(round(d.score, 5) for d in result.candidates) == sorted(round(float(s), 5) for s in best)
    labels = {round(float(row[1:].max()), 5): (int(row[1:].argmax()) + 1) % 10 for row in multiclass}
    assert all(labels[round(d.score, 5)] == d.label for d in result.candidates)
