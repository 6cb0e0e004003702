"""The two-stage graph: where a window samples, what the reader is trained on, how boxes map back."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.errors import UsageError
from bench.model.architecture import ModelConfig
from bench.model.data import Augmentation, synthetic_samples
from bench.model.two_stage import CropConfig

tf = pytest.importorskip("tensorflow")
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn.t accept a copy keyword:DeprecationWarning")

CROP = CropConfig(input_height=64, input_width=128)
READER = ModelConfig(input_height=32, input_width=64, stem=4, stages=((8, 0), (8, 1), (8, 0)), neck=8,
                     max_detections=5)


def _ramp() -> np.ndarray:
    """A 64 x 128 input whose red channel is the column index and green the row index."""
    rows, cols = np.meshgrid(np.arange(64, dtype=np.float32), np.arange(128, dtype=np.float32), indexing="ij")
    return np.stack([cols, rows, np.zeros_like(rows)], axis=-1)[None]


@pytest.mark.parametrize("step", [0.5, 1.0, 1.7, 3.0])
def test_reader_pixel_i_samples_the_input_at_origin_plus_i_and_a_half_steps(step: float):
    from bench.model.two_stage import cut

    origin_y, origin_x = 3.25, 10.5
    window = tf.constant([[origin_y, origin_x, step]], tf.float32)
    pixels = cut(tf.constant(_ramp()), window, CROP, 12, 20).numpy()[0]
    expect_x = origin_x + (np.arange(20) + 0.5) * step - 0.5
    expect_y = origin_y + (np.arange(12) + 0.5) * step - 0.5
    assert np.allclose(pixels[0, :, 0], expect_x, atol=1e-3)
    assert np.allclose(pixels[:, 0, 1], expect_y, atol=1e-3)


def test_outside_the_input_the_window_reads_the_letterbox_fill():
    from bench.model.two_stage import cut

    pixels = cut(tf.constant(_ramp()), tf.constant([[-40.0, -80.0, 1.0]]), CROP, 8, 8).numpy()
    assert np.all(pixels == 128.0)


def test_the_window_holds_the_widened_number_at_the_reader_s_aspect_centred():
    from bench.model.two_stage import crop_window

    window = crop_window(tf.constant([[32.0, 16.0, 64.0, 32.0]]), CROP, 32, 64).numpy()[0]
    origin_y, origin_x, step = window
    assert step == pytest.approx(max(16 * 1.6 / 32, (32 + 2 * 0.6 * 16) / 64))
    assert origin_x + 32 * step == pytest.approx(48.0) and origin_y + 16 * step == pytest.approx(24.0)
    tiny = crop_window(tf.constant([[60.0, 30.0, 61.0, 31.0]]), CROP, 32, 64).numpy()[0]
    assert tiny[2] == pytest.approx(CROP.min_step)


def test_reader_batches_target_every_digit_of_the_number_inside_the_crop():
    from bench.model.two_stage import reader_batch

    samples = synthetic_samples(6, seed=3)
    exact = CropConfig(input_height=64, input_width=128, jitter=0.0, drop_end_probability=0.0, whole_probability=0.0)
    batch = reader_batch(samples, np.arange(6), READER, exact, Augmentation(letterbox_probability=1.0),
                         np.random.default_rng(0))
    assert batch["image"].shape == (6, 32, 64, 3) and batch["heat"].shape[1:3] == READER.grid
    for sample, mask, heat in zip(samples, batch["mask"], batch["heat"]):
        assert mask.sum() == len(sample.labels)
        assert sorted(heat[mask > 0].argmax(axis=-1).tolist()) == sorted(sample.labels.tolist())


def test_a_loose_window_holds_the_whole_number_grown_by_up_to_its_scale():
    from bench.model.two_stage import _training_number_box

    loose = CropConfig(input_height=64, input_width=128, jitter=0.0, drop_end_probability=0.0,
                       whole_probability=0.0, loose_probability=1.0, loose_scale=2.5)
    digits = np.array([[40, 20, 8, 12], [50, 21, 8, 12]], np.float32)  # number box x 40-58, y 20-33
    rng = np.random.default_rng(0)
    grown = np.array([_training_number_box(digits, loose, rng) for _ in range(300)])
    assert (grown[:, :2] <= [40, 20]).all() and (grown[:, 2:] >= [58, 33]).all()
    factor = (grown[:, 3] - grown[:, 1]) / 13
    assert factor.max() <= 2.5 + 1e-4 and factor.min() >= 1 - 1e-4 and np.median(factor) > 1.3
    assert ((grown[:, 2] - grown[:, 0]) - 18 <= 2 * (factor - 1) * 13 + 1e-3).all()
    tight = np.array([_training_number_box(digits, CropConfig(jitter=0.0, drop_end_probability=0.0,
                                                              whole_probability=0.0), rng) for _ in range(5)])
    assert np.allclose(tight, [40, 20, 58, 33])


def _fixed_locator(tmp_path: Path, boxes=((0.25, 0.25, 0.5, 0.5), (0.9, 0.9, 1.0, 1.0)), scores=(0.9, 0.05)):
    """A SavedModel that always finds ``boxes`` (normalised, with ``scores``, best first) in its input;
    by default one digit at (0.25, 0.25)-(0.5, 0.5) and a weak detection beside it."""

    class Fixed(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 32, 64, 3], tf.float32, name="input_tensor")])
        def serve(self, input_tensor):
            batch = tf.shape(input_tensor)[0]
            return {"detection_boxes": tf.tile(tf.constant([boxes], tf.float32), [batch, 1, 1]),
                    "detection_scores": tf.tile(tf.constant([scores], tf.float32), [batch, 1]),
                    "detection_classes": tf.zeros([batch, len(scores)]),
                    "num_detections": tf.fill([batch], float(len(scores)))}

    module = Fixed()
    tf.saved_model.save(module, str(tmp_path / "locator"), signatures={"serving_default": module.serve})
    return tf.saved_model.load(str(tmp_path / "locator"))


def _fixed_reader():
    """A reader that finds a 7 at cell (3, 5), 2 x 3 cells, whatever it is shown."""
    gh, gw = READER.grid

    def reader(pixels, training=False):
        batch = tf.shape(pixels)[0]
        heat = np.full((1, gh, gw, 10), -9.0, np.float32)
        heat[0, 3, 5, 7] = 9.0
        reg = np.zeros((1, gh, gw, 4), np.float32)
        reg[0, 3, 5] = (2.0, 3.0, 0.5, 0.5)
        return tf.tile(tf.constant(heat), [batch, 1, 1, 1]), tf.tile(tf.constant(reg), [batch, 1, 1, 1])

    return reader


# number box in input pixels: x 32-64, y 16-32; step 0.8, origin (11.2, 22.4); reader box
# x 18-26, y 8-20 (stride 4: centre cell 5.5 x 3.5, size 2 x 3 cells)
ONE_DIGIT_BOX = [(11.2 + 0.8 * 8) / 64, (22.4 + 0.8 * 18) / 128, (11.2 + 0.8 * 20) / 64, (22.4 + 0.8 * 26) / 128]


def test_the_reader_s_box_comes_back_in_the_input_s_coordinates(tmp_path: Path):
    from bench.model.two_stage import serving_module

    module = serving_module(_fixed_locator(tmp_path), _fixed_reader(), READER, CROP)
    out = module.serve(tf.zeros([3, 64, 128, 3]))
    assert out["detection_boxes"].shape == (3, READER.max_detections, 4)
    assert int(out["detection_classes"][2, 0]) == 7
    assert np.allclose(out["detection_boxes"][:, 0].numpy(), [ONE_DIGIT_BOX] * 3, atol=1e-4)


def test_with_a_row_reach_only_the_best_detection_s_row_makes_the_number_box(tmp_path: Path):
    from dataclasses import replace

    from bench.model.two_stage import in_best_row, serving_module

    # best; a neighbour in its row; a strong mark below it; one in the row 5 heights away; one tiny
    boxes = ((0.25, 0.25, 0.5, 0.5), (0.27, 0.38, 0.52, 0.5), (0.75, 0.3, 1.0, 0.42), (0.25, 0.9, 0.5, 1.0),
             (0.35, 0.2, 0.4, 0.22))
    reach = replace(CROP, row_reach=4.0)
    assert in_best_row(tf.constant([boxes]), reach).numpy().tolist() == [[1.0, 1.0, 0.0, 0.0, 0.0]]

    locator = _fixed_locator(tmp_path, boxes[::2], (0.9, 0.8, 0.4))
    photo = tf.zeros([1, 64, 128, 3])
    in_row_module, every_module = (serving_module(locator, _fixed_reader(), READER, c) for c in (reach, CROP))
    in_row = in_row_module.serve(photo)["detection_boxes"][0, 0]
    every = every_module.serve(photo)["detection_boxes"][0, 0]
    assert np.allclose(in_row.numpy(), ONE_DIGIT_BOX, atol=1e-4)
    assert not np.allclose(every.numpy(), ONE_DIGIT_BOX, atol=1e-2)


def _ops(model: Path) -> set[str]:
    """Every op type of a SavedModel's functions but its checkpoint save and restore."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel.FromString((model / "saved_model.pb").read_bytes())
    functions = saved.meta_graphs[0].graph_def.library.function
    return {n.op for f in functions if "_traced_" not in f.signature.name for n in f.node_def}


