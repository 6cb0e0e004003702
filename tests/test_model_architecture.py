"""The detector's targets, in-graph decoding and batch-norm folding."""
from __future__ import annotations

import numpy as np
import pytest

from bench.model.architecture import ModelConfig
from bench.model.data import encode_targets

pytest.importorskip("tensorflow")

TINY = ModelConfig(input_height=32, input_width=64, stem=4, stages=((8, 0), (8, 1), (8, 0)), neck=8,
                   max_detections=5)


SMALL = ModelConfig(input_height=80, input_width=160, stages=((32, 1), (64, 2), (128, 3)))


def test_targets_peak_at_the_centre_cell_with_size_and_offset_in_cells():
    config = SMALL
    boxes = np.array([[10.0, 6.0, 8.0, 20.0]], np.float32)
    heat, reg, mask = encode_targets(boxes, np.array([7]), config)
    assert heat.shape == (20, 40, 10) and heat[4, 3, 7] == 1.0 and heat[..., :7].max() == 0
    assert mask.sum() == 1 and mask[4, 3] == 1
    assert reg[4, 3].tolist() == pytest.approx([2.0, 5.0, 0.5, 0.0])


def test_targets_drop_digits_whose_centre_is_outside_the_input():
    heat, _, mask = encode_targets(np.array([[-30.0, 5, 10, 10]], np.float32), np.array([1]), SMALL)
    assert mask.sum() == 0 and heat.max() == 0


def test_decode_turns_one_peak_into_one_normalised_box():
    import tensorflow as tf

    from bench.model.architecture import decode

    gh, gw = TINY.grid
    heat = (-10.0 + np.random.default_rng(0).uniform(0, 0.1, (1, gh, gw, 10))).astype(np.float32)
    heat[0, 3, 5, 7] = 5.0
    reg = np.zeros((1, gh, gw, 4), np.float32)
    reg[0, 3, 5] = (2.0, 4.0, 0.5, 0.25)
    boxes, scores, classes, num = (t.numpy() for t in decode(tf.constant(heat), tf.constant(reg), TINY))
    assert classes[0, 0] == 7 and scores[0, 0] == pytest.approx(1 / (1 + np.exp(-5)))
    cx, cy = 5.5, 3.25
    assert boxes[0, 0].tolist() == pytest.approx([(cy - 2) / gh, (cx - 1) / gw, (cy + 2) / gh, (cx + 1) / gw])
    assert scores[0, 1] < 1e-3 and num[0] == TINY.max_detections


def test_folding_batch_norm_keeps_the_outputs():
    from bench.model.architecture import build_network, fold_batch_norm

    trained = build_network(TINY)
    rng = np.random.default_rng(0)
    for layer in trained.layers:
        if layer.name.endswith("_bn"):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([gamma * rng.uniform(0.5, 2, gamma.shape), beta + rng.normal(0, 0.1, beta.shape),
                               mean + rng.normal(0, 0.1, mean.shape), var * rng.uniform(0.5, 2, var.shape)])
    folded = build_network(TINY, folded=True)
    fold_batch_norm(trained, folded)
    image = rng.uniform(0, 255, (2, 32, 64, 3)).astype(np.float32)
    for a, b in zip(trained(image, training=False), folded(image, training=False)):
        assert np.allclose(np.asarray(a), np.asarray(b), atol=1e-4)
    assert not any(layer.name.endswith("_bn") for layer in folded.layers)


def test_input_sizes_must_fit_the_strides():
    with pytest.raises(ValueError, match="multiple of 32"):
        ModelConfig(input_height=70, input_width=160)
