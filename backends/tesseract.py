"""``tesseract``: Tesseract OCR through pytesseract, with per-digit boxes and confidences.

One ``tesseract`` process per photo (that is how pytesseract works, ~100 ms of each call here).
Digits and their boxes come from hOCR with ``hocr_char_boxes=1``: per-character boxes in a
top-left origin and a per-character confidence (0-100, reported as a 0-1 score), in one call.
Photos are preprocessed first (see :class:`TesseractOptions`); boxes are mapped back to the
original photo's pixels.
"""
from __future__ import annotations

import html
import re
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bench.backend import Backend
from bench.clock import ms_since
from bench.errors import first_line
from bench.od_api import above
from bench.options import option
from bench.photos import LoadedPhoto
from bench.results.records import ColdStart, Digit, Recognition

CHAR_SPAN = re.compile(r"<span class='ocrx_cinfo' title='x_bboxes (\d+) (\d+) (\d+) (\d+); x_conf ([\d.]+)'>([^<]*)</span>")
INSTALL_HINT = "install tesseract-ocr (apt-get install tesseract-ocr) or pass --tesseract-cmd PATH"


@dataclass(frozen=True)
class TesseractOptions:
    """Tesseract settings and the preprocessing applied before it (defaults measured on SVHN test-dev)."""

    cmd: str = option("tesseract", "the tesseract executable")
    psm: int = option(11, "page segmentation mode: 11 sparse text, 7 one line, 8 one word, 13 raw line",
                     at_least=0, at_most=13)
    oem: int = option(1, "OCR engine mode (1 = LSTM)", at_least=0, at_most=3)
    whitelist: bool = option(True, "only recognize the characters 0-9")
    grayscale: bool = option(True, "convert to grayscale first")
    min_height: int = option(96, "upscale photos lower than this many pixels (bicubic); 0 = never", at_least=0,
                            at_most=2000)
    binarize: str = option("none", "binarisation before OCR", choices=("none", "otsu"))
    invert: str = option("auto", "make text dark on light: auto (by the border's brightness), never, always",
                         choices=("auto", "never", "always"))
    min_score: float = option(0.0, "drop digits whose confidence (0-1) is below this", at_least=0, at_most=1)
    timeout_s: float = option(30.0, "per-photo timeout of the tesseract process", more_than=0, at_most=86400)


def otsu_threshold(gray: np.ndarray) -> float:
    """Otsu's threshold of a uint8 grayscale image."""
    hist = np.bincount(gray.ravel(), minlength=256).astype(np.float64)
    total = hist.sum()
    levels = np.arange(256)
    weight0 = np.cumsum(hist)
    mean0 = np.cumsum(hist * levels)
    weight1 = total - weight0
    valid = (weight0 > 0) & (weight1 > 0)
    between = np.zeros(256)
    m0 = mean0[valid] / weight0[valid]
    m1 = (mean0[-1] - mean0[valid]) / weight1[valid]
    between[valid] = weight0[valid] * weight1[valid] * (m0 - m1) ** 2
    return float(np.argmax(between))


