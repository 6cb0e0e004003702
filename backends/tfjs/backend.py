"""``tfjs``: the detector as TF.js in headless Chromium, driven by Selenium.

One row per (TF.js backend x quantization). :meth:`TfjsBackend.open` serves the page, TF.js and
the row's model variant from a local server, starts a fresh browser, and measures the model
download and init inside the page (a warm cache is a second visit). :meth:`recognize` sends
photos in batches; each photo's latency is the page's ``performance.now()`` time from RGB
pixels to detections (letterbox, inference, reading the outputs back). A browser that dies or
hangs is restarted and the batch retried once; after ``--tfjs-max-restarts`` the row's
remaining photos fail.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from backends.tfjs.model_files import TfjsModel, default_quantizations, load_variant, model_metadata, source_problem
from backends.tfjs.options import LOCAL_CHROMIUM, TfjsOptions, emulation
from backends.tfjs.outputs import OutputNames, resolve_outputs
from backends.tfjs.page import PageConfig, PageSession
from backends.tfjs.server import PageServer
from backends.tfjs.site import WEB_DIR, library_files, missing_page_files, site_files
from bench.backend import Backend, SweepAxis
from bench.errors import EngineError, EngineGone, EngineHung, ModelError, UsageError, first_line
from bench.metrics import read_number
from bench.model.preprocess import Transform, letterbox_transform
from bench.od_api import FALLBACK_THRESHOLD, ClassFit, ClassMap, Decoder, above, decode, resolve_classes, threshold_of
from bench.photos import LoadedPhoto
from bench.results.records import ColdStart, Digit, Recognition
from bench.saved_model import DEFAULT_MODEL
from bench.tfjs_convert import QUANTIZATIONS

LOAD_TIMEOUT_S = 60.0


def model_source(options: TfjsOptions) -> Path:
    """The SavedModel or TF.js folder this configuration uses."""
    return Path(options.model) if options.model else DEFAULT_MODEL


class TfjsBackend(Backend):
    """The detector in TF.js (webgl, wasm or cpu) inside headless Chromium."""

    name = "tfjs"
    Options = TfjsOptions
    summary = "the detector in TF.js (webgl/wasm/cpu) in headless Chromium via Selenium"
    sweep_axes = (SweepAxis("quantization", QUANTIZATIONS, "none"),)
    packages = ("selenium", "tensorflowjs")

    @classmethod
    def unavailable_reason(cls, options: TfjsOptions) -> str | None:
        try:
            import selenium  # noqa: F401
        except ImportError:
            return "selenium not installed: pip install selenium (see requirements.lock)"
        if options.webdriver_url is None:
            chromium = options.chromium or LOCAL_CHROMIUM
            if not Path(chromium).is_file():
                return f"no Chromium at {chromium}: apt-get install chromium (or pass --tfjs-chromium PATH)"
            if not (Path(options.chromedriver).is_file() or shutil.which(options.chromedriver)):
                return (f"no chromedriver at {options.chromedriver}: apt-get install chromium-driver "
                        "(or pass --tfjs-chromedriver PATH)")
        for backend in options.tfjs_backend:
            missing = missing_page_files(options.bundle, backend)
            if missing:
                return (f"TF.js page files missing ({missing[0].name}): run `bash scripts/setup.sh` (npm ci and "
                        f"node build.mjs in {WEB_DIR})")
        return source_problem(model_source(options), options.model is None, options.quantization)

    @classmethod
    def runs_on_this_machine(cls, options: TfjsOptions) -> bool:
        from urllib.parse import urlsplit

        if options.webdriver_url is None:
            return True
        return urlsplit(options.webdriver_url).hostname in ("localhost", "127.0.0.1", "::1")

    @classmethod
    def rows(cls, options: TfjsOptions) -> list[tuple[str, Any]]:
        emulation(options)
        if not options.quantization:
            options = dataclasses.replace(options, quantization=default_quantizations(model_source(options)))
        return [(single.row_name(), single) for single in options.single_rows()]

    def __init__(self, options: TfjsOptions | None = None, row: str | None = None) -> None:
        super().__init__(options, row)
        self.tfjs_backend = self.options.tfjs_backend[0]
        self.quantization = (self.options.quantization or default_quantizations(model_source(self.options)))[0]
        self.emulation = emulation(self.options)
        self.model: TfjsModel | None = None
        self.server: PageServer | None = None
        self.session: PageSession | None = None
        self.restarts = 0
        self.cold: ColdStart | None = None
        self.min_score = self.options.min_score if self.options.min_score is not None else FALLBACK_THRESHOLD
        self.classes: ClassMap | None = None
        self.outputs: OutputNames | None = None
        self.fit = ClassFit()
        self.model_notes: list[str] = []
        self.browser_version: str | None = None
        self.batch_size = self.options.batch_size

    def _page_config(self) -> PageConfig:
        from backends.tfjs.browser import BrowserSpec

        chromium = self.options.chromium
        if chromium is None and self.options.webdriver_url is None:
            chromium = LOCAL_CHROMIUM
        spec = BrowserSpec(chromium, self.options.chromedriver, self.options.webdriver_url, self.options.serve_host,
                           tuple(self.options.capability_map().items()))
        return PageConfig(self.tfjs_backend, self.emulation, self.options.cache == "warm", self.options.indexeddb,
                          self.model.sha256, tuple(name for _, name in self.outputs.fetch()), spec,
                          self.options.batch_timeout_s, self._load_timeout_s(), self.options.image_path,
                          self.options.max_side)

    def _load_timeout_s(self) -> float:
        """A minute for page and model load, plus three times the model's download on a throttled network."""
        network = self.emulation.network
        if network is None:
            return LOAD_TIMEOUT_S
        library = sum(path.stat().st_size for path in library_files(self.options.bundle, self.tfjs_backend).values())
        total = library + self.model.weights_bytes + self.model.model_json.stat().st_size
        return LOAD_TIMEOUT_S + 3 * total / (network.down_kbps * 125) + 4 * network.latency_ms / 1000

    def open(self) -> ColdStart:
        source = model_source(self.options)
        problem = source_problem(source, self.options.model is None, (self.quantization,))
        if problem:
            raise UsageError(problem)
        self.model = load_variant(source, self.quantization)
        metadata = model_metadata(self.model.folder)
        try:
            self.classes = resolve_classes(self.options.classes, source, metadata, "--tfjs-classes")
        except ModelError as exc:
            raise UsageError(str(exc)) from None
        self.min_score, note = threshold_of(self.options.min_score, metadata, "--tfjs-min-score")
        self.model_notes = [note] if note else []
        self.outputs = resolve_outputs(json.loads(self.model.model_json.read_text()), self.model.folder,
                                       self.options.outputs)
        if self.outputs.note:
            self.model_notes.append(self.outputs.note)
        self.server = PageServer(site_files(self.options.bundle, self.tfjs_backend, self.model), self.options.serve_host,
                                 isolated=self.options.wasm_threads, compression=self.options.compression)
        self.cold = self._start_session()
        return self.cold

    def _start_session(self) -> ColdStart:
        session = PageSession(self._page_config(), self.server)
        try:
            cold = session.open()
        except BaseException:
            session.close()
            raise
        self.session = session
        self.browser_version = session.browser.version
        return cold

    def _restart(self, reason: str) -> str | None:
        """Replace a dead or hung browser; the reason to give up instead, if any."""
        if self.session is not None:
            self.session.close()
            self.session = None
        while self.restarts < self.options.max_restarts:
            self.restarts += 1
            try:
                self._start_session()
                self.session.warm_up()
                return None
            except Exception as exc:
                reason = f"restart failed: {first_line(exc)}"
                if self.session is not None:
                    self.session.close()
                    self.session = None
        return f"browser not restarted again after {self.restarts} restarts (--tfjs-max-restarts); last: {reason}"

    def healthy(self) -> bool:
        return self.session is not None

    def recognize(self, photos: Sequence[LoadedPhoto]) -> list[Recognition]:
        def failed(message: str) -> list[Recognition]:
            return [Recognition.failed(message) for _ in photos]

        problem = None
        for _attempt in range(2):
            if self.session is None:
                return failed(problem or "the browser is not running (it gave out earlier in this row)")
            try:
                raw = self.session.recognize(photos)
            except (EngineGone, EngineHung) as exc:
                problem = str(exc)
                gave_up = self._restart(problem)
                if gave_up:
                    return failed(gave_up)
                continue
            except EngineError as exc:
                return failed(str(exc))
            return [self._recognition(p, r) for p, r in zip(photos, raw)]
        return failed(f"browser failed twice on this batch: {problem}")

    def _recognition(self, photo: LoadedPhoto, raw: dict[str, Any]) -> Recognition:
        if raw.get("error"):
            return Recognition.failed(first_line(raw["error"]))
        arrays = {key: values for (key, _), values in zip(self.outputs.fetch(), raw["outputs"])}
        to_photo = photo_mapping(photo, self.session.model_info["input"], raw["fed"]["width"], raw["fed"]["height"])
        candidates = decode(arrays, Decoder(self.classes), to_photo, self.fit)
        digits = above(candidates, self.min_score)
        parts = {camel_to_snake(name): round(ms, 4) for name, ms in raw["parts"].items()}
        details: dict[str, Any] = {"parts": parts}
        if (raw["fed"]["width"], raw["fed"]["height"]) != (photo.width, photo.height):
            details["fed"] = raw["fed"]
        return Recognition(digits, read_number(digits), raw["latencyMs"], candidates=candidates,
                           end_to_end_ms=raw["endToEndMs"], details=details)

    def close(self) -> None:
        session, self.session = self.session, None
        server, self.server = self.server, None
        try:
            if session is not None:
                session.close()
        finally:
            if server is not None:
                server.close()

    def describe(self) -> dict[str, Any]:
        info = dict(self.session.setup_info) if self.session else {}
        webgl = info.get("webgl") or {}
        software = bool(self.tfjs_backend == "webgl" and webgl.get("software"))
        return {
            "tfjs_backend": self.tfjs_backend,
            "quantization": self.quantization,
            "weights_bytes": self.model.weights_bytes if self.model else None,
            "model": str(self.model.folder) if self.model else str(model_source(self.options)),
            "model_sha256": self.model.sha256 if self.model else None,
            "source_model": str(model_source(self.options)),
            "device": self.options.device,
            "network": self.emulation.network_spec,
            "cache": self.options.cache + ("+indexeddb" if self.options.cache == "warm" and self.options.indexeddb
                                           else ""),
            "cpu_throttle": self.emulation.cpu_throttle,
            "max_texture_size": self.emulation.max_texture_size or None,
            "webgl_renderer": webgl.get("renderer"),
            "software_rendering": software,
            "browser_version": self.browser_version,
            "tfjs_version": info.get("tfjsVersion"),
            "wasm_simd": info.get("wasmSimd"),
            "wasm_threads": info.get("wasmThreadCount") if info.get("wasmThreads") else info.get("wasmThreads"),
            "cross_origin_isolated": info.get("crossOriginIsolated"),
            "tfjs_patches": info.get("patches"),
            "webdriver": self.options.webdriver_url or "local chromedriver",
            "min_score": self.min_score,
            "classes": self.classes.describe() if self.classes else self.options.classes,
            "outputs": {**(self.outputs.tensors if self.outputs else {}),
                        "found_from": self.outputs.source if self.outputs else None},
            "bundle": self.options.bundle,
            "compression": self.options.compression,
            "image_path": self.options.image_path,
            "max_side": self.options.max_side or None,
            "viewport": info.get("viewport"),
            "user_agent": info.get("userAgent"),
            "batch_size": self.batch_size,
            "restarts": self.restarts,
            "notes": self._notes(software),
        }

    def _notes(self, software: bool) -> list[str]:
        notes = list(self.model_notes)
        if self.classes is not None:
            notes += self.fit.notes(self.classes, "--tfjs-classes")
        if software:
            notes.append("WebGL via SwiftShader (software), not a GPU figure")
        if self.emulation.network is not None:
            notes.append(f"first visit throttled (page, TF.js, model): {self.emulation.network.describe()}")
        if self.emulation.cpu_throttle > 1:
            notes.append(f"CPU throttled x{self.emulation.cpu_throttle:g} (DevTools)")
        if self.emulation.max_texture_size and self.tfjs_backend == "webgl":
            notes.append(f"WebGL texture limit {self.emulation.max_texture_size} (emulated)")
        if self.options.cache == "warm":
            notes.append("warm cache: second visit" + (", model from IndexedDB" if self.options.indexeddb else ""))
        notes += timing_disagreement(self.cold)
        if self.options.max_side:
            notes.append(f"photos over {self.options.max_side} px downsized on a canvas before fromPixels")
        if self.restarts:
            notes.append(f"browser restarted {self.restarts}x")
        return notes


