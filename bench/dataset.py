"""Datasets: a folder of ``annotations.jsonl`` + ``images/``, an official SVHN split folder
with ``digitStruct.mat``, a fetched SVHN split by name, or the embedded synthetic default."""
from __future__ import annotations

import hashlib
import json
import math
import os
import posixpath
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from bench.errors import BenchError, DatasetError, EntryProblem, PhotoError, first_line
from bench.photos import Photo, inside, read_inside, reader_inside
from bench.results.metadata import DatasetInfo
from bench.results.records import Box, TrueDigit
from bench.validation import shorten, shown, text_problem

ANNOTATIONS = "annotations.jsonl"
DIGITSTRUCT = "digitStruct.mat"
SYNTHETIC = "synthetic"
MAX_SIDE = 100_000
"""The largest photo width or height an annotation may give."""
MAX_BOXES = 100
"""The most digits one photo may hold."""
MAX_COORDINATE = 1e6
"""Box coordinates beyond this many pixels are refused as nonsense."""
MAX_ANNOTATION_BYTES = 2**30


@dataclass
class Dataset:
    """Photos to benchmark on, with the problems found while reading their annotations."""

    name: str
    root: str
    photos: list[Photo]
    problems: list[str] = field(default_factory=list)
    fingerprint: str = ""
    description: str = ""

    def limited(self, limit: int | None) -> Dataset:
        """The first ``limit`` photos (all of them when ``limit`` is None); the description says how many
        of how many ("the first 30 of 500 photos from ...")."""
        if limit is None or limit >= len(self.photos):
            return self
        return Dataset(self.name, self.root, self.photos[:limit], self.problems,
                       _fingerprint_of(self.fingerprint, limit),
                       f"the first {limit} of {self.description or f'{len(self.photos)} photos'}")

    def info(self) -> DatasetInfo:
        """What a run records of the dataset it used."""
        return DatasetInfo(name=self.name, root=self.root, photos=len(self.photos), fingerprint=self.fingerprint,
                           problems=tuple(self.problems), description=self.description)


def _fingerprint_of(*parts: object) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(repr(part).encode())
    return digest.hexdigest()[:16]


def synthetic_dataset(count: int | None = None, seed: int | None = None) -> Dataset:
    """The embedded default dataset: ``count`` photos rendered from ``seed`` (:mod:`bench.synthetic`)."""
    from bench.synthetic import DEFAULT_COUNT, DEFAULT_SEED, available_fonts, render_photo

    count = DEFAULT_COUNT if count is None else count
    seed = DEFAULT_SEED if seed is None else seed
    photos = []
    for index in range(count):
        rendered = render_photo(seed, index)
        photos.append(Photo(image=f"synthetic/{seed}/{index:05d}.png", label=rendered.label,
                            truth=list(rendered.truth), read_bytes=lambda data=rendered.png: data,
                            source=f"synthetic photo {index} (seed {seed})",
                            width=rendered.width, height=rendered.height))
    fonts = [Path(p).name if p else "pillow-default" for p in available_fonts()]
    return Dataset(name=SYNTHETIC, root=f"synthetic:{seed}", photos=photos,
                   fingerprint=_fingerprint_of("synthetic", seed, count, fonts),
                   description=f"{count} synthetic house-number photos, seed {seed}, fonts {', '.join(fonts)}")


def reload_photos(info: DatasetInfo, limit: int | None = None) -> tuple[dict[str, Photo], str | None]:
    """The photos a past run used, by image name, when its dataset (a folder, or the synthetic generator)
    still gives the same photos (the same fingerprint); else no photos and why."""
    root = info.root or ""
    try:
        if info.name == SYNTHETIC and root.startswith("synthetic:"):
            dataset = synthetic_dataset(seed=int(root.split(":", 1)[1]))
        else:
            dataset = load_dataset(root)
        dataset = dataset.limited(limit)
    except (BenchError, ValueError) as exc:
        return {}, f"the run's photos cannot be read again ({exc})"
    if dataset.fingerprint != info.fingerprint:
        return {}, f"the photos at {root} are not the ones the run used (their fingerprint differs)"
    return {photo.image: photo for photo in dataset.photos}, None


def data_home() -> Path:
    """Where fetched datasets live: ``$DIGITBENCH_DATA`` or ``~/.cache/digitbench/datasets``."""
    env = os.environ.get("DIGITBENCH_DATA")
    return Path(env) if env else Path.home() / ".cache" / "digitbench" / "datasets"


