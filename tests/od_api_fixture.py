"""Small detectors shaped like TF Object Detection API exports, built with TensorFlow in the tests.

Like ``exporter_main_v2.py --input_type image_tensor`` output they take a uint8 ``[1, -1, -1, 3]``
``input_tensor``, resize inside the graph through ``tf.map_fn`` (a while loop over TensorList
ops), cast box areas to bool, hold an Assert, run per-class ``non_max_suppression_with_scores``
(NonMaxSuppressionV5) and return the eight OD API outputs, classes 1-based. Three outputs are
float32 ``[1, N]``, so ``tensorflowjs_converter`` loses their names as it does for a real export.
The two-output form returns only ``detection_boxes`` and ``detection_multiclass_scores``.

Weights are random but fixed, so every run gives the same detections for the same photo.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

SIDE, GRID, CLASSES, DETECTIONS = 32, 8, 10, 20
LABEL_MAP = "".join(f"item {{\n  id: {i}\n  name: '{i % 10}'\n}}\n" for i in range(1, CLASSES + 1))
"""SVHN's label map: ids 1..9 are digits '1'..'9', id 10 is '0'."""


def build(tf, folder: Path, two_output: bool = False) -> Path:
    """Save the fixture detector as a SavedModel in ``folder``; returns it."""
    rng = np.random.default_rng(7)
    kernel = tf.constant(rng.normal(0, 0.3, (4, 4, 3, 1 + CLASSES + 4)).astype(np.float32))
    bias = tf.constant(np.r_[[-2.0], rng.normal(-1.0, 0.5, CLASSES), np.zeros(4)].astype(np.float32))
    cells = (np.stack(np.meshgrid(np.arange(GRID), np.arange(GRID), indexing="ij"), -1).reshape(-1, 2) + 0.5) / GRID
    anchors = tf.constant(cells.astype(np.float32))

    def preprocess(image):
        return tf.image.resize(tf.cast(image, tf.float32) / 127.5 - 1.0, [SIDE, SIDE])

    class Detector(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.uint8, name="input_tensor")])
        def serve(self, input_tensor):
            images = tf.map_fn(preprocess, input_tensor, fn_output_signature=tf.float32)
            head = tf.nn.conv2d(images, kernel, SIDE // GRID, "VALID") + bias
            head = tf.reshape(head, [GRID * GRID, 1 + CLASSES + 4])
            scores = tf.sigmoid(head[:, :1 + CLASSES])
            offsets = tf.tanh(head[:, 1 + CLASSES:]) * 0.5 / GRID
            half = 0.6 / GRID + tf.abs(offsets[:, 2:])
            centre = anchors + offsets[:, :2]
            boxes = tf.clip_by_value(tf.concat([centre - half, centre + half], 1), 0.0, 1.0)
            area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
            valid = tf.cast(area, tf.bool)
            picked_boxes, picked_scores, picked_classes, picked_anchors = [], [], [], []
            for cls in range(1, 1 + CLASSES):
                cls_scores = tf.where(valid, scores[:, cls], -1.0)
                keep, kept = tf.image.non_max_suppression_with_scores(boxes, cls_scores, DETECTIONS, 0.5, 0.0)
                picked_boxes.append(tf.gather(boxes, keep))
                picked_scores.append(kept)
                picked_classes.append(tf.fill(tf.shape(keep), float(cls)))
                picked_anchors.append(tf.cast(keep, tf.float32))
            all_scores = tf.concat(picked_scores, 0)
            top_scores, order = tf.math.top_k(all_scores, k=DETECTIONS)
            count = tf.reduce_sum(tf.cast(top_scores > 0.0, tf.float32))
            with tf.control_dependencies([tf.debugging.assert_non_negative(count)]):
                count = tf.identity(count)
            gathered_anchors = tf.cast(tf.gather(tf.concat(picked_anchors, 0), order), tf.int32)
            outputs = {
                "detection_boxes": tf.gather(tf.concat(picked_boxes, 0), order)[None],
                "detection_multiclass_scores": tf.gather(scores, gathered_anchors)[None],
            }
            if not two_output:
                outputs.update({
                    "detection_scores": top_scores[None],
                    "detection_classes": tf.gather(tf.concat(picked_classes, 0), order)[None],
                    "num_detections": count[None],
                    "detection_anchor_indices": tf.cast(gathered_anchors, tf.float32)[None],
                    "raw_detection_boxes": boxes[None],
                    "raw_detection_scores": scores[None],
                })
            return outputs

    module = Detector()
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.serve})
    return folder


def export(tf, root: Path, two_output: bool = False, quantizations: tuple[str, ...] = ("none",),
           **converter_args) -> Path:
    """An OD API export layout: ``root/saved_model``, ``root/label_map.pbtxt`` and
    ``root/tfjs/<quantization>`` written by the converter itself (names lost as usual), with the
    command line's default of stripping debug ops (the graph holds an Assert, as OD API ones do)."""
    from bench.tfjs_convert import STRIP_DEBUG_OPS, import_converter

    convert_tf_saved_model = import_converter()
    build(tf, root / "saved_model", two_output)
    (root / "label_map.pbtxt").write_text(LABEL_MAP)
    for quantization in quantizations:
        dtype_map = None if quantization == "none" else {quantization: True}
        convert_tf_saved_model(str(root / "saved_model"), str(root / "tfjs" / quantization),
                               quantization_dtype_map=dtype_map, strip_debug_ops=STRIP_DEBUG_OPS, **converter_args)
    return root


def photo(seed: int, height: int = 60, width: int = 90) -> np.ndarray:
    """A dark noisy photo with one bright patch, as uint8 RGB."""
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 60, (height, width, 3), dtype=np.uint8)
    top, left = rng.integers(0, height // 2), rng.integers(0, width // 2)
    rgb[top:top + height // 3, left:left + width // 4] = rng.integers(180, 256, 3, dtype=np.uint8)
    return rgb
