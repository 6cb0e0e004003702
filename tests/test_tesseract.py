"""The real Tesseract on rendered photos: boxes mapped back to photo pixels, scores, options."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from backends.tesseract import TesseractBackend, TesseractOptions, needs_inversion, otsu_threshold, parse_hocr, preprocess
from bench.photos import LoadedPhoto, Photo

pytestmark = pytest.mark.skipif(shutil.which("tesseract") is None,
                                reason="tesseract not installed (make setup installs tesseract-ocr)")


def rendered_number(text: str, dark_on_light: bool = True, size: int = 40) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """A clean photo of ``text`` and the x-extent of each digit's ink."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf", size)
    ink, paper = (20, 20, 20), (235, 235, 225)
    if not dark_on_light:
        ink, paper = paper, (30, 40, 90)
    image = Image.new("RGB", (40 + 35 * len(text), size + 30), paper)
    draw = ImageDraw.Draw(image)
    extents = []
    x = 20
    for char in text:
        bbox = draw.textbbox((x, 12), char, font=font)
        draw.text((x, 12), char, font=font, fill=ink)
        extents.append((bbox[0], bbox[2]))
        x += 35
    return np.asarray(image), extents


def loaded(rgb: np.ndarray) -> LoadedPhoto:
    return LoadedPhoto(Photo("x.png", "", [], lambda: b""), rgb, b"")


def recognize(rgb: np.ndarray, **options) -> list:
    backend = TesseractBackend(TesseractOptions(**options))
    backend.open()
    try:
        return backend.recognize([loaded(rgb)])
    finally:
        backend.close()


def test_reads_a_clean_number_with_boxes_on_each_digit():
    rgb, extents = rendered_number("4071")
    result = recognize(rgb)[0]
    assert result.error is None and result.latency_ms > 0
    assert [d.label for d in result.digits] == [4, 0, 7, 1]
    for digit, (x0, x1) in zip(result.digits, extents):
        centre = digit.left + digit.width / 2
        assert x0 - 3 <= centre <= x1 + 3
        assert 0.0 < digit.score <= 1.0
        assert 0 <= digit.top < digit.top + digit.height <= rgb.shape[0] + 1


def test_small_photo_is_upscaled_and_boxes_come_back_in_photo_pixels():
    from PIL import Image

    rgb, extents = rendered_number("58")
    small = np.asarray(Image.fromarray(rgb).resize((rgb.shape[1] // 2, rgb.shape[0] // 2), Image.Resampling.LANCZOS))
    result = recognize(small, min_height=120)[0]
    assert [d.label for d in result.digits] == [5, 8]
    for digit, (x0, x1) in zip(result.digits, extents):
        assert x0 / 2 - 3 <= digit.left + digit.width / 2 <= x1 / 2 + 3
        assert digit.top + digit.height <= small.shape[0] + 1


def test_light_on_dark_is_detected_and_inverted():
    rgb, _ = rendered_number("36", dark_on_light=False)
    gray, _ = preprocess(rgb, TesseractOptions(min_height=0, invert="never"))
    assert needs_inversion(gray)
    assert not needs_inversion(255 - gray)
    result = recognize(rgb)[0]
    assert [d.label for d in result.digits] == [3, 6]


def test_otsu_splits_a_two_level_image_between_the_levels():
    image = np.array([[10] * 50 + [200] * 50], dtype=np.uint8)
    assert 10 <= otsu_threshold(image) < 200


def test_hocr_parsing_keeps_text_drops_non_digits_and_applies_threshold():
    hocr = ("<span class='ocrx_cinfo' title='x_bboxes 10 20 30 60; x_conf 91.5'>1</span>"
            "<span class='ocrx_cinfo' title='x_bboxes 40 20 60 60; x_conf 40'>B</span>"
            "<span class='ocrx_cinfo' title='x_bboxes 70 20 90 60; x_conf 30'>7</span>")
    digits, text = parse_hocr(hocr, scale=2.0, min_score=0.35)
    assert text == "1B7"
    assert len(digits) == 1
    d = digits[0]
    assert (d.label, d.left, d.top, d.width, d.height) == (1, 5.0, 10.0, 10.0, 20.0)
    assert d.score == pytest.approx(0.915)


def _peak_rss_mb_of_preprocess(width: int, height: int) -> float:
    """Peak resident memory of a fresh process that preprocesses one ``width`` x ``height`` photo (its own
    VmHWM: getrusage's maximum would include the parent's size before exec)."""
    import subprocess
    import sys

    code = ("import re, numpy as np\n"
            "from backends.tesseract import TesseractOptions, preprocess\n"
            f"image, scale = preprocess(np.full(({height}, {width}, 3), 128, np.uint8), TesseractOptions())\n"
            "peak = int(re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read()).group(1))\n"
            "print('peak', image.size, peak / 1024)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    _, pixels, peak = [line for line in done.stdout.splitlines() if line.startswith("peak ")][-1].split()
    assert int(pixels) <= 4_000_000
    return float(peak)


def test_upscaling_a_long_thin_photo_stays_within_a_memory_bound():
    assert _peak_rss_mb_of_preprocess(20000, 1) < 400


def test_upscale_keeps_the_tuned_factor_for_ordinary_photos_and_caps_extreme_ones():
    from backends.tesseract import MAX_UPSCALED_PIXELS, upscale_factor

    assert upscale_factor(60, 30, 96) == pytest.approx(3.2)
    assert upscale_factor(200, 120, 96) == 1.0
    assert upscale_factor(20000, 1, 96) == 1.0
    factor = upscale_factor(3000, 10, 96)
    assert 1.0 < factor < 9.6 and 3000 * 10 * factor ** 2 <= MAX_UPSCALED_PIXELS * 1.0001


def test_a_long_thin_photo_is_recognized_or_one_error_line():
    [result] = recognize(np.full((1, 20000, 3), 200, np.uint8))
    assert result.error is None or "\n" not in result.error


def test_a_tesseract_failure_is_reported_with_its_own_message_not_as_a_timeout():
    rgb, _ = rendered_number("12")
    [result] = recognize(rgb, oem=0)
    assert result.error is not None and "timeout" not in result.error
    assert result.error.startswith("tesseract failed (exit status")
    assert "legacy" in result.error or "language" in result.error


def test_a_slow_tesseract_is_reported_as_a_timeout():
    rgb, _ = rendered_number("12")
    [result] = recognize(rgb, timeout_s=0.001)
    assert "timeout" in result.error and "--tesseract-timeout-s" in result.error