def test_a_trained_reader_exports_as_one_savedmodel_the_tf_backend_runs(tiny_dataset: Path, tmp_path: Path):
    from backends.tf import TFBackend, TFOptions
    from bench.dataset import load_jsonl_folder
    from bench.model.architecture import build_network
    from bench.model.export import METADATA, export_network
    from bench.model.train import TrainConfig, train
    from bench.model.two_stage import export_two_stage
    from bench.saved_model import DEFAULT_MODEL

    locator_config = ModelConfig(input_height=32, input_width=64, stem=4, stages=((8, 0), (8, 1), (8, 0)), neck=8)
    export_network(build_network(locator_config), locator_config, tmp_path / "locator", threshold=0.0)
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "train_config.json").write_text(json.dumps({"model": READER.to_dict(), "crop": None}))
    run = tmp_path / "reader"
    train(TrainConfig(data=str(tiny_dataset), out=str(run), epochs=1, steps_per_epoch=1, batch_size=4, holdout=0.34,
                      synthetic=2, synthetic_share=0.25, warmup_epochs=1, model=READER, crop=CROP), log=lambda _: None)
    assert (run / "final.weights.h5").is_file() and json.loads((run / "train_config.json").read_text())["crop"]
    with pytest.raises(UsageError, match="needs a locator of half that size"):
        export_two_stage(DEFAULT_MODEL, run, tmp_path / "refused")
    with pytest.raises(UsageError, match="not a reader run"):
        export_two_stage(tmp_path / "locator", tmp_path / "plain", tmp_path / "refused")
    assert not (tmp_path / "refused").exists()
    model = export_two_stage(tmp_path / "locator", run, tmp_path / "two_stage")
    metadata = json.loads((model / METADATA).read_text())
    assert (metadata["input"]["height"], metadata["input"]["width"]) == (64, 128)
    assert metadata["two_stage"]["reader"]["model"]["input_height"] == 32 and "sweep" in metadata["held_out_train"]
    assert not _ops(model) & {"Select", "SelectV2"}, "a select costs TF.js's wasm backend a slow Tile"

    backend = TFBackend(TFOptions(model=str(model), threshold=0.0))
    backend.open()
    photos = [p.load() for p in load_jsonl_folder(tiny_dataset).photos]
    results = backend.recognize(photos)
    backend.close()
    assert all(r.error is None for r in results)
    for result, photo in zip(results, photos):
        height, width = photo.rgb.shape[:2]
        assert result.digits
        for d in result.digits:
            assert 0 <= d.left <= d.left + d.width <= width + 1e-3
            assert 0 <= d.top <= d.top + d.height <= height + 1e-3


