"""``ortweb``: the detector converted to ONNX (tf2onnx), run by ONNX Runtime Web in headless Chromium.

The same weights as ``tf`` and ``tfjs`` (``models/digit_reader_two_stage``; its ONNX model is
committed at ``models/digit_reader_two_stage/onnx/`` and converted again by ``bench model onnx``
when the SavedModel changes), the same browser and page server as ``tfjs``, and the same photo path:
raw RGB pixels letterboxed by the tfjs page's ``letterbox.js``, boxes mapped back by the tfjs
backend's ``to_digits``. One row per execution provider (``--ortweb-ep wasm,webgl,webgpu``);
each row loads only the bundle a page would ship for it (``ort.wasm.min.js`` and its wasm
runtime, ``ort.webgl.min.js``, ``ort.webgpu.min.js`` and its asyncify runtime).

- Cold start: ``library`` = the bundle and its wasm runtime (Resource Timing bytes);
  ``download`` = model.onnx; ``init`` = ``InferenceSession.create`` (compiling the wasm runtime,
  which comes from the HTTP cache, and building the graph); the runner measures the first
  inference.
- Latency: the page's ``performance.now()`` from RGB pixels to the outputs read back
  (letterbox, ``session.run``, ``getData``), as in the tfjs page.
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from backends.tfjs.backend import to_digits
from backends.tfjs.options import LOCAL_CHROMIUM
from backends.tfjs.server import PageServer
from backends.webpage import LOAD_TIMEOUT_S, PageBackend, WebPage
from bench.errors import BackendUnavailable, first_line
from bench.metrics import read_number
from bench.od_api import above
from bench.onnx_convert import ONNX_FILE, conversion_record, convert_to_onnx, converter_missing, is_current, onnx_dir
from bench.options import option
from bench.photos import LoadedPhoto
from bench.results.records import ColdStart, Recognition
from bench.saved_model import DEFAULT_MODEL, METADATA, is_saved_model

WEB_DIR = Path(__file__).resolve().parent / "web"
DEFAULT_MIN_SCORE = 0.3
ORT_DIST = WEB_DIR / "node_modules" / "onnxruntime-web" / "dist"
EXECUTION_PROVIDERS = ("wasm", "webgl", "webgpu")
REQUIRED_FILES = (ORT_DIST / "ort.wasm.min.js", ORT_DIST / "ort-wasm-simd-threaded.wasm",
                  ORT_DIST / "ort-wasm-simd-threaded.mjs", ORT_DIST / "ort.webgl.min.js")


def ort_version() -> str | None:
    """The installed onnxruntime-web version."""
    try:
        return json.loads((ORT_DIST.parent / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


@dataclass(frozen=True)
class OrtWebOptions:
    """Which execution providers and model, and the browser's settings."""

    ep: tuple[str, ...] = option(("wasm",), "ONNX Runtime Web execution providers, a row each",
                                 choices=EXECUTION_PROVIDERS)
    model: str = option(str(DEFAULT_MODEL), "a SavedModel folder with the OD API signature and digitbench.json; its "
                        "ONNX model is <model>/onnx/model.onnx (made by `bench model onnx`, or on first use)")
    min_score: float | None = option(None, "drop detections scored below this (default: the model's own "
                                     f"default_threshold, else {DEFAULT_MIN_SCORE})", at_least=0, at_most=1)
    wasm_threads: bool = option(False, "serve the page cross-origin isolated (COOP/COEP) so the wasm runtime may use "
                                "threads, as a site sending those headers would")
    batch_size: int = option(8, "photos per WebDriver call", at_least=1)
    batch_timeout_s: float = option(60.0, "a batch taking longer counts as a hung browser (restarted)",
                                    more_than=0, at_most=86400)
    max_restarts: int = option(2, "browser restarts allowed per row before its remaining photos fail",
                               at_least=0, at_most=100)
    chromium: str = option(LOCAL_CHROMIUM, "browser binary")
    chromedriver: str = option("/usr/bin/chromedriver", "chromedriver binary (never downloaded)")


def model_problem(model: Path) -> str | None:
    """Why the row cannot get an ONNX model of ``model``, with the fix; ``None`` when it can."""
    if not is_saved_model(model):
        return f"--ortweb-model {model}: no saved_model.pb there; give a SavedModel folder (default {DEFAULT_MODEL})"
    if not (model / METADATA).is_file():
        return f"--ortweb-model {model}: no {METADATA} (input size, threshold); export it with `bench model export`"
    if is_current(model):
        return None
    missing = converter_missing()
    if missing:
        state = "stale" if (onnx_dir(model) / ONNX_FILE).is_file() else "missing"
        return (f"{onnx_dir(model) / ONNX_FILE} is {state} and cannot be converted here ({missing}); "
                f"run `bench model onnx {model}`")
    return None