def needs_inversion(gray: np.ndarray) -> bool:
    """Light text on a dark ground: the photo's centre band is brighter than its border."""
    h, w = gray.shape
    border = np.concatenate([gray[: max(h // 8, 1)].ravel(), gray[-max(h // 8, 1):].ravel()])
    threshold = otsu_threshold(gray)
    centre = gray[h // 4: 3 * h // 4 or 1, w // 4: 3 * w // 4 or 1]
    ink_is_light = (centre > threshold).mean() < 0.5
    return bool(border.mean() < threshold and ink_is_light)


MAX_UPSCALED_PIXELS = 4_000_000
"""Upscaling (``--tesseract-min-height``) never makes an image larger than this many pixels..."""
MAX_UPSCALED_SIDE = 20_000
"""... nor wider or higher than this: a 20000 x 1 photo is not blown up to 1.9 million pixels wide."""


def upscale_factor(width: int, height: int, min_height: int) -> float:
    """How much to enlarge a ``width`` x ``height`` photo towards ``min_height``, within the memory bounds
    (never below 1: photos are not shrunk)."""
    if not min_height or height >= min_height:
        return 1.0
    wanted = min_height / height
    bound = min((MAX_UPSCALED_PIXELS / (width * height)) ** 0.5, MAX_UPSCALED_SIDE / max(width, height))
    return max(1.0, min(wanted, bound))


def preprocess(rgb: np.ndarray, options: TesseractOptions) -> tuple[np.ndarray, float]:
    """The image handed to Tesseract and the scale factor from the photo to it."""
    from PIL import Image

    image = Image.fromarray(rgb)
    scale = upscale_factor(image.width, image.height, options.min_height)
    if scale > 1.0:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        scale = size[1] / image.height
        image = image.resize(size, Image.Resampling.BICUBIC)
    if not (options.grayscale or options.binarize != "none" or options.invert != "never"):
        return np.asarray(image), scale
    gray = np.asarray(image.convert("L"))
    invert = options.invert == "always" or (options.invert == "auto" and needs_inversion(gray))
    if invert:
        gray = 255 - gray
    if options.binarize == "otsu":
        gray = np.where(gray > otsu_threshold(gray), 255, 0).astype(np.uint8)
    return gray, scale


def parse_hocr(hocr: str, scale: float, min_score: float) -> tuple[list[Digit], str]:
    """Digits (boxes in photo pixels) and the full recognized text from hOCR with char boxes."""
    digits, text = [], []
    for left, top, right, bottom, conf, char in CHAR_SPAN.findall(hocr):
        char = html.unescape(char)
        text.append(char)
        if not char.isdigit() or len(char) != 1:
            continue
        score = float(conf) / 100.0
        if score < min_score:
            continue
        x0, y0, x1, y1 = (int(v) / scale for v in (left, top, right, bottom))
        digits.append(Digit(int(char), score, x0, y0, x1 - x0, y1 - y0))
    return digits, "".join(text)


class TesseractBackend(Backend):
    """Tesseract OCR, one process per photo."""

    name = "tesseract"
    packages = ("pytesseract",)
    Options = TesseractOptions
    summary = "Tesseract OCR via pytesseract (hOCR char boxes)"

    @classmethod
    def unavailable_reason(cls, options: TesseractOptions) -> str | None:
        try:
            import pytesseract  # noqa: F401
        except ImportError:
            return "pytesseract not installed: pip install pytesseract"
        if not shutil.which(options.cmd):
            return f"tesseract not found ({options.cmd!r}): {INSTALL_HINT}"
        return None

    def open(self) -> ColdStart:
        import pytesseract

        start = time.perf_counter_ns()
        pytesseract.pytesseract.tesseract_cmd = self.options.cmd
        try:
            self._version = str(pytesseract.get_tesseract_version())
        except (pytesseract.TesseractNotFoundError, OSError) as exc:
            raise RuntimeError(f"tesseract not usable ({exc}): {INSTALL_HINT}") from None
        self._config = f"--psm {self.options.psm} --oem {self.options.oem} -c hocr_char_boxes=1"
        if self.options.whitelist:
            self._config += " -c tessedit_char_whitelist=0123456789"
        return ColdStart(init_ms=ms_since(start))

    def _one(self, loaded: LoadedPhoto) -> Recognition:
        import pytesseract

        start = time.perf_counter_ns()
        image, scale = preprocess(loaded.rgb, self.options)
        try:
            hocr = pytesseract.image_to_pdf_or_hocr(image, extension="hocr", config=self._config,
                                                    timeout=self.options.timeout_s).decode("utf-8", "replace")
        except pytesseract.TesseractError as exc:
            return Recognition.failed(f"tesseract failed (exit status {exc.status}): "
                                      f"{first_line(exc.message, 'no error message')}")
        except RuntimeError as exc:
            if "timeout" not in str(exc).lower():
                return Recognition.failed(f"tesseract failed: {first_line(exc, repr(exc))}")
            return Recognition.failed(f"tesseract: {exc} (over --tesseract-timeout-s {self.options.timeout_s:g})")
        except (subprocess.SubprocessError, OSError) as exc:
            return Recognition.failed(f"tesseract failed: {first_line(exc, repr(exc))}")
        latency = ms_since(start)
        candidates, text = parse_hocr(hocr, scale, 0.0)
        digits = above(candidates, self.options.min_score)
        return Recognition(digits, text, latency, candidates=candidates)

    def recognize(self, photos: Sequence[LoadedPhoto]) -> list[Recognition]:
        return [self._one(p) for p in photos]

    def describe(self) -> dict:
        return {"tesseract": getattr(self, "_version", None), "config": getattr(self, "_config", None)}
