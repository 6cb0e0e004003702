"""The photo <-> model-input mapping that the JavaScript side must reproduce exactly."""
from __future__ import annotations

import numpy as np
import pytest

from bench.model.preprocess import FILL, Transform, box_reduce, letterbox, letterbox_transform, prefilter_factor, render, to_uint8


def test_letterbox_puts_the_photo_top_left_and_pads_the_rest_with_the_fill():
    photo = np.full((10, 40, 3), 200, np.uint8)
    image, transform = letterbox(photo, 80, 160)
    assert image.shape == (80, 160, 3) and image.dtype == np.float32
    assert transform.scale == 4.0 and (transform.offset_x, transform.offset_y) == (0.0, 0.0)
    assert np.all(image[:40] == 200)
    assert np.all(image[40:] == FILL)


def test_upscaling_follows_the_documented_half_pixel_bilinear_formula():
    photo = np.array([[0, 100], [200, 255]], np.uint8)[..., None].repeat(3, axis=2)
    image = render(photo, Transform(2.0, 0.0, 0.0, 2, 2, 4, 4))[..., 0]
    # u = (j + 0.5) / 2 -> x = u - 0.5 clamped: -0.25->0, 0.25, 0.75, 1.25->1
    expected_top = [0, 25, 75, 100]
    expected_bottom = [200, 213.75, 241.25, 255]
    assert image[0].tolist() == pytest.approx(expected_top)
    assert image[3].tolist() == pytest.approx(expected_bottom)
    assert image[1, 1] == pytest.approx(0.75 * 25 + 0.25 * 213.75)


def test_downscaling_by_an_integer_factor_is_the_block_average():
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (40, 80, 3), dtype=np.uint8)
    image, transform = letterbox(photo, 20, 40)
    assert transform.scale == 0.5 and prefilter_factor(0.5, 40, 80) == 2
    blocks = photo.reshape(20, 2, 40, 2, 3).astype(np.float64).mean(axis=(1, 3))
    assert np.allclose(image, blocks, atol=1e-4)


def test_box_reduce_drops_incomplete_edge_blocks():
    photo = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
    reduced = box_reduce(photo, 2)
    assert reduced.shape == (2, 3, 3)
    assert reduced[0, 0, 0] == photo[:2, :2, 0].astype(float).mean()


def test_scale_one_reproduces_the_photo_exactly():
    photo = np.random.default_rng(1).integers(0, 256, (30, 50, 3), dtype=np.uint8)
    image = render(photo, Transform(1.0, 0.0, 0.0, 50, 30, 64, 32))
    assert np.array_equal(image[:30, :50], photo.astype(np.float32))
    assert np.all(image[30:] == FILL) and np.all(image[:, 50:] == FILL)


def test_edge_mode_repeats_the_border_instead_of_padding():
    photo = np.full((4, 4, 3), 9, np.uint8)
    image = render(photo, Transform(1.0, 2.0, 2.0, 4, 4, 8, 8), fill=None)
    assert np.all(image == 9)


def test_to_photo_inverts_to_model_and_clips_to_the_photo():
    transform = letterbox_transform(50, 200, 80, 160)
    left, top, width, height = transform.to_model(20, 10, 30, 25)
    box = (top / 80, left / 160, (top + height) / 80, (left + width) / 160)
    assert transform.to_photo(box) == pytest.approx((20, 10, 30, 25))
    assert transform.to_photo((0.0, 0.0, 1.0, 1.0)) == pytest.approx((0, 0, 200, 50))


def test_uint8_models_get_values_rounded_half_up():
    assert to_uint8(np.array([0.49, 0.5, 254.5, 300.0, -2.0], np.float32)).tolist() == [0, 1, 255, 255, 0]
