"""A TensorFlow SavedModel folder: where ours is, what marks one, its identity, metadata and signature.

:func:`read_signature` reads a signature's inputs and outputs straight from ``saved_model.pb``
(the protobuf wire format, a few fields deep), so the ``tfjs`` backend can name a converted
model's outputs without importing TensorFlow.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import ModelError

DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "models" / "digit_reader_two_stage"
"""Our two-stage reader (``bench model export --locator``; its locator is ``models/digit_detector``)."""
METADATA = Path("assets.extra") / "digitbench.json"
"""Where an export records the input mapping, class convention and default threshold."""
DTYPES = {1: "float32", 2: "float64", 3: "int32", 4: "uint8", 6: "int8", 9: "int64", 10: "bool", 17: "uint16",
          19: "float16"}
"""TensorFlow's ``DataType`` enum values a detector's inputs and outputs use."""


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


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a signature: its graph tensor, dtype and shape (``None`` = any size)."""

    tensor: str
    dtype: str
    shape: tuple[int | None, ...] | None


@dataclass(frozen=True)
class Signature:
    """A SavedModel signature's inputs and outputs by key."""

    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]

    def flat_output_keys(self) -> list[str]:
        """Output keys in the order of the function's outputs, which is the order of the graph
        outputs a converter writes (``Identity``, ``Identity_1``, ...).

        A SavedModel's outputs are ``StatefulPartitionedCall:K`` with ``K`` that order (TensorFlow
        flattens a dict in sorted-key order); without such indices the sorted keys are used.
        """
        def index(key: str) -> tuple[int, str]:
            op, _, k = self.outputs[key].tensor.rpartition(":")
            return (int(k) if k.isdigit() and ops == 1 else -1, key)

        ops = len({spec.tensor.rpartition(":")[0] for spec in self.outputs.values()})
        return sorted(self.outputs, key=index)


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ModelError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) of one protobuf message: varints as int, length-delimited as bytes."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos:pos + length], pos + length
        elif wire in (1, 5):
            value, pos = data[pos:pos + (8 if wire == 1 else 4)], pos + (8 if wire == 1 else 4)
        else:
            raise ModelError(f"unsupported wire type {wire}")
        yield number, value


def _map_entry(data: bytes) -> tuple[str, bytes]:
    key, value = "", b""
    for number, field in _fields(data):
        if number == 1:
            key = field.decode()
        elif number == 2:
            value = field
    return key, value


def _tensor_spec(data: bytes) -> TensorSpec:
    name, dtype, shape = "", 0, None
    for number, field in _fields(data):
        if number == 1:
            name = field.decode()
        elif number == 2:
            dtype = field
        elif number == 3:
            dims, unknown = [], False
            for dim_number, dim in _fields(field):
                if dim_number == 2:
                    size = dict(_fields(dim)).get(1, 0)
                    size = size - (1 << 64) if size >= 1 << 63 else size
                    dims.append(None if size < 0 else size)
                elif dim_number == 3 and dim:
                    unknown = True
            shape = None if unknown else tuple(dims)
    return TensorSpec(name, DTYPES.get(dtype, f"dtype{dtype}"), shape)


def read_signature(folder: Path, key: str = "serving_default", tag: str = "serve") -> Signature:
    """The signature ``key`` of the meta graph tagged ``tag`` in ``folder/saved_model.pb``."""
    try:
        data = (Path(folder) / "saved_model.pb").read_bytes()
    except OSError as exc:
        raise ModelError(f"{folder}: cannot read saved_model.pb ({exc.strerror or exc})") from None
    found: list[str] = []
    for number, meta_graph in _fields(data):
        if number != 2:
            continue
        tags, signatures = [], {}
        for field_number, field in _fields(meta_graph):
            if field_number == 1:
                tags += [tag_value.decode() for n, tag_value in _fields(field) if n == 4]
            elif field_number == 5:
                name, body = _map_entry(field)
                signatures[name] = body
        if tag not in tags and tags:
            continue
        found += signatures
        if key in signatures:
            parts: dict[int, dict[str, TensorSpec]] = {1: {}, 2: {}}
            for part, entry in _fields(signatures[key]):
                if part in parts:
                    name, body = _map_entry(entry)
                    parts[part][name] = _tensor_spec(body)
            return Signature(parts[1], parts[2])
    have = ", ".join(sorted(found)) or "none"
    raise ModelError(f"{folder}: no signature {key!r} with tag {tag!r} in saved_model.pb (it has: {have})")
