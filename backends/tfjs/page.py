"""One browser with the page loaded and a model ready: the calls the backend makes into the page.

Every call goes through :meth:`backends.tfjs.browser.Browser.call`: a call that outlives the
batch timeout (the page's, or a browser too frozen to answer) raises :class:`EngineHung`, a
browser that is gone raises :class:`EngineGone`; the backend restarts on both. Errors the page
reports (bad model, TF.js failure) raise :class:`EngineError`.
"""
from __future__ import annotations

import functools
import io
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import numpy as np
from PIL import Image

from backends.tfjs.browser import Browser, BrowserSpec
from backends.tfjs.options import Emulation
from backends.tfjs.server import PageServer
from backends.tfjs.site import LIBRARY_PREFIX, MODEL_PREFIX, library_paths
from bench.clock import ms_since
from bench.errors import EngineGone
from bench.photos import LoadedPhoto, Photo
from bench.results.records import ColdStart

UNTHROTTLED = {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}


def media_type(encoded: bytes) -> str:
    """The MIME type of encoded photo bytes, from their signature ('' when unknown: the browser sniffs)."""
    if encoded.startswith(b"\x89PNG"):
        return "image/png"
    if encoded.startswith(b"\xff\xd8"):
        return "image/jpeg"
    return ""


@functools.lru_cache(maxsize=1)
def warmup_photo() -> LoadedPhoto:
    """An 8 x 8 grey PNG, for throwaway inferences."""
    buffer = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), 128, np.uint8)).save(buffer, format="PNG")
    data = buffer.getvalue()
    return Photo("warm-up.png", "", [], lambda: data).load()


@dataclass(frozen=True)
class PageConfig:
    """Everything a page session needs to get from a blank browser to a loaded model."""

    tfjs_backend: str
    emulation: Emulation
    warm_cache: bool
    indexeddb: bool
    model_version: str
    output_names: tuple[str, ...]
    """The model's tensors the page fetches, in order (see :mod:`backends.tfjs.outputs`)."""
    browser: BrowserSpec
    timeout_s: float
    load_timeout_s: float
    """For page load and model load, which a throttled network can make long."""
    image_path: str = "page"
    """``page``: encoded bytes decoded and letterboxed in the browser; ``exact``: Python's RGB, JS letterbox."""
    max_side: int = 0
    """Downsize photos whose longer side exceeds this on a canvas before ``fromPixels`` (0: never)."""


