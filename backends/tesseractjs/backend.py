"""``tesseractjs``: Tesseract.js (Tesseract compiled to wasm, in a Web Worker) in headless Chromium.

Everything comes from the npm packages in ``backends/tesseractjs/web`` through the local page
server: ``tesseract.js`` (the page's library and the worker script), ``tesseract.js-core`` (the
wasm build, the variant the library would pick: relaxed-SIMD, SIMD or plain, LSTM only) and
``@tesseract.js-data/eng`` (``4.0.0_best_int``, the traineddata Tesseract.js uses for LSTM).

- Cold start: the page's library (``tesseract.min.js``) loads with the page (``library_*`` in
  the details); ``download`` = the page fetching the worker script, the wasm core and the
  traineddata (Resource Timing bytes); ``init`` = starting the worker from those bytes
  (compiling the wasm, unpacking the traineddata, Tesseract's ``Init``) and setting psm and
  whitelist. The worker is created with ``cacheMethod: 'none'``: every row is a first visit.
- Photos: the page receives each photo's encoded file, upscales photos lower than
  ``--tesseractjs-min-height`` on a canvas (as a page would), and hands the image to the worker,
  which decodes it. Latency is the page's ``performance.now()`` from the encoded bytes in page
  memory to the recognized symbols.
- Digits and boxes: the symbols of Tesseract's result (``blocks`` output), with their
  confidences, mapped back to photo pixels.
"""
from __future__ import annotations

import json
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backends.tfjs.browser import BrowserSpec
from backends.tfjs.options import LOCAL_CHROMIUM
from backends.tfjs.server import PageServer
from backends.webpage import BrowserGone, PageError, PageHung, WebPage
from bench.backend import Backend
from bench.clock import ms_since
from bench.errors import first_line
from bench.options import option
from bench.photos import LoadedPhoto
from bench.records import ColdStart, Digit, Recognition

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
LOAD_TIMEOUT_S = 120.0
LSTM_ONLY = 1


def missing_page_files() -> list[Path]:
    """Files the page needs that set-up has not installed (``npm ci`` in ``backends/tesseractjs/web``)."""
    return [p for p in REQUIRED_FILES if not p.is_file()]