def timing_disagreement(cold: ColdStart | None, tolerance: float = 0.25, slack_ms: float = 20.0) -> list[str]:
    """Notes where the page's own figures and the browser's Resource Timing (or the server) disagree."""
    if cold is None:
        return []
    notes = []
    measured = cold.details.get("resource_timing_ms")
    if measured is not None and cold.download_ms and \
            abs(measured - cold.download_ms) > max(slack_ms, tolerance * cold.download_ms):
        notes.append(f"download {cold.download_ms:.0f} ms by the page but {measured:.0f} ms by Resource Timing")
    library_end = cold.details.get("library_resource_timing_end_ms")
    if library_end is not None and library_end > cold.library_ms + slack_ms:
        notes.append(f"library ready at {cold.library_ms:.0f} ms by the page but its last file arrived at "
                     f"{library_end:.0f} ms by Resource Timing")
    body, served = cold.details.get("library_body_bytes"), cold.details.get("library_server_bytes")
    if body is not None and served is not None and abs(body - served) > tolerance * max(served, 1):
        notes.append(f"library {body} bytes by Resource Timing but {served} bytes sent by the server")
    return notes


def to_digits(raw: dict[str, Any], photo: LoadedPhoto, model_input: dict[str, int | None]) -> list[Digit]:
    """Every digit of a page's raw ``boxes``/``scores``/``classes`` (zero-based classes, a letterboxed
    or any-size input), best first, in photo pixels: the candidates of pages that answer in that form
    (``ortweb``); :func:`bench.od_api.above` picks the row's digits from them."""
    to_photo = photo_mapping(photo, model_input, photo.width, photo.height)
    return Decoder(ClassMap("zero-based", "the page")).candidates(raw["boxes"], raw["scores"], raw["classes"], to_photo)


def camel_to_snake(name: str) -> str:
    """``decodeMs`` -> ``decode_ms``."""
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def photo_mapping(photo: LoadedPhoto, model_input: dict[str, int | None], fed_width: int, fed_height: int):
    """Model box -> ``(left, top, width, height)`` in photo pixels, for the frame the page fed the model
    (the photo, or its downsized copy): the letterbox's inverse, or the identity for a model taking any size."""
    if model_input["height"] is None:
        transform = Transform(1.0, 0.0, 0.0, fed_width, fed_height, fed_width, fed_height)
    else:
        transform = letterbox_transform(fed_height, fed_width, model_input["height"], model_input["width"])
    sx, sy = photo.width / fed_width, photo.height / fed_height

    def to_photo(box) -> tuple[float, float, float, float]:
        left, top, width, height = transform.to_photo(box)
        return left * sx, top * sy, width * sx, height * sy

    return to_photo
