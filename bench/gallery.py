"""Failure galleries: the worst photos of a model with the true and the predicted boxes drawn, and the
photos on which the rows of a run read different numbers.

Rows that ran the same model (the same ``model`` / ``source_model`` and ``quantization`` in their
``describe()``, e.g. ``tf`` and ``tfjs-wasm-none``) share one gallery, so a page does not show the
same mistakes twice.
"""
from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bench.metrics import read_number
from bench.photos import Photo
from bench.results.records import Digit
from bench.results.run import PhotoRecord, RowResult, Run, TruthRecord

TRUE_COLOUR = (0, 200, 0)
PREDICTED_COLOUR = (230, 0, 0)
MIN_HEIGHT = 120


@dataclass(frozen=True)
class GalleryItem:
    """One bad photo of a row (or of a group of rows that ran one model): what was true, what was
    predicted, and the drawing (PNG or None, with ``note`` saying why)."""

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

    @property
    def caption(self) -> str:
        """One line under the picture."""
        if self.error:
            return f"{self.image}: error: {self.error}"
        latency = "-" if self.latency_ms is None else f"{self.latency_ms:.1f} ms"
        text = (f"{self.image}: true {self.truth!r}, read {self.predicted!r}; matched {self.matched}, "
                f"missed {self.missed}, false {self.false}; {latency}")
        return text + (f"; {self.note}" if self.note and self.png else "")


@dataclass(frozen=True)
class Reading:
    """What some rows read on one photo: the rows, the number, whether it is right, the drawing."""

    rows: tuple[str, ...]
    predicted: str
    correct: bool
    error: str | None
    png: bytes | None


@dataclass(frozen=True)
class Disagreement:
    """A photo on which the rows read different numbers, with one drawing per distinct reading."""

    image: str
    truth: str
    readings: tuple[Reading, ...]
    note: str = ""


def model_key(row: RowResult) -> str:
    """What identifies the model a row ran: its model's path and quantization, or the row itself."""
    describe = row.describe
    model = describe.get("source_model") or describe.get("model")
    if not model:
        return f"row:{row.row}"
    return f"{os.path.normpath(os.path.abspath(str(model)))}|{describe.get('quantization') or 'none'}"


def model_groups(run: Run, rows: Sequence[str] | None = None) -> dict[str, list[str]]:
    """Rows that ran the same model, named by their first row (``"tf = tfjs-wasm-none"``), in run order."""
    by_key: dict[str, list[str]] = {}
    for name in rows or run.row_names:
        by_key.setdefault(model_key(run.rows[name]), []).append(name)
    return {" = ".join(names): names for names in by_key.values()}


def _badness(record: PhotoRecord, row: RowResult) -> tuple[int, int, int]:
    score = row.scores[record.image]
    mistakes = (score.predicted - score.matched) + (score.true - score.matched)
    return int(record.failed), int(not score.sequence_correct), mistakes


def worst_images(rows: Sequence[RowResult], count: int) -> list[str]:
    """The ``count`` worst photos over ``rows``: errors first, then wrong numbers, then the most mistakes."""
    totals: dict[str, list[int]] = {}
    for row in rows:
        for record in row.records:
            if record.image in row.scores:
                total = totals.setdefault(record.image, [0, 0, 0])
                for index, value in enumerate(_badness(record, row)):
                    total[index] += value
    bad = [(tuple(key), image) for image, key in totals.items() if any(key)]
    return [image for _, image in sorted(bad, key=lambda pair: pair[0], reverse=True)[:count]]


def worst_records(row: RowResult, count: int) -> list[PhotoRecord]:
    """The row's ``count`` worst prediction lines."""
    by_image = {r.image: r for r in row.records}
    return [by_image[image] for image in worst_images([row], count)]


