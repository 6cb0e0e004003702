"""Convert a TF SavedModel (ours or anyone's) into TF.js graph models, one per weight quantization.

Variants go next to the model: ``<model>/tfjs/<quantization>/model.json`` (for a SavedModel in a
folder named ``saved_model``, next to that folder, as an OD API export lays it out); when that
folder is not writable (a shared, read-only model), under ``~/.cache/digitbench/tfjs/``; or in
``out`` when given. A variant gets a copy of the model's ``assets.extra/digitbench.json`` when it
has one. Each variant holds ``conversion.json`` naming the source fingerprint, the shard size and
the converter version, so a stale variant is converted again and an interrupted conversion never
looks finished (it is written aside, then renamed into place).

Quantizations are every weight encoding the converter has: ``none`` (float32), ``float16``,
``uint16`` (what the old ``--quantization_bytes 2`` gives) and ``uint8``.

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
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.errors import ConversionError, ModelError, UsageError, first_line
from bench.saved_model import is_saved_model, read_signature
from bench.saved_model import fingerprint as saved_model_fingerprint

QUANTIZATIONS = ("none", "float16", "uint16", "uint8")
DEFAULT_SHARD_BYTES = 4 * 1024 * 1024
"""The converter's own default ``--weight_shard_size_bytes``."""
STRIP_DEBUG_OPS = True
"""As ``tensorflowjs_converter``'s command line does by default (its Python API does not): Assert,
Print and CheckNumerics go, which OD API exports hold and TF.js cannot run."""
CONVERSION_FILE = "conversion.json"
METADATA_NAME = "digitbench.json"
"""The detector's own description (threshold, input mapping), copied next to each variant's model.json."""
_UNSUPPORTED = re.compile(r"Unsupported Ops in the model[^\n]*\n(.+)", re.S)
_OP_MISSING = re.compile(r"(?:Op type not registered|unsupported op)\W+'?(\w+)", re.I)
_GRAPH_OUTPUT = re.compile(r"^Identity(?:_(\d+))?:0$")


@dataclass(frozen=True)
class Converted:
    """One variant on disk."""

    quantization: str
    folder: Path
    weights_bytes: int
    reused: bool


def cache_root() -> Path:
    """Where variants of read-only models go: ``$XDG_CACHE_HOME/digitbench/tfjs`` (``~/.cache`` by default)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "digitbench" / "tfjs"


def _writable(folder: Path) -> bool:
    """Whether variants may be written into ``folder``; a folder with no write bit counts as read-only
    even for root (a shared model someone made read-only)."""
    existing = folder if folder.exists() else folder.parent
    return os.access(existing, os.W_OK) and bool(existing.stat().st_mode & 0o222)


def variants_root(saved_model: Path, out: Path | None = None) -> Path:
    """The folder that holds a model's ``<quantization>/`` variants (see the module docstring)."""
    if out is not None:
        return Path(out)
    saved_model = Path(saved_model)
    base = saved_model.parent if saved_model.name == "saved_model" else saved_model
    if _writable(base / "tfjs"):
        return base / "tfjs"
    return cache_root() / f"{base.name}-{saved_model_fingerprint(saved_model)[:12]}"


def variant_dir(saved_model: Path, quantization: str, out: Path | None = None) -> Path:
    """Where the ``quantization`` variant of a SavedModel lives."""
    return variants_root(saved_model, out) / quantization


def _converter_version() -> str | None:
    from importlib import metadata

    try:
        return metadata.version("tensorflowjs")
    except metadata.PackageNotFoundError:
        return None


def is_current(saved_model: Path, quantization: str, fingerprint: str | None = None, out: Path | None = None,
               shard_bytes: int = DEFAULT_SHARD_BYTES) -> bool:
    """Whether the variant exists and was converted from this very SavedModel with this shard size."""
    record = variant_dir(saved_model, quantization, out) / CONVERSION_FILE
    try:
        data = json.loads(record.read_text())
    except (OSError, ValueError):
        return False
    return (data.get("source_sha256") == (fingerprint or saved_model_fingerprint(saved_model))
            and data.get("weight_shard_size_bytes", DEFAULT_SHARD_BYTES) == shard_bytes)


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


