"""Training data: SVHN JSONL folders and synthetic photos in memory, augmentation, heatmap targets.

Augmentation may first give a real photo a new number (:func:`swap_digits`: each digit replaced
by a real digit cut from another train photo, in the same place and light), then renders it with
:func:`bench.model.preprocess.render` (the very resampling inference uses) at a random zoom and
position, pads with the letterbox fill or the repeated edge, then jitters colours, inverts,
blurs and adds noise. Boxes follow the same :class:`~bench.model.preprocess.Transform`.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.dataset import load_jsonl_folder
from bench.model.architecture import ModelConfig
from bench.model.preprocess import FILL, Transform, letterbox_transform, render
from bench.photos import Photo
from bench.dataset import synthetic_dataset


@dataclass
class Sample:
    """One photo with its digits: ``boxes`` rows are (left, top, width, height) in photo pixels."""

    rgb: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    label: str
    name: str


def _sample(photo: Photo) -> Sample:
    boxes = np.array([[t.box.left, t.box.top, t.box.width, t.box.height] for t in photo.truth],
                     dtype=np.float32).reshape(-1, 4)
    labels = np.array([t.label for t in photo.truth], dtype=np.int32)
    return Sample(photo.load().rgb, boxes, labels, photo.label, photo.image)


def load_folder(folder: str | Path, limit: int | None = None) -> list[Sample]:
    """Every photo of an ``annotations.jsonl`` + ``images/`` folder, decoded into memory."""
    return [_sample(photo) for photo in load_jsonl_folder(Path(folder)).limited(limit).photos]


def synthetic_samples(count: int, seed: int) -> list[Sample]:
    """``count`` photos of the embedded synthetic generator (:mod:`bench.synthetic`)."""
    return [_sample(photo) for photo in synthetic_dataset(count, seed).photos]


def split_holdout(samples: list[Sample], fraction: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """(train, held-out) with a seeded shuffle; the held-out part tunes the score threshold."""
    order = np.random.default_rng(seed).permutation(len(samples))
    cut = int(round(len(samples) * fraction))
    held = set(order[:cut].tolist())
    return ([s for i, s in enumerate(samples) if i not in held], [s for i, s in enumerate(samples) if i in held])


@dataclass(frozen=True)
class Augmentation:
    """Ranges of the random changes applied to a training photo."""

    zoom: tuple[float, float] = (0.35, 1.3)
    """Scale relative to the letterbox scale, drawn log-uniformly."""
    letterbox_probability: float = 0.2
    edge_fill_probability: float = 0.4
    invert_probability: float = 0.2
    grey_probability: float = 0.15
    blur_probability: float = 0.2
    contrast: tuple[float, float] = (0.6, 1.4)
    brightness: float = 30.0
    noise: float = 6.0
    swap_probability: float = 0.0
    """Share of real photos whose digits are replaced by real digits of other photos (:func:`swap_digits`)."""


def random_transform(sample: Sample, config: ModelConfig, aug: Augmentation,
                     rng: np.random.Generator) -> Transform:
    """A random zoom and placement that keeps the house number inside the input when it can."""
    h, w = sample.rgb.shape[:2]
    base = letterbox_transform(h, w, config.input_height, config.input_width)
    if rng.random() < aug.letterbox_probability:
        return base
    scale = base.scale * math.exp(rng.uniform(math.log(aug.zoom[0]), math.log(aug.zoom[1])))
    width, height = w * scale, h * scale
    if len(sample.boxes):
        x0, y0 = sample.boxes[:, 0].min() * scale, sample.boxes[:, 1].min() * scale
        x1 = (sample.boxes[:, 0] + sample.boxes[:, 2]).max() * scale
        y1 = (sample.boxes[:, 1] + sample.boxes[:, 3]).max() * scale
    else:
        x0, y0, x1, y1 = 0.0, 0.0, width, height
    ox = _offset(config.input_width, width, x0, x1, rng)
    oy = _offset(config.input_height, height, y0, y1, rng)
    return Transform(scale, ox, oy, w, h, config.input_width, config.input_height)


def _offset(size: int, extent: float, lo: float, hi: float, rng: np.random.Generator) -> float:
    """An offset along one axis keeping the content [lo, hi] inside [0, size] and the photo
    [0, extent] covering as much of the input as it can."""
    lo, hi = min(max(lo, 0.0), extent), min(max(hi, 0.0), extent)
    if hi - lo > size:
        return float((size - lo - hi) / 2 + rng.uniform(-0.1, 0.1) * size)
    if extent <= size:
        return float(rng.uniform(0, size - extent))
    low, high = max(-lo, size - extent), min(size - hi, 0.0)
    return float(rng.uniform(low, high)) if low < high else float((low + high) / 2)


def _pixel_box(box: np.ndarray, height: int, width: int) -> tuple[int, int, int, int] | None:
    """``(x0, y0, x1, y1)`` of a box clipped to the photo, or ``None`` when under 3 pixels a side."""
    x0, y0 = max(int(round(box[0])), 0), max(int(round(box[1])), 0)
    x1, y1 = min(int(round(box[0] + box[2])), width), min(int(round(box[1] + box[3])), height)
    return (x0, y0, x1, y1) if x1 - x0 >= 3 and y1 - y0 >= 3 else None


def _feather(height: int, width: int, share: float = 0.1) -> np.ndarray:
    """Blend weights for a pasted patch: 1 inside, falling to 0 towards its edges over ``share`` of its size."""
    ys = np.minimum(np.arange(height) + 0.5, height - np.arange(height) - 0.5) / max(share * height, 1.0)
    xs = np.minimum(np.arange(width) + 0.5, width - np.arange(width) - 0.5) / max(share * width, 1.0)
    return np.clip(np.minimum(ys[:, None], xs[None, :]), 0.0, 1.0).astype(np.float32)


def swap_digits(sample: Sample, donors: list[Sample], rng: np.random.Generator) -> Sample:
    """The photo with a new number: each digit's box filled with a real digit cut from a random donor
    photo, resized to the box, made grey and given the region's own mean and spread per channel (the
    photo's colours and light), its edges blended in. A digit whose box or donor is unusable keeps
    its own pixels and label."""
    from PIL import Image

    rgb = sample.rgb.copy()
    labels = sample.labels.copy()
    height, width = rgb.shape[:2]
    for index, box in enumerate(sample.boxes):
        target = _pixel_box(box, height, width)
        donor = donors[int(rng.integers(len(donors)))]
        if target is None or not len(donor.boxes):
            continue
        pick = int(rng.integers(len(donor.boxes)))
        source = _pixel_box(donor.boxes[pick], *donor.rgb.shape[:2])
        if source is None:
            continue
        x0, y0, x1, y1 = target
        crop = Image.fromarray(donor.rgb[source[1]:source[3], source[0]:source[2]])
        patch = np.asarray(crop.resize((x1 - x0, y1 - y0), Image.BILINEAR), np.float32)
        region = rgb[y0:y1, x0:x1].astype(np.float32)
        grey = patch.mean(axis=2, keepdims=True)
        patch = (grey - grey.mean()) / (grey.std() + 1.0) * region.std(axis=(0, 1)) + region.mean(axis=(0, 1))
        alpha = _feather(y1 - y0, x1 - x0)[..., None]
        rgb[y0:y1, x0:x1] = np.clip(alpha * patch + (1 - alpha) * region, 0, 255).astype(np.uint8)
        labels[index] = donor.labels[pick]
    order = np.argsort(sample.boxes[:, 0], kind="stable") if len(sample.boxes) else []
    return Sample(rgb, sample.boxes, labels, "".join(str(int(labels[i])) for i in order), sample.name)


def place(sample: Sample, config: ModelConfig, aug: Augmentation,
          rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The photo rendered at a random zoom and place (:func:`random_transform`), padded with the fill or
    its repeated edge: (model input float32 HxWx3, boxes in model pixels as (left, top, width, height))."""
    transform = random_transform(sample, config, aug, rng)
    fill = None if rng.random() < aug.edge_fill_probability else FILL
    image = render(sample.rgb, transform, fill=fill)
    boxes = sample.boxes * transform.scale + np.array([transform.offset_x, transform.offset_y, 0, 0], np.float32)
    return image, boxes.astype(np.float32)


