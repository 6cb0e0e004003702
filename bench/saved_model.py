"""Identity of a TensorFlow SavedModel folder."""
from __future__ import annotations

import hashlib
from pathlib import Path


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
