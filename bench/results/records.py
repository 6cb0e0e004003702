"""The primitive records: boxes and digits, and what a backend returns for a photo and for its start.

These are what datasets, backends and metrics exchange; :mod:`bench.results.run` builds a run
out of them.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in photo pixels, top-left origin."""

    left: float
    top: float
    width: float
    height: float

    @property
    def right(self) -> float:
        return self.left + self.width

    @property
    def bottom(self) -> float:
        return self.top + self.height

    @property
    def center_x(self) -> float:
        return self.left + self.width / 2

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)

    def iou(self, other: Box) -> float:
        """Intersection over union with another box (0 when either is empty)."""
        inter_w = min(self.right, other.right) - max(self.left, other.left)
        inter_h = min(self.bottom, other.bottom) - max(self.top, other.top)
        if inter_w <= 0 or inter_h <= 0:
            return 0.0
        inter = inter_w * inter_h
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def to_json(self) -> dict[str, float]:
        """``{left, top, width, height}`` as written to JSON."""
        return {"left": self.left, "top": self.top, "width": self.width, "height": self.height}


@dataclass(frozen=True)
class TrueDigit:
    """One annotated digit of a photo."""

    label: int
    box: Box

    def to_json(self) -> dict[str, Any]:
        """``{label, left, top, width, height}`` as ``truth.jsonl`` holds it."""
        return {"label": self.label, **self.box.to_json()}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> TrueDigit:
        """The digit of a ``truth.jsonl`` box."""
        return cls(int(raw["label"]), Box(float(raw["left"]), float(raw["top"]), float(raw["width"]),
                                          float(raw["height"])))


@dataclass(frozen=True)
class Digit:
    """One digit a backend reports: label 0-9, a score in [0, 1], a box in photo pixels."""

    label: int
    score: float
    left: float
    top: float
    width: float
    height: float

    @property
    def box(self) -> Box:
        return Box(self.left, self.top, self.width, self.height)

    def to_dict(self) -> dict[str, Any]:
        """The digit as ``predictions.jsonl`` writes it (rounded)."""
        return {
            "label": int(self.label),
            "score": round(float(self.score), 6),
            "left": round(float(self.left), 3),
            "top": round(float(self.top), 3),
            "width": round(float(self.width), 3),
            "height": round(float(self.height), 3),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Digit:
        """A digit of a ``predictions.jsonl`` line."""
        return cls(int(raw["label"]), float(raw["score"]), float(raw["left"]), float(raw["top"]),
                   float(raw["width"]), float(raw["height"]))


@dataclass(frozen=True)
class Recognition:
    """What a backend returns for one photo.

    ``latency_ms`` is the time the backend measured as close to the work as it can (inside the
    page for tfjs, around the model call for tf); the runner keeps its own wall-clock time too.
    ``end_to_end_ms``, where the backend can tell, is the time from the encoded photo to the digits
    (decode, upload, preprocess, model, read-back), the parts in ``details``.
    ``digits`` are the detections at the row's operating threshold; ``candidates``, where the
    backend can give them, every detection scoring at or above a low floor (``None``: not reported),
    so that any threshold can be rebuilt later. ``replayed`` marks a result that was not measured
    live (recorded responses).
    """

    digits: list[Digit] = field(default_factory=list)
    text: str = ""
    latency_ms: float | None = None
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    replayed: bool = False
    end_to_end_ms: float | None = None
    candidates: list[Digit] | None = None

    @classmethod
    def failed(cls, message: str, latency_ms: float | None = None) -> Recognition:
        """A photo the backend could not recognize, with the one-line reason."""
        return cls(error=message, latency_ms=latency_ms)

    def problem(self) -> str | None:
        """What makes this result unusable (a label that is not a digit, a score or box that is not a
        finite number, a negative time), as one line; ``None`` when it is sound."""
        for what, digits in (("digit", self.digits), ("candidate", self.candidates or ())):
            for digit in digits:
                if isinstance(digit.label, bool) or not isinstance(digit.label, int) or not 0 <= digit.label <= 9:
                    return f"a {what} labelled {digit.label!r}; labels are the digits 0-9"
                numbers = (digit.score, digit.left, digit.top, digit.width, digit.height)
                if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in numbers):
                    return f"a {what} whose score or box is not a finite number ({digit})"
                if digit.width < 0 or digit.height < 0 or not 0 <= digit.score <= 1:
                    return f"a {what} with a negative box size or a score outside 0-1 ({digit})"
        for name in ("latency_ms", "end_to_end_ms"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                return f"{name} {value!r}; give a time of 0 ms or more, or None"
        return None


@dataclass(frozen=True)
class ColdStart:
    """The cost of getting a backend ready: its library, the model download, model/engine init.

    ``library_ms``/``library_bytes``: what a first visit spends on the recognizer's own code before
    the model (TF.js scripts and wasm binaries in a page, importing TensorFlow or a client library
    in this process). The first inference is measured by the runner and added to the record it
    writes. ``details`` holds backend-specific parts (connection set-up, resource timings, ...).
    """

    download_ms: float = 0.0
    download_bytes: int = 0
    init_ms: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)
    library_ms: float = 0.0
    library_bytes: int = 0