def package_version(name: str) -> str | None:
    """The installed version of one of the page's npm packages."""
    try:
        return json.loads((NODE_MODULES / name / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


@dataclass(frozen=True)
class TesseractJsOptions:
    """Tesseract settings shared with the ``tesseract`` backend, and the browser's."""

    psm: int = option(11, "page segmentation mode: 11 sparse text, 7 one line, 8 one word, 13 raw line")
    whitelist: bool = option(True, "only recognize the characters 0-9")
    min_height: int = option(96, "upscale photos lower than this many pixels (canvas, high-quality smoothing); "
                             "0 = never")
    min_score: float = option(0.0, "drop digits whose confidence (0-1) is below this")
    batch_size: int = option(8, "photos per WebDriver call")
    batch_timeout_s: float = option(120.0, "a batch taking longer counts as a hung browser (restarted)")
    max_restarts: int = option(2, "browser restarts allowed per row before its remaining photos fail")
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


class TesseractJsBackend(Backend):
    """Tesseract.js in a Web Worker of a page in headless Chromium."""

    name = "tesseractjs"
    Options = TesseractJsOptions
    summary = "Tesseract.js (wasm, LSTM) in headless Chromium, served locally"

    def __init__(self, options: Any = None, row: str | None = None) -> None:
        super().__init__(options, row)
        self.batch_size = max(1, self.options.batch_size)
        self.server = None
        self.page = None
        self.loaded: dict[str, Any] = {}
        self.restarts = 0

    @classmethod
    def unavailable_reason(cls, options: TesseractJsOptions) -> str | None:
        try:
            import selenium  # noqa: F401
        except ImportError:
            return "selenium not installed: pip install selenium (see requirements.lock)"
        if not Path(options.chromium).is_file():
            return f"no Chromium at {options.chromium}: apt-get install chromium (or pass --tesseractjs-chromium PATH)"
        if not (Path(options.chromedriver).is_file() or shutil.which(options.chromedriver)):
            return (f"no chromedriver at {options.chromedriver}: apt-get install chromium-driver "
                    "(or pass --tesseractjs-chromedriver PATH)")
        missing = missing_page_files()
        if missing:
            return f"Tesseract.js npm packages missing ({missing[0].name}): run `npm ci` in {WEB_DIR} (or `make setup`)"
        return None

    def open(self) -> ColdStart:
        self.server = PageServer(TRAINEDDATA_DIR, folders=ROUTES)
        return self._start()

    def _start(self) -> ColdStart:
        start = time.perf_counter_ns()
        page = WebPage(BrowserSpec(self.options.chromium, self.options.chromedriver), self.server,
                       "/tesseractjs/index.html", self.options.batch_timeout_s, "--tesseractjs-batch-timeout-s")
        try:
            page_load_ms = page.open(LOAD_TIMEOUT_S)
            browser_ms = ms_since(start)
            whitelist = "0123456789" if self.options.whitelist else ""
            loaded = page.call("load", {"libraryPath": "/tesseract.js/", "workerUrl": "/tesseract.js/worker.min.js",
                                        "coreDir": "/tesseract-core/", "langUrl": "/model/eng.traineddata.gz",
                                        "oem": LSTM_ONLY, "psm": self.options.psm, "whitelist": whitelist},
                               LOAD_TIMEOUT_S)
        except BaseException:
            page.close()
            raise
        self.page, self.loaded = page, loaded
        timing = loaded.get("resourceTiming") or {}
        library = loaded.get("library") or {}
        details = {"browser_start_ms": round(browser_ms, 3), "page_load_ms": page_load_ms,
                   "library_ms": library.get("ms"), "library_bytes": library.get("transferBytes"),
                   "body_bytes": loaded["parts"], "core": loaded["core"],
                   "resource_timing_ms": timing.get("ms"), "resource_timing_transfer_bytes": timing.get("transferBytes")}
        return ColdStart(download_ms=loaded["downloadMs"], download_bytes=int(timing.get("transferBytes")
                                                                                or loaded["downloadBytes"]),
                         init_ms=loaded["initMs"], details=details)

    def _restart(self) -> str | None:
        """Start a fresh browser after a crash or hang; the reason to give up instead, if any."""
        if self.page is not None:
            self.page.close()
            self.page = None
        if self.restarts >= self.options.max_restarts:
            return f"browser not restarted again after {self.restarts} restarts (--tesseractjs-max-restarts)"
        self.restarts += 1
        try:
            self._start()
        except Exception as exc:
            return f"restart failed: {first_line(exc)}"
        return None

    def recognize(self, photos: Sequence[LoadedPhoto]) -> list[Recognition]:
        def failed(message: str) -> list[Recognition]:
            return [Recognition.failed(message) for _ in photos]

        if self.page is None:
            return failed("the browser is not running (it gave out earlier in this row)")
        names = {f"{i}-{p.photo.image.replace('/', '_')}": p for i, p in enumerate(photos)}
        self.server.put_photos({name: p.encoded for name, p in names.items()})
        batch = [{"url": f"/photos/{name}", "height": p.height, "width": p.width} for name, p in names.items()]
        try:
            raw = self.page.call("recognize", {"photos": batch, "minHeight": self.options.min_height})
        except (BrowserGone, PageHung) as exc:
            gave_up = self._restart()
            return failed(str(exc) + (f"; {gave_up}" if gave_up else ""))
        except PageError as exc:
            return failed(str(exc))
        finally:
            self.server.put_photos({})
        return [self._recognition(r) for r in raw]

    def _recognition(self, raw: dict[str, Any]) -> Recognition:
        if raw.get("error"):
            return Recognition.failed(f"tesseract.js: {first_line(raw['error'])}")
        digits = symbol_digits(raw["symbols"], raw["scaleX"], raw["scaleY"], self.options.min_score)
        return Recognition(digits, raw["text"].strip(), raw["latencyMs"],
                           details={"prepare_ms": round(raw["prepareMs"], 4),
                                    "recognize_ms": round(raw["recognizeMs"], 4)})

    def close(self) -> None:
        page, self.page = self.page, None
        server, self.server = self.server, None
        try:
            if page is not None:
                page.close()
        finally:
            if server is not None:
                server.close()

    def describe(self) -> dict[str, Any]:
        notes = ["colour photo as it is (the tesseract row's grayscale and auto-invert do not apply)"]
        if self.restarts:
            notes.append(f"browser restarted {self.restarts}x")
        return {"tesseract.js": package_version("tesseract.js"), "tesseract.js-core": package_version("tesseract.js-core"),
                "traineddata": f"@tesseract.js-data/eng@{package_version('@tesseract.js-data/eng')} "
                               f"{TRAINEDDATA_VARIANT}",
                "core": self.loaded.get("core"), "browser_version": self.page.version if self.page else None,
                "user_agent": self.loaded.get("userAgent"), "psm": self.options.psm,
                "whitelist": self.options.whitelist, "min_height": self.options.min_height,
                "batch_size": self.batch_size, "restarts": self.restarts, "notes": notes}
