"""Datasets: a folder of ``annotations.jsonl`` + ``images/``, an official SVHN split folder
with ``digitStruct.mat``, a fetched SVHN split by name, or the embedded synthetic default."""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from bench.errors import DatasetError
from bench.photos import Photo, read_file
from bench.results.metadata import DatasetInfo
from bench.results.records import Box, TrueDigit

ANNOTATIONS = "annotations.jsonl"
DIGITSTRUCT = "digitStruct.mat"
SYNTHETIC = "synthetic"


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
        """The first ``limit`` photos (all of them when ``limit`` is None)."""
        if limit is None or limit >= len(self.photos):
            return self
        return Dataset(self.name, self.root, self.photos[:limit], self.problems,
                       _fingerprint_of(self.fingerprint, limit), self.description)

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
    if (path / ANNOTATIONS).is_file():
        return load_jsonl_folder(path)
    if (path / DIGITSTRUCT).is_file():
        return load_digitstruct_folder(path)
    raise DatasetError(f"--dataset {text}: found neither {ANNOTATIONS} nor {DIGITSTRUCT} in it; "
                       "point at a dataset folder")


def check_boxes(image: str, boxes: list[TrueDigit], width: int | None, height: int | None) -> str | None:
    """A one-line problem when a box is degenerate or lies wholly outside the photo."""
    for index, digit in enumerate(boxes, 1):
        box = digit.box
        if box.width <= 0 or box.height <= 0:
            return f"{image}: box {index} has no area ({box.width}x{box.height}); fix the annotation"
        if width is not None and height is not None:
            if box.right <= 0 or box.bottom <= 0 or box.left >= width or box.top >= height:
                return (f"{image}: box {index} (left={box.left:g}, top={box.top:g}, {box.width:g}x{box.height:g}) "
                        f"lies outside the {width}x{height} photo; fix the annotation")
    return None


def _parse_entry(raw: dict, where: str) -> tuple[str, str, list[TrueDigit], int | None, int | None]:
    image = raw["image"]
    if not isinstance(image, str) or not image:
        raise ValueError("'image' must be a non-empty string")
    boxes = []
    for item in raw.get("boxes", []):
        label = int(item["label"])
        if label == 10:
            label = 0
        if not 0 <= label <= 9:
            raise ValueError(f"digit label {label} is not 0-9")
        boxes.append(TrueDigit(label, Box(float(item["left"]), float(item["top"]),
                                          float(item["width"]), float(item["height"]))))
    label = str(raw.get("label", "".join(str(d.label) for d in boxes)))
    width = raw.get("width")
    height = raw.get("height")
    return image, label, boxes, (int(width) if width is not None else None), (int(height) if height is not None else None)


def load_jsonl_folder(root: Path) -> Dataset:
    """Read ``root/annotations.jsonl``; a malformed line is reported and skipped, not fatal."""
    ann = root / ANNOTATIONS
    photos: list[Photo] = []
    problems: list[str] = []
    try:
        text = ann.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{ann}: cannot be read ({exc}); check the file") from None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{ann}:{number}"
        try:
            raw = json.loads(line)
            if not isinstance(raw, dict):
                raise ValueError("not a JSON object")
            image, label, boxes, width, height = _parse_entry(raw, where)
        except json.JSONDecodeError as exc:
            problems.append(f"{where}: not valid JSON ({exc.msg}); line skipped, fix or delete it")
            continue
        except (KeyError, TypeError, ValueError) as exc:
            problems.append(f"{where}: bad annotation ({exc!r}); line skipped, fix or delete it")
            continue
        path = root / image
        photo = Photo(image=image, label=label, truth=boxes, read_bytes=read_file(path),
                      source=str(path), width=width, height=height)
        photo.problem = check_boxes(f"{where} ({image})", boxes, width, height)
        photos.append(photo)
    if not photos:
        raise DatasetError(f"{ann}: no usable photos" + (f" ({problems[0]})" if problems else "; the file is empty"))
    return Dataset(name=root.name, root=str(root), photos=photos, problems=problems,
                   fingerprint=_fingerprint_of(text), description=f"{len(photos)} photos from {ann}")


def load_digitstruct_folder(root: Path) -> Dataset:
    """Read an official SVHN split folder (``digitStruct.mat``, MATLAB v7.3 / HDF5)."""
    from bench.digitstruct import read_digitstruct

    mat = root / DIGITSTRUCT
    entries = read_digitstruct(mat)
    photos = []
    for entry in entries:
        path = root / entry["image"]
        boxes = [TrueDigit(b["label"], Box(b["left"], b["top"], b["width"], b["height"])) for b in entry["boxes"]]
        photo = Photo(image=entry["image"], label="".join(str(b.label) for b in boxes), truth=boxes,
                      read_bytes=read_file(path), source=str(path))
        photo.problem = check_boxes(f"{mat} ({entry['image']})", boxes, None, None)
        photos.append(photo)
    if not photos:
        raise DatasetError(f"{mat}: holds no photos; check the file")
    return Dataset(name=root.name, root=str(root), photos=photos,
                   fingerprint=_fingerprint_of(mat.stat().st_size, [(p.image, p.label) for p in photos]),
                   description=f"{len(photos)} photos from {mat}")
