"""Read in two stages inside one graph: find the number at low resolution, read it at a normalised height.

Test photos show house numbers smaller and in wider context than train photos (median digit height
0.19 of the longer side against 0.30), and a single detector at 96 x 192 loses the small ones. The
two-stage graph takes a letterboxed input twice that size (:attr:`CropConfig.input_height` x
:attr:`CropConfig.input_width`) and

1. halves it (2 x 2 average pooling) for the **locator**, a digit detector (the shipped one), whose
   detections at or above :attr:`CropConfig.locator_threshold` (and always the best one) are
   joined into the number's box;
2. widens that box by the margins, fits it to the reader's aspect ratio and cuts it out with
   ``CropAndResize`` (from the half-resolution image when it would shrink the region more than
   two times, so that bilinear sampling does not alias);
3. runs the **reader**, a digit detector trained on such crops (:func:`reader_batch`), and maps its
   boxes back to the input.

:func:`crop_window` and :func:`cut` are the one implementation of steps 2-3's geometry: training
calls them on jittered true number boxes, the exported graph on the locator's. A window is the
affine map ``input = origin + reader * step`` (in pixels, per axis).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from bench.errors import UsageError
from bench.model.architecture import ModelConfig
from bench.model.data import Augmentation, Sample, drawn, encode_targets, photometric, place
from bench.model.export import (SIGNATURE_INPUT, check_export_target, load_tensorflow, read_train_config, record_threshold,
                                save_serving, training_summary, weights_file)
from bench.model.preprocess import FILL
from bench.saved_model import METADATA

@dataclass(frozen=True)
class CropConfig:
    """How the reader's input is cut around the number (graph and training), and the training jitter."""

    input_height: int = 192
    """Height of the two-stage graph's input; the locator sees it halved."""
    input_width: int = 384
    margin_x: float = 0.6
    """Added on the left and on the right, times the number's height (room for a digit the locator missed)."""
    margin_y: float = 0.3
    """Added above and below, times the number's height."""
    min_step: float = 0.25
    """Input pixels per reader pixel, at least: at most 4 x up-sampling of a tiny number."""
    locator_threshold: float = 0.35
    """Locator detections at or above this score make the number box (chosen on held-out train photos)."""
    row_reach: float = 0.0
    """When above 0, only detections in the best one's row join the number box: centre within half its
    height vertically and this many of its heights horizontally, height within half to twice its own."""
    jitter: float = 0.12
    """Training: each edge of the true number box moves by a normal draw of this times its height."""
    drop_end_probability: float = 0.2
    """Training: the number box leaves out its first or last digit (a digit the locator missed)."""
    whole_probability: float = 0.05
    """Training: the window is the whole input (the locator found nothing near the number)."""
    loose_probability: float = 0.0
    """Training: the number box grows, as when the locator's boxes are too tall or a mark beside the
    number joins them: its height by a factor log-uniform in 1 to :attr:`loose_scale`, its width by
    up to twice as many of its heights, the number anywhere inside."""
    loose_scale: float = 2.5

    def to_dict(self) -> dict:
        return asdict(self)


def crop_window(number_boxes, crop: CropConfig, reader_height: int, reader_width: int):
    """Windows for number boxes ``[B, 4]`` (x0, y0, x1, y1 in input pixels): ``[B, 3]`` origin y,
    origin x, step (input pixels per reader pixel), the widened box fitted to the reader's aspect
    ratio, centred on the number."""
    import tensorflow as tf

    x0, y0, x1, y1 = tf.unstack(tf.cast(number_boxes, tf.float32), axis=1)
    height = tf.maximum(y1 - y0, 1.0)
    span_x = (x1 - x0) + 2 * crop.margin_x * height
    span_y = height * (1 + 2 * crop.margin_y)
    largest = max(crop.input_height / reader_height, crop.input_width / reader_width)
    step = tf.clip_by_value(tf.maximum(span_y / reader_height, span_x / reader_width), crop.min_step, largest)
    origin_y = (y0 + y1) / 2 - step * reader_height / 2
    origin_x = (x0 + x1) / 2 - step * reader_width / 2
    return tf.stack([origin_y, origin_x, step], axis=1)


