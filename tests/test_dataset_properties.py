"""Property-based checks of the dataset loaders (issue 15): any annotations.jsonl or digitStruct.mat
either loads, or gives one line naming the file; every photo either decodes or is one line; nothing
outside the dataset folder is ever opened, and nothing blocks."""
from __future__ import annotations

import json
import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.dataset import load_dataset
from bench.digitstruct import write_digitstruct
from bench.errors import DatasetError, PhotoError
from tests.conftest import png_bytes

PROPERTY = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PNG = png_bytes(np.full((20, 40, 3), 90, np.uint8))

_watch: dict = {"root": None, "outside": []}


def _audit(event: str, args: tuple) -> None:
    root = _watch["root"]
    if root is None or event != "open" or not isinstance(args[0], (str, bytes, os.PathLike)):
        return
    path = os.fsdecode(args[0])
    real = os.path.realpath(path)
    allowed = (root, os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix), "/dev/urandom", "/proc/")
    if not real.startswith(allowed) and "site-packages" not in real and "__pycache__" not in real:
        _watch["outside"].append(real)


sys.addaudithook(_audit)


@contextmanager
def watched(root: Path):
    """Record every file opened outside ``root`` while the block runs."""
    _watch["root"], _watch["outside"] = os.path.realpath(root), []
    try:
        yield _watch["outside"]
    finally:
        _watch["root"] = None


def make_folder(base: Path) -> Path:
    """A dataset folder with a photo, a link out, a pipe, and a secret photo beside the folder."""
    (base / "secret.png").write_bytes(PNG)
    root = base / "data"
    (root / "images").mkdir(parents=True)
    (root / "images" / "a.png").write_bytes(PNG)
    (root / "images" / "broken.png").write_bytes(PNG[:30])
    (root / "images" / "out.png").symlink_to(base / "secret.png")
    os.mkfifo(root / "images" / "pipe.png")
    return root


def check(root: Path, annotation_file: str) -> None:
    """Load and read every photo under watch; assert the one-line contract."""
    with watched(root) as outside:
        try:
            dataset = load_dataset(root)
        except DatasetError as exc:
            message = str(exc)
            assert "\n" not in message and annotation_file in message, message
            dataset = None
        if dataset is not None:
            for problem in dataset.problems:
                assert "\n" not in problem and annotation_file in problem, problem
            for photo in dataset.photos:
                try:
                    photo.load()
                except PhotoError as exc:
                    assert "\n" not in str(exc), str(exc)
            json.dumps([p.image for p in dataset.photos], allow_nan=False).encode("utf-8")
            json.dumps([[d.box.left, d.box.width] for p in dataset.photos for d in p.truth], allow_nan=False)
    assert outside == [], f"opened outside the dataset folder: {outside}"


IMAGES = st.one_of(st.sampled_from(["images/a.png", "images/broken.png", "images/out.png", "images/pipe.png",
                                    "images", "images/missing.png", "../secret.png", "images/../../secret.png",
                                    "/etc/passwd", "~/x.png", "C:\\x.png", "images/./a.png", "", ".", "/dev/zero"]),
                   st.text(max_size=20))
NUMBERS = st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([0, 1, 10, 11, 10**400, True, None, "5", [], {}]))
BOX = st.fixed_dictionaries({}, optional={key: NUMBERS for key in ("label", "left", "top", "width", "height")})
JSON = st.recursive(st.none() | st.booleans() | NUMBERS | st.text(max_size=10),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
                    max_leaves=12)
ENTRY = st.fixed_dictionaries({}, optional={
    "image": IMAGES, "label": st.one_of(st.text(alphabet="0123456789a ", max_size=4), NUMBERS),
    "width": NUMBERS, "height": NUMBERS, "boxes": st.one_of(st.lists(BOX, max_size=4), JSON)})


def _dumps(value) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)
    except (ValueError, TypeError):
        return json.dumps(value)


LINE = st.one_of(ENTRY.map(_dumps), JSON.map(_dumps), st.text(max_size=40),
                 st.sampled_from(["", "{", "[" * 5000, '{"image": "images/a.png", "width": NaN}',
                                  '{"image": "images/a.png", "label": "1"} trailing']))
RAW = st.one_of(st.lists(LINE, max_size=8).map(lambda lines: "\n".join(lines).encode("utf-8", "surrogatepass")),
                st.binary(max_size=200))


@PROPERTY
@given(data=RAW)
def test_any_annotations_file_loads_or_is_one_line_and_never_reads_outside(data: bytes):
    with tempfile.TemporaryDirectory() as tmp:
        root = make_folder(Path(tmp))
        (root / "annotations.jsonl").write_bytes(data)
        check(root, "annotations.jsonl")


def _write_struct(path: Path, entries: list[dict]) -> None:
    try:
        write_digitstruct(path, entries)
    except (ValueError, TypeError, OverflowError):
        path.write_bytes(b"")


STRUCT_BOX = st.fixed_dictionaries({key: st.floats(allow_nan=True, allow_infinity=True, width=32)
                                    for key in ("label", "left", "top", "width", "height")})
STRUCT_ENTRY = st.fixed_dictionaries({"image": IMAGES.filter(lambda s: all(ord(c) < 0xFFFF for c in s)),
                                      "boxes": st.lists(STRUCT_BOX, min_size=1, max_size=3)})
MUTATIONS = st.lists(st.sampled_from(["drop-name", "drop-left", "string-left", "group-name", "external-link",
                                      "truncate", "garbage", "huge-name", "scalar-name"]), max_size=2)


def _mutate(path: Path, mutation: str, base: Path) -> None:
    import h5py

    if mutation == "truncate":
        path.write_bytes(path.read_bytes()[: max(1, path.stat().st_size // 3)])
        return
    if mutation == "garbage":
        path.write_bytes(b"\x89HDF\r\n\x1a\n" + os.urandom(64))
        return
    try:
        with h5py.File(path, "r+") as f:
            group = f["digitStruct"]
            first_box = f[group["bbox"][0, 0]]
            if mutation == "drop-name":
                del group["name"]
            elif mutation == "drop-left":
                del first_box["left"]
            elif mutation == "string-left":
                del first_box["left"]
                first_box["left"] = np.array([b"abc"])
            elif mutation == "group-name":
                del group["name"]
                group.create_group("name")
            elif mutation == "external-link":
                write_digitstruct(base / "other.mat", [{"image": "../secret.png", "boxes": []}])
                del f["digitStruct"]
                f["digitStruct"] = h5py.ExternalLink(str(base / "other.mat"), "/digitStruct")
            elif mutation == "huge-name":
                target = f[group["name"][0, 0]]
                del f[target.name]
                f.create_dataset(target.name, data=np.full((5000, 1), 65, np.uint16))
            elif mutation == "scalar-name":
                del group["name"]
                group["name"] = 3.0
    except (OSError, KeyError, TypeError, ValueError):
        pass  # an earlier mutation left nothing for this one to change (e.g. "name" already a group)


@PROPERTY
@given(entries=st.lists(STRUCT_ENTRY, min_size=1, max_size=4), mutations=MUTATIONS)
def test_any_digitstruct_loads_or_is_one_line_and_never_reads_outside(entries, mutations):
    with tempfile.TemporaryDirectory() as tmp:
        root = make_folder(Path(tmp))
        mat = root / "digitStruct.mat"
        _write_struct(mat, entries)
        for mutation in mutations:
            _mutate(mat, mutation, Path(tmp))
        check(root, "digitStruct.mat")
