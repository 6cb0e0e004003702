"""Which tensors of a TF.js graph model are the detector's boxes, scores, classes and count.

``tensorflowjs_converter`` keeps a signature output's name only when no other output has its
dtype and shape, so an OD API export's ``detection_scores`` and ``detection_classes`` (both
``[1, 100]`` float32) come out as ``Identity_4:0`` / ``Identity_2:0``. The names are found, in
this order, from:

1. ``--tfjs-outputs boxes=NAME,scores=NAME,classes=NAME[,num=NAME]`` (or
   ``boxes=NAME,multiclass=NAME``), NAME a signature key or a tensor of model.json;
2. model.json's signature, when it names all four OD API outputs (digitbench's conversions do);
3. ``userDefinedMetadata.structuredOutputKeys`` (``--use_structured_outputs_names``): the keys
   in the order of the graph's outputs;
4. the SavedModel the folder was converted from, when it lies beside it (the folder itself, its
   two parents, or a ``saved_model/`` in one of them): its signature's keys in output order;
5. the two-output form (``detection_boxes`` + ``detection_multiclass_scores``) when model.json
   names both; for a model that also has scores and classes (unnamed) the row says so.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import ModelError, UsageError
from bench.od_api import BOXES, CLASSES, MULTICLASS, NUM, SCORES, STANDARD_OUTPUTS
from bench.saved_model import is_saved_model, read_signature
from bench.tfjs_convert import names_by_key

FALLBACK = "model.json signature (two-output reading)"
ROLES = {"boxes": BOXES, "scores": SCORES, "classes": CLASSES, "num": NUM, "multiclass": MULTICLASS}
"""``--tfjs-outputs`` role -> the OD API output key it stands for."""


@dataclass(frozen=True)
class OutputNames:
    """The model.json tensors the page fetches, by OD API key, and how they were found."""

    tensors: dict[str, str]
    source: str

    @property
    def two_output(self) -> bool:
        return MULTICLASS in self.tensors and SCORES not in self.tensors

    @property
    def note(self) -> str | None:
        """A row note when the two-output reading stands in for outputs the converter left unnamed."""
        if self.two_output and self.source == FALLBACK:
            return (f"model.json does not name {SCORES}/{CLASSES}: score and class come from {MULTICLASS} "
                    "(the best non-background column); pass --tfjs-outputs for the model's own")
        return None

    def fetch(self) -> list[tuple[str, str]]:
        """(key, tensor name) in the order the page fetches them."""
        return list(self.tensors.items())


def parse_outputs_option(text: str) -> dict[str, str]:
    """``boxes=NAME,scores=NAME,...`` as key -> NAME; :class:`UsageError` naming the problem."""
    mapping = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        role, sep, name = part.partition("=")
        if not sep or role.strip() not in ROLES or not name.strip():
            raise UsageError(f"--tfjs-outputs: {part!r} is not ROLE=NAME with ROLE one of {', '.join(ROLES)} "
                             "(e.g. boxes=Identity_1:0,scores=Identity_4:0,classes=Identity_2:0,num=Identity_5:0)")
        mapping[ROLES[role.strip()]] = name.strip()
    return mapping


def _complete(by_key: dict[str, str]) -> dict[str, str] | None:
    """The standard four (num optional) or the two-output pair, from tensors by key."""
    if all(key in by_key for key in (BOXES, SCORES, CLASSES)):
        return {key: by_key[key] for key in STANDARD_OUTPUTS if key in by_key}
    if BOXES in by_key and MULTICLASS in by_key:
        return {BOXES: by_key[BOXES], MULTICLASS: by_key[MULTICLASS]}
    return None


def _tensor(model_json: dict[str, Any], name: str) -> str | None:
    """A tensor of the graph by signature key, tensor name or node name."""
    outputs = model_json.get("signature", {}).get("outputs", {})
    if name in outputs:
        return outputs[name]["name"]
    tensor = name if ":" in name else f"{name}:0"
    known = {entry["name"] for entry in outputs.values()}
    nodes = {node.get("name") for node in model_json.get("modelTopology", {}).get("node", [])}
    return tensor if tensor in known or tensor.rsplit(":", 1)[0] in nodes else None


def source_saved_model(folder: Path) -> Path | None:
    """The SavedModel a TF.js folder was converted from, when it lies where an OD API export puts it."""
    folder = Path(folder).resolve()
    for base in (folder, folder.parent, folder.parent.parent):
        for candidate in (base, base / "saved_model"):
            if is_saved_model(candidate):
                return candidate
    return None


def describe_outputs(model_json: dict[str, Any]) -> str:
    outputs = model_json.get("signature", {}).get("outputs", {})
    return ", ".join(f"{key} -> {entry['name']}" if key != entry["name"] else key for key, entry in outputs.items())


def resolve_outputs(model_json: dict[str, Any], folder: Path, explicit: str | None = None) -> OutputNames:
    """The detector's output tensors of a TF.js graph model (see the module docstring)."""
    where = f"--tfjs-model {folder}"
    if explicit:
        wanted = parse_outputs_option(explicit)
        tensors = {}
        for key, name in wanted.items():
            tensor = _tensor(model_json, name)
            if tensor is None:
                raise UsageError(f"--tfjs-outputs: {name!r} is neither a signature output nor a tensor of "
                                 f"{folder}/model.json (its outputs: {describe_outputs(model_json)})")
            tensors[key] = tensor
        complete = _complete(tensors)
        if complete is None or len(complete) != len(tensors):
            raise UsageError("--tfjs-outputs: give boxes, scores and classes (num optional), or boxes and multiclass")
        return OutputNames(complete, "--tfjs-outputs")
    outputs = model_json.get("signature", {}).get("outputs", {})
    named = {key: entry["name"] for key, entry in outputs.items()}
    standard = _complete({k: v for k, v in named.items() if k in STANDARD_OUTPUTS})
    if standard is not None and NUM in standard:
        return OutputNames(standard, "model.json signature")
    tensors = sorted(entry["name"] for entry in outputs.values())
    keys = model_json.get("userDefinedMetadata", {}).get("structuredOutputKeys")
    if isinstance(keys, list):
        mapped = names_by_key(keys, tensors)
        found = _complete(mapped) if mapped else None
        if found:
            return OutputNames(found, "model.json structuredOutputKeys")
    saved_model = source_saved_model(folder)
    if saved_model is not None:
        try:
            mapped = names_by_key(read_signature(saved_model).flat_output_keys(), tensors)
        except ModelError:
            mapped = None
        found = _complete(mapped) if mapped else None
        if found:
            return OutputNames(found, f"the signature of {saved_model}")
    if standard is not None:
        return OutputNames(standard, "model.json signature")
    found = _complete(named)
    if found:
        return OutputNames(found, "model.json signature" if SCORES in named else FALLBACK)
    missing = ", ".join(k for k in (BOXES, SCORES, CLASSES) if k not in named)
    raise UsageError(f"{where}: model.json does not name {missing} (the converter drops names it cannot match by "
                     "dtype and shape) and no SavedModel lies beside it; convert with "
                     "--use_structured_outputs_names, or pass --tfjs-outputs boxes=NAME,scores=NAME,classes=NAME"
                     f"[,num=NAME] (its outputs: {describe_outputs(model_json)})")
