"""``tesseractjs``: Tesseract.js (Tesseract compiled to wasm, in a Web Worker) in headless Chromium.

Everything comes from the npm packages in ``backends/tesseractjs/web`` through the local page
server: ``tesseract.js`` (the page's library and the worker script), ``tesseract.js-core`` (the
wasm build, the variant the library would pick: relaxed-SIMD, SIMD or plain, LSTM only) and
``@tesseract.js-data/eng`` (``4.0.0_best_int``, the traineddata Tesseract.js uses for LSTM).

- Cold start: ``library`` = the page's ``tesseract.min.js`` (loaded with the page), the worker
  script and the wasm core; ``download`` = the traineddata (the model); bytes are Resource
  Timing's transfer sizes. ``init`` = starting the worker from those bytes (compiling the wasm,
  unpacking the traineddata, Tesseract's ``Init``) and setting psm and whitelist. The worker is
  created with ``cacheMethod: 'none'``: every row is a first visit.
- Photos: the page receives each photo's encoded file, upscales photos lower than
  ``--tesseractjs-min-height`` on a canvas (as a page would), and hands the image to the worker,
  which decodes it. Latency is the page's ``performance.now()`` from the encoded bytes in page
  memory to the recognized symbols.
- Digits and boxes: the symbols of Tesseract's result (``blocks`` output), with their
  confidences, mapped back to photo pixels.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backends.tfjs.options import LOCAL_CHROMIUM
from backends.tfjs.server import PageServer
from backends.webpage import LOAD_TIMEOUT_S, PageBackend, WebPage
from bench.errors import first_line
from bench.od_api import above
from bench.options import option
from bench.photos import LoadedPhoto
from bench.results.records import ColdStart, Digit, Recognition

WEB_DIR = Path(__file__).resolve().parent / "web"
NODE_MODULES = WEB_DIR / "node_modules"
LIBRARY_DIST = NODE_MODULES / "tesseract.js" / "dist"
CORE_DIR = NODE_MODULES / "tesseract.js-core"
FEATURE_DETECT = NODE_MODULES / "wasm-feature-detect" / "dist" / "umd"
TRAINEDDATA_VARIANT = "4.0.0_best_int"
TRAINEDDATA_DIR = NODE_MODULES / "@tesseract.js-data" / "eng" / TRAINEDDATA_VARIANT
REQUIRED_FILES = (LIBRARY_DIST / "tesseract.min.js", LIBRARY_DIST / "worker.min.js",
                  CORE_DIR / "tesseract-core-simd-lstm.wasm.js", FEATURE_DETECT / "index.js",
                  TRAINEDDATA_DIR / "eng.traineddata.gz")
ROUTES = {"/tesseractjs/": WEB_DIR, "/tesseract.js/": LIBRARY_DIST, "/tesseract-core/": CORE_DIR,
          "/wasm-feature-detect/": FEATURE_DETECT}
LSTM_ONLY = 1


def package_version(name: str) -> str | None:
    """The installed version of one of the page's npm packages."""
    try:
        return json.loads((NODE_MODULES / name / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


@dataclass(frozen=True)
class TesseractJsOptions:
    """Tesseract settings shared with the ``tesseract`` backend, and the browser's."""

    psm: int = option(11, "page segmentation mode: 11 sparse text, 7 one line, 8 one word, 13 raw line",
                      at_least=0, at_most=13)
    whitelist: bool = option(True, "only recognize the characters 0-9")
    min_height: int = option(96, "upscale photos lower than this many pixels (canvas, high-quality smoothing); "
                             "0 = never", at_least=0, at_most=2000)
    min_score: float = option(0.0, "drop digits whose confidence (0-1) is below this", at_least=0, at_most=1)
    batch_size: int = option(8, "photos per WebDriver call", at_least=1)
    batch_timeout_s: float = option(120.0, "a batch taking longer counts as a hung browser (restarted)",
                                    more_than=0, at_most=86400)
    max_restarts: int = option(2, "browser restarts allowed per row before its remaining photos fail",
                               at_least=0, at_most=100)
    chromium: str = option(LOCAL_CHROMIUM, "browser binary")
    chromedriver: str = option("/usr/bin/chromedriver", "chromedriver binary (never downloaded)")


def symbol_digits(symbols: Sequence[Sequence[Any]], scale_x: float, scale_y: float,
                  min_score: float) -> list[Digit]:
    """Digits from the page's ``[text, confidence 0-100, x0, y0, x1, y1]`` symbols, in photo pixels."""
    digits = []
    for text, confidence, x0, y0, x1, y1 in symbols:
        score = float(confidence) / 100.0
        if len(text) != 1 or not (text.isascii() and text.isdigit()) or score < min_score:
            continue
        digits.append(Digit(int(text), score, x0 / scale_x, y0 / scale_y, (x1 - x0) / scale_x, (y1 - y0) / scale_y))
    return digits


class TesseractJsBackend(PageBackend):
    """Tesseract.js in a Web Worker of a page in headless Chromium."""

    name = "tesseractjs"
    Options = TesseractJsOptions
    summary = "Tesseract.js (wasm, LSTM) in headless Chromium, served locally"
    packages = ("selenium",)
    page_path = "/tesseractjs/index.html"
    flag_prefix = "--tesseractjs"
    web_dir = WEB_DIR
    required_files = REQUIRED_FILES

    def __init__(self, options: Any = None, row: str | None = None) -> None:
        super().__init__(options, row)
        self.batch_size = self.options.batch_size
        self.loaded: dict[str, Any] = {}

    @classmethod
    def unavailable_reason(cls, options: TesseractJsOptions) -> str | None:
        return cls.page_problem(options)

    def serve(self) -> PageServer:
        return self.page_server(TRAINEDDATA_DIR, ROUTES)

    def load(self, page: WebPage) -> ColdStart:
        whitelist = "0123456789" if self.options.whitelist else ""
        loaded = page.call("load", {"libraryPath": "/tesseract.js/", "workerUrl": "/tesseract.js/worker.min.js",
                                    "coreDir": "/tesseract-core/", "langUrl": "/model/eng.traineddata.gz",
                                    "oem": LSTM_ONLY, "psm": self.options.psm, "whitelist": whitelist},
                           LOAD_TIMEOUT_S)
        self.loaded = loaded
        return ColdStart(library_ms=loaded["libraryMs"], library_bytes=int(loaded["libraryBytes"]),
                         download_ms=loaded["downloadMs"], download_bytes=int(loaded["downloadBytes"]),
                         init_ms=loaded["initMs"], details={"body_bytes": loaded["parts"], "core": loaded["core"]})

    def recognize(self, photos: Sequence[LoadedPhoto]) -> list[Recognition]:
        names = [f"{i}-{p.photo.image.replace('/', '_')}" for i, p in enumerate(photos)]
        batch = [{"url": f"/photos/{name}", "height": p.height, "width": p.width} for name, p in zip(names, photos)]
        return self.recognize_in_page(photos, "recognize", {"photos": batch, "minHeight": self.options.min_height},
                                      {name: p.encoded for name, p in zip(names, photos)}, self._recognition)

    def _recognition(self, photo: LoadedPhoto, raw: dict[str, Any]) -> Recognition:
        if raw.get("error"):
            return Recognition.failed(f"tesseract.js: {first_line(raw['error'])}")
        candidates = symbol_digits(raw["symbols"], raw["scaleX"], raw["scaleY"], 0.0)
        digits = above(candidates, self.options.min_score)
        return Recognition(digits, raw["text"].strip(), raw["latencyMs"], end_to_end_ms=raw["latencyMs"],
                           candidates=candidates,
                           details={"prepare_ms": round(raw["prepareMs"], 4),
                                    "recognize_ms": round(raw["recognizeMs"], 4)})

    def describe(self) -> dict[str, Any]:
        notes = ["colour photo as it is (the tesseract row's grayscale and auto-invert do not apply)"]
        if self.restarts:
            notes.append(f"browser restarted {self.restarts}x")
        return {"tesseract.js": package_version("tesseract.js"),
                "tesseract.js-core": package_version("tesseract.js-core"),
                "traineddata": f"@tesseract.js-data/eng@{package_version('@tesseract.js-data/eng')} "
                               f"{TRAINEDDATA_VARIANT}",
                "core": self.loaded.get("core"), "browser_version": self.page.version if self.page else None,
                "user_agent": self.loaded.get("userAgent"), "psm": self.options.psm,
                "whitelist": self.options.whitelist, "min_height": self.options.min_height,
                "batch_size": self.batch_size, "restarts": self.restarts, "notes": notes}
