"""A TensorFlow SavedModel folder: where ours is, what marks one, its identity and its metadata."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "models" / "digit_detector"
"""Our detector, exported by ``bench model export``."""
METADATA = Path("assets.extra") / "digitbench.json"
"""Where an export records the input mapping, class convention and default threshold."""


def converted_dir(saved_model: Path, kind: str) -> Path:
    """Where a SavedModel's converted forms of one ``kind`` live (``tfjs``, ``onnx``): beside its files,
    or beside the folder for an export whose SavedModel is a folder named ``saved_model``."""
    saved_model = Path(saved_model)
    base = saved_model.parent if saved_model.name == "saved_model" else saved_model
    return base / kind


def is_saved_model(folder: Path) -> bool:
    """Whether ``folder`` holds a TF SavedModel."""
    return (Path(folder) / "saved_model.pb").is_file()


def read_metadata(folder: Path) -> dict[str, Any]:
    """The model's ``assets.extra/digitbench.json`` (ours has one), or ``{}``."""
    try:
        data = json.loads((Path(folder) / METADATA).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def fingerprint(saved_model: Path) -> str:
    """SHA-256 over the SavedModel's graph and variables (paths and contents), nothing else.

    Files beside them (``assets.extra/``, converted ``tfjs/`` variants) do not change it, so the
    model's identity stays put when its TF.js variants are written next to it.
    """
    saved_model = Path(saved_model)
    digest = hashlib.sha256()
    files = [saved_model / "saved_model.pb"] + sorted((saved_model / "variables").glob("*"))
    for path in files:
        if path.is_file():
            digest.update(path.relative_to(saved_model).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()
