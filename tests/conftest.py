"""Shared fixtures: the ../shared data (skipped with a reason when absent) and tiny datasets."""
from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("SE_OFFLINE", "true")
os.environ.setdefault("NO_GCE_CHECK", "true")

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("DIGITBENCH_SHARED", ROOT.parent / "shared"))
SVHN_TEST_DEV = SHARED / "datasets" / "svhn" / "test-dev"
SVHN_TRAIN = SHARED / "datasets" / "svhn" / "train"


@pytest.fixture
def svhn_test_dev() -> Path:
    """The real SVHN test-dev photos from ../shared, or a skip that says why."""
    if not (SVHN_TEST_DEV / "annotations.jsonl").is_file():
        pytest.skip(f"real SVHN photos not found at {SVHN_TEST_DEV} (../shared is absent on this machine)")
    return SVHN_TEST_DEV


def png_bytes(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def write_jsonl_dataset(root: Path, entries: list[dict], images: dict[str, bytes]) -> Path:
    """A dataset folder in the annotations.jsonl + images/ layout."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    for name, data in images.items():
        (root / name).write_bytes(data)
    lines = [e if isinstance(e, str) else json.dumps(e) for e in entries]
    (root / "annotations.jsonl").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> Path:
    """Three synthetic photos written to disk in the JSONL layout, with their true boxes."""
    from bench.synthetic import render_photo

    entries, images = [], {}
    for index in range(3):
        photo = render_photo(7, index)
        name = f"images/{index + 1}.png"
        images[name] = photo.png
        entries.append({"image": name, "label": photo.label, "width": photo.width, "height": photo.height,
                        "boxes": [{"label": t.label, "left": t.box.left, "top": t.box.top,
                                   "width": t.box.width, "height": t.box.height} for t in photo.truth]})
    return write_jsonl_dataset(tmp_path / "tiny", entries, images)


@pytest.fixture(autouse=True)
def private_history_store(tmp_path_factory, monkeypatch):
    """Keep every test's runs out of the developer's reports/history.sqlite."""
    monkeypatch.setenv("DIGITBENCH_STORE", str(tmp_path_factory.mktemp("store") / "history.sqlite"))


@pytest.fixture(scope="session")
def od_api_export(tmp_path_factory) -> Path:
    """An OD-API-shaped detector exported and converted as a user would (see od_api_fixture.py):
    ``saved_model/``, ``label_map.pbtxt``, ``tfjs/none`` and ``tfjs/uint8`` (output names lost)."""
    tf = pytest.importorskip("tensorflow")
    _need_converter()
    from tests import od_api_fixture

    return od_api_fixture.export(tf, tmp_path_factory.mktemp("odapi") / "export", quantizations=("none", "uint8"))


@pytest.fixture(scope="session")
def od_api_two_output(tmp_path_factory) -> Path:
    """The two-output form (detection_boxes + detection_multiclass_scores), exported the same way."""
    tf = pytest.importorskip("tensorflow")
    _need_converter()
    from tests import od_api_fixture

    return od_api_fixture.export(tf, tmp_path_factory.mktemp("odapi2") / "export", two_output=True)


def _need_converter() -> None:
    from bench.tfjs_convert import ConversionError, import_converter

    try:
        import_converter()
    except ConversionError as exc:
        pytest.skip(str(exc))


def rendered_line(text: str, size: int = 40, pad: int = 20) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """``text`` set as one line of dark type on a light ground, and each character's x-extent."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf", size)
    image = Image.new("RGB", (int(font.getlength(text)) + 2 * pad, size + 2 * pad), (235, 235, 225))
    ImageDraw.Draw(image).text((pad, pad), text, font=font, fill=(20, 20, 20))
    extents = [(pad + font.getlength(text[:i]), pad + font.getlength(text[:i + 1])) for i in range(len(text))]
    return np.asarray(image), extents


def loaded_photo(rgb: np.ndarray, name: str = "x.png") -> LoadedPhoto:  # noqa: F821
    """A decoded photo as the runner hands it to a backend (no dataset behind it)."""
    from bench.photos import LoadedPhoto, Photo

    return LoadedPhoto(Photo(name, "", [], lambda: png_bytes(rgb)), rgb, png_bytes(rgb))
