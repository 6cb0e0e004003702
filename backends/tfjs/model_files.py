"""The TF.js model a row serves: where it is, whether it is intact, and its identity.

A row's model is one graph-model folder (``model.json`` + weight shards). It comes either from a
SavedModel (its converted variant, see :mod:`bench.tfjs_convert`) or from a folder given as is.
Checks here run before any browser starts, so a broken model is one clear line.
"""
from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.errors import ModelError, UsageError
from bench.saved_model import is_saved_model
from bench.tfjs_convert import METADATA_NAME, QUANTIZATIONS, is_current, variant_dir

MODELS_DIR_HINT = "train and export the detector (`bench model train`, `bench model export`)"
BYTES_PER_VALUE = {"float32": 4, "int32": 4, "bool": 1, "uint8": 1, "uint16": 2, "float16": 2}


@dataclass(frozen=True)
class TfjsModel:
    """An intact TF.js graph model folder."""

    folder: Path
    quantization: str
    weights_bytes: int
    sha256: str
    shards: tuple[str, ...]

    @property
    def model_json(self) -> Path:
        return self.folder / "model.json"


def _manifest_quantization(manifest: list[dict]) -> str:
    dtypes = {spec.get("quantization", {}).get("dtype", "none") for group in manifest for spec in group["weights"]}
    dtypes.discard("none")
    return dtypes.pop() if len(dtypes) == 1 else ("none" if not dtypes else "mixed")


def _expected_bytes(manifest: list[dict]) -> int:
    total = 0
    for group in manifest:
        for spec in group["weights"]:
            dtype = spec.get("quantization", {}).get("dtype") or spec["dtype"]
            total += math.prod(spec["shape"]) * BYTES_PER_VALUE.get(dtype, 4)
    return total


def read_model(folder: Path) -> TfjsModel:
    """Check a graph-model folder and describe it; raises :class:`ModelError` with one line."""
    path = Path(folder) / "model.json"
    if not path.is_file():
        raise ModelError(f"{path}: not found; convert the model first (`bench model convert SAVED_MODEL`)")
    raw = path.read_bytes()
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: not valid JSON ({exc}); convert the model again") from None
    manifest = data.get("weightsManifest") if isinstance(data, dict) else None
    if not isinstance(manifest, list) or "modelTopology" not in data:
        raise ModelError(f"{path}: no modelTopology/weightsManifest, not a TF.js graph model; convert it again")
    try:
        shards = tuple(p for group in manifest for p in group["paths"])
        expected = _expected_bytes(manifest)
    except (KeyError, TypeError) as exc:
        raise ModelError(f"{path}: malformed weightsManifest (missing {exc}); convert the model again") from None
    digest = hashlib.sha256(raw)
    actual = 0
    for name in shards:
        shard = path.parent / name
        if not shard.is_file():
            raise ModelError(f"{shard}: weights shard listed in model.json is missing; convert the model again")
        data_bytes = shard.read_bytes()
        actual += len(data_bytes)
        digest.update(data_bytes)
    if actual != expected:
        raise ModelError(f"{path.parent}: weights shards hold {actual} bytes but model.json describes {expected} "
                         "(a truncated or foreign shard); convert the model again")
    return TfjsModel(Path(folder), _manifest_quantization(manifest), actual, digest.hexdigest(), shards)


def declared_quantization(folder: Path) -> str | None:
    """The weight quantization a TF.js folder's model.json declares, or ``None`` when it cannot be read."""
    try:
        manifest = json.loads((Path(folder) / "model.json").read_text()).get("weightsManifest")
        return _manifest_quantization(manifest)
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        return None


def default_quantizations(source: Path) -> tuple[str, ...]:
    """Rows without ``--quantization``: float32 of a SavedModel, or what a TF.js folder holds."""
    if is_saved_model(source):
        return ("none",)
    declared = declared_quantization(source)
    return (declared,) if declared in QUANTIZATIONS else ("none",)


def model_metadata(folder: Path) -> dict:
    """The detector's own description (``digitbench.json``: threshold, input mapping), or ``{}``."""
    for path in (Path(folder) / METADATA_NAME, Path(folder) / "assets.extra" / METADATA_NAME):
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            continue
    return {}


def source_problem(source: Path, default: bool, quantizations: tuple[str, ...]) -> str | None:
    """Why ``source`` (``--tfjs-model``, or the ``default`` detector) cannot serve these rows."""
    if default and not is_saved_model(source):
        return f"no detector at {source}: {MODELS_DIR_HINT}, or pass --tfjs-model"
    if not source.is_dir():
        return f"--tfjs-model {source}: no such folder"
    if is_saved_model(source):
        return None
    if not (source / "model.json").is_file():
        return f"--tfjs-model {source}: neither a SavedModel (saved_model.pb) nor a TF.js model (model.json)"
    if len(quantizations) > 1:
        return f"--tfjs-model {source} is one converted TF.js model; give the SavedModel to compare quantizations"
    return None


def ensure_converted(saved_model: Path, quantization: str) -> Path:
    """The variant's folder, converted first if missing or stale (in a child process: TF stays out of this one)."""
    if not is_current(saved_model, quantization):
        done = subprocess.run([sys.executable, "-m", "bench.cli", "model", "convert", str(saved_model), "--quantization",
                               quantization], capture_output=True, text=True)
        if done.returncode != 0:
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            errors = [line.removeprefix("bench: error: ") for line in lines if line.startswith("bench: error: ")]
            raise ModelError(errors[-1] if errors else (lines[-1] if lines else f"conversion exit {done.returncode}"))
    return variant_dir(saved_model, quantization)


def load_variant(source: Path, quantization: str) -> TfjsModel:
    """The checked TF.js model serving ``quantization`` of a SavedModel or of a TF.js folder."""
    if is_saved_model(source):
        return read_model(ensure_converted(source, quantization))
    model = read_model(source)
    if model.quantization != quantization:
        raise UsageError(f"--tfjs-model {source} holds {model.quantization} weights, not {quantization}; "
                         f"pass --quantization {model.quantization}")
    return model
