"""One browser with the page loaded and a model ready: the calls the backend makes into the page.

Every call goes through ``window.digitbench.call`` with ``executeAsyncScript``; the page
answers ``{ok, value | error}``. A call that outlives the script timeout raises
:class:`EngineHung`, a browser that is gone raises :class:`EngineGone`; the backend restarts on
both. Errors the page reports (bad model, TF.js failure) raise :class:`EngineError`.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from backends.tfjs.browser import Browser, BrowserSpec
from backends.tfjs.options import Emulation
from backends.tfjs.server import PageServer
from bench.clock import ms_since
from bench.errors import EngineError, EngineGone, EngineHung, first_line
from bench.results.records import ColdStart

CALL = ("const done = arguments[arguments.length - 1];"
        "if (!window.digitbench) { done({ok: false, error: 'the digitbench page is not loaded'}); return; }"
        "window.digitbench.call(arguments[0], arguments[1]).then(done);")
UNTHROTTLED = {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}
WARMUP_PHOTO = np.full((8, 8, 3), 128, np.uint8)


@dataclass(frozen=True)
class PageConfig:
    """Everything a page session needs to get from a blank browser to a loaded model."""

    tfjs_backend: str
    emulation: Emulation
    warm_cache: bool
    indexeddb: bool
    model_version: str
    browser: BrowserSpec
    timeout_s: float
    load_timeout_s: float
    """For page load and model load, which a throttled network can make long."""


class PageSession:
    """A browser showing the page, with TF.js set up and the model loaded."""

    def __init__(self, config: PageConfig, server: PageServer) -> None:
        self.config = config
        self.server = server
        self.browser: Browser | None = None
        self.setup_info: dict[str, Any] = {}
        self.model_info: dict[str, Any] = {}
        self._batches = 0
        self._script_timeout: float | None = None

    def call(self, name: str, args: dict[str, Any] | None = None, timeout_s: float | None = None) -> Any:
        """Run one page API call and return its value; ``timeout_s`` defaults to the batch timeout."""
        from selenium.common.exceptions import JavascriptException, TimeoutException, WebDriverException

        if self.browser is None or self.browser.driver is None:
            raise EngineGone("the browser is not running")
        timeout = timeout_s or self.config.timeout_s
        try:
            if timeout != self._script_timeout:
                self.browser.driver.set_script_timeout(timeout)
                self._script_timeout = timeout
            result = self.browser.driver.execute_async_script(CALL, name, args or {})
        except TimeoutException:
            hint = "" if timeout_s else " (--tfjs-batch-timeout-s)"
            raise EngineHung(f"page call {name} took longer than {timeout:g} s{hint}") from None
        except JavascriptException as exc:
            raise EngineError(first_line(exc.msg)) from None
        except WebDriverException as exc:
            raise EngineGone(f"browser lost during {name}: {first_line(exc.msg or exc)}") from None
        if not isinstance(result, dict) or not result.get("ok"):
            raise EngineError(first_line(result.get("error") if isinstance(result, dict) else result))
        return result.get("value")

    def _visit(self, store: str, save_to_indexeddb: bool, throttle: bool) -> dict[str, Any]:
        """Open the page, set up TF.js, throttle as configured, and load the model."""
        browser = self.browser
        emulation = self.config.emulation
        browser.driver.set_page_load_timeout(self.config.load_timeout_s)
        browser.driver.get(self.server.url + "/")
        navigation = browser.driver.execute_script(
            "const n = performance.getEntriesByType('navigation')[0];"
            "return n ? n.loadEventEnd - n.startTime : null;")
        if throttle and emulation.cpu_throttle > 1:
            browser.cdp("Emulation.setCPUThrottlingRate", {"rate": emulation.cpu_throttle})
        self.setup_info = self.call("setup", {"backend": self.config.tfjs_backend,
                                              "maxTextureSize": emulation.max_texture_size,
                                              "wasmPath": self.server.url + "/tfjs-wasm/"},
                                    self.config.load_timeout_s)
        if throttle and emulation.network is not None:
            browser.cdp("Network.enable", {})
            browser.cdp("Network.emulateNetworkConditions", emulation.network.cdp())
        loaded = self.call("loadModel", {"base": "/model/", "version": self.config.model_version, "store": store,
                                         "indexedDbKey": f"digitbench-{self.config.model_version[:16]}",
                                         "saveToIndexedDb": save_to_indexeddb}, self.config.load_timeout_s)
        if throttle and emulation.network is not None:
            browser.cdp("Network.emulateNetworkConditions", UNTHROTTLED)
        loaded["pageLoadMs"] = navigation
        return loaded

    def open(self) -> ColdStart:
        """Start the browser and load the model, cold or as a second visit; returns the cold-start split."""
        start = time.perf_counter_ns()
        self.browser = Browser(self.config.browser)
        details: dict[str, Any] = {"browser_start_ms": round(ms_since(start), 3)}
        if self.config.warm_cache:
            first = self._visit("http", save_to_indexeddb=self.config.indexeddb, throttle=False)
            details["first_visit"] = {"download_ms": first["downloadMs"], "init_ms": first["initMs"]}
        store = "indexeddb" if self.config.warm_cache and self.config.indexeddb else "http"
        loaded = self._visit(store, save_to_indexeddb=False, throttle=True)
        self.model_info = loaded
        timing = loaded.get("resourceTiming") or {}
        details.update(page_load_ms=loaded["pageLoadMs"], tfjs_backend_init_ms=self.setup_info.get("initMs"),
                       model_source=store, body_bytes=loaded["downloadBytes"],
                       resource_timing_ms=timing.get("ms"), resource_timing_transfer_bytes=timing.get("transferBytes"),
                       resource_timing_body_bytes=timing.get("bodyBytes"))
        network_bytes = timing.get("transferBytes", loaded["downloadBytes"]) if store == "http" else 0
        return ColdStart(download_ms=loaded["downloadMs"], download_bytes=int(network_bytes),
                        init_ms=loaded["initMs"], details=details)

    def recognize(self, photos: Sequence[np.ndarray]) -> list[dict[str, Any]]:
        """Raw page results for RGB photos: boxes, scores, classes, num and timings, or an error."""
        self._batches += 1
        names = {f"{self._batches}-{i}": np.ascontiguousarray(rgb, np.uint8) for i, rgb in enumerate(photos)}
        self.server.put_photos({name: rgb.tobytes() for name, rgb in names.items()})
        batch = [{"url": f"/photos/{name}", "height": int(rgb.shape[0]), "width": int(rgb.shape[1])}
                 for name, rgb in names.items()]
        try:
            return self.call("recognize", {"photos": batch})
        finally:
            self.server.put_photos({})

    def warm_up(self) -> None:
        """One throwaway inference (WebGL compiles its shaders here), e.g. after a restart."""
        self.recognize([WARMUP_PHOTO])

    def model_input(self, rgb: np.ndarray) -> np.ndarray:
        """The page's model input for a photo, as float32 ``H x W x 3`` (for checks against Python)."""
        self.server.put_photos({"input": np.ascontiguousarray(rgb, np.uint8).tobytes()})
        try:
            values = self.call("input", {"url": "/photos/input", "height": int(rgb.shape[0]),
                                         "width": int(rgb.shape[1])})
        finally:
            self.server.put_photos({})
        shape = self.model_info["input"]
        return np.asarray(values, np.float32).reshape(shape["height"], shape["width"], 3)

    def close(self) -> None:
        """Quit the browser. Safe to call more than once."""
        browser, self.browser = self.browser, None
        if browser is not None:
            browser.close()
