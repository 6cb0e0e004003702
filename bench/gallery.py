"""The failure gallery: a backend row's worst photos with the true and the predicted boxes drawn."""
from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass

from bench.metrics import PhotoScore, read_number
from bench.photos import Photo
from bench.results.run import PhotoRecord, RowResult, Run, TruthRecord

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


def worst_records(row: RowResult, count: int) -> list[tuple[PhotoRecord, PhotoScore]]:
    """The row's ``count`` worst prediction lines: errors, then wrong numbers with the most mistakes."""
    def badness(item: tuple[PhotoRecord, PhotoScore]) -> tuple[bool, bool, int]:
        record, score = item
        mistakes = (score.predicted - score.matched) + (score.true - score.matched)
        return (record.failed, not score.sequence_correct, mistakes)

    judged = [(badness(item), item) for item in ((r, row.scores[r.image]) for r in row.records
                                                   if r.image in row.scores)]
    bad = [(key, item) for key, item in judged if any(key)]
    return [item for _, item in sorted(bad, key=lambda pair: pair[0], reverse=True)[:count]]


def draw(photo: Photo, truth: TruthRecord, record: PhotoRecord) -> bytes:
    """The photo upscaled to at least :data:`MIN_HEIGHT` px with the true boxes (green, drawn 2 px
    outside) and the predicted ones (red, with their labels)."""
    from PIL import Image, ImageDraw

    loaded = photo.load()
    image = Image.fromarray(loaded.rgb).convert("RGB")
    scale = max(1.0, MIN_HEIGHT / image.height)
    image = image.resize((round(image.width * scale), round(image.height * scale)), Image.NEAREST)
    pen = ImageDraw.Draw(image)
    for digit in truth.digits:
        box = digit.box
        left, top = box.left * scale - 2, box.top * scale - 2
        pen.rectangle([left, top, left + box.width * scale + 4, top + box.height * scale + 4],
                      outline=TRUE_COLOUR, width=2)
    for digit in record.digits:
        left, top = digit.left * scale, digit.top * scale
        pen.rectangle([left, top, left + digit.width * scale, top + digit.height * scale],
                      outline=PREDICTED_COLOUR, width=2)
        pen.text((left + 2, max(0, top - 11)), str(digit.label), fill=PREDICTED_COLOUR)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def gallery(run: Run, photos: Mapping[str, Photo], rows: list[str] | None = None,
            per_row: int = 6) -> dict[str, list[GalleryItem]]:
    """Per row, its worst photos, drawn from ``photos`` (the dataset's photos by image name)."""
    out: dict[str, list[GalleryItem]] = {}
    for name in rows or run.row_names:
        items = []
        for record, score in worst_records(run.rows[name], per_row):
            truth = run.truth[record.image]
            png, note = None, ""
            photo = photos.get(record.image)
            if photo is None:
                note = "photo not available"
            else:
                try:
                    png = draw(photo, truth, record)
                except Exception as exc:
                    note = f"cannot draw: {exc}"
            items.append(GalleryItem(name, record.image, truth.label, read_number(record.digits), record.error,
                                     score.matched, score.true - score.matched, score.predicted - score.matched,
                                     record.latency_ms, png, note))
        out[name] = items
    return out
