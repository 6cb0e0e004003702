"""The failure gallery: a backend row's worst photos with the true and the predicted boxes drawn."""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from bench.history.rundata import RunData
from bench.metrics import read_number
from bench.summary import parse_digits

TRUE_COLOUR = (0, 200, 0)
PREDICTED_COLOUR = (230, 0, 0)
MIN_HEIGHT = 120


@dataclass(frozen=True)
class GalleryItem:
    """One bad photo of a row: what was true, what was predicted, and the drawing (PNG or None)."""

    row: str
    image: str
    truth: str
    predicted: str
    error: str | None
    matched: int
    missed: int
    false: int
    latency_ms: float | None
    png: bytes | None
    note: str = ""


def worst_records(data: RunData, row: str, count: int) -> list[tuple[dict[str, Any], Any]]:
    """The row's ``count`` worst prediction lines: errors, then wrong numbers with the most mistakes."""
    scores = data.correctness(row)
    scored = [(r, scores[r["image"]]) for r in data.records(row) if r["image"] in scores]

    def badness(item: tuple[dict[str, Any], Any]) -> tuple:
        record, score = item
        mistakes = (score.predicted - score.matched) + (score.true - score.matched)
        return (record.get("error") is not None, not score.sequence_correct, mistakes)

    bad = [item for item in scored if any(badness(item))]
    return sorted(bad, key=badness, reverse=True)[:count]


def _photos_by_image(data: RunData) -> tuple[dict[str, Any], str]:
    from bench.dataset import load_dataset

    spec = (data.run.get("options") or {}).get("dataset")
    try:
        dataset = load_dataset(spec)
    except Exception as exc:
        return {}, f"photos not available ({exc})"
    return {p.image: p for p in dataset.photos}, ""


def draw(photo, truth: dict[str, Any], record: dict[str, Any]) -> bytes:
    """The photo upscaled to at least :data:`MIN_HEIGHT` px with the true boxes (green, drawn 2 px
    outside) and the predicted ones (red, with their labels)."""
    from PIL import Image, ImageDraw

    loaded = photo.load()
    image = Image.fromarray(loaded.rgb).convert("RGB")
    scale = max(1.0, MIN_HEIGHT / image.height)
    image = image.resize((round(image.width * scale), round(image.height * scale)), Image.NEAREST)
    pen = ImageDraw.Draw(image)
    for box in truth.get("boxes", []):
        left, top = box["left"] * scale - 2, box["top"] * scale - 2
        pen.rectangle([left, top, left + box["width"] * scale + 4, top + box["height"] * scale + 4],
                      outline=TRUE_COLOUR, width=2)
    for digit in record.get("digits", []):
        left, top = digit["left"] * scale, digit["top"] * scale
        pen.rectangle([left, top, left + digit["width"] * scale, top + digit["height"] * scale],
                      outline=PREDICTED_COLOUR, width=2)
        pen.text((left + 2, max(0, top - 11)), str(digit["label"]), fill=PREDICTED_COLOUR)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def gallery(data: RunData, rows: list[str] | None = None, per_row: int = 6) -> dict[str, list[GalleryItem]]:
    """Per row, its worst photos drawn from the dataset the run used."""
    photos, problem = _photos_by_image(data)
    out: dict[str, list[GalleryItem]] = {}
    for row in rows or data.rows:
        items = []
        for record, score in worst_records(data, row, per_row):
            truth = data.truth[record["image"]]
            png, note = None, problem
            photo = photos.get(record["image"])
            if photo is not None:
                try:
                    png = draw(photo, truth, record)
                except Exception as exc:
                    note = f"cannot draw: {exc}"
            predicted = read_number(parse_digits(record))
            items.append(GalleryItem(row, record["image"], str(truth.get("label")), predicted, record.get("error"),
                                     score.matched, score.true - score.matched, score.predicted - score.matched,
                                     record.get("latency_ms"), png, note))
        out[row] = items
    return out