class PageSession:
    """A browser showing the page, with TF.js set up and the model loaded."""

    def __init__(self, config: PageConfig, server: PageServer) -> None:
        self.config = config
        self.server = server
        self.library_paths = library_paths(server.routes.files)
        self.browser: Browser | None = None
        self.setup_info: dict[str, Any] = {}
        self.model_info: dict[str, Any] = {}
        self._batches = 0

    def call(self, name: str, args: dict[str, Any] | None = None, timeout_s: float | None = None) -> Any:
        """Run one page API call and return its value; ``timeout_s`` defaults to the batch timeout."""
        if self.browser is None:
            raise EngineGone("the browser is not running")
        return self.browser.call(name, args, timeout_s or self.config.timeout_s,
                                 "" if timeout_s else "--tfjs-batch-timeout-s")

    def _emulate(self, throttle: bool) -> None:
        """Apply the row's device (viewport, DPR, user agent) and, when ``throttle``, its CPU and network."""
        browser, emulation = self.browser, self.config.emulation
        if emulation.screen is not None:
            screen = emulation.screen
            browser.cdp("Emulation.setDeviceMetricsOverride", screen.metrics())
            browser.cdp("Emulation.setUserAgentOverride", screen.user_agent_override(browser.version))
            browser.cdp("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 5})
        browser.cdp("Emulation.setCPUThrottlingRate", {"rate": emulation.cpu_throttle if throttle else 1})
        browser.cdp("Network.enable", {})
        conditions = emulation.network.cdp() if throttle and emulation.network is not None else UNTHROTTLED
        browser.cdp("Network.emulateNetworkConditions", conditions)

    def _visit(self, store: str, save_to_indexeddb: bool, throttle: bool) -> dict[str, Any]:
        """One visit: the page loads TF.js and the model by itself, under the row's emulation."""
        browser = self.browser
        emulation = self.config.emulation
        self._emulate(throttle)
        boot = {"setup": {"backend": self.config.tfjs_backend, "maxTextureSize": emulation.max_texture_size,
                          "wasmPath": self.server.url + LIBRARY_PREFIX},
                "model": {"base": MODEL_PREFIX, "version": self.config.model_version, "store": store,
                          "indexedDbKey": f"digitbench-{self.config.model_version[:16]}",
                          "saveToIndexedDb": save_to_indexeddb, "outputNames": list(self.config.output_names)}}
        sent_before = self.server.sent_bytes(self.library_paths)
        browser.bound(self.config.load_timeout_s)
        browser.driver.get(f"{self.server.url}/?boot={quote(json.dumps(boot, separators=(',', ':')))}")
        visited = self.call("visit", timeout_s=self.config.load_timeout_s)
        if throttle:
            browser.cdp("Network.emulateNetworkConditions", UNTHROTTLED)
        visited["pageLoadMs"] = browser.driver.execute_script(
            "const n = performance.getEntriesByType('navigation')[0];"
            "return n ? n.loadEventEnd - n.startTime : null;")
        visited["serverLibraryBytes"] = self.server.sent_bytes(self.library_paths) - sent_before
        return visited

    def open(self) -> ColdStart:
        """Start the browser and make a first visit, or a second one; returns the cold-start split."""
        start = time.perf_counter_ns()
        self.browser = Browser(self.config.browser, self.config.timeout_s)
        details: dict[str, Any] = {"browser_start_ms": round(ms_since(start), 3)}
        if self.config.warm_cache:
            first = self._visit("http", save_to_indexeddb=self.config.indexeddb, throttle=False)
            details["first_visit"] = {"library_ms": first["libraryMs"], "download_ms": first["model"]["downloadMs"],
                                      "init_ms": first["model"]["initMs"]}
        store = "indexeddb" if self.config.warm_cache and self.config.indexeddb else "http"
        visited = self._visit(store, save_to_indexeddb=False, throttle=True)
        loaded, library = visited["model"], visited["library"]
        self.setup_info = {**visited["setup"], "viewport": visited["viewport"], "userAgent": visited["userAgent"]}
        self.model_info = loaded
        timing = loaded.get("resourceTiming") or {}
        details.update(page_load_ms=visited["pageLoadMs"], tfjs_backend_init_ms=self.setup_info.get("initMs"),
                       model_source=store, body_bytes=loaded["downloadBytes"],
                       resource_timing_ms=timing.get("ms"), resource_timing_transfer_bytes=timing.get("transferBytes"),
                       resource_timing_body_bytes=timing.get("bodyBytes"),
                       library_resource_timing_end_ms=library["responseEnd"],
                       library_body_bytes=library["fetchedBodyBytes"], library_server_bytes=visited["serverLibraryBytes"],
                       library_entries=library["entries"])
        network_bytes = timing.get("transferBytes", loaded["downloadBytes"]) if store == "http" else 0
        return ColdStart(library_ms=visited["libraryMs"], library_bytes=int(library["transferBytes"]),
                         download_ms=loaded["downloadMs"], download_bytes=int(network_bytes),
                         init_ms=loaded["initMs"], details=details)

    def recognize(self, photos: Sequence[LoadedPhoto]) -> list[dict[str, Any]]:
        """Raw page results: the fetched outputs (flat, in order), the frame fed to the model and the
        timings, or an error, per photo."""
        self._batches += 1
        names = {f"{self._batches}-{i}": photo for i, photo in enumerate(photos)}
        self.server.put_photos({name: self._payload(photo) for name, photo in names.items()})
        batch = [{"url": f"/photos/{name}", "height": photo.height, "width": photo.width,
                  "type": media_type(photo.encoded)} for name, photo in names.items()]
        try:
            return self.call("recognize", {"photos": batch, "path": self.config.image_path,
                                           "maxSide": self.config.max_side})
        finally:
            self.server.put_photos({})

    def _payload(self, photo: LoadedPhoto) -> bytes:
        if self.config.image_path == "exact":
            return np.ascontiguousarray(photo.rgb, np.uint8).tobytes()
        return photo.encoded

    def warm_up(self) -> None:
        """One throwaway inference (WebGL compiles its shaders here), e.g. after a restart."""
        self.recognize([warmup_photo()])

    def model_input(self, photo: LoadedPhoto, path: str = "exact") -> np.ndarray:
        """The page's model input for a photo on ``path``, as float32 ``H x W x 3`` (for checks against Python)."""
        payload = np.ascontiguousarray(photo.rgb, np.uint8).tobytes() if path == "exact" else photo.encoded
        self.server.put_photos({"input": payload})
        try:
            found = self.call("input", {"photo": {"url": "/photos/input", "height": photo.height,
                                                  "width": photo.width, "type": media_type(photo.encoded)},
                                        "path": path})
        finally:
            self.server.put_photos({})
        return np.asarray(found["values"], np.float32).reshape(found["shape"][1:])

    def close(self) -> None:
        """Quit the browser. Safe to call more than once."""
        browser, self.browser = self.browser, None
        if browser is not None:
            browser.close()
