"""Convert a TF SavedModel into TF.js graph models, one per weight quantization.

Variants go next to the model: ``<model>/tfjs/<quantization>/model.json`` (for a SavedModel in a
folder named ``saved_model``, next to that folder), with a copy of the model's
``assets.extra/digitbench.json`` when it has one. Each variant holds ``conversion.json``
naming the source fingerprint and converter version, so a stale variant is converted again and
an interrupted conversion never looks finished (it is written aside, then renamed into place).

The converter is ``tensorflowjs==4.22.0`` run in-process with the project's TensorFlow 2.19,
plus ``ydf==0.15.0``: tensorflowjs declares tensorflow-decision-forests, whose newest ydf ships
protobuf-6 generated code that TF 2.19's protobuf 5.29 refuses at import. Pinning ydf keeps one
TensorFlow for training, the ``tf`` backend and conversion (both pins are in requirements.lock).
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.errors import ConversionError, UsageError, first_line
from bench.saved_model import fingerprint as saved_model_fingerprint, is_saved_model

QUANTIZATIONS = ("none", "float16", "uint8")
CONVERSION_FILE = "conversion.json"
METADATA_NAME = "digitbench.json"
"""The detector's own description (threshold, input mapping), copied next to each variant's model.json."""
_UNSUPPORTED = re.compile(r"Unsupported Ops in the model[^\n]*\n(.+)", re.S)
_OP_MISSING = re.compile(r"(?:Op type not registered|unsupported op)\W+'?(\w+)", re.I)


@dataclass(frozen=True)
class Converted:
    """One variant on disk."""

    quantization: str
    folder: Path
    weights_bytes: int
    reused: bool


def variants_root(saved_model: Path) -> Path:
    """The folder that holds a model's ``<quantization>/`` variants."""
    saved_model = Path(saved_model)
    base = saved_model.parent if saved_model.name == "saved_model" else saved_model
    return base / "tfjs"


def variant_dir(saved_model: Path, quantization: str) -> Path:
    """Where the ``quantization`` variant of a SavedModel lives."""
    return variants_root(saved_model) / quantization


def _converter_version() -> str | None:
    from importlib import metadata

    try:
        return metadata.version("tensorflowjs")
    except metadata.PackageNotFoundError:
        return None


def is_current(saved_model: Path, quantization: str, fingerprint: str | None = None) -> bool:
    """Whether the variant exists and was converted from this very SavedModel."""
    record = variant_dir(saved_model, quantization) / CONVERSION_FILE
    try:
        data = json.loads(record.read_text())
    except (OSError, ValueError):
        return False
    return data.get("source_sha256") == (fingerprint or saved_model_fingerprint(saved_model))


def check_saved_model(path: Path) -> Path:
    """``path`` when it holds a SavedModel, else a :class:`UsageError` saying so."""
    path = Path(path)
    if not is_saved_model(path):
        raise UsageError(f"{path}: no saved_model.pb here; give a TF SavedModel folder")
    return path


def one_line_reason(exc: BaseException) -> str:
    """The converter's error as one line; an unsupported op is named."""
    text = str(exc)
    match = _UNSUPPORTED.search(text)
    if match:
        ops = ", ".join(op.strip() for op in match.group(1).replace("\n", ",").split(",") if op.strip())
        return (f"unsupported op(s) for TF.js: {ops}; replace them in the model (e.g. top-k peak picking or "
                "non_max_suppression instead of combined_non_max_suppression)")
    match = _OP_MISSING.search(text)
    if match:
        return f"unsupported op for TF.js: {match.group(1)}"
    return f"{type(exc).__name__}: {first_line(text, type(exc).__name__)}"


