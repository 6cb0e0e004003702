"""Convert a TF SavedModel into one ONNX model with ``tf2onnx``, kept next to the SavedModel.

The ONNX model goes to ``<model>/onnx/model.onnx`` (for a SavedModel in a folder named
``saved_model``, next to that folder) with ``conversion.json`` naming the source fingerprint,
the converter, onnx and TensorFlow versions and the opset, and a copy of the model's
``assets.extra/digitbench.json``. A stale model (the SavedModel changed) is converted again; an
interrupted conversion never looks finished (written aside, then renamed into place).

``tf2onnx==1.17.0`` shares the project's TensorFlow 2.19 stack: it needs ``onnx``, and onnx
1.23 wants protobuf 6 while TensorFlow 2.19 keeps 5.29, so ``onnx==1.22.0`` is pinned (its
floor is protobuf 4.25.1). It runs as ``python -m tf2onnx.convert`` in a child process, its log
written to ``convert.log`` beside the output when it fails.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from bench.errors import ConversionError, UsageError, first_line
from bench.saved_model import METADATA, converted_dir, fingerprint as saved_model_fingerprint, is_saved_model

ONNX_FILE = "model.onnx"
CONVERSION_FILE = "conversion.json"
OPSET = 17
"""The opset the converted detector uses (ONNX Runtime Web 1.30 runs it on wasm)."""
INSTALL_HINT = "pip install tf2onnx==1.17.0 onnx==1.22.0 (see requirements.lock; `make setup` installs them)"


@dataclass(frozen=True)
class OnnxModel:
    """The ONNX model of a SavedModel, on disk."""

    path: Path
    bytes: int
    reused: bool


def onnx_dir(saved_model: Path) -> Path:
    """The folder that holds a SavedModel's ONNX model."""
    return converted_dir(saved_model, "onnx")


def conversion_record(saved_model: Path) -> dict:
    """What ``conversion.json`` says of the ONNX model beside ``saved_model`` ({} when absent)."""
    try:
        data = json.loads((onnx_dir(saved_model) / CONVERSION_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def is_current(saved_model: Path, fingerprint: str | None = None) -> bool:
    """Whether the ONNX model exists and was converted from this very SavedModel."""
    if not (onnx_dir(saved_model) / ONNX_FILE).is_file():
        return False
    return conversion_record(saved_model).get("source_sha256") == (fingerprint or saved_model_fingerprint(saved_model))


def converter_missing() -> str | None:
    """Why tf2onnx cannot run here, with the install step; ``None`` when it can."""
    for module in ("tf2onnx", "onnx", "tensorflow"):
        if importlib.util.find_spec(module) is None:
            return f"{module} not importable: {INSTALL_HINT}"
    return None


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def convert_to_onnx(saved_model: Path, force: bool = False, opset: int = OPSET) -> OnnxModel:
    """Write ``<model>/onnx/model.onnx`` from a SavedModel's serving signature; reuse a current one."""
    saved_model = Path(saved_model)
    if not is_saved_model(saved_model):
        raise UsageError(f"{saved_model}: no saved_model.pb here; give a TF SavedModel folder")
    target = onnx_dir(saved_model)
    fingerprint = saved_model_fingerprint(saved_model)
    if not force and is_current(saved_model, fingerprint):
        return OnnxModel(target / ONNX_FILE, (target / ONNX_FILE).stat().st_size, True)
    problem = converter_missing()
    if problem:
        raise ConversionError(f"cannot convert {saved_model} to ONNX: {problem}")
    staging = target.with_name(f".onnx.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    command = [sys.executable, "-m", "tf2onnx.convert", "--saved-model", str(saved_model), "--signature_def",
               "serving_default", "--opset", str(opset), "--output", str(staging / ONNX_FILE)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0 or not (staging / ONNX_FILE).is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        log = target.parent / "convert.log"
        log.write_text(done.stdout + done.stderr)
        shutil.rmtree(staging, ignore_errors=True)
        errors = [line for line in done.stderr.splitlines() if "Error" in line or "error" in line]
        raise ConversionError(f"tf2onnx could not convert {saved_model}: "
                                  f"{first_line(errors[-1] if errors else done.stderr, 'no output')} (log: {log})")
    metadata_file = saved_model / METADATA
    if metadata_file.is_file():
        shutil.copyfile(metadata_file, staging / METADATA.name)
    record = {"source": saved_model.name, "source_sha256": fingerprint, "opset": opset,
              "command": "bench model onnx (python -m tf2onnx.convert --saved-model MODEL --signature_def "
                         f"serving_default --opset {opset})",
              "tf2onnx": _version("tf2onnx"), "onnx": _version("onnx"), "tensorflow": _version("tensorflow")}
    (staging / CONVERSION_FILE).write_text(json.dumps(record, indent=2) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return OnnxModel(target / ONNX_FILE, (target / ONNX_FILE).stat().st_size, False)
