"""The TF Object Detection API's conventions, shared by every backend that runs such a detector.

- Outputs: ``detection_boxes`` [1, N, 4] (ymin, xmin, ymax, xmax, normalised), ``detection_scores``
  and ``detection_classes`` [1, N], ``num_detections`` [1]; or the two-output form
  (``detection_boxes`` + ``detection_multiclass_scores`` [1, N, 1 + classes], column 0 the
  background), whose score and class are the best non-background column.
- Classes -> digits: an OD API ``label_map.pbtxt`` (``item { id: N name: 'D' }``) in the model
  folder or one of its two parents decides; else a named convention (:data:`CONVENTIONS`).
  Classes are rounded first (uint8-quantized weights give classes like 4.988).
- Thresholds: every detection is a candidate (the runner keeps those above its
  ``--candidates-floor``); the digits are the candidates at or above the row's threshold,
  :data:`FALLBACK_THRESHOLD` for a model that does not state its own (the OD API's own
  visualisation default).
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.errors import ModelError
from bench.results.records import Digit

BOXES, SCORES, CLASSES, NUM = "detection_boxes", "detection_scores", "detection_classes", "num_detections"
MULTICLASS = "detection_multiclass_scores"
STANDARD_OUTPUTS = (BOXES, SCORES, CLASSES, NUM)
CONVENTIONS = ("zero-based", "one-based", "svhn")
"""zero-based: class = digit (ours); one-based: class - 1 (a label map 1..10 = '0'..'9'); svhn: 10 = 0."""
LABEL_MAP = "label_map.pbtxt"
FALLBACK_THRESHOLD = 0.5
DIGIT_WORDS = {w: d for d, w in enumerate("zero one two three four five six seven eight nine".split())}

_ITEM_FIELD = re.compile(r"""(\w+)\s*:\s*(?:"([^"]*)"|'([^']*)'|([^\s{}]+))""")


def _items(text: str) -> list[str]:
    """The bodies of the top-level ``item { ... }`` blocks (nested blocks kept inside)."""
    bodies, pos = [], 0
    while (match := re.compile(r"\bitem\s*\{").search(text, pos)) is not None:
        depth, start = 1, match.end()
        pos = start
        while depth and pos < len(text):
            depth += {"{": 1, "}": -1}.get(text[pos], 0)
            pos += 1
        if depth:
            raise ModelError("an item { is never closed")
        bodies.append(text[start:pos - 1])
    return bodies


def label_digit(name: str) -> int | None:
    """The digit a label-map name stands for ('7', "seven"), or ``None``."""
    name = name.strip().lower()
    if len(name) == 1 and name.isdigit():
        return int(name)
    return DIGIT_WORDS.get(name)


def parse_label_map(text: str, source: str = LABEL_MAP) -> dict[int, int | None]:
    """Label-map id -> digit (``None`` for an item that is not a digit)."""
    mapping: dict[int, int | None] = {}
    try:
        items = _items(re.sub(r"#[^\n]*", "", text))
    except ModelError as exc:
        raise ModelError(f"{source}: {exc}") from None
    for body in items:
        top = re.sub(r"\{[^{}]*\}", "", body)
        values = {m.group(1): next(g for g in m.groups()[1:] if g is not None) for m in _ITEM_FIELD.finditer(top)}
        if "id" not in values or not values["id"].lstrip("-").isdigit():
            raise ModelError(f"{source}: an item has no integer id; expected item {{ id: N name: 'D' }}")
        names = [values[k] for k in ("display_name", "name") if k in values]
        digits = [d for d in map(label_digit, names) if d is not None]
        mapping[int(values["id"])] = digits[0] if digits else None
    if not mapping:
        raise ModelError(f"{source}: no item {{ id: N name: 'D' }} entries")
    return mapping


def find_label_map(folder: Path) -> Path | None:
    """``label_map.pbtxt`` in ``folder`` or one of its two parents (an OD API export's layout)."""
    folder = Path(folder).resolve()
    for candidate in (folder, folder.parent, folder.parent.parent):
        path = candidate / LABEL_MAP
        if path.is_file():
            return path
    return None


@dataclass(frozen=True)
class ClassMap:
    """How a row turns a detector's classes into digits, and where that rule came from."""

    convention: str
    """``label map`` or one of :data:`CONVENTIONS`."""
    source: str
    ids: Mapping[int, int | None] = field(default_factory=dict)

    def digit(self, value: float) -> int | None:
        """The digit class ``value`` stands for (rounded first), or ``None``."""
        cls = int(round(float(value)))
        if self.convention == "label map":
            return self.ids.get(cls)
        if self.convention == "one-based":
            cls -= 1
        elif self.convention == "svhn" and cls == 10:
            cls = 0
        return cls if 0 <= cls <= 9 else None

    def describe(self) -> str:
        return f"{self.convention} ({self.source})"