def load_dataset(spec: str | os.PathLike | None = None, *, synthetic_count: int | None = None,
                 seed: int | None = None) -> Dataset:
    """Load a dataset by path or name; ``None`` or ``"synthetic"`` gives the embedded default.

    Names: ``synthetic``, ``svhn-test`` / ``svhn-train`` / ``svhn-extra`` (fetched with
    ``bench datasets fetch``). A path is a folder holding ``annotations.jsonl`` or
    ``digitStruct.mat``, or the ``annotations.jsonl`` file itself.
    """
    if spec is None or str(spec) == SYNTHETIC:
        return synthetic_dataset(count=synthetic_count, seed=seed)
    text = str(spec)
    if "\x00" in text or not text.strip():
        raise DatasetError(f"--dataset {text!r}: not a usable path; give a dataset folder or 'synthetic'")
    path = Path(text).expanduser()
    if not path.exists() and text.startswith("svhn-"):
        fetched = data_home() / text
        if fetched.exists():
            path = fetched
        else:
            split = text.removeprefix("svhn-")
            raise DatasetError(f"--dataset {text}: not fetched yet; run `bench datasets fetch svhn --split {split}`")
    if not path.exists():
        raise DatasetError(f"--dataset {text}: no such file or folder; give a folder with "
                           f"{ANNOTATIONS} or {DIGITSTRUCT}, or 'synthetic'")
    if path.is_file() and path.name == ANNOTATIONS:
        return load_jsonl_folder(path.parent)
    if path.is_file() and path.name == DIGITSTRUCT:
        return load_digitstruct_folder(path.parent)
    if os.path.lexists(path / ANNOTATIONS):
        return load_jsonl_folder(path)
    if os.path.lexists(path / DIGITSTRUCT):
        return load_digitstruct_folder(path)
    raise DatasetError(f"--dataset {text}: found neither {ANNOTATIONS} nor {DIGITSTRUCT} in it; "
                       "point at a dataset folder")


def check_boxes(image: str, boxes: list[TrueDigit], width: int | None, height: int | None) -> str | None:
    """A one-line problem when a box is degenerate or lies wholly outside the photo."""
    for index, digit in enumerate(boxes, 1):
        box = digit.box
        if box.width <= 0 or box.height <= 0:
            return f"{image}: box {index} has no area ({box.width:g}x{box.height:g}); fix the annotation"
        if width is not None and height is not None:
            if box.right <= 0 or box.bottom <= 0 or box.left >= width or box.top >= height:
                return (f"{image}: box {index} (left={box.left:g}, top={box.top:g}, {box.width:g}x{box.height:g}) "
                        f"lies outside the {width}x{height} photo; fix the annotation")
    return None


