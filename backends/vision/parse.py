"""Digits, boxes and text from one Cloud Vision response (the documented REST JSON format).

Live responses are converted to this JSON before parsing, and recordings store it, so a live run
and a replay score the same bytes the same way.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from bench.results.records import Digit

RPC_CODES = {1: "CANCELLED", 2: "UNKNOWN", 3: "INVALID_ARGUMENT", 4: "DEADLINE_EXCEEDED", 5: "NOT_FOUND",
             7: "PERMISSION_DENIED", 8: "RESOURCE_EXHAUSTED", 9: "FAILED_PRECONDITION", 13: "INTERNAL",
             14: "UNAVAILABLE", 16: "UNAUTHENTICATED"}


@dataclass
class Reading:
    """What one response says about one photo: digits (photo pixels), all text, or an error."""

    digits: list[Digit] = field(default_factory=list)
    text: str = ""
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def response_error(response: dict[str, Any]) -> str | None:
    """The per-image ``error`` of a response as one line, or ``None``."""
    error = response.get("error") or {}
    code = int(error.get("code") or 0)
    if not code:
        return None
    name = RPC_CODES.get(code, f"code {code}")
    return f"Cloud Vision error for this photo ({name}): {error.get('message') or 'no message'}"


def _box(poly: dict[str, Any], width: int, height: int) -> tuple[float, float, float, float] | None:
    points = [(v.get("x", 0), v.get("y", 0)) for v in poly.get("vertices") or []]
    if not points:
        points = [(v.get("x", 0.0) * width, v.get("y", 0.0) * height) for v in poly.get("normalizedVertices") or []]
    if not points:
        return None
    xs = [min(max(float(x), 0.0), float(width)) for x, _ in points]
    ys = [min(max(float(y), 0.0), float(height)) for _, y in points]
    return min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)


def _symbols(full: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for page in full.get("pages") or []:
        for block in page.get("blocks") or []:
            for paragraph in block.get("paragraphs") or []:
                for word in paragraph.get("words") or []:
                    yield from word.get("symbols") or []


def _digit(text: str, box: tuple[float, float, float, float] | None, score: float) -> Digit | None:
    if len(text) != 1 or not text.isdecimal() or box is None:
        return None
    return Digit(int(text), score, *box)


def _from_symbols(full: dict[str, Any], width: int, height: int) -> tuple[list[Digit], bool]:
    digits, confidence_missing = [], False
    for symbol in _symbols(full):
        confidence = symbol.get("confidence")
        confidence_missing |= confidence is None
        digit = _digit(symbol.get("text", ""), _box(symbol.get("boundingBox") or {}, width, height),
                       1.0 if confidence is None else float(confidence))
        if digit is not None:
            digits.append(digit)
    return digits, confidence_missing


def _from_words(annotations: list[dict[str, Any]], width: int, height: int) -> list[Digit]:
    """Without symbols: split each word's box evenly between its characters."""
    digits = []
    for word in annotations[1:]:
        text = word.get("description", "")
        box = _box(word.get("boundingPoly") or {}, width, height)
        if not text or box is None:
            continue
        step = box[2] / len(text)
        for index, char in enumerate(text):
            digit = _digit(char, (box[0] + index * step, box[1], step, box[3]), 1.0)
            if digit is not None:
                digits.append(digit)
    return digits


def read_response(response: dict[str, Any], width: int, height: int) -> Reading:
    """Digits from the symbols of ``fullTextAnnotation`` (symbol confidence as score); text keeps
    every character. Falls back to ``textAnnotations`` words when there are no symbols."""
    error = response_error(response)
    if error:
        return Reading(error=error)
    full = response.get("fullTextAnnotation") or {}
    annotations = response.get("textAnnotations") or []
    text = " ".join((full.get("text") or (annotations[0].get("description", "") if annotations else "")).split())
    digits, confidence_missing = _from_symbols(full, width, height)
    details: dict[str, Any] = {}
    if not full.get("pages") and len(annotations) > 1:
        digits = _from_words(annotations, width, height)
        details["boxes"] = "split from word boxes (no symbols in the response)"
    if confidence_missing or details:
        details["score"] = "1.0: the response carries no symbol confidence"
    return Reading(digits, text, None, details)