def draw(photo: Photo, truth: TruthRecord, digits: Sequence[Digit]) -> bytes:
    """The photo upscaled to at least :data:`MIN_HEIGHT` px with the true boxes (green, drawn 2 px
    outside) and the predicted ``digits`` (red, with their labels)."""
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
    for digit in digits:
        left, top = digit.left * scale, digit.top * scale
        pen.rectangle([left, top, left + digit.width * scale, top + digit.height * scale],
                      outline=PREDICTED_COLOUR, width=2)
        pen.text((left + 2, max(0, top - 11)), str(digit.label), fill=PREDICTED_COLOUR)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _drawing(photos: Mapping[str, Photo], truth: TruthRecord, digits: Sequence[Digit]) -> tuple[bytes | None, str]:
    photo = photos.get(truth.image)
    if photo is None:
        return None, "photo not available"
    try:
        return draw(photo, truth, digits), ""
    except Exception as exc:
        return None, f"cannot draw: {exc}"


def _record(row: RowResult, image: str) -> PhotoRecord:
    return next(r for r in row.records if r.image == image)


def _item(name: str, rows: Sequence[RowResult], image: str, truth: TruthRecord,
          photos: Mapping[str, Photo]) -> GalleryItem:
    pairs = [(row, _record(row, image)) for row in rows if image in row.scores]
    lead_row, lead = pairs[0]
    score = lead_row.scores[image]
    png, note = _drawing(photos, truth, lead.digits)
    if len(pairs) > 1:
        reading = read_number(lead.digits)
        differing = [f"{row.row} read {read_number(r.digits)!r}" for row, r in pairs[1:]
                     if read_number(r.digits) != reading or r.failed != lead.failed]
        note = "; ".join(filter(None, [note, f"boxes of {lead_row.row}", *differing]))
    return GalleryItem(name, image, truth.label, read_number(lead.digits), lead.error, score.matched,
                       score.true - score.matched, score.predicted - score.matched, lead.latency_ms, png, note)


def gallery(run: Run, photos: Mapping[str, Photo], groups: Mapping[str, Sequence[str]] | None = None,
            per_group: int = 6) -> dict[str, list[GalleryItem]]:
    """Per group of rows (default: rows that ran the same model, :func:`model_groups`), its worst
    photos drawn from ``photos`` (the dataset's photos by image name); rows without records are left out."""
    out: dict[str, list[GalleryItem]] = {}
    for name, members in (groups or model_groups(run)).items():
        rows = [run.rows[m] for m in members if run.rows[m].records]
        if not rows:
            continue
        out[name] = [_item(name, rows, image, run.truth[image], photos) for image in worst_images(rows, per_group)]
    return out


def disagreements(run: Run, photos: Mapping[str, Photo], count: int = 8) -> list[Disagreement]:
    """Photos on which the rows read different numbers, those where some row is right first."""
    rows = [row for row in run.rows.values() if row.records]
    if len(rows) < 2:
        return []
    readings: dict[str, dict[str, list[str]]] = {}
    for row in rows:
        for record in row.records:
            key = f"error: {record.error}" if record.failed else read_number(record.digits)
            readings.setdefault(record.image, {}).setdefault(key, []).append(row.row)
    split = [(image, found) for image, found in readings.items() if len(found) > 1 and image in run.truth]

    def order(item: tuple[str, dict[str, list[str]]]) -> tuple[bool, int]:
        image, found = item
        return run.truth[image].label in found, len(found)

    out = []
    for image, found in sorted(split, key=order, reverse=True)[:count]:
        truth = run.truth[image]
        parts, notes = [], set()
        for text, names in found.items():
            record = _record(run.rows[names[0]], image)
            png, note = _drawing(photos, truth, record.digits) if not record.failed else (None, "")
            notes.add(note)
            parts.append(Reading(tuple(names), "" if record.failed else text, text == truth.label,
                                 record.error, png))
        out.append(Disagreement(image, truth.label, tuple(parts), "; ".join(filter(None, notes))))
    return out
