"""Cloud Vision responses in the documented REST JSON format, built from known digits.

The emulator answers with these; tests build their cases with them. A response is the JSON of
one ``AnnotateImageResponse``: ``textAnnotations`` (the whole text first, then one entry per
word) and ``fullTextAnnotation`` (pages > blocks > paragraphs > words > symbols, each symbol with
its ``boundingBox`` vertices and ``confidence``).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from bench.results.records import Box


@dataclass(frozen=True)
class Glyph:
    """One character the emulated service "sees": its text, box and confidence."""

    text: str
    box: Box
    confidence: float = 0.97


def vertices(box: Box) -> dict[str, list[dict[str, int]]]:
    """A ``boundingPoly`` in integer pixels, clockwise from the top-left (as the service sends)."""
    left, top = round(box.left), round(box.top)
    right, bottom = round(box.right), round(box.bottom)
    return {"vertices": [{"x": left, "y": top}, {"x": right, "y": top},
                         {"x": right, "y": bottom}, {"x": left, "y": bottom}]}


def _union(boxes: Iterable[Box]) -> Box:
    boxes = list(boxes)
    left, top = min(b.left for b in boxes), min(b.top for b in boxes)
    right, bottom = max(b.right for b in boxes), max(b.bottom for b in boxes)
    return Box(left, top, right - left, bottom - top)


def text_response(words: Sequence[Sequence[Glyph]], width: int, height: int) -> dict[str, Any]:
    """The response for a photo showing ``words`` (each a sequence of glyphs), or none."""
    words = [list(w) for w in words if w]
    if not words:
        return {}
    all_glyphs = [g for w in words for g in w]
    text = " ".join("".join(g.text for g in w) for w in words)
    word_entries = [{"description": "".join(g.text for g in w), "boundingPoly": vertices(_union(g.box for g in w))}
                    for w in words]
    symbols = [[{"text": g.text, "confidence": g.confidence, "boundingBox": vertices(g.box)} for g in w]
               for w in words]
    for word in symbols[:-1]:
        word[-1]["property"] = {"detectedBreak": {"type": "SPACE"}}
    symbols[-1][-1]["property"] = {"detectedBreak": {"type": "EOL_SURE_SPACE"}}
    block_box = vertices(_union(g.box for g in all_glyphs))
    confidence = round(min(g.confidence for g in all_glyphs), 4)
    return {
        "textAnnotations": [{"locale": "und", "description": text + "\n", "boundingPoly": block_box},
                            *word_entries],
        "fullTextAnnotation": {
            "pages": [{"width": width, "height": height, "confidence": confidence, "blocks": [{
                "blockType": "TEXT", "boundingBox": block_box, "confidence": confidence,
                "paragraphs": [{"boundingBox": block_box, "confidence": confidence, "words": [
                    {"boundingBox": vertices(_union(g.box for g in w)), "confidence": confidence, "symbols": s}
                    for w, s in zip(words, symbols, strict=True)]}]}]}],
            "text": text + "\n",
        },
    }


def error_response(code: int, message: str) -> dict[str, Any]:
    """A per-image error (``google.rpc.Status``: gRPC code and message) inside a 200 answer."""
    return {"error": {"code": code, "message": message}}