@contextlib.contextmanager
def native_logs_to(path: Path) -> Iterator[None]:
    """Send what C++ libraries (TensorFlow, XLA) write to file descriptor 2 into ``path`` meanwhile."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(path, "wb") as log:
            os.dup2(log.fileno(), 2)
            try:
                yield
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def import_converter() -> Callable[..., None]:
    """The converter's SavedModel entry point; :class:`ConversionError` naming the install when absent."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TFDF_DISABLE_WELCOME_MESSAGE", "1")
    try:
        from tensorflowjs.converters.tf_saved_model_conversion_v2 import convert_tf_saved_model
    except ImportError as exc:
        raise ConversionError(f"the TF.js converter is not importable ({exc}); install it with "
                              "`pip install tensorflowjs==4.22.0 ydf==0.15.0` (see requirements.lock)") from None
    return convert_tf_saved_model


def _convert_one(saved_model: Path, quantization: str, target: Path) -> None:
    convert_tf_saved_model = import_converter()
    dtype_map = None if quantization == "none" else {quantization: True}
    with contextlib.redirect_stdout(io.StringIO()):
        convert_tf_saved_model(str(saved_model), str(target), quantization_dtype_map=dtype_map)
    name_outputs(saved_model, target / "model.json")


def name_outputs(saved_model: Path, model_json: Path, signature: str = "serving_default") -> None:
    """Give every output in model.json's signature its SavedModel name.

    The converter names a signature output by matching dtype and shape, so outputs alike in both
    (``detection_scores`` and ``detection_classes``, each ``[1, N]`` float32) keep bare tensor
    names. Its graph outputs follow the signature's flattened order (dict keys sorted), which
    gives the true name of each.
    """
    import tensorflow as tf

    function = tf.saved_model.load(str(saved_model)).signatures[signature]
    structured = function.structured_outputs
    if not isinstance(structured, dict):
        return
    nodes = [t.name.split(":")[0] + ":0" for t in function.outputs]
    data = json.loads(model_json.read_text())
    outputs = data.get("signature", {}).get("outputs", {})
    by_tensor = {entry["name"]: entry for entry in outputs.values()}
    if len(nodes) != len(structured) or not set(nodes) <= set(by_tensor):
        return
    data["signature"]["outputs"] = {key: by_tensor[node] for key, node in zip(sorted(structured), nodes)}
    model_json.write_text(json.dumps(data))


def convert_saved_model(saved_model: Path, quantizations: Sequence[str] = QUANTIZATIONS, force: bool = False,
                        log: Callable[[str], None] = lambda line: None) -> list[Converted]:
    """Write one TF.js graph model per quantization next to the SavedModel; reuse current ones."""
    saved_model = check_saved_model(saved_model)
    unknown = [q for q in quantizations if q not in QUANTIZATIONS]
    if unknown:
        raise UsageError(f"--quantization: {', '.join(unknown)} not one of {', '.join(QUANTIZATIONS)}")
    fingerprint = saved_model_fingerprint(saved_model)
    done = []
    for quantization in dict.fromkeys(quantizations):
        target = variant_dir(saved_model, quantization)
        reused = not force and is_current(saved_model, quantization, fingerprint)
        if not reused:
            log(f"converting {saved_model} ({quantization}) ...")
            staging = target.with_name(f".{quantization}.partial-{os.getpid()}")
            shutil.rmtree(staging, ignore_errors=True)
            try:
                _convert_one(saved_model, quantization, staging)
            except ConversionError:
                raise
            except Exception as exc:
                raise ConversionError(f"cannot convert {saved_model} to TF.js ({quantization}): "
                                      f"{one_line_reason(exc)}") from None
            finally:
                if not (staging / "model.json").is_file():
                    shutil.rmtree(staging, ignore_errors=True)
            metadata = saved_model / "assets.extra" / METADATA_NAME
            if metadata.is_file():
                shutil.copyfile(metadata, staging / METADATA_NAME)
            record = {"source": saved_model.name, "source_sha256": fingerprint, "quantization": quantization,
                      "tensorflowjs": _converter_version()}
            (staging / CONVERSION_FILE).write_text(json.dumps(record, indent=2) + "\n")
            shutil.rmtree(target, ignore_errors=True)
            staging.rename(target)
        weights = sum(p.stat().st_size for p in target.glob("*.bin"))
        done.append(Converted(quantization, target, weights, reused))
    return done