def augment(sample: Sample, config: ModelConfig, aug: Augmentation,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(model input float32 HxWx3, boxes in model pixels as (left, top, width, height), labels)."""
    image, boxes = place(sample, config, aug, rng)
    return photometric(image, aug, rng), boxes, sample.labels


def photometric(image: np.ndarray, aug: Augmentation, rng: np.random.Generator) -> np.ndarray:
    """The colour changes of ``aug`` on a rendered model input: grey or shuffled channels, blur,
    contrast, brightness, inversion, noise."""
    if rng.random() < aug.grey_probability:
        image = np.repeat(image.mean(axis=2, keepdims=True), 3, axis=2)
    else:
        image = image[..., rng.permutation(3)] if rng.random() < 0.5 else image
    if rng.random() < aug.blur_probability:
        padded = np.pad(image, ((1, 1), (1, 1), (0, 0)), mode="edge")
        image = sum(padded[dy:dy + image.shape[0], dx:dx + image.shape[1]]
                    for dy in range(3) for dx in range(3)) / 9.0
    mean = image.mean()
    contrast = rng.uniform(*aug.contrast)
    image = (image - mean) * contrast + mean + rng.uniform(-aug.brightness, aug.brightness)
    if rng.random() < aug.invert_probability:
        image = 255.0 - image
    if aug.noise > 0:
        image = image + rng.normal(0, rng.uniform(0, aug.noise), size=image.shape)
    return np.clip(image, 0, 255).astype(np.float32)


def encode_targets(boxes: np.ndarray, labels: np.ndarray, config: ModelConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CenterNet targets: Gaussian heatmap [gh, gw, C], regression [gh, gw, 4], mask [gh, gw].

    A digit whose centre falls outside the input is dropped; regression is (width, height,
    centre offset x, centre offset y) in cells at the digit's centre cell.
    """
    gh, gw = config.grid
    s = config.stride
    heat = np.zeros((gh, gw, config.num_classes), np.float32)
    reg = np.zeros((gh, gw, 4), np.float32)
    mask = np.zeros((gh, gw), np.float32)
    ys = np.arange(gh, dtype=np.float32)[:, None]
    xs = np.arange(gw, dtype=np.float32)[None, :]
    for (left, top, width, height), label in zip(boxes, labels):
        cx, cy = (left + width / 2) / s, (top + height / 2) / s
        if not (0 <= cx < gw and 0 <= cy < gh) or width <= 0 or height <= 0:
            continue
        ix, iy = int(cx), int(cy)
        sx = max(0.5, 0.15 * width / s)
        sy = max(0.5, 0.15 * height / s)
        g = np.exp(-((xs - ix) ** 2) / (2 * sx * sx) - ((ys - iy) ** 2) / (2 * sy * sy))
        heat[..., label] = np.maximum(heat[..., label], g)
        reg[iy, ix] = (width / s, height / s, cx - ix, cy - iy)
        mask[iy, ix] = 1.0
    return heat, reg, mask


def drawn(samples: list[Sample], indices: np.ndarray, aug: Augmentation, rng: np.random.Generator,
          donors: list[Sample] | None = None) -> Iterator[Sample]:
    """The samples at ``indices``, one at a time; those among ``donors`` (the real ones) get new
    numbers at ``aug.swap_probability`` (:func:`swap_digits`)."""
    real = {id(d) for d in donors} if donors else set()
    for index in indices:
        sample = samples[int(index)]
        yield swap_digits(sample, donors, rng) if id(sample) in real and rng.random() < aug.swap_probability else sample


def make_batch(samples: list[Sample], indices: np.ndarray, config: ModelConfig, aug: Augmentation,
               rng: np.random.Generator, donors: list[Sample] | None = None) -> dict[str, np.ndarray]:
    """One augmented batch: ``image``, ``heat``, ``reg``, ``mask`` arrays; photos that are among
    ``donors`` (the real ones) get new numbers at ``aug.swap_probability``."""
    images, heats, regs, masks = [], [], [], []
    for sample in drawn(samples, indices, aug, rng, donors):
        image, boxes, labels = augment(sample, config, aug, rng)
        heat, reg, mask = encode_targets(boxes, labels, config)
        images.append(image)
        heats.append(heat)
        regs.append(reg)
        masks.append(mask)
    return {"image": np.stack(images), "heat": np.stack(heats), "reg": np.stack(regs), "mask": np.stack(masks)}