def _whole(value: Any, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise EntryProblem(f"{what} must be a number, not {shown(value)}")
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        raise EntryProblem(f"{what} {value!r} is not a whole number")
    if not low <= value <= high:
        raise EntryProblem(f"{what} {shown(value)} is not {low} to {high}")
    return int(value)


def _coordinate(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise EntryProblem(f"{what} must be a number, not {shown(value)}")
    if isinstance(value, int) and abs(value) > MAX_COORDINATE:
        raise EntryProblem(f"{what} {shown(value)} is not within +-{MAX_COORDINATE:g} pixels")
    number = float(value)
    if not math.isfinite(number) or abs(number) > MAX_COORDINATE:
        raise EntryProblem(f"{what} {value!r} is not within +-{MAX_COORDINATE:g} pixels")
    return number


def _boxes(raw: Any) -> list[TrueDigit]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise EntryProblem(f"'boxes' must be a list, not {type(raw).__name__}")
    if len(raw) > MAX_BOXES:
        raise EntryProblem(f"'boxes' holds {len(raw)} boxes (at most {MAX_BOXES})")
    boxes = []
    for index, item in enumerate(raw, 1):
        if not isinstance(item, dict):
            raise EntryProblem(f"box {index} must be an object with label, left, top, width, height")
        missing = [key for key in ("label", "left", "top", "width", "height") if key not in item]
        if missing:
            raise EntryProblem(f"box {index} lacks {', '.join(missing)}")
        label = _whole(item["label"], f"box {index} label", 0, 10)
        left, top, width, height = (_coordinate(item[key], f"box {index} {key}")
                                    for key in ("left", "top", "width", "height"))
        boxes.append(TrueDigit(0 if label == 10 else label, Box(left, top, width, height)))
    return boxes


def _label(raw: Any) -> str:
    if isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw < 10**MAX_BOXES:
        return str(raw)
    if isinstance(raw, str) and len(raw) <= MAX_BOXES and all(c in "0123456789" for c in raw):
        return raw
    raise EntryProblem(f"label {shown(raw)} is not a number written in digits 0-9")


def _disagreement(label: str, boxes: list[TrueDigit]) -> str | None:
    digits = "".join(str(d.label) for d in boxes)
    if sorted(label) == sorted(digits):
        return None
    if not boxes:
        return f"label {label!r} has no boxes"
    return f"label {label!r} disagrees with its boxes (they hold {digits!r})"


def path_problem(image: str) -> str | None:
    """Why an image path a dataset names may not be followed (absolute, or leaving the folder)."""
    pure = PurePosixPath(image)
    if pure.is_absolute() or image.startswith("~") or PureWindowsPath(image).drive:
        return f"image path {image!r} is absolute; give a path relative to the dataset folder"
    if ".." in pure.parts or ".." in PureWindowsPath(image).parts:
        return f"image path {image!r} leaves the dataset folder (..); give a path inside it"
    return None


def _refuse(message: str):
    def read() -> bytes:
        raise PhotoError(message)

    return read


class _Entries:
    """Turns raw entries (JSONL objects or digitStruct records) into photos: every value validated,
    duplicates dropped with a note, a bad value recorded on its photo."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.photos: list[Photo] = []
        self.problems: list[str] = []
        self.seen: dict[str, str] = {}

    def add(self, raw: dict, where: str, unit: str = "line") -> None:
        """Add the photo of one entry, or note why the entry is skipped (``unit``: line or entry)."""
        image = raw.get("image")
        problem = text_problem(image, "'image'")
        if problem:
            self.problems.append(f"{where}: bad annotation ({problem}); {unit} skipped, fix or delete it")
            return
        key = posixpath.normpath(image.replace("\\", "/"))
        if key in self.seen:
            self.problems.append(f"{where}: image {image!r} is listed again (first at {self.seen[key]}); "
                                 "the duplicate is skipped, delete it")
            return
        self.seen[key] = where
        name = f"{where} ({image})"
        label, truth, width, height = "", [], None, None
        problem = path_problem(image)
        if problem is None:
            try:
                width = None if raw.get("width") is None else _whole(raw["width"], "width", 1, MAX_SIDE)
                height = None if raw.get("height") is None else _whole(raw["height"], "height", 1, MAX_SIDE)
                truth = _boxes(raw.get("boxes"))
                label = _label(raw["label"]) if raw.get("label") is not None else "".join(str(d.label) for d in truth)
                problem = _disagreement(label, truth)
            except EntryProblem as exc:
                problem = str(exc)
        if problem:
            problem = f"{name}: {problem}; fix the annotation"
        else:
            problem = check_boxes(name, truth, width, height)
        source = self.root / image
        read = _refuse(problem) if problem else reader_inside(self.root, image)
        self.photos.append(Photo(image=image, label=label, truth=truth, read_bytes=read, source=str(source),
                                 problem=problem, width=width, height=height))


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _read_annotations(path: Path) -> bytes:
    try:
        return read_inside(path.parent, path.name, MAX_ANNOTATION_BYTES)
    except PhotoError as exc:
        raise DatasetError(str(exc).replace("a photo file", "an annotations file")) from None


def _text_fingerprint(data: bytes) -> str:
    """The fingerprint of the file's text as earlier versions took it (universal newlines)."""
    return _fingerprint_of(data.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n"))


def load_jsonl_folder(root: Path) -> Dataset:
    """Read ``root/annotations.jsonl``; a malformed line is reported and skipped, not fatal.

    Only regular files inside ``root`` are read; a bad value (a path leaving the folder, a
    non-finite or out-of-range number, a label that disagrees with its boxes) makes its photo an
    error record; a duplicate photo is skipped with a note.
    """
    ann = root / ANNOTATIONS
    entries = _Entries(root)
    data = _read_annotations(ann)
    for number, raw_line in enumerate(data.removeprefix(b"\xef\xbb\xbf").split(b"\n"), 1):
        where = f"{ann}:{number}"
        try:
            line = raw_line.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError:
            entries.problems.append(f"{where}: not valid UTF-8; line skipped, fix or delete it")
            continue
        if not line.strip():
            continue
        try:
            raw = json.loads(line, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:
            message = exc.msg if isinstance(exc, json.JSONDecodeError) else first_line(exc, type(exc).__name__)
            entries.problems.append(f"{where}: not valid JSON ({shorten(message)}); line skipped, fix or delete it")
            continue
        if not isinstance(raw, dict):
            entries.problems.append(f"{where}: not a JSON object; line skipped, fix or delete it")
            continue
        entries.add(raw, where)
    if not entries.photos:
        problems = entries.problems
        raise DatasetError(f"{ann}: no usable photos" + (f" ({problems[0]})" if problems else "; the file is empty"))
    return Dataset(name=root.name, root=str(root), photos=entries.photos, problems=entries.problems,
                   fingerprint=_text_fingerprint(data),
                   description=f"{len(entries.photos)} photos from {ann}")


def load_digitstruct_folder(root: Path) -> Dataset:
    """Read an official SVHN split folder (``digitStruct.mat``, MATLAB v7.3 / HDF5), validated as
    :func:`load_jsonl_folder` validates its lines."""
    from bench.digitstruct import read_digitstruct

    mat = root / DIGITSTRUCT
    if not inside(root, mat) or not Path(os.path.realpath(mat)).is_file():
        raise DatasetError(f"{mat}: not a regular file inside {root}; give the extracted SVHN folder")
    problems: list[str] = []
    raw_entries = read_digitstruct(mat, problems)
    entries = _Entries(root)
    entries.problems.extend(problems)
    for index, entry in enumerate(raw_entries, 1):
        entries.add(entry, f"{mat} entry {index}", "entry")
    if not entries.photos:
        raise DatasetError(f"{mat}: holds no usable photos" + (f" ({entries.problems[0]})" if entries.problems
                                                                else "; check the file"))
    return Dataset(name=root.name, root=str(root), photos=entries.photos, problems=entries.problems,
                   fingerprint=_fingerprint_of(mat.stat().st_size, [(p.image, p.label) for p in entries.photos]),
                   description=f"{len(entries.photos)} photos from {mat}")
