"""Photos of a dataset: where they come from, their true digits, and their decoded pixels."""
from __future__ import annotations

import io
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.errors import PhotoError
from bench.results.records import TrueDigit

MAX_MEGAPIXELS = 50.0
"""Photos larger than this are refused (a house-number photo is well under 1 MP)."""


@dataclass
class Photo:
    """One dataset entry: an image (by the name the dataset gives it) and its true number.

    ``read_bytes`` returns the encoded file (a path read, or a synthetic photo rendered);
    ``problem`` holds an annotation problem that makes the photo unusable.
    """

    image: str
    label: str
    truth: list[TrueDigit]
    read_bytes: Callable[[], bytes]
    source: str = ""
    problem: str | None = None
    width: int | None = None
    height: int | None = None

    def load(self, max_megapixels: float = MAX_MEGAPIXELS) -> LoadedPhoto:
        """Read and decode the photo; raises :class:`PhotoError` with a one-line reason."""
        if self.problem:
            raise PhotoError(self.problem)
        try:
            data = self.read_bytes()
        except FileNotFoundError:
            raise PhotoError(f"{self.source or self.image}: file not found; check the dataset folder") from None
        except OSError as exc:
            raise PhotoError(f"{self.source or self.image}: cannot be read ({exc.strerror or exc})") from None
        rgb = decode_rgb(data, self.source or self.image, max_megapixels)
        return LoadedPhoto(photo=self, rgb=rgb, encoded=data)


@dataclass
class LoadedPhoto:
    """A decoded photo as backends receive it: RGB pixels and the original encoded bytes."""

    photo: Photo
    rgb: np.ndarray
    encoded: bytes
    cache: dict = field(default_factory=dict)

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])


def decode_rgb(data: bytes, name: str, max_megapixels: float = MAX_MEGAPIXELS) -> np.ndarray:
    """Decode image bytes to an HxWx3 uint8 array, refusing empty, corrupt and huge images."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise PhotoError(f"{name}: empty file (0 bytes); replace it or remove it from the annotations")
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            megapixels = width * height / 1e6
            if width == 0 or height == 0:
                raise PhotoError(f"{name}: image has zero size ({width}x{height}); replace it")
            if megapixels > max_megapixels:
                raise PhotoError(
                    f"{name}: image is {width}x{height} ({megapixels:.0f} MP), over the "
                    f"{max_megapixels:g} MP limit; crop or resize it, or raise --max-megapixels")
            img.load()
            rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
    except PhotoError:
        raise
    except UnidentifiedImageError:
        raise PhotoError(f"{name}: not an image PIL can read (PNG, JPEG, ...); replace it") from None
    except Image.DecompressionBombError as exc:
        pixels = str(exc).split("(")[1].split(" pixels")[0] if "pixels)" in str(exc) else "too many"
        raise PhotoError(f"{name}: image has {pixels} pixels, over the {max_megapixels:g} MP limit; "
                         "crop or resize it") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise PhotoError(f"{name}: corrupt or truncated image ({exc}); replace it") from None
    return np.ascontiguousarray(rgb)


def read_file(path: Path) -> Callable[[], bytes]:
    """A reader for a photo on disk (a path the user gave, not one a dataset names: see :func:`read_inside`)."""
    return path.read_bytes


MAX_FILE_BYTES = 256 * 2**20
"""The largest photo file read (a 50 MP PNG stays well under it)."""


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a pipe"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def inside(root: Path, path: Path) -> bool:
    """Whether ``path``, every link followed, lies inside ``root``."""
    return Path(os.path.realpath(path)).is_relative_to(Path(os.path.realpath(root)))


def read_inside(root: Path, relative: str, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of the regular file ``root/relative``, refusing anything that is not one inside ``root``.

    A link that leads out of ``root``, a folder, pipe, device or socket, and a file over
    ``max_bytes`` are a :class:`PhotoError` naming the path: nothing outside the dataset is read, and
    nothing blocks (a pipe is opened non-blocking and refused before any read).
    """
    path = Path(root) / relative
    real = Path(os.path.realpath(path))
    if not inside(root, path):
        raise PhotoError(f"{path}: leads outside the dataset folder {root} (a link?); only files inside it are read")
    try:
        info = os.stat(real)
    except FileNotFoundError:
        raise PhotoError(f"{path}: file not found; check the dataset folder") from None
    except OSError as exc:
        raise PhotoError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(info.st_mode):
        raise PhotoError(f"{path}: {_kind(info.st_mode)}, not a photo file; only regular files are read")
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise PhotoError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    with os.fdopen(fd, "rb") as handle:
        opened = os.fstat(handle.fileno())
        if not stat.S_ISREG(opened.st_mode) or (opened.st_dev, opened.st_ino) != (info.st_dev, info.st_ino):
            raise PhotoError(f"{path}: changed while being opened; only regular files inside the dataset are read")
        if opened.st_size > max_bytes:
            raise PhotoError(f"{path}: {opened.st_size} bytes, over the {max_bytes} byte limit of a photo file")
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise PhotoError(f"{path}: over the {max_bytes} byte limit of a photo file")
    return data


def reader_inside(root: Path, relative: str) -> Callable[[], bytes]:
    """A reader of ``root/relative`` through :func:`read_inside`."""
    return lambda: read_inside(root, relative)