def resolve_classes(option: str | None, model: Path, metadata: Mapping, flag: str) -> ClassMap:
    """The class rule of a row: ``flag`` if given, else the label map, else the model's metadata, else zero-based."""
    if option is not None:
        return ClassMap(option, flag)
    found = find_label_map(model)
    if found is not None:
        try:
            return ClassMap("label map", str(found), parse_label_map(found.read_text(errors="replace"), str(found)))
        except ModelError as exc:
            raise ModelError(f"{exc}; fix it or pass {flag}") from None
    stated = str(metadata.get("classes", "")).split(":")[0].strip()
    if stated in CONVENTIONS:
        return ClassMap(stated, "the model's digitbench.json")
    return ClassMap("zero-based", "default: no label_map.pbtxt and no digitbench.json")


@dataclass
class ClassFit:
    """What a row's detections looked like under its class rule, for a note when they do not fit."""

    unmapped: Counter = field(default_factory=Counter)
    seen: Counter = field(default_factory=Counter)
    off_integer: float = 0.0

    def observe(self, value: float, mapped: bool) -> None:
        cls = int(round(float(value)))
        self.seen[cls] += 1
        self.off_integer = max(self.off_integer, abs(float(value) - cls))
        if not mapped:
            self.unmapped[cls] += 1

    def notes(self, classes: ClassMap, flag: str) -> list[str]:
        notes = []
        if self.unmapped:
            listed = ", ".join(f"{c} ({n}x)" for c, n in sorted(self.unmapped.items()))
            seen = f"{min(self.seen)}..{max(self.seen)}"
            notes.append(f"classes {listed} are not digits under {classes.describe()}; the model emitted classes "
                         f"{seen}: if that is another convention, pass {flag} zero-based|one-based|svhn or put "
                         f"its {LABEL_MAP} beside the model")
        if self.off_integer > 1e-3:
            notes.append(f"classes were up to {self.off_integer:.3f} off an integer (quantized weights); rounded")
        return notes


def from_multiclass(multiclass: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(scores, classes) of ``[N, 1 + classes]`` multiclass scores: the best non-background column,
    numbered as label-map ids (column 0 is the background, column j is id j)."""
    multiclass = np.asarray(multiclass, dtype=np.float64)
    if multiclass.ndim != 2 or multiclass.shape[1] < 2:
        raise ValueError(f"multiclass scores of shape {multiclass.shape}; expected [N, 1 + classes]")
    best = np.argmax(multiclass[:, 1:], axis=1)
    return multiclass[np.arange(len(best)), best + 1], (best + 1).astype(np.float64)


@dataclass(frozen=True)
class Decoder:
    """Turns one photo's detector outputs into candidate digits in photo pixels."""

    classes: ClassMap
    floor: float = 0.0

    def candidates(self, boxes: np.ndarray, scores: Sequence[float], classes: Sequence[float],
                   to_photo: Callable[[np.ndarray], tuple[float, float, float, float]],
                   count: int | None = None, fit: ClassFit | None = None) -> list[Digit]:
        """Every detection scoring at least the floor whose class is a digit, best first."""
        boxes = np.reshape(np.asarray(boxes, dtype=np.float64), (-1, 4))
        limit = len(scores) if count is None else max(0, min(int(count), len(scores)))
        found = []
        for box, score, cls in zip(boxes[:limit], scores[:limit], classes[:limit]):
            if score < self.floor:
                continue
            digit = self.classes.digit(cls)
            if fit is not None:
                fit.observe(cls, digit is not None)
            if digit is not None:
                found.append(Digit(digit, float(score), *to_photo(box)))
        return sorted(found, key=lambda d: -d.score)


def decode(arrays: Mapping[str, np.ndarray], decoder: Decoder,
           to_photo: Callable[[np.ndarray], tuple[float, float, float, float]], fit: ClassFit | None = None) -> list[Digit]:
    """Candidates from one photo's outputs by OD API key (batch dimension removed or flat)."""
    boxes = np.reshape(np.asarray(arrays[BOXES], dtype=np.float64), (-1, 4))
    if SCORES in arrays:
        scores, classes = np.ravel(arrays[SCORES]), np.ravel(arrays[CLASSES])
    else:
        scores, classes = from_multiclass(np.reshape(np.asarray(arrays[MULTICLASS]), (len(boxes), -1)))
    num = np.ravel(arrays[NUM]) if NUM in arrays else ()
    return decoder.candidates(boxes, scores, classes, to_photo, int(num[0]) if len(num) else None, fit)


def above(candidates: Sequence[Digit], threshold: float) -> list[Digit]:
    """The candidates a row reports as its digits: those at or above its threshold."""
    return [d for d in candidates if d.score >= threshold]


def threshold_of(option: float | None, metadata: Mapping, flag: str) -> tuple[float, str | None]:
    """(threshold, note): the option, else the model's ``default_threshold``, else the documented fallback."""
    if option is not None:
        return float(option), None
    stated = metadata.get("default_threshold")
    if isinstance(stated, (int, float)) and not isinstance(stated, bool):
        return float(stated), None
    return FALLBACK_THRESHOLD, (f"the model states no default_threshold (no digitbench.json): score threshold "
                                f"{FALLBACK_THRESHOLD:g}, digitbench's default for other models; set {flag}")