def halve(image):
    """The 2 x 2 average of ``image`` ``[B, H, W, 3]``: the locator's input, and :func:`cut`'s source for
    large windows."""
    import tensorflow as tf

    return tf.nn.avg_pool2d(image, 2, 2, "VALID")


def cut(image, window, crop: CropConfig, reader_height: int, reader_width: int, half=None):
    """The reader's input ``[B, h, w, 3]`` for each window of the input ``image`` ``[B, H, W, 3]``.

    Reader pixel ``i`` samples the input at ``origin + (i + 0.5) * step`` (pixel centres at +0.5),
    bilinearly, the letterbox fill outside; from the 2 x 2-averaged image (``half``, or
    :func:`halve` of ``image``) where ``step > 2``. The choice is a 0/1 blend rather than a select:
    TF.js's wasm backend broadcasts a select's condition with a slow ``Tile``.
    """
    import tensorflow as tf

    half = halve(image) if half is None else half
    origin_y, origin_x, step = tf.unstack(window, axis=1)

    def boxes(factor: float, height: int, width: int):
        oy, ox, st = origin_y / factor, origin_x / factor, step / factor
        # CropAndResize samples y = y1 * (H - 1) + i * (y2 - y1) * (H - 1) / (h - 1) in index units
        # (pixel centres at integers); solve for y1, y2 so that index y = oy + (i + 0.5) * st - 0.5.
        ny0 = (oy + 0.5 * st - 0.5) / (height - 1)
        ny1 = ny0 + st * (reader_height - 1) / (height - 1)
        nx0 = (ox + 0.5 * st - 0.5) / (width - 1)
        nx1 = nx0 + st * (reader_width - 1) / (width - 1)
        return tf.stack([ny0, nx0, ny1, nx1], axis=1)

    index = tf.range(tf.shape(image)[0])
    size = (reader_height, reader_width)
    full = tf.image.crop_and_resize(image, boxes(1.0, crop.input_height, crop.input_width), index, size,
                                    extrapolation_value=FILL)
    halved = tf.image.crop_and_resize(half, boxes(2.0, crop.input_height // 2, crop.input_width // 2), index,
                                      size, extrapolation_value=FILL)
    from_half = tf.reshape(tf.cast(step > 2.0, tf.float32), [-1, 1, 1, 1])
    return halved * from_half + full * (1.0 - from_half)


def _number_box(boxes: np.ndarray) -> np.ndarray:
    """(x0, y0, x1, y1) around ``(left, top, width, height)`` rows."""
    return np.array([boxes[:, 0].min(), boxes[:, 1].min(), (boxes[:, 0] + boxes[:, 2]).max(),
                     (boxes[:, 1] + boxes[:, 3]).max()], np.float32)


def _training_number_box(boxes: np.ndarray, crop: CropConfig, rng: np.random.Generator) -> np.ndarray:
    """The true number box as an imperfect locator would give it: edges moved, an end digit left out,
    or the whole input."""
    if not len(boxes) or rng.random() < crop.whole_probability:
        return np.array([0, 0, crop.input_width, crop.input_height], np.float32)
    order = np.argsort(boxes[:, 0], kind="stable")
    kept = boxes[order]
    if len(kept) > 1 and rng.random() < crop.drop_end_probability:
        kept = kept[1:] if rng.random() < 0.5 else kept[:-1]
    box = _number_box(kept)
    height = max(box[3] - box[1], 1.0)
    box = box + rng.normal(0, crop.jitter * height, 4).astype(np.float32)
    if rng.random() < crop.loose_probability:
        grown = (np.exp(rng.uniform(0, np.log(crop.loose_scale))) - 1) * height
        extra_x, extra_y = grown * rng.uniform(0, 2), grown
        left, top = rng.random(2)
        box += np.array([-left * extra_x, -top * extra_y, (1 - left) * extra_x, (1 - top) * extra_y], np.float32)
    return box


def reader_batch(samples: list[Sample], indices: np.ndarray, reader: ModelConfig, crop: CropConfig,
                 aug: Augmentation, rng: np.random.Generator,
                 donors: list[Sample] | None = None) -> dict[str, np.ndarray]:
    """One batch for the reader, made the way the graph makes its input: the photo (given a new number
    at ``aug.swap_probability`` when it is among ``donors``, :func:`~bench.model.data.drawn`) rendered
    into the two-stage input at a random zoom and place (:func:`~bench.model.data.place`), a window
    around its jittered number box, :func:`cut`; then colour changes, and heatmap targets for the
    digits whose centres fall inside."""
    tf = load_tensorflow()
    whole = ModelConfig(input_height=crop.input_height, input_width=crop.input_width, stages=reader.stages)
    images, number_boxes, truths = [], [], []
    for sample in drawn(samples, indices, aug, rng, donors):
        image, boxes = place(sample, whole, aug, rng)
        images.append(image)
        number_boxes.append(_training_number_box(boxes, crop, rng))
        truths.append((boxes, sample.labels))
    windows = crop_window(tf.constant(np.stack(number_boxes)), crop, reader.input_height, reader.input_width)
    crops = cut(tf.constant(np.stack(images)), windows, crop, reader.input_height, reader.input_width).numpy()
    out = {"image": [], "heat": [], "reg": [], "mask": []}
    for image, window, (boxes, labels) in zip(crops, windows.numpy(), truths):
        origin_y, origin_x, step = (float(v) for v in window)
        inside = (boxes - np.array([origin_x, origin_y, 0, 0], np.float32)) / step
        heat, reg, mask = encode_targets(inside, labels, reader)
        out["image"].append(photometric(image, aug, rng))
        out["heat"].append(heat)
        out["reg"].append(reg)
        out["mask"].append(mask)
    return {k: np.stack(v) for k, v in out.items()}


def in_best_row(boxes, crop: CropConfig):
    """1.0 for the locator's boxes ``[B, N, 4]`` (normalised, best first) in the best box's row, else 0.0."""
    import tensorflow as tf

    height = (boxes[..., 2] - boxes[..., 0]) * crop.input_height
    centre_y = (boxes[..., 0] + boxes[..., 2]) * (crop.input_height / 2)
    centre_x = (boxes[..., 1] + boxes[..., 3]) * (crop.input_width / 2)
    best_height, best_y, best_x = height[:, :1], centre_y[:, :1], centre_x[:, :1]
    tests = (tf.abs(centre_y - best_y) <= 0.5 * best_height, height >= 0.5 * best_height,
             height <= 2.0 * best_height, tf.abs(centre_x - best_x) <= crop.row_reach * best_height)
    inside = tf.ones_like(height)
    for test in tests:
        inside *= tf.cast(test, tf.float32)
    return inside


def number_box(boxes, scores, crop: CropConfig):
    """The number's box ``[B, 4]`` (x0, y0, x1, y1 in input pixels) around the locator's detections
    ``boxes`` ``[B, N, 4]`` (normalised) scoring at least the threshold, or the best one (``scores`` are
    sorted), in the best one's row when :attr:`CropConfig.row_reach` is set. Left-out boxes are pushed
    away arithmetically rather than selected out: TF.js's wasm backend makes a select slow."""
    import tensorflow as tf

    kept = tf.cast(scores >= tf.minimum(scores[:, :1], crop.locator_threshold), tf.float32)
    if crop.row_reach > 0:
        kept *= in_best_row(boxes, crop)
    left_out = 1e4 * (1.0 - kept)
    ymin = tf.reduce_min(boxes[..., 0] + left_out, axis=1) * crop.input_height
    xmin = tf.reduce_min(boxes[..., 1] + left_out, axis=1) * crop.input_width
    ymax = tf.reduce_max(boxes[..., 2] - left_out, axis=1) * crop.input_height
    xmax = tf.reduce_max(boxes[..., 3] - left_out, axis=1) * crop.input_width
    return tf.stack([xmin, ymin, xmax, ymax], axis=1)


def serving_module(locator, reader_net, reader: ModelConfig, crop: CropConfig):
    """A ``tf.Module`` whose ``serve`` has the OD API signature over the two-stage input."""
    tf = load_tensorflow()
    from bench.model.architecture import decode

    class TwoStage(tf.Module):
        def __init__(self):
            super().__init__(name="digit_reader_two_stage")
            self.locator = locator
            self.reader = reader_net

        @tf.function(input_signature=[tf.TensorSpec([None, crop.input_height, crop.input_width, 3], tf.float32,
                                                    name=SIGNATURE_INPUT)])
        def serve(self, input_tensor):
            half = halve(input_tensor)
            found = self.locator.signatures["serving_default"](input_tensor=half)
            number = number_box(found["detection_boxes"], found["detection_scores"], crop)
            window = crop_window(number, crop, reader.input_height, reader.input_width)
            pixels = cut(input_tensor, window, crop, reader.input_height, reader.input_width, half=half)
            heat, reg = self.reader(pixels, training=False)
            boxes, scores, classes, num = decode(heat, reg, reader)
            origin_y, origin_x, step = (window[:, i, None, None] for i in range(3))
            ys = (origin_y + boxes[..., 0::2] * reader.input_height * step) / crop.input_height
            xs = (origin_x + boxes[..., 1::2] * reader.input_width * step) / crop.input_width
            mapped = tf.clip_by_value(tf.stack([ys[..., 0], xs[..., 0], ys[..., 1], xs[..., 1]], axis=-1), 0.0, 1.0)
            return {"detection_boxes": mapped, "detection_scores": scores,
                    "detection_classes": classes, "num_detections": num}

    return TwoStage()


def _locator_metadata(locator_dir: Path, crop: CropConfig) -> dict:
    """The locator's digitbench metadata, checked: a SavedModel whose input is half the two-stage input."""
    if not (locator_dir / "saved_model.pb").is_file():
        raise UsageError(f"--locator {locator_dir}: no saved_model.pb there; give a SavedModel folder")
    try:
        located = json.loads((locator_dir / METADATA).read_text())
        size = (int(located["input"]["height"]), int(located["input"]["width"]))
    except (OSError, ValueError, KeyError, TypeError):
        raise UsageError(f"--locator {locator_dir}: no readable {METADATA} with the input size; export the "
                         "locator with `bench model export`") from None
    if size != (crop.input_height // 2, crop.input_width // 2):
        raise UsageError(f"--locator {locator_dir}: input {size[0]}x{size[1]}, but the reader run's two-stage "
                         f"input {crop.input_height}x{crop.input_width} needs a locator of half that size")
    return located


def export_two_stage(locator_dir: str | Path, run: str | Path, out: str | Path,
                     weights: str | Path | None = None, locator_threshold: float | None = None,
                     row_reach: float | None = None) -> Path:
    """One SavedModel of the locator SavedModel ``locator_dir`` and the reader trained in ``run``
    (a ``bench model train --reader-crops`` run), its threshold chosen on the run's held-out photos;
    ``locator_threshold`` and ``row_reach`` replace the run's :class:`CropConfig` values (graph-time settings)."""
    tf = load_tensorflow()
    from bench.model.architecture import build_network, count_flops, fold_batch_norm

    out = check_export_target(out)
    train_config = read_train_config(run)
    if not train_config.get("crop"):
        raise UsageError(f"--run {run}: not a reader run (train it with `bench model train --reader-crops`)")
    reader, crop = ModelConfig.from_dict(train_config["model"]), CropConfig(**train_config["crop"])
    if locator_threshold is not None:
        crop = replace(crop, locator_threshold=locator_threshold)
    if row_reach is not None:
        crop = replace(crop, row_reach=row_reach)
    located = _locator_metadata(Path(locator_dir), crop)
    trained = build_network(reader)
    trained.load_weights(str(weights_file(run, weights)))
    folded = build_network(reader, folded=True)
    fold_batch_norm(trained, folded)
    module = serving_module(tf.saved_model.load(str(locator_dir)), folded, reader, crop)
    params = int(folded.count_params()) + int(located.get("params") or 0)
    metadata = {
        "format": "TF Object Detection API serving signature (serving_default)",
        "input": {**located["input"], "height": crop.input_height, "width": crop.input_width},
        "classes": "zero-based: class = digit 0-9",
        "default_threshold": located.get("default_threshold"),
        "two_stage": {"locator": {"source": str(locator_dir), "params": located.get("params"),
                                  "flops": located.get("flops")},
                      "reader": {"params": int(folded.count_params()), "flops": count_flops(folded),
                                 "model": reader.to_dict()},
                      "crop": crop.to_dict()},
        "params": params, "weights_bytes_float32": params * 4,
        "training": training_summary(train_config),
    }
    save_serving(module, out, metadata)
    record_threshold(out, {**train_config, "model": {**train_config["model"], "input_height": crop.input_height,
                                                     "input_width": crop.input_width}})
    return out

