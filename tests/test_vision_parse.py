"""Reading digits, boxes and text out of Cloud Vision's documented response JSON (no network)."""
from __future__ import annotations

from backends.vision.annotations import Glyph, error_response, text_response
from backends.vision.parse import read_response
from bench.results.records import Box


def test_digits_come_from_symbols_with_their_boxes_and_confidence():
    response = text_response([[Glyph("4", Box(10, 5, 8, 12), 0.91), Glyph("2", Box(20, 5, 8, 12), 0.83)]], 40, 20)
    reading = read_response(response, 40, 20)
    assert [(d.label, d.score, d.box) for d in reading.digits] == [(4, 0.91, Box(10, 5, 8, 12)),
                                                                  (2, 0.83, Box(20, 5, 8, 12))]
    assert reading.text == "42" and reading.error is None and reading.details == {}


def test_non_digit_symbols_are_dropped_but_kept_in_text():
    words = [[Glyph("N", Box(0, 0, 5, 5)), Glyph("o", Box(5, 0, 5, 5)), Glyph(".", Box(10, 0, 2, 5))],
             [Glyph("1", Box(20, 0, 5, 5)), Glyph("2", Box(25, 0, 5, 5)), Glyph("A", Box(30, 0, 5, 5))]]
    reading = read_response(text_response(words, 40, 10), 40, 10)
    assert [d.label for d in reading.digits] == [1, 2]
    assert reading.text == "No. 12A"


def test_no_text_is_an_empty_reading_not_an_error():
    reading = read_response({}, 40, 20)
    assert reading.digits == [] and reading.text == "" and reading.error is None


def test_per_image_error_is_one_line_with_the_status_name():
    reading = read_response(error_response(3, "Bad image data."), 40, 20)
    assert reading.error == "Cloud Vision error for this photo (INVALID_ARGUMENT): Bad image data."


def test_rotated_symbol_gets_its_axis_aligned_hull_clipped_to_the_photo_and_omitted_zeros():
    symbol = {"text": "7", "confidence": 0.5,
              "boundingBox": {"vertices": [{"y": 2}, {"x": 12, "y": 1}, {"x": 13, "y": 30}, {"x": 1, "y": 31}]}}
    response = {"fullTextAnnotation": {"text": "7", "pages": [{"blocks": [{"paragraphs": [{"words": [
        {"symbols": [symbol]}]}]}]}]}}
    digit = read_response(response, 10, 25).digits[0]
    assert (digit.left, digit.top, digit.width, digit.height) == (0.0, 1.0, 10.0, 24.0)


def test_normalized_vertices_are_scaled_to_pixels():
    symbol = {"text": "3", "boundingBox": {"normalizedVertices": [{"x": 0.25, "y": 0.5}, {"x": 0.5, "y": 1.0}]}}
    response = {"fullTextAnnotation": {"pages": [{"blocks": [{"paragraphs": [{"words": [{"symbols": [symbol]}]}]}]}]}}
    reading = read_response(response, 40, 20)
    assert reading.digits[0].box == Box(10.0, 10.0, 10.0, 10.0)
    assert "no symbol confidence" in reading.details["score"]


def test_word_boxes_are_split_evenly_when_there_are_no_symbols():
    response = {"textAnnotations": [{"description": "12\n"}, {"description": "12", "boundingPoly": {
        "vertices": [{"x": 10, "y": 0}, {"x": 30, "y": 0}, {"x": 30, "y": 10}, {"x": 10, "y": 10}]}}]}
    reading = read_response(response, 40, 20)
    assert [(d.label, d.left, d.width) for d in reading.digits] == [(1, 10.0, 10.0), (2, 20.0, 10.0)]
    assert reading.text == "12" and "word boxes" in reading.details["boxes"]
