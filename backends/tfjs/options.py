"""Options of the ``tfjs`` backend and the profiles they name: networks and devices.

``--network``, ``--cpu-throttle`` and ``--max-texture-size`` default to ``None``, meaning "what
``--device`` says"; a value given explicitly wins over the device profile.
"""
from __future__ import annotations

import json

import dataclasses
import re
from dataclasses import dataclass

from backends.tfjs.server import COMPRESSIONS
from backends.tfjs.site import BUNDLES, IMAGE_PATHS
from bench.errors import UsageError
from bench.od_api import CONVENTIONS, FALLBACK_THRESHOLD
from bench.options import option
from bench.tfjs_convert import QUANTIZATIONS

TFJS_BACKENDS = ("webgl", "wasm", "cpu")
LOCAL_CHROMIUM = "/usr/lib/chromium/chromium"


@dataclass(frozen=True)
class NetworkProfile:
    """A throttled connection as DevTools applies it (``Network.emulateNetworkConditions``)."""

    name: str
    down_kbps: float
    up_kbps: float
    latency_ms: float

    def cdp(self) -> dict:
        """Parameters of ``Network.emulateNetworkConditions`` (throughput in bytes per second)."""
        return {"offline": False, "latency": self.latency_ms,
                "downloadThroughput": self.down_kbps * 1000 / 8, "uploadThroughput": self.up_kbps * 1000 / 8}

    def describe(self) -> str:
        return f"{self.name} ({self.down_kbps / 1000:g} Mbps down, {self.latency_ms:g} ms latency)"


NETWORKS = {
    "wifi": NetworkProfile("wifi", 30_000, 15_000, 28),
    "4g": NetworkProfile("4g", 9_000, 9_000, 170),
    "3g": NetworkProfile("3g", 1_600, 768, 150),
    "slow-3g": NetworkProfile("slow-3g", 400, 400, 400),
}
"""Named profiles: WebPageTest's WiFi, 4G, 3G Fast (= Lighthouse's mobile throttling) and 3G Slow."""

CUSTOM_NETWORK = re.compile(r"^custom:(\d+(?:\.\d+)?):(\d+(?:\.\d+)?)$")


def network_profile(spec: str) -> NetworkProfile | None:
    """The profile ``--network`` names; ``None`` for ``none`` (no throttling)."""
    if spec == "none":
        return None
    if spec in NETWORKS:
        return NETWORKS[spec]
    match = CUSTOM_NETWORK.match(spec)
    if match and float(match.group(1)) > 0:
        kbps, latency = float(match.group(1)), float(match.group(2))
        return NetworkProfile(spec, kbps, kbps, latency)
    raise UsageError(f"--network: {spec!r} is not one of none, {', '.join(NETWORKS)} or custom:<kbps>:<latency ms> "
                     "(e.g. custom:1600:150)")


@dataclass(frozen=True)
class Screen:
    """A device's viewport, pixel ratio and user agent, set through DevTools before the page loads."""

    width: int
    height: int
    device_pixel_ratio: float
    user_agent: str
    """With ``{chrome}``: the browser's own major version."""
    platform: str

    def metrics(self) -> dict:
        """Parameters of ``Emulation.setDeviceMetricsOverride``."""
        return {"width": self.width, "height": self.height, "deviceScaleFactor": self.device_pixel_ratio,
                "mobile": True, "screenWidth": self.width, "screenHeight": self.height}

    def user_agent_override(self, browser_version: str | None) -> dict:
        """Parameters of ``Emulation.setUserAgentOverride`` for a browser of ``browser_version``."""
        major = (browser_version or "0").split(".")[0]
        return {"userAgent": self.user_agent.format(chrome=major), "platform": self.platform}


PIXEL_7 = Screen(412, 915, 2.625, "Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) "
                 "Chrome/{chrome}.0.0.0 Mobile Safari/537.36", "Android")
