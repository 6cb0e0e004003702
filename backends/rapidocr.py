"""``rapidocr``: PP-OCR (text detection, angle classifier, recognition) on ONNX Runtime.

Through ``rapidocr-onnxruntime`` 1.4.4, whose wheel ships its three ONNX models (PP-OCRv4 det and
rec, the mobile v2.0 angle classifier): nothing is downloaded at run time.

- Digits and boxes: the library's ``return_word_box`` gives one box per recognized character,
  placed at the character's CTC column in the text line and mapped back to photo pixels, with a
  per-character confidence. A line for which it gives no character boxes has its box split
  evenly by character count instead; the row's notes say how many digits got such a box.
- Cold start: ``library`` = importing rapidocr, OpenCV and ONNX Runtime (paid by the first row
  of a run that imports them); ``init`` = creating the engine (three ONNX Runtime sessions,
  reading the 16 MB of models from the wheel); ``download`` 0; the runner measures the first
  inference.
- Latency: around the engine call on the decoded photo (RGB -> BGR included); the library's own
  detection / classification / recognition times are in each record's details.
"""
from __future__ import annotations

import importlib.util
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.backend import Backend
from bench.clock import ms_since
from bench.environment import package_versions
from bench.errors import BackendUnavailable, first_line
from bench.od_api import above
from bench.options import option
from bench.photos import LoadedPhoto
from bench.results.records import ColdStart, Digit, Recognition

PACKAGE = "rapidocr_onnxruntime"
INSTALL_HINT = "pip install rapidocr-onnxruntime==1.4.4 (see requirements.lock; `make setup` installs it)"


@dataclass(frozen=True)
class RapidOcrOptions:
    """The library's own thresholds (its defaults) and ours."""

    text_score: float = option(0.5, "drop text lines whose recognition score is below this", at_least=0, at_most=1)
    box_thresh: float = option(0.5, "drop detected text regions scoring below this", at_least=0, at_most=1)
    unclip_ratio: float = option(1.6, "how far detected text regions are grown before recognition",
                                 more_than=0, at_most=10)
    use_cls: bool = option(True, "run the 0/180 degree angle classifier on each text line")
    det_limit_side_len: int = option(736, "the detector scales each photo so its shorter side is this many pixels",
                                     at_least=32, at_most=8192)
    threads: int = option(0, "ONNX Runtime intra-op threads per session; 0 = ONNX Runtime's default",
                          at_least=0, at_most=256)
    min_score: float = option(0.0, "drop digits whose per-character confidence (0-1) is below this",
                              at_least=0, at_most=1)


@dataclass(frozen=True)
class TextLine:
    """One recognized line: its text, its quadrilateral, and per-character boxes and scores if given."""

    text: str
    score: float
    quad: list[list[float]]
    char_quads: list[list[list[float]]]
    chars: list[str]
    char_scores: list[float]

    @classmethod
    def of(cls, item: Sequence[Any]) -> TextLine:
        """From one entry of the library's result with ``return_word_box=True``."""
        quad, text, score = item[0], str(item[1]), float(item[2])
        char_quads = list(item[3]) if len(item) > 3 and item[3] else []
        chars = [str(c) for c in item[4]] if len(item) > 4 and item[4] else []
        char_scores = [float(s) for s in item[5]] if len(item) > 5 and item[5] else []
        return cls(text, score, quad, char_quads, chars, char_scores)


def _bounds(quad: Sequence[Sequence[float]]) -> tuple[float, float, float, float]:
    points = np.asarray(quad, dtype=float).reshape(-1, 2)
    left, top = points.min(axis=0)
    right, bottom = points.max(axis=0)
    return float(left), float(top), float(right - left), float(bottom - top)


def line_digits(line: TextLine, min_score: float) -> tuple[list[Digit], bool]:
    """The digits of one line in photo pixels, and whether their boxes were split from the line's box."""
    per_char = len(line.char_quads) == len(line.chars) == len(line.char_scores) and line.chars
    if per_char:
        pieces = [(c, s, _bounds(q)) for c, s, q in zip(line.chars, line.char_scores, line.char_quads)]
    else:
        left, top, width, height = _bounds(line.quad)
        step = width / max(len(line.text), 1)
        pieces = [(c, line.score, (left + i * step, top, step, height)) for i, c in enumerate(line.text)]
    digits = [Digit(int(c), score, *box) for c, score, box in pieces
              if len(c) == 1 and c.isdigit() and c.isascii() and score >= min_score]
    return digits, not per_char


