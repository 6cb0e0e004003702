"""Download an official SVHN split, check it, extract it and convert it to the JSONL layout.

Result: ``<dest>/svhn-<split>/annotations.jsonl`` and ``images/N.png``, the layout of
:func:`bench.dataset.load_jsonl_folder`. Only photos and ``digitStruct.mat`` are extracted;
members with unsafe paths are refused.
"""
from __future__ import annotations

import hashlib
import json
import math
import shutil
import tarfile
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.dataset import ANNOTATIONS, DIGITSTRUCT, data_home, path_problem
from bench.digitstruct import read_digitstruct
from bench.errors import DatasetError, PhotoError, UsageError
from bench.photos import decode_rgb, read_inside

DESCRIPTORS = Path(__file__).resolve().parent.parent / "datasets"
CHUNK = 1 << 20


@dataclass(frozen=True)
class SplitSource:
    """Where one split's archive is and what it must hold."""

    dataset: str
    split: str
    url: str
    images: int
    sha256: str


def split_source(dataset: str, split: str, base_url: str | None = None, sha256: str | None = None) -> SplitSource:
    """The descriptor of ``dataset``/``split`` from ``datasets/<dataset>.toml``."""
    path = DESCRIPTORS / f"{dataset}.toml"
    if not path.is_file():
        known = ", ".join(p.stem for p in DESCRIPTORS.glob("*.toml")) or "none"
        raise UsageError(f"datasets fetch: unknown dataset {dataset!r} (known: {known})")
    descriptor = tomllib.loads(path.read_text(encoding="utf-8"))
    splits = descriptor.get("splits", {})
    if split not in splits:
        raise UsageError(f"--split {split}: {dataset} has splits {', '.join(splits)}")
    entry = splits[split]
    base = (base_url or descriptor["base_url"]).rstrip("/") + "/"
    return SplitSource(dataset, split, base + entry["archive"], int(entry["images"]),
                       (sha256 or entry.get("sha256") or "").lower())


def download(url: str, target: Path, progress: Callable[[int, int | None], None] | None = None,
             timeout: float = 60.0) -> str:
    """Stream ``url`` to ``target`` (via a partial file) and return its sha256."""
    digest = hashlib.sha256()
    partial = target.with_suffix(target.suffix + ".partial")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(partial, "wb") as out:
            total = response.headers.get("Content-Length")
            total = int(total) if total else None
            done = 0
            while chunk := response.read(CHUNK):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
        if total is not None and done != total:
            raise DatasetError(f"{url}: download stopped at {done} of {total} bytes; run the fetch again")
    except (urllib.error.URLError, OSError) as exc:
        partial.unlink(missing_ok=True)
        reason = getattr(exc, "reason", None) or exc
        raise DatasetError(f"{url}: download failed ({reason}); check the network or pass --base-url") from None
    partial.replace(target)
    return digest.hexdigest()


def _safe_members(archive: tarfile.TarFile, folder: Path):
    for member in archive:
        name = Path(member.name)
        if member.isfile() and not name.is_absolute() and ".." not in name.parts and (
                name.suffix.lower() == ".png" or name.name == DIGITSTRUCT):
            member.name = name.name if name.name == DIGITSTRUCT else f"images/{name.name}"
            yield member


def extract(archive_path: Path, folder: Path) -> None:
    """Extract the photos to ``folder/images`` and ``digitStruct.mat`` to ``folder``."""
    try:
        with tarfile.open(archive_path, "r:gz") as archive:
            archive.extractall(folder, members=_safe_members(archive, folder), filter="data")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DatasetError(f"{archive_path}: damaged archive ({exc}); delete it and fetch again") from None


def convert(folder: Path) -> int:
    """Write ``annotations.jsonl`` from ``digitStruct.mat``; returns the number of photos."""
    entries = read_digitstruct(folder / DIGITSTRUCT)
    lines = []
    for entry in entries:
        width = height = None
        try:
            if path_problem(entry["image"]) is None:
                data = read_inside(folder / "images", entry["image"])
                height, width = decode_rgb(data, entry["image"]).shape[:2]
        except PhotoError:
            pass
        label = "".join(str(b["label"]) for b in entry["boxes"])
        boxes = [{key: value if math.isfinite(value) else None for key, value in box.items()} for box in entry["boxes"]]
        lines.append(json.dumps({"image": f"images/{entry['image']}", "label": label, "width": width,
                                 "height": height, "boxes": boxes}, allow_nan=False))
    (folder / ANNOTATIONS).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines)


def fetch_split(source: SplitSource, dest: Path | None = None,
                progress: Callable[[int, int | None], None] | None = None, keep_archive: bool = False) -> Path:
    """Download, verify, extract and convert one split; returns the dataset folder."""
    dest = Path(dest) if dest else data_home()
    folder = dest / f"{source.dataset}-{source.split}"
    if (folder / ANNOTATIONS).is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    archive = dest / Path(source.url).name
    sha256 = download(source.url, archive, progress)
    if source.sha256 and sha256 != source.sha256:
        archive.unlink(missing_ok=True)
        raise DatasetError(f"{source.url}: sha256 {sha256} does not match the expected {source.sha256}; "
                           "the download is corrupt or the file changed upstream")
    extract(archive, folder)
    if not (folder / DIGITSTRUCT).is_file():
        raise DatasetError(f"{source.url}: the archive holds no {DIGITSTRUCT}; is it an SVHN format-1 archive?")
    count = len(list((folder / "images").glob("*.png")))
    if count != source.images:
        shutil.rmtree(folder)
        raise DatasetError(f"{source.url}: {count} photos, expected {source.images}; delete the archive and "
                           "fetch again")
    convert(folder)
    (folder / "SOURCE.json").write_text(json.dumps({"url": source.url, "sha256": sha256}, indent=2) + "\n")
    if not keep_archive:
        archive.unlink(missing_ok=True)
    return folder