"""Chrome DevTools' own Pixel 7 preset."""


@dataclass(frozen=True)
class DeviceProfile:
    """What ``--device`` implies unless the matching option is given."""

    network: str
    cpu_throttle: float
    max_texture_size: int
    screen: Screen | None = None


DEVICES = {
    "desktop": DeviceProfile(network="none", cpu_throttle=1.0, max_texture_size=0),
    "phone": DeviceProfile(network="4g", cpu_throttle=4.0, max_texture_size=4096, screen=PIXEL_7),
}


@dataclass(frozen=True)
class TfjsOptions:
    """How the browser, the page and the model are set up; one report row per backend x quantization."""

    tfjs_backend: tuple[str, ...] = option(("wasm",), "TF.js backends, a row each", flag="--tfjs-backend",
                                           choices=TFJS_BACKENDS)
    quantization: tuple[str, ...] = option((), "weight quantizations, a row each (default: none for a SavedModel, "
                                           "the folder's own for a TF.js model folder)", flag="--quantization",
                                           choices=QUANTIZATIONS)
    model: str | None = option(None, "a SavedModel folder (converted on first use into <model>/tfjs/<quantization>/) "
                               "or a TF.js graph model folder with model.json; default: models/digit_reader_two_stage",
                               flag="--tfjs-model")
    device: str = option("desktop", "device profile: phone = 4096 texture limit + CPU x4 + 4g + a Pixel 7's "
                         "viewport, pixel ratio and user agent", flag="--device",
                         choices=tuple(DEVICES))
    network: str | None = option(None, "throttle the model download: none, wifi, 4g, 3g, slow-3g or "
                                 "custom:<kbps>:<latency ms> (default: from --device)", flag="--network")
    cache: str = option("cold", "cold: a first visit in a fresh browser profile; warm: a second visit (library "
                        "and model from the HTTP cache)", flag="--cache", choices=("cold", "warm"))
    bundle: str = option("full", "the TF.js library the page loads: full (@tensorflow/tfjs's tf.min.js, plus "
                         "tf-backend-wasm.min.js on wasm) or minimal (tfjs-core + tfjs-converter + the row's "
                         "backend, built at set-up)", choices=BUNDLES)
    compression: str = option("gzip", "how the server sends text assets (page, scripts, model.json) when the browser "
                              "accepts it: none, gzip or br", flag="--compression", choices=COMPRESSIONS)
    image_path: str = option("page", "page: each photo's encoded file, decoded by the browser (createImageBitmap), "
                             "uploaded with tf.browser.fromPixels and letterboxed on the TF.js backend; exact: the "
                             "RGB pixels Python decoded, letterboxed by the JS port of bench/model/preprocess.py "
                             "(the tf backend's very input)", choices=IMAGE_PATHS)
    max_side: int = option(0, "downsize photos whose longer side is over N pixels on a canvas before "
                           "tf.browser.fromPixels (what a page does for phone photos); 0 = never", at_least=0,
                           at_most=65536)
    indexeddb: bool = option(False, "with --cache warm: the first visit saves the model to indexeddb:// and the "
                             "second loads it from there")
    cpu_throttle: float | None = option(None, "DevTools CPU slow-down factor (default: from --device)",
                                        flag="--cpu-throttle", at_least=1, at_most=100)
    max_texture_size: int | None = option(None, "emulated WebGL texture limit, 0 = the browser's own "
                                          "(default: from --device)", flag="--max-texture-size", at_least=0,
                                          at_most=65536)
    wasm_threads: bool = option(False, "serve the page cross-origin isolated (COOP/COEP headers) so the wasm "
                                "backend may run multi-threaded, as a site sending those headers would")
    min_score: float | None = option(None, "drop detections scored below this (default: the model's own "
                                     f"default_threshold from digitbench.json, else {FALLBACK_THRESHOLD})", at_least=0,
                                     at_most=1)
    classes: str | None = option(None, "how classes map to digits: zero-based, one-based, svhn (10 = 0); default: "
                                 "the label_map.pbtxt in the model folder or its two parents, else the model's "
                                 "digitbench.json, else zero-based", choices=CONVENTIONS)
    outputs: str | None = option(None, "which model.json tensors are the detector's outputs, when the converter "
                                 "lost their names: boxes=NAME,scores=NAME,classes=NAME[,num=NAME] or "
                                 "boxes=NAME,multiclass=NAME (default: found from the signature, "
                                 "structuredOutputKeys or the SavedModel beside the folder)")
    batch_size: int = option(8, "photos per WebDriver call", at_least=1, at_most=1000)
    batch_timeout_s: float = option(60.0, "a batch taking longer counts as a hung browser (restart, retry once)",
                                   more_than=0, at_most=86400)
    max_restarts: int = option(3, "browser restarts allowed per row before its remaining photos fail",
                            at_least=0, at_most=100)
    webdriver_url: str | None = option(None, "a remote WebDriver (Selenium Grid or any W3C endpoint) instead of "
                                       "the local chromedriver", flag="--webdriver-url")
    serve_host: str = option("127.0.0.1", "address the page server binds to and the browser fetches from; set it "
                             "to an address the remote browser can reach with --webdriver-url", flag="--serve-host")
    chromium: str | None = option(None, f"browser binary (default: {LOCAL_CHROMIUM} locally, the endpoint's own "
                                  "with --webdriver-url)")
    chromedriver: str = option("/usr/bin/chromedriver", "chromedriver binary (never downloaded)")
    capabilities: str = option("", "W3C capabilities added to the browser request, a JSON object, e.g. "
                               '{"platformName": "android", "se:name": "pixel-7"} to pick a grid node or a device')

    def capability_map(self) -> dict:
        """``--tfjs-capabilities`` as a dict, or a UsageError naming the option."""
        if not self.capabilities.strip():
            return {}
        try:
            value = json.loads(self.capabilities)
        except json.JSONDecodeError as exc:
            raise UsageError(f"--tfjs-capabilities: not valid JSON ({exc.msg}); give an object like "
                             '\'{"platformName": "linux"}\'') from None
        if not isinstance(value, dict):
            raise UsageError("--tfjs-capabilities: give a JSON object of capability names and values")
        return value

    def row_name(self) -> str:
        """``tfjs-<backend>-<quantization>`` of a single-row configuration."""
        return f"tfjs-{self.tfjs_backend[0]}-{self.quantization[0]}"

    def single_rows(self) -> list[TfjsOptions]:
        """One options value per (backend, quantization), backends outermost."""
        return [dataclasses.replace(self, tfjs_backend=(b,), quantization=(q,))
                for b in dict.fromkeys(self.tfjs_backend) for q in dict.fromkeys(self.quantization)]


@dataclass(frozen=True)
class Emulation:
    """The effective network, CPU and texture settings of a row, device profile applied."""

    network: NetworkProfile | None
    network_spec: str
    cpu_throttle: float
    max_texture_size: int
    screen: Screen | None = None


def emulation(options: TfjsOptions) -> Emulation:
    """Resolve ``--device`` and the explicit options into the settings applied to the browser (and check
    ``--tfjs-capabilities`` on the way)."""
    options.capability_map()
    device = DEVICES[options.device]
    spec = options.network if options.network is not None else device.network
    throttle = options.cpu_throttle if options.cpu_throttle is not None else device.cpu_throttle
    texture = options.max_texture_size if options.max_texture_size is not None else device.max_texture_size
    if throttle < 1:
        raise UsageError(f"--cpu-throttle: {throttle:g} must be 1 (no throttling) or more")
    if texture < 0:
        raise UsageError(f"--max-texture-size: {texture} must be 0 (the browser's own) or more")
    return Emulation(network_profile(spec), spec, float(throttle), int(texture), device.screen)
