"""Photo -> model input and model box -> photo box: the one mapping Python and JavaScript share.

Pure numpy, no resampling library, so that the browser side can repeat the same arithmetic on
``ImageData`` pixels. Every step is written down here; a port must follow it exactly.

Coordinates
    Pixel ``(row i, column j)`` covers ``[j, j+1) x [i, i+1)``; its centre is ``(j+0.5, i+0.5)``.
    A :class:`Transform` maps photo coordinates to model-input coordinates by
    ``x_model = x_photo * scale + offset_x`` and ``y_model = y_photo * scale + offset_y``.

Letterbox (what inference uses)
    ``scale = min(H / h, W / w)`` for a photo of ``h x w`` pixels and a model input of
    ``H x W``; ``offset_x = offset_y = 0`` (the photo sits in the top-left corner, the rest is
    padding).

Rendering (:func:`render`), for every model pixel ``(i, j)``, computed in float64:

1. ``u = (j + 0.5 - offset_x) / scale`` and ``v = (i + 0.5 - offset_y) / scale``: the pixel
   centre in photo coordinates.
2. If ``u < 0 or u >= w or v < 0 or v >= h`` the pixel is padding: all three channels are
   ``fill`` (:data:`FILL`, 128). (Augmentation may instead clamp, i.e. repeat the edge.)
3. Prefilter: ``k = floor(1 / scale)``; if ``k < 2`` then ``k = 1``; ``k`` is capped at
   ``min(h, w)``. The photo is reduced to ``B`` of ``floor(h / k) x floor(w / k)`` pixels,
   ``B[r, c] = (sum of photo[r*k + a, c*k + b] for a, b in 0..k-1) / (k * k)``; rows and columns
   that do not fill a whole ``k x k`` block are dropped. With ``k = 1``, ``B`` is the photo.
4. Bilinear sampling of ``B`` with half-pixel centres: ``x = u / k - 0.5``,
   ``y = v / k - 0.5``, each clamped to ``[0, width_B - 1]`` / ``[0, height_B - 1]``;
   ``x0 = floor(x)``, ``x1 = min(x0 + 1, width_B - 1)``, ``fx = x - x0`` (same for y); the
   value is ``(1 - fy) * ((1 - fx) * B[y0, x0] + fx * B[y0, x1])
   + fy * ((1 - fx) * B[y1, x0] + fx * B[y1, x1])``.
5. The result is stored as float32 in 0-255, RGB, no rounding. A model whose input is uint8
   gets ``floor(value + 0.5)``.

Inverse (:meth:`Transform.to_photo`): a model box ``(ymin, xmin, ymax, xmax)`` normalised to
the model input becomes ``x = (xmin * W - offset_x) / scale`` (same for the other three),
clipped to ``[0, w]`` / ``[0, h]``, and is returned as ``(left, top, width, height)`` in photo
pixels.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

FILL = 128.0
"""Value of every channel of a padding pixel."""


@dataclass(frozen=True)
class Transform:
    """The affine map between one photo and one model input (see the module docstring)."""

    scale: float
    offset_x: float
    offset_y: float
    photo_width: int
    photo_height: int
    input_width: int
    input_height: int

    def to_photo(self, box: tuple[float, float, float, float] | np.ndarray) -> tuple[float, float, float, float]:
        """A normalised model box ``(ymin, xmin, ymax, xmax)`` as ``(left, top, width, height)``
        in photo pixels, clipped to the photo."""
        ymin, xmin, ymax, xmax = (float(v) for v in box)
        left = _clip((xmin * self.input_width - self.offset_x) / self.scale, self.photo_width)
        right = _clip((xmax * self.input_width - self.offset_x) / self.scale, self.photo_width)
        top = _clip((ymin * self.input_height - self.offset_y) / self.scale, self.photo_height)
        bottom = _clip((ymax * self.input_height - self.offset_y) / self.scale, self.photo_height)
        return left, top, max(0.0, right - left), max(0.0, bottom - top)

    def to_model(self, left: float, top: float, width: float, height: float) -> tuple[float, float, float, float]:
        """A photo box ``(left, top, width, height)`` in model-input pixels, same layout."""
        return (left * self.scale + self.offset_x, top * self.scale + self.offset_y,
                width * self.scale, height * self.scale)


def _clip(value: float, limit: int) -> float:
    return min(max(value, 0.0), float(limit))


def letterbox_transform(photo_height: int, photo_width: int, height: int, width: int) -> Transform:
    """The letterbox transform of a ``photo_height x photo_width`` photo into ``height x width``."""
    scale = min(height / photo_height, width / photo_width)
    return Transform(scale, 0.0, 0.0, photo_width, photo_height, width, height)


def letterbox(rgb: np.ndarray, height: int, width: int, fill: float = FILL) -> tuple[np.ndarray, Transform]:
    """Letterbox an ``h x w x 3`` uint8 photo into a float32 ``height x width x 3`` model input."""
    transform = letterbox_transform(rgb.shape[0], rgb.shape[1], height, width)
    return render(rgb, transform, fill=fill), transform


def prefilter_factor(scale: float, photo_height: int, photo_width: int) -> int:
    """The box-prefilter factor ``k`` of step 3."""
    k = math.floor(1.0 / scale)
    return max(1, min(k, photo_height, photo_width))


def box_reduce(rgb: np.ndarray, k: int) -> np.ndarray:
    """Step 3: average ``k x k`` blocks (float64), dropping incomplete edge blocks."""
    image = rgb.astype(np.float64)
    if k == 1:
        return image
    h, w = rgb.shape[0] // k, rgb.shape[1] // k
    blocks = image[:h * k, :w * k].reshape(h, k, w, k, rgb.shape[2])
    return blocks.sum(axis=(1, 3)) / (k * k)


def render(rgb: np.ndarray, transform: Transform, fill: float | None = FILL) -> np.ndarray:
    """Render the photo into the model input described by ``transform`` (steps 1-5).

    ``fill=None`` repeats the photo's edge instead of padding (used by augmentation only).
    """
    h, w = rgb.shape[:2]
    if h == 0 or w == 0:
        raise ValueError(f"cannot render an empty photo ({w}x{h})")
    k = prefilter_factor(transform.scale, h, w)
    reduced = box_reduce(rgb, k)
    hb, wb = reduced.shape[:2]
    u = (np.arange(transform.input_width, dtype=np.float64) + 0.5 - transform.offset_x) / transform.scale
    v = (np.arange(transform.input_height, dtype=np.float64) + 0.5 - transform.offset_y) / transform.scale
    x = np.clip(u / k - 0.5, 0.0, wb - 1)
    y = np.clip(v / k - 0.5, 0.0, hb - 1)
    x0 = np.floor(x).astype(np.int64)
    y0 = np.floor(y).astype(np.int64)
    x1 = np.minimum(x0 + 1, wb - 1)
    y1 = np.minimum(y0 + 1, hb - 1)
    fx = (x - x0)[None, :, None]
    fy = (y - y0)[:, None, None]
    top = (1 - fx) * reduced[y0[:, None], x0[None, :]] + fx * reduced[y0[:, None], x1[None, :]]
    bottom = (1 - fx) * reduced[y1[:, None], x0[None, :]] + fx * reduced[y1[:, None], x1[None, :]]
    out = (1 - fy) * top + fy * bottom
    if fill is not None:
        outside = (v < 0) | (v >= h)
        out[outside[:, None] | ((u < 0) | (u >= w))[None, :]] = fill
    return out.astype(np.float32)


def to_uint8(model_input: np.ndarray) -> np.ndarray:
    """Step 5 for a model that takes uint8: ``floor(value + 0.5)``."""
    return np.floor(model_input + 0.5).clip(0, 255).astype(np.uint8)