def _convert_one(saved_model: Path, quantization: str, target: Path, shard_bytes: int) -> None:
    convert_tf_saved_model = import_converter()
    dtype_map = None if quantization == "none" else {quantization: True}
    with contextlib.redirect_stdout(io.StringIO()):
        convert_tf_saved_model(str(saved_model), str(target), quantization_dtype_map=dtype_map,
                               weight_shard_size_bytes=shard_bytes, strip_debug_ops=STRIP_DEBUG_OPS)
    name_outputs(saved_model, target / "model.json")


def names_by_key(keys: Sequence[str], tensors: Iterable[str]) -> dict[str, str] | None:
    """Output keys, in the function's output order, paired with the converter's graph outputs.

    The converter writes a function's outputs as ``Identity:0``, ``Identity_1:0``, ... in output
    order; ``None`` when the tensors are not named so or their count is not the keys'.
    """
    tensors = list(dict.fromkeys(tensors))
    matches = [_GRAPH_OUTPUT.match(name) for name in tensors]
    if len(tensors) != len(keys) or not all(matches):
        return None
    ordered = sorted(tensors, key=lambda name: int(_GRAPH_OUTPUT.match(name).group(1) or 0))
    return dict(zip(keys, ordered))


def name_outputs(saved_model: Path, model_json: Path, signature: str = "serving_default") -> None:
    """Give every output in model.json's signature its SavedModel name.

    The converter names a signature output by matching dtype and shape, so outputs alike in both
    (``detection_scores`` and ``detection_classes``, each ``[1, N]`` float32) keep bare tensor
    names. Its graph outputs follow the signature's output order, which gives the true name of each.
    """
    try:
        keys = read_signature(saved_model, signature).flat_output_keys()
    except ModelError:
        return
    data = json.loads(model_json.read_text())
    outputs = data.get("signature", {}).get("outputs", {})
    by_tensor = {entry["name"]: entry for entry in outputs.values()}
    mapped = names_by_key(keys, by_tensor)
    if mapped is None:
        return
    data["signature"]["outputs"] = {key: by_tensor[tensor] for key, tensor in mapped.items()}
    model_json.write_text(json.dumps(data))


def convert_saved_model(saved_model: Path, quantizations: Sequence[str] = QUANTIZATIONS, force: bool = False,
                        log: Callable[[str], None] = lambda line: None, out: Path | None = None,
                        shard_bytes: int = DEFAULT_SHARD_BYTES) -> list[Converted]:
    """Write one TF.js graph model per quantization (see the module docstring for where); reuse current ones."""
    saved_model = check_saved_model(saved_model)
    unknown = [q for q in quantizations if q not in QUANTIZATIONS]
    if unknown:
        raise UsageError(f"--quantization: {', '.join(unknown)} not one of {', '.join(QUANTIZATIONS)}")
    if shard_bytes < 1:
        raise UsageError(f"--weight_shard_size_bytes: {shard_bytes} must be a positive number of bytes")
    fingerprint = saved_model_fingerprint(saved_model)
    done = []
    for quantization in dict.fromkeys(quantizations):
        target = variant_dir(saved_model, quantization, out)
        reused = not force and is_current(saved_model, quantization, fingerprint, out, shard_bytes)
        if not reused:
            log(f"converting {saved_model} ({quantization}) into {target} ...")
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise UsageError(f"cannot write TF.js variants to {target.parent} ({exc.strerror or exc}); "
                                 "pass --out DIR") from None
            staging = target.with_name(f".{quantization}.partial-{os.getpid()}")
            shutil.rmtree(staging, ignore_errors=True)
            try:
                _convert_one(saved_model, quantization, staging, shard_bytes)
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
                      "weight_shard_size_bytes": shard_bytes, "tensorflowjs": _converter_version()}
            (staging / CONVERSION_FILE).write_text(json.dumps(record, indent=2) + "\n")
            shutil.rmtree(target, ignore_errors=True)
            staging.rename(target)
        weights = sum(p.stat().st_size for p in target.glob("*.bin"))
        done.append(Converted(quantization, target, weights, reused))
    return done
