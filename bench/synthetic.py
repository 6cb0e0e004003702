"""The embedded default dataset: seeded, synthetic house-number photos with exact digit boxes.

Each photo is a street-photo-like crop: a textured background, a house number of 1-4 digits in
one of several fonts, colours, sizes and spacings, cut-off distractor digits at the sides (not
annotated, as in SVHN), a mild perspective warp, blur and sensor noise. A photo depends only on
``(seed, index)``, so the set is identical on every machine that has the same fonts
(``fonts-dejavu-core`` and ``fonts-liberation``, installed by set-up; Pillow's own font is the
fallback). Boxes are the ink of each digit after the warp, padded by 8% of the digit height.
"""
from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from bench.results.records import Box, TrueDigit

DEFAULT_COUNT = 120
DEFAULT_SEED = 20261125
FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/truetype/liberation"))
FONT_NAMES = ("DejaVuSans-Bold.ttf", "DejaVuSans.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSansCondensed-Bold.ttf",
              "DejaVuSansMono-Bold.ttf", "LiberationSans-Bold.ttf", "LiberationSerif-Bold.ttf",
              "LiberationSansNarrow-Bold.ttf", "LiberationMono-Bold.ttf")


@dataclass(frozen=True)
class SyntheticPhoto:
    """One rendered photo: encoded PNG, its number and its digit boxes."""

    png: bytes
    label: str
    truth: tuple[TrueDigit, ...]
    width: int
    height: int


@lru_cache(maxsize=1)
def available_fonts() -> tuple[str, ...]:
    """Paths of the fonts found on this machine, in a fixed order ('' means Pillow's own)."""
    found = []
    for name in FONT_NAMES:
        for folder in FONT_DIRS:
            if (folder / name).is_file():
                found.append(str(folder / name))
                break
    return tuple(found) or ("",)


def _font(path: str, size: int):
    from PIL import ImageFont

    if path:
        return ImageFont.truetype(path, size)
    return ImageFont.load_default(size=size)


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    base = rng.uniform(30, 225, size=3)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    ramp = (np.cos(angle) * xx / width + np.sin(angle) * yy / height)[..., None]
    image = base + ramp * rng.uniform(-50, 50, size=3)
    for _ in range(rng.integers(0, 4)):
        x0, y0 = rng.integers(0, width), rng.integers(0, height)
        x1, y1 = x0 + rng.integers(4, width // 2 + 5), y0 + rng.integers(2, height // 2 + 3)
        image[y0:y1, x0:x1] += rng.uniform(-40, 40, size=3)
    grain = rng.normal(0, rng.uniform(2, 10), size=(height // 4 + 1, width // 4 + 1, 1))
    image += np.kron(grain, np.ones((4, 4, 1)))[:height, :width]
    return np.clip(image, 0, 255)


def _ink_colour(rng: np.random.Generator, background: np.ndarray) -> np.ndarray:
    mean = background.reshape(-1, 3).mean(axis=0)
    for _ in range(20):
        colour = rng.uniform(0, 255, size=3)
        if abs(colour.mean() - mean.mean()) > 70:
            return colour
    return np.where(mean > 127, 20.0, 235.0) * np.ones(3)


def _warp_coefficients(rng: np.random.Generator, width: int, height: int) -> tuple[float, ...]:
    """Perspective coefficients mapping output pixels to input pixels (PIL convention)."""
    jitter = 0.06
    src = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float64)
    dst = src + rng.uniform(-jitter, jitter, size=(4, 2)) * [width, height] * [0.5, 1.0]
    rows, rhs = [], []
    for (x, y), (u, v) in zip(dst, src):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs.extend([u, v])
    return tuple(np.linalg.solve(np.array(rows), np.array(rhs)))


def render_photo(seed: int, index: int) -> SyntheticPhoto:
    """Render photo ``index`` of the set with ``seed``: the same inputs give the same bytes."""
    from PIL import Image, ImageDraw, ImageFilter

    key = hashlib.sha256(f"{seed}:{index}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(key[:8], "little"))
    fonts = available_fonts()
    font_path = fonts[int(rng.integers(len(fonts)))]
    count = int(rng.choice([1, 2, 3, 4], p=[0.15, 0.35, 0.35, 0.15]))
    digits = [int(rng.integers(1 if i == 0 and count > 1 else 0, 10)) for i in range(count)]
    size = int(rng.integers(18, 48))
    font = _font(font_path, size)
    spacing = rng.uniform(-0.05, 0.35) * size
    glyphs = [font.getbbox(str(d)) for d in digits]
    widths = [g[2] - g[0] for g in glyphs]
    number_w = sum(widths) + spacing * (count - 1)
    margin_x = int(rng.uniform(0.5, 1.6) * size) + 6
    margin_y = int(rng.uniform(0.25, 0.8) * size) + 4
    width = int(number_w + 2 * margin_x)
    height = int(size * 1.05 + 2 * margin_y)
    background = _background(rng, height, width)
    colour = _ink_colour(rng, background)

    masks = []
    x = margin_x
    top = margin_y
    for digit, glyph, w in zip(digits, glyphs, widths):
        mask = Image.new("L", (width, height), 0)
        ImageDraw.Draw(mask).text((x - glyph[0], top - glyph[1] + (size - (glyph[3] - glyph[1])) * 0.2),
                                  str(digit), font=font, fill=255)
        masks.append(mask)
        x += w + spacing
    distractors = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(distractors)
    for side in (-1, 1):
        if rng.random() < 0.45:
            d_font = _font(font_path, int(size * rng.uniform(0.6, 1.1)))
            text = str(int(rng.integers(0, 10)))
            bbox = d_font.getbbox(text)
            x_pos = -(bbox[2] - bbox[0]) * 0.55 if side < 0 else width - (bbox[2] - bbox[0]) * 0.45
            draw.text((x_pos - bbox[0], rng.uniform(0, max(1, height - size))), text, font=d_font, fill=255)

    coefficients = _warp_coefficients(rng, width, height)
    warp = dict(size=(width, height), method=Image.Transform.PERSPECTIVE, data=coefficients,
                resample=Image.Resampling.BILINEAR)
    warped = [np.asarray(m.transform(**warp), dtype=np.float32) / 255 for m in masks]
    ink = np.clip(sum(warped) + np.asarray(distractors.transform(**warp), dtype=np.float32) / 255, 0, 1)
    image = background * (1 - ink[..., None]) + colour * ink[..., None]
    pil = Image.fromarray(image.astype(np.uint8))
    blur = rng.uniform(0, 1.3)
    if blur > 0.3:
        pil = pil.filter(ImageFilter.GaussianBlur(blur))
    noisy = np.asarray(pil, dtype=np.float32) + rng.normal(0, rng.uniform(1, 8), size=(height, width, 3))
    pil = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))

    truth = []
    for digit, mask in zip(digits, warped):
        ys, xs = np.nonzero(mask > 0.35)
        pad = 0.08 * size
        left, right = max(0.0, xs.min() - pad), min(float(width), xs.max() + 1 + pad)
        top_, bottom = max(0.0, ys.min() - pad), min(float(height), ys.max() + 1 + pad)
        truth.append(TrueDigit(digit, Box(*(round(float(v), 1) for v in (left, top_, right - left, bottom - top_)))))
    buffer = io.BytesIO()
    pil.save(buffer, format="PNG")
    return SyntheticPhoto(buffer.getvalue(), "".join(map(str, digits)), tuple(truth), width, height)