def test_the_committed_two_stage_model_reads_rendered_house_numbers_of_any_size():
    """models/digit_reader_two_stage in the tf backend: the synthetic numbers as rendered, and shrunk
    into a wide photo (half the size, in a photo twice as large: the small number in wide context the
    graph is for)."""
    from PIL import Image

    from backends.tf import TFBackend, TFOptions
    from bench.photos import LoadedPhoto, Photo, decode_rgb
    from bench.synthetic import render_photo

    model = Path(__file__).resolve().parents[1] / "models" / "digit_reader_two_stage"
    backend = TFBackend(TFOptions(model=str(model)))
    backend.open()
    assert backend.describe()["input"]["height"] == 192
    labels, photos = [], []
    for index in range(8):
        rendered = render_photo(11, index)
        rgb = decode_rgb(rendered.png, "synthetic")
        small = Image.fromarray(rgb).resize((rgb.shape[1] // 2, rgb.shape[0] // 2), Image.BILINEAR)
        wide = Image.new("RGB", (rgb.shape[1] * 2, rgb.shape[0] * 2), tuple(int(v) for v in rgb[0, 0]))
        wide.paste(small, (rgb.shape[1] // 2, rgb.shape[0]))
        for pixels in (rgb, np.asarray(wide)):
            labels.append(rendered.label)
            photos.append(LoadedPhoto(Photo(f"{index}.png", rendered.label, [], bytes), pixels, rendered.png))
    results = backend.recognize(photos)
    backend.close()
    as_rendered = sum(r.text == label for label, r in zip(labels[0::2], results[0::2]))
    in_context = sum(r.text == label for label, r in zip(labels[1::2], results[1::2]))
    assert as_rendered >= 6 and in_context >= 5, [(label, r.text) for label, r in zip(labels, results)]
