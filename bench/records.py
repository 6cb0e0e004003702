"""Plain result records shared by the dataset, the backends, the runner and the reports."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
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


@dataclass(frozen=True)
class TrueDigit:
    """One annotated digit of a photo."""

    label: int
    box: Box


@dataclass
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
        return {
            "label": int(self.label),
            "score": round(float(self.score), 6),
            "left": round(float(self.left), 3),
            "top": round(float(self.top), 3),
            "width": round(float(self.width), 3),
            "height": round(float(self.height), 3),
        }


@dataclass
class Recognition:
    """What a backend returns for one photo.

    ``latency_ms`` is the time the backend measured as close to the work as it can (inside the
    page for tfjs, around the model call for tf); the runner keeps its own wall-clock time too.
    ``end_to_end_ms`` is the whole path from the photo the caller holds to the digits (decode,
    upload, preprocess, model, readback), where a backend measures it.
    ``candidates`` are every detection at or above a low floor (0.05); ``digits`` are the
    candidates at or above the row's operating threshold.
    ``replayed`` marks a result that was not measured live (recorded responses).
    """

    digits: list[Digit] = field(default_factory=list)
    text: str = ""
    latency_ms: float | None = None
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    replayed: bool = False
    candidates: list[Digit] = field(default_factory=list)
    end_to_end_ms: float | None = None

    @classmethod
    def failed(cls, message: str, latency_ms: float | None = None) -> Recognition:
        return cls(error=message, latency_ms=latency_ms)


@dataclass
class ColdStart:
    """The cost of getting a backend ready: library, model download and model/engine initialisation.

    ``library_ms`` is getting the recognizer's library ready: a page's TF.js scripts and wasm
    (downloaded and started), TensorFlow's import, the Vision client's import; ``library_bytes``
    what the library download moved over the network (0 when nothing was downloaded).
    The first inference is measured by the runner and added to the record it writes.
    ``details`` holds backend-specific parts (connection set-up, ...).
    """

    download_ms: float = 0.0
    download_bytes: int = 0
    init_ms: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)
    library_ms: float = 0.0
    library_bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