class OrtWebBackend(PageBackend):
    """The detector on ONNX Runtime Web (wasm, webgl or webgpu) in headless Chromium."""

    name = "ortweb"
    Options = OrtWebOptions
    summary = "the detector as ONNX on ONNX Runtime Web (wasm/webgl/webgpu) in headless Chromium"
    packages = ("selenium", "tf2onnx", "onnx")
    page_path = "/ortweb/index.html"
    flag_prefix = "--ortweb"
    web_dir = WEB_DIR
    required_files = REQUIRED_FILES

    def __init__(self, options: Any = None, row: str | None = None) -> None:
        super().__init__(options, row)
        self.batch_size = self.options.batch_size
        self.ep = self.options.ep[0]
        self.model = Path(self.options.model)
        self.metadata: dict[str, Any] = {}
        self.setup_info: dict[str, Any] = {}
        self.model_info: dict[str, Any] = {}
        self.min_score = DEFAULT_MIN_SCORE

    @classmethod
    def unavailable_reason(cls, options: OrtWebOptions) -> str | None:
        return cls.page_problem(options) or model_problem(Path(options.model))

    @classmethod
    def rows(cls, options: OrtWebOptions) -> list[tuple[str, Any]]:
        return [(f"ortweb-{ep}", dataclasses.replace(options, ep=(ep,))) for ep in dict.fromkeys(options.ep)]

    def serve(self) -> PageServer:
        problem = model_problem(self.model)
        if problem:
            raise BackendUnavailable(problem)
        convert_to_onnx(self.model)
        folder = onnx_dir(self.model)
        self.metadata = json.loads((folder / METADATA.name).read_text())
        threshold = self.metadata.get("default_threshold")
        if self.options.min_score is not None:
            self.min_score = self.options.min_score
        elif isinstance(threshold, (int, float)):
            self.min_score = float(threshold)
        return self.page_server(folder, {"/ortweb/": WEB_DIR, "/ort/": ORT_DIST}, isolated=self.options.wasm_threads)

    def load(self, page: WebPage) -> ColdStart:
        threads = 0 if self.options.wasm_threads else 1
        self.setup_info = page.call("setup", {"ep": self.ep, "ortBase": "/ort/", "threads": threads}, LOAD_TIMEOUT_S)
        self.model_info = page.call("loadModel", {"url": f"/model/{ONNX_FILE}"}, LOAD_TIMEOUT_S)
        library = self.setup_info.get("libraryTiming") or {}
        timing = self.model_info.get("resourceTiming") or {}
        details = {"library_files": self.setup_info["files"],
                   "runtime_refetched_bytes": self.model_info["runtimeRefetchedBytes"]}
        return ColdStart(library_ms=self.setup_info["libraryMs"], library_bytes=int(library.get("transferBytes") or 0),
                         download_ms=self.model_info["downloadMs"],
                         download_bytes=int(timing.get("transferBytes") or self.model_info["downloadBytes"]),
                         init_ms=self.model_info["initMs"], details=details)

    def _input_size(self) -> tuple[int, int]:
        spec = self.metadata.get("input") or {}
        return int(spec["height"]), int(spec["width"])

    def recognize(self, photos: Sequence[LoadedPhoto]) -> list[Recognition]:
        height, width = self._input_size()
        names = [f"{i}" for i in range(len(photos))]
        batch = [{"url": f"/photos/{name}", "height": p.height, "width": p.width} for name, p in zip(names, photos)]
        pixels = {name: np.ascontiguousarray(p.rgb, np.uint8).tobytes() for name, p in zip(names, photos)}
        return self.recognize_in_page(photos, "recognize", {"photos": batch, "height": height, "width": width},
                                      pixels, self._recognition)

    def _recognition(self, photo: LoadedPhoto, raw: dict[str, Any]) -> Recognition:
        if raw.get("error"):
            return Recognition.failed(f"onnxruntime-web: {first_line(raw['error'])}")
        height, width = self._input_size()
        candidates = to_digits(raw, photo, {"height": height, "width": width})
        digits = above(candidates, self.min_score)
        return Recognition(digits, read_number(digits), raw["latencyMs"], candidates=candidates,
                           details={"preprocess_ms": round(raw["preprocessMs"], 4)})

    def describe(self) -> dict[str, Any]:
        record = conversion_record(self.model)
        onnx_file = onnx_dir(self.model) / ONNX_FILE
        notes = []
        renderer = self.setup_info.get("webglRenderer") or ""
        if "swiftshader" in renderer.lower():
            notes.append("WebGL via SwiftShader (software), not a GPU figure")
        if self.restarts:
            notes.append(f"browser restarted {self.restarts}x")
        return {"execution_provider": self.ep, "onnxruntime_web": self.setup_info.get("ortVersion") or ort_version(),
                "library_files": self.setup_info.get("files"), "webgl_renderer": self.setup_info.get("webglRenderer"),
                "model": str(onnx_file),
                "model_bytes": onnx_file.stat().st_size if onnx_file.is_file() else None,
                "source_model": str(self.model), "model_sha256": record.get("source_sha256"),
                "tf2onnx": record.get("tf2onnx"), "opset": record.get("opset"),
                "browser_version": self.page.version if self.page else None,
                "cross_origin_isolated": self.setup_info.get("crossOriginIsolated"),
                "wasm_threads": self.setup_info.get("threads"), "min_score": self.min_score,
                "batch_size": self.batch_size, "restarts": self.restarts, "notes": notes}