class RapidOcrBackend(Backend):
    """PP-OCR det + cls + rec on ONNX Runtime, one photo per call."""

    name = "rapidocr"
    Options = RapidOcrOptions
    summary = "RapidOCR: PP-OCRv4 on ONNX Runtime (models inside the wheel; per-character boxes)"
    packages = ("rapidocr-onnxruntime", "onnxruntime", "opencv-python")

    def __init__(self, options: Any = None, row: str | None = None) -> None:
        super().__init__(options, row)
        self._engine = None
        self._versions: dict[str, str | None] = {}
        self._split_digits = 0
        self._model_bytes = 0

    @classmethod
    def unavailable_reason(cls, options: RapidOcrOptions) -> str | None:
        for module in (PACKAGE, "onnxruntime", "cv2"):
            if importlib.util.find_spec(module) is None:
                return f"{module} not importable: {INSTALL_HINT}"
        return None

    def open(self) -> ColdStart:
        problem = self.unavailable_reason(self.options)
        if problem:
            raise BackendUnavailable(problem)
        start = time.perf_counter_ns()
        import rapidocr_onnxruntime

        imported = time.perf_counter_ns()
        settings: dict[str, Any] = {"det_limit_side_len": self.options.det_limit_side_len}
        if self.options.threads > 0:
            settings.update(intra_op_num_threads=self.options.threads)
        try:
            self._engine = rapidocr_onnxruntime.RapidOCR(**settings)
        except Exception as exc:  # a broken install (missing model file, ORT error) is one clear line
            raise BackendUnavailable(f"rapidocr: the engine does not start ({first_line(exc, type(exc).__name__)}); "
                                     f"reinstall: {INSTALL_HINT}") from None
        init_ms = ms_since(imported)
        self._versions = package_versions(self.packages)
        models = Path(rapidocr_onnxruntime.__file__).parent / "models"
        self._model_bytes = sum(p.stat().st_size for p in models.glob("*.onnx"))
        return ColdStart(init_ms=init_ms, library_ms=(imported - start) / 1e6,
                         details={"model_bytes": self._model_bytes})

    def _one(self, loaded: LoadedPhoto) -> Recognition:
        start = time.perf_counter_ns()
        try:
            bgr = np.ascontiguousarray(loaded.rgb[..., ::-1])
            # Any keyword resets the three thresholds to the library's defaults, so all are passed.
            result, elapsed = self._engine(bgr, use_cls=self.options.use_cls, return_word_box=True,
                                           box_thresh=self.options.box_thresh,
                                           unclip_ratio=self.options.unclip_ratio,
                                           text_score=self.options.text_score)
        except Exception as exc:  # the library failing on one photo is that photo's error
            return Recognition.failed(f"rapidocr failed: {type(exc).__name__}: {first_line(exc, '')}")
        latency = ms_since(start)
        lines = [TextLine.of(item) for item in result or []]
        candidates: list[Digit] = []
        for line in lines:
            found, split = line_digits(line, 0.0)
            candidates.extend(found)
            self._split_digits += len(found) if split else 0
        digits = above(candidates, self.options.min_score)
        stages = dict(zip(("det_ms", "cls_ms", "rec_ms"), (round(s * 1000, 4) for s in elapsed or ())))
        return Recognition(digits, " ".join(line.text for line in lines), latency, details=stages,
                           candidates=candidates)

    def recognize(self, photos: Sequence[LoadedPhoto]) -> list[Recognition]:
        if self._engine is None:
            raise RuntimeError("call open() first")
        return [self._one(p) for p in photos]

    def describe(self) -> dict[str, Any]:
        notes = ["per-character boxes from the recognizer's CTC columns (return_word_box)"]
        if self._split_digits:
            notes.append(f"{self._split_digits} digits had no character box: boxes split evenly from the text line")
        return {**self._versions, "models": "PP-OCRv4 det + rec, ppocr mobile v2.0 cls (inside the wheel)",
                "model_bytes": self._model_bytes or None, "use_cls": self.options.use_cls,
                "det_limit_side_len": self.options.det_limit_side_len, "threads": self.options.threads or "default",
                "split_box_digits": self._split_digits, "notes": notes}

    def close(self) -> None:
        self._engine = None
