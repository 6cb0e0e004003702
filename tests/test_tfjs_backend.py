"""The tfjs backend: conversion, options, and the real page in headless Chromium.

The detector here is a tiny random-weight SavedModel built by a fixture with the TF Object
Detection API signature of ours (and the same kinds of ops: convolutions, sigmoid, max-pool
peak picking, top-k, gather), so nothing depends on the trained model's accuracy.
"""
from __future__ import annotations

import dataclasses
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from backends.tfjs import TfjsBackend
from backends.tfjs.browser import descendants
from backends.tfjs.model_files import read_model
from bench.errors import ModelError
from backends.tfjs.options import NETWORKS, emulation, network_profile
from backends.tfjs.server import PageServer, missing_page_files
from bench.errors import UsageError
from bench.options import build_options
from bench.photos import Photo

INPUT_H, INPUT_W, STRIDE, DETECTIONS = 64, 128, 4, 20
CHROMIUM = Path("/usr/lib/chromium/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


def _browser_missing() -> str | None:
    if not CHROMIUM.is_file():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    if not CHROMEDRIVER.is_file():
        return f"no chromedriver at {CHROMEDRIVER} (apt-get install chromium-driver)"
    missing = missing_page_files()
    if missing:
        return f"TF.js npm packages missing ({missing[0].name}): npm ci in backends/tfjs/web"
    return None


needs_browser = pytest.mark.skipif(_browser_missing() is not None, reason=str(_browser_missing()))


def _save_tiny_detector(path: Path, nms: bool = False) -> Path:
    """A random-weight detector with our serving signature (``nms``: with an op TF.js lacks)."""
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(0)

    def var(*shape: int, scale: float = 0.2):
        return tf.Variable(rng.normal(0, scale, shape).astype(np.float32))

    class Tiny(tf.Module):
        def __init__(self):
            super().__init__()
            self.stem, self.dw, self.pw = var(3, 3, 3, 8), var(3, 3, 8, 1), var(1, 1, 8, 16)
            self.heat, self.heat_b, self.reg = var(1, 1, 16, 10, scale=0.5), var(10), var(1, 1, 16, 4)

        @tf.function(input_signature=[tf.TensorSpec([1, INPUT_H, INPUT_W, 3], tf.float32, name="images")])
        def serve(self, images):
            x = images / 127.5 - 1.0
            x = tf.nn.relu(tf.nn.conv2d(x, self.stem, 2, "SAME"))
            x = tf.nn.relu(tf.nn.depthwise_conv2d(x, self.dw, [1, 2, 2, 1], "SAME"))
            x = tf.nn.relu(tf.nn.conv2d(x, self.pw, 1, "SAME"))
            heat = tf.sigmoid(tf.nn.conv2d(x, self.heat, 1, "SAME") + self.heat_b)
            reg = tf.nn.conv2d(x, self.reg, 1, "SAME")
            gh, gw = INPUT_H // STRIDE, INPUT_W // STRIDE
            heat = heat * tf.cast(tf.equal(heat, tf.nn.max_pool2d(heat, 3, 1, "SAME")), tf.float32)
            scores, index = tf.math.top_k(tf.reshape(heat, [1, gh * gw * 10]), k=DETECTIONS)
            cell = index // 10
            cy, cx = tf.cast(cell // gw, tf.float32), tf.cast(cell % gw, tf.float32)
            r = tf.reshape(tf.gather(tf.reshape(reg, [gh * gw, 4]), tf.reshape(cell, [-1])), [1, DETECTIONS, 4])
            half_w, half_h = tf.abs(r[..., 0]) + 1.0, tf.abs(r[..., 1]) + 1.5
            boxes = tf.clip_by_value(tf.stack([(cy - half_h) / gh, (cx - half_w) / gw,
                                               (cy + half_h) / gh, (cx + half_w) / gw], -1), 0.0, 1.0)
            if nms:
                boxes, scores, _, _ = tf.image.combined_non_max_suppression(
                    boxes[:, :, None, :], tf.tile(scores[..., None], [1, 1, 1]), DETECTIONS, DETECTIONS)
            return {"detection_boxes": boxes, "detection_scores": scores,
                    "detection_classes": tf.cast(index % 10, tf.float32),
                    "num_detections": tf.reduce_sum(tf.cast(scores > 0, tf.float32), axis=1)}

    module = Tiny()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return path


def _need_converter() -> None:
    from bench.errors import ConversionError
    from bench.tfjs_convert import import_converter

    try:
        import_converter()
    except ConversionError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """The tiny detector as a SavedModel with its three TF.js variants converted next to it."""
    from bench.tfjs_convert import convert_saved_model

    _need_converter()

    path = _save_tiny_detector(tmp_path_factory.mktemp("tfjs") / "tiny")
    convert_saved_model(path)
    return path


def _photo(rgb: np.ndarray, name: str = "p.png"):
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    data = buffer.getvalue()
    return Photo(name, "", [], lambda: data).load()


@pytest.fixture(scope="session")
def photos():
    """A photo shrunk with the box prefilter (k = 4), one enlarged (k = 1), one padded sideways."""
    rng = np.random.default_rng(1)
    shapes = [(300, 520), (30, 40), (90, 60)]
    return [_photo(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), f"{i}.png") for i, (h, w) in enumerate(shapes)]


def _backend(model: Path, **values) -> TfjsBackend:
    options = build_options(TfjsBackend.Options, "tfjs", {"model": str(model), **values})
    [(row, single)] = TfjsBackend.rows(options)
    return TfjsBackend(single, row)


# Options, rows, model files and conversion: no browser.

def test_rows_are_one_per_backend_and_quantization():
    options = build_options(TfjsBackend.Options, "tfjs", {"tfjs_backend": "webgl,wasm", "quantization": "none,uint8"})
    rows = TfjsBackend.rows(options)
    assert [name for name, _ in rows] == ["tfjs-webgl-none", "tfjs-webgl-uint8", "tfjs-wasm-none", "tfjs-wasm-uint8"]
    assert all(len(o.tfjs_backend) == 1 and len(o.quantization) == 1 for _, o in rows)


def test_phone_profile_applies_unless_an_option_is_given():
    phone = build_options(TfjsBackend.Options, "tfjs", {"device": "phone"})
    assert (emulation(phone).max_texture_size, emulation(phone).cpu_throttle, emulation(phone).network_spec) == \
        (4096, 4.0, "4g")
    fast_phone = dataclasses.replace(phone, network="none", cpu_throttle=1.0)
    assert emulation(fast_phone).network is None and emulation(fast_phone).cpu_throttle == 1.0


def test_network_profiles_and_custom_spec():
    assert network_profile("3g") == NETWORKS["3g"] and NETWORKS["3g"].down_kbps == 1600
    custom = network_profile("custom:800:40")
    assert custom.cdp()["downloadThroughput"] == 100_000 and custom.cdp()["latency"] == 40
    with pytest.raises(UsageError, match="custom:<kbps>:<latency ms>"):
        network_profile("5g")


def test_unavailable_reasons_name_the_fix(monkeypatch, tmp_path):
    options = build_options(TfjsBackend.Options, "tfjs", {"model": str(tmp_path), "chromium": "/nonexistent/chrome"})
    assert "apt-get install chromium" in TfjsBackend.unavailable_reason(options)
    monkeypatch.setattr("backends.tfjs.backend.missing_page_files", lambda: [Path("tf.min.js")])
    options = dataclasses.replace(options, chromium="/bin/sh", chromedriver="/bin/sh")
    assert "npm ci" in TfjsBackend.unavailable_reason(options)


def test_missing_default_model_says_how_to_get_one(monkeypatch, tmp_path):
    monkeypatch.setattr("backends.tfjs.backend.DEFAULT_MODEL", tmp_path / "digit_detector")
    monkeypatch.setattr("backends.tfjs.backend.missing_page_files", lambda: [])
    reason = TfjsBackend.unavailable_reason(TfjsBackend.Options(chromium="/bin/sh", chromedriver="/bin/sh"))
    assert "no detector at" in reason and "bench model export" in reason and "--tfjs-model" in reason


@pytest.mark.slow
def test_broken_model_folders_are_one_clear_line(tiny_model, tmp_path):
    good = tiny_model / "tfjs" / "none"
    cases = {}
    for case in ("bad-json", "truncated", "missing-shard"):
        folder = tmp_path / case
        shutil.copytree(good, folder)
        shard = folder / "group1-shard1of1.bin"
        if case == "bad-json":
            (folder / "model.json").write_text('{"format": "graph-model", ')
        elif case == "truncated":
            shard.write_bytes(shard.read_bytes()[:-100])
        else:
            shard.unlink()
        with pytest.raises(ModelError) as caught:
            read_model(folder)
        cases[case] = str(caught.value)
    assert "not valid JSON" in cases["bad-json"]
    assert "truncated" in cases["truncated"]
    assert "missing" in cases["missing-shard"]
    assert all("\n" not in message for message in cases.values())


@pytest.mark.slow
def test_run_with_a_truncated_shard_fails_the_row_in_one_line(tiny_model, tmp_path, tiny_dataset):
    from bench.runner import RunConfig, run_benchmark

    folder = tmp_path / "truncated"
    shutil.copytree(tiny_model / "tfjs" / "none", folder)
    shard = folder / "group1-shard1of1.bin"
    shard.write_bytes(shard.read_bytes()[:10])
    config = RunConfig(backends=("tfjs",), dataset=str(tiny_dataset), out=tmp_path / "run", warmup=0,
                       backend_options={"tfjs": {"model": str(folder)}})
    summary = run_benchmark(config).to_json()["backends"]["tfjs-wasm-none"]
    assert summary["status"] == "failed"
    assert "truncated" in summary["error"] and "\n" not in summary["error"]


@pytest.mark.slow
def test_converter_variants_are_written_once_with_the_true_output_names(tiny_model):
    from bench.tfjs_convert import convert_saved_model

    again = convert_saved_model(tiny_model)
    assert [v.quantization for v in again] == ["none", "float16", "uint8"] and all(v.reused for v in again)
    sizes = {v.quantization: v.weights_bytes for v in again}
    assert sizes["uint8"] < sizes["float16"] < sizes["none"]
    outputs = json.loads((tiny_model / "tfjs" / "none" / "model.json").read_text())["signature"]["outputs"]
    assert sorted(outputs) == ["detection_boxes", "detection_classes", "detection_scores", "num_detections"]
    assert read_model(tiny_model / "tfjs" / "uint8").quantization == "uint8"


@pytest.mark.slow
def test_a_missing_variant_is_converted_on_first_use(tiny_model, tmp_path):
    import shutil

    from backends.tfjs.model_files import ensure_converted

    copy = tmp_path / "copy"
    shutil.copytree(tiny_model, copy)
    shutil.rmtree(copy / "tfjs" / "uint8")
    folder = ensure_converted(copy, "uint8")
    assert folder == copy / "tfjs" / "uint8"
    assert read_model(folder).quantization == "uint8"


@pytest.mark.slow
def test_unsupported_op_is_one_line_naming_it(tmp_path, capsys):
    from bench.cli import main

    _need_converter()

    model = _save_tiny_detector(tmp_path / "nms", nms=True)
    assert main(["model", "convert", str(model), "--quantization", "none"]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("bench: error:") and "\n" not in error
    assert "CombinedNonMaxSuppression" in error
    assert not (model / "tfjs" / "none").exists()


def test_server_serves_only_its_own_folders_and_gzips_json(tmp_path):
    import gzip
    import urllib.error
    import urllib.request

    (tmp_path / "model.json").write_text('{"modelTopology": {}}' * 50)
    (tmp_path.parent / "secret.txt").write_text("no")
    with PageServer(tmp_path) as server:
        request = urllib.request.Request(f"{server.url}/model/model.json", headers={"Accept-Encoding": "gzip"})
        with urllib.request.urlopen(request) as response:
            assert response.headers["Content-Encoding"] == "gzip"
            assert gzip.decompress(response.read()) == (tmp_path / "model.json").read_bytes()
        for path in ("/model/../secret.txt", "/model/%2e%2e/secret.txt", "/etc/passwd", "/page/../options.py"):
            with pytest.raises(urllib.error.HTTPError) as caught:
                urllib.request.urlopen(server.url + path)
            assert caught.value.code == 404


# The real page in headless Chromium.

@needs_browser
@pytest.mark.slow
def test_page_letterbox_equals_python(tiny_model, photos):
    from bench.model.preprocess import letterbox

    backend = _backend(tiny_model)
    try:
        backend.open()
        for photo in photos:
            expected, _ = letterbox(photo.rgb, INPUT_H, INPUT_W)
            assert np.array_equal(backend.session.model_input(photo.rgb), expected)
    finally:
        backend.close()


@needs_browser
@pytest.mark.slow
@pytest.mark.parametrize("tfjs_backend", ["wasm", "cpu"])
def test_float32_outputs_equal_tensorflow(tiny_model, photos, tfjs_backend):
    import tensorflow as tf

    from bench.model.preprocess import letterbox

    serve = tf.saved_model.load(str(tiny_model)).signatures["serving_default"]
    backend = _backend(tiny_model, tfjs_backend=tfjs_backend)
    try:
        backend.open()
        raw = backend.session.recognize([p.rgb for p in photos])
    finally:
        backend.close()
    for photo, page in zip(photos, raw):
        expected = serve(tf.constant(letterbox(photo.rgb, INPUT_H, INPUT_W)[0][None]))
        page_boxes = np.reshape(page["boxes"], (-1, 4))
        assert len(page["scores"]) == DETECTIONS
        for score, cls, box in zip(expected["detection_scores"].numpy()[0], expected["detection_classes"].numpy()[0],
                                   expected["detection_boxes"].numpy()[0]):
            assert any(c == cls and abs(s - score) <= 1e-4 and np.abs(b - box).max() <= 1e-4
                       for s, c, b in zip(page["scores"], page["classes"], page_boxes)), (photo.photo.image, score)


@needs_browser
@pytest.mark.slow
def test_texture_limit_fails_photos_with_tfjs_message_and_the_run_goes_on(tiny_model, tiny_dataset, tmp_path):
    from bench.runner import RunConfig, run_benchmark

    config = RunConfig(backends=("tfjs",), dataset=str(tiny_dataset), out=tmp_path / "run", warmup=0,
                       backend_options={"tfjs": {"model": str(tiny_model), "tfjs_backend": "webgl,wasm",
                                                 "max_texture_size": "64"}})
    run = run_benchmark(config).to_json()
    webgl, wasm = run["backends"]["tfjs-webgl-none"], run["backends"]["tfjs-wasm-none"]
    assert webgl["status"] == "failed" and webgl["errors"] == webgl["images"] == 3
    assert "3 of 3 photos failed, over --max-error-rate" in webgl["error"]
    assert wasm["status"] == "complete" and wasm["errors"] == 0 and run["status"] == "failed"
    records = [json.loads(line) for line in (tmp_path / "run" / "predictions.jsonl").read_text().splitlines()]
    for record in records:
        if record["backend"] == "tfjs-webgl-none":
            assert record["error"].startswith("Requested texture size [")
            assert "greater than WebGL maximum on this browser / GPU [64x64]" in record["error"]
    assert webgl["describe"]["max_texture_size"] == 64 and webgl["describe"]["software_rendering"] is True
    assert "not a GPU figure" in " ".join(webgl["describe"]["notes"])


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@needs_browser
@pytest.mark.slow
def test_remote_webdriver_endpoint(tiny_model, photos):
    port = _free_port()
    driver = subprocess.Popen([str(CHROMEDRIVER), f"--port={port}", "--allowed-ips=127.0.0.1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    backend = None
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        backend = _backend(tiny_model, webdriver_url=f"http://127.0.0.1:{port}", chromium=str(CHROMIUM),
                           serve_host="127.0.0.1")
        cold = backend.open()
        results = backend.recognize(photos)
        assert cold.download_bytes > 0 and all(r.error is None for r in results)
        assert backend.describe()["webdriver"] == f"http://127.0.0.1:{port}"
    finally:
        if backend is not None:
            backend.close()
        os.killpg(driver.pid, signal.SIGTERM)
        driver.wait(timeout=10)


@needs_browser
@pytest.mark.slow
def test_browser_crash_mid_run_restarts_and_continues(tiny_model, photos):
    backend = _backend(tiny_model)
    try:
        backend.open()
        assert all(r.error is None for r in backend.recognize(photos))
        started = backend.session.browser.processes
        chromium_main = backend.session.browser.browser_processes()[0]
        os.kill(chromium_main.pid, signal.SIGKILL)
        results = backend.recognize(photos)
        assert all(r.error is None and r.latency_ms is not None for r in results)
        assert backend.restarts == 1 and "browser restarted 1x" in backend.describe()["notes"]
        latest = backend.session.browser.processes
    finally:
        backend.close()
    time.sleep(0.2)
    assert not [p for p in started + latest if p.alive()]


@needs_browser
@pytest.mark.slow
def test_hung_page_times_out_then_restarts(tiny_model, photos):
    backend = _backend(tiny_model, batch_timeout_s="3")
    try:
        backend.open()
        backend.session.browser.driver.execute_script(
            "const call = window.digitbench.call;"
            "window.digitbench.call = (name, args) => name === 'recognize' ? new Promise(() => {}) : call(name, args);")
        start = time.monotonic()
        results = backend.recognize(photos)
        assert all(r.error is None for r in results) and backend.restarts == 1
        assert time.monotonic() - start < 30
    finally:
        backend.close()


@needs_browser
@pytest.mark.slow
def test_network_profile_throttles_the_download_and_warm_cache_skips_it(tiny_model):
    throttled = _backend(tiny_model, network="custom:400:20")
    warm = _backend(tiny_model, cache="warm")
    from_indexeddb = _backend(tiny_model, cache="warm", indexeddb="true")
    try:
        cold = throttled.open()
        second = warm.open()
        stored = from_indexeddb.open()
        assert all(r.error is None for r in from_indexeddb.recognize([_photo(np.zeros((20, 30, 3), np.uint8))]))
    finally:
        throttled.close()
        warm.close()
        from_indexeddb.close()
    expected_ms = cold.download_bytes / (400 * 1000 / 8) * 1000
    assert cold.download_ms >= 0.8 * expected_ms
    assert cold.details["resource_timing_ms"] >= 0.8 * expected_ms
    assert second.download_bytes == 0 and second.details["resource_timing_body_bytes"] > 0
    assert stored.download_bytes == 0 and stored.details["model_source"] == "indexeddb"
    assert from_indexeddb.describe()["cache"] == "warm+indexeddb"


@needs_browser
@pytest.mark.slow
def test_ctrl_c_during_a_run_leaves_no_browser_behind(tiny_model, tiny_dataset, tmp_path, monkeypatch):
    from backends.tfjs.page import PageSession
    from bench.runner import RunConfig, run_benchmark

    def interrupted(self, photos):
        raise KeyboardInterrupt

    monkeypatch.setattr(PageSession, "recognize", interrupted)
    config = RunConfig(backends=("tfjs",), dataset=str(tiny_dataset), out=tmp_path / "run", warmup=0,
                       backend_options={"tfjs": {"model": str(tiny_model)}})
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(config)
    assert not [p for p in descendants(os.getpid()) if _command(p.pid) in ("chromium", "chromedriver")]
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "interrupted"


@needs_browser
@pytest.mark.slow
def test_bench_run_flags_make_rows_that_describe_themselves(tiny_model, tiny_dataset, tmp_path):
    from bench.cli import main

    metadata = tiny_model / "tfjs" / "uint8" / "digitbench.json"
    metadata.write_text(json.dumps({"default_threshold": 0.45}))
    try:
        code = main(["run", "--backends", "tfjs", "--dataset", str(tiny_dataset), "--out", str(tmp_path / "run"),
                     "--warmup", "1", "--tfjs-model", str(tiny_model), "--quantization", "uint8",
                     "--network", "wifi", "--cpu-throttle", "2"])
    finally:
        metadata.unlink()
    assert code == 0
    row = json.loads((tmp_path / "run" / "run.json").read_text())["backends"]["tfjs-wasm-uint8"]
    described = row["describe"]
    required = {"tfjs_backend", "quantization", "weights_bytes", "model", "model_sha256", "network", "cache",
                "cpu_throttle", "max_texture_size", "webgl_renderer", "software_rendering", "browser_version",
                "tfjs_version", "notes"}
    assert required <= set(described)
    assert (described["tfjs_backend"], described["quantization"], described["network"], described["cpu_throttle"]) == \
        ("wasm", "uint8", "wifi", 2.0)
    assert described["min_score"] == 0.45 and described["software_rendering"] is False
    assert described["weights_bytes"] == read_model(tiny_model / "tfjs" / "uint8").weights_bytes
    assert row["download_bytes"] > described["weights_bytes"] and row["errors"] == 0
    assert {"download", "init", "first_inference", "total"} <= set(row["cold_start_ms"])
