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
from backends.tfjs.server import PageServer
from backends.tfjs.site import missing_page_files
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
        return f"TF.js page files missing ({missing[0].name}): bash scripts/setup.sh"
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
    monkeypatch.setattr("backends.tfjs.backend.missing_page_files", lambda *args: [Path("tf.min.js")])
    options = dataclasses.replace(options, chromium="/bin/sh", chromedriver="/bin/sh")
    assert "scripts/setup.sh" in TfjsBackend.unavailable_reason(options)


def test_missing_default_model_says_how_to_get_one(monkeypatch, tmp_path):
    monkeypatch.setattr("backends.tfjs.backend.DEFAULT_MODEL", tmp_path / "digit_detector")
    monkeypatch.setattr("backends.tfjs.backend.missing_page_files", lambda *args: [])
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
    assert [v.quantization for v in again] == ["none", "float16", "uint16", "uint8"] and all(v.reused for v in again)
    sizes = {v.quantization: v.weights_bytes for v in again}
    assert sizes["uint8"] < sizes["float16"] == sizes["uint16"] < sizes["none"]
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


def _get(server, path: str, host: str | None = None, encoding: str | None = None) -> tuple[int, dict, bytes]:
    """One raw HTTP/1.1 GET (the request target sent as is, unlike urllib)."""
    import http.client

    connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        connection.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", host or f"{server.host}:{server.port}")
        if encoding:
            connection.putheader("Accept-Encoding", encoding)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_server_serves_only_the_files_it_is_given_compressed_as_asked(tmp_path):
    import gzip

    import brotli

    from backends.tfjs.site import site_files

    model = read_model_folder(tmp_path)
    (model.folder / "conversion.json").write_text("{}")
    (model.folder / "label_map.pbtxt").write_text("item { id: 1 name: '1' }")
    files = site_files("full", "wasm", model)
    assert "/model/conversion.json" not in files and "/model/label_map.pbtxt" not in files
    with PageServer(files) as server:
        status, headers, body = _get(server, "/model/model.json", encoding="gzip, deflate, br")
        assert status == 200 and headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(body) == model.model_json.read_bytes()
        assert _get(server, "/model/group1-shard1of1.bin", encoding="gzip")[1].get("Content-Encoding") is None
        for path in ("/model/conversion.json", "/model/label_map.pbtxt", "/model/../secret.txt", "/etc/passwd",
                     "/page/../options.py", "/tfjs/../package.json", "/node_modules/@tensorflow/tfjs/package.json"):
            assert _get(server, path)[0] in (400, 404), path
        assert server.sent_bytes({"/model/model.json"}) == len(body)
    with PageServer(files, compression="br") as server:
        status, headers, body = _get(server, "/page/bench.js", encoding="gzip, br")
        assert headers["Content-Encoding"] == "br" and brotli.decompress(body).startswith(b"/*")
        assert _get(server, "/page/bench.js", encoding="gzip")[1].get("Content-Encoding") is None
    with PageServer(files, compression="none") as server:
        assert _get(server, "/page/bench.js", encoding="gzip, br")[1].get("Content-Encoding") is None


def read_model_folder(folder: Path):
    """A minimal intact TF.js model folder (one float32 weight) and its description."""
    (folder / "model.json").write_text(json.dumps({
        "modelTopology": {"node": []}, "format": "graph-model",
        "weightsManifest": [{"paths": ["group1-shard1of1.bin"], "weights": [{"name": "w", "shape": [2], "dtype": "float32"}]}]}))
    (folder / "group1-shard1of1.bin").write_bytes(np.zeros(2, np.float32).tobytes())
    return read_model(folder)


def test_server_answers_odd_paths_and_refuses_foreign_hosts_without_an_exception(tmp_path):
    import socket

    with PageServer({"/": b"<p>page</p>", "/a.js": tmp_path / "missing.js"}) as server:
        odd = ["%00", "/%00", "/a%00.js", "//etc/passwd", "/..%2f..%2fetc/passwd", "/%ff%fe", "/a.js%5c..%5c",
               "*", "/" + "x" * 5000, "/a.js", "/photos/../a.js", "/photos/%00"]
        for path in odd:
            assert _get(server, path)[0] in (400, 404), path
        for raw in (b"GET\r\n\r\n", b"\x00\x01\x02\r\n\r\n", b"GET / HTTP/1.1\r\nHost: " + b"a" * 70000 + b"\r\n\r\n"):
            with socket.create_connection((server.host, server.port), timeout=5) as sock:
                sock.sendall(raw)
                sock.recv(1024)
        assert _get(server, "/", host="evil.example")[0] == 421
        assert _get(server, "http://evil.example/")[0] == 421
        assert _get(server, "/", host=f"rebound.example:{server.port}")[0] == 421
        assert _get(server, "/", host=f"localhost:{server.port}")[0] == 200
        assert _get(server, "/")[2] == b"<p>page</p>"
        assert server.errors == []


# The real page in headless Chromium.

@needs_browser
@pytest.mark.slow
@pytest.mark.parametrize("tfjs_backend", ["wasm", "cpu"])
def test_float32_outputs_equal_tensorflow(tiny_model, photos, tfjs_backend):
    import tensorflow as tf

    from bench.model.preprocess import letterbox

    serve = tf.saved_model.load(str(tiny_model)).signatures["serving_default"]
    pages = _page_outputs(_backend(tiny_model, tfjs_backend=tfjs_backend, image_path="exact"), photos)
    for photo, outputs in zip(photos, pages):
        assert len(outputs["detection_scores"]) == DETECTIONS
        _assert_has_detections(outputs, serve(tf.constant(letterbox(photo.rgb, INPUT_H, INPUT_W)[0][None])), 1e-4,
                               photo.photo.image)


def _page_outputs(backend: TfjsBackend, photos) -> list[dict]:
    """The page's raw outputs for each photo, by output name."""
    try:
        backend.open()
        raw = backend.session.recognize(photos)
    finally:
        backend.close()
    keys = [key for key, _ in backend.outputs.fetch()]
    return [dict(zip(keys, page["outputs"])) for page in raw]


def _assert_has_detections(outputs: dict, expected, tolerance: float, name: str) -> None:
    """Every detection TensorFlow gave (``expected``) is among the page's ``outputs``: the same class,
    score and box within ``tolerance``."""
    page_boxes = np.reshape(outputs["detection_boxes"], (-1, 4))
    for score, cls, box in zip(expected["detection_scores"].numpy()[0], expected["detection_classes"].numpy()[0],
                               expected["detection_boxes"].numpy()[0]):
        assert any(c == cls and abs(s - score) <= tolerance and np.abs(b - box).max() <= tolerance
                   for s, c, b in zip(outputs["detection_scores"], outputs["detection_classes"], page_boxes)), \
            (name, score, box)


@needs_browser
@pytest.mark.slow
def test_the_default_two_stage_model_gives_tensorflow_s_detections_in_the_page(photos):
    """models/digit_reader_two_stage in TF.js (wasm, float32) against TensorFlow: a rendered house number,
    and noise photos on which the locator finds nothing at its threshold, so the graph falls back to
    its best detection (a TF.js op that got this wrong once sent the reader far outside the input)."""
    import tensorflow as tf

    from bench.model.preprocess import letterbox
    from bench.model.two_stage import halve
    from bench.photos import decode_rgb
    from bench.saved_model import DEFAULT_MODEL, read_metadata
    from bench.synthetic import render_photo

    metadata = read_metadata(DEFAULT_MODEL)
    height, width = metadata["input"]["height"], metadata["input"]["width"]
    threshold = metadata["two_stage"]["crop"]["locator_threshold"]
    locator_dir = DEFAULT_MODEL.parents[1] / metadata["two_stage"]["locator"]["source"]
    locator = tf.saved_model.load(str(locator_dir)).signatures["serving_default"]
    serve = tf.saved_model.load(str(DEFAULT_MODEL)).signatures["serving_default"]
    rendered = render_photo(11, 0)
    photos = [_photo(decode_rgb(rendered.png, "synthetic"), "number.png"), *photos]
    inputs = [tf.constant(letterbox(p.rgb, height, width)[0][None]) for p in photos]
    best = [float(locator(input_tensor=halve(x))["detection_scores"][0, 0]) for x in inputs]
    assert best[0] >= threshold and min(best[1:]) < threshold, best
    pages = _page_outputs(_backend(DEFAULT_MODEL, tfjs_backend="wasm", image_path="exact"), photos)
    for photo, x, outputs in zip(photos, inputs, pages):
        _assert_has_detections(outputs, serve(x), 1e-3, photo.photo.image)


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


def _freeze(processes) -> None:
    for process in processes:
        os.kill(process.pid, signal.SIGSTOP)


@needs_browser
@pytest.mark.slow
def test_a_frozen_browser_costs_one_batch_timeout_then_is_killed_restarted_and_the_batch_retried(tiny_model,
                                                                                                 photos):
    backend = _backend(tiny_model, batch_timeout_s="3")
    try:
        backend.open()
        frozen = backend.session.browser.browser_processes()
        _freeze(frozen)
        start = time.monotonic()
        results = backend.recognize(photos)
        waited = time.monotonic() - start
        assert all(r.error is None and r.latency_ms is not None for r in results) and backend.restarts == 1
        assert not [p for p in frozen if p.alive()]
        assert waited < 40, f"a frozen browser held the batch {waited:.0f} s (Selenium's own read timeout is 120 s)"
        _freeze(backend.session.browser.browser_processes())
        start = time.monotonic()
        backend.close()
        assert time.monotonic() - start < 10
    finally:
        backend.close()


@needs_browser
@pytest.mark.slow
def test_sigterm_with_the_browser_frozen_ends_the_run_in_seconds_keeping_its_records(tiny_model, tiny_dataset,
                                                                                     tmp_path):
    import sys

    out = tmp_path / "run"
    command = [sys.executable, "-m", "bench.cli", "run", "--backends", "tfjs", "--dataset", str(tiny_dataset),
               "--out", str(out), "--warmup", "0", "--tfjs-model", str(tiny_model), "--min-duration-s", "600",
               "--max-repeats", "10000", "--tfjs-batch-timeout-s", "300"]
    env = {**os.environ, "SE_OFFLINE": "true", "NO_GCE_CHECK": "true"}
    bench = subprocess.Popen(command, cwd=Path(__file__).resolve().parents[1], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        predictions = out / "predictions.jsonl"
        while not (predictions.is_file() and predictions.read_text().count("\n") >= 3):
            assert bench.poll() is None and time.monotonic() < deadline, bench.stderr.read().decode()[-2000:]
            time.sleep(0.2)
        browser = [p for p in descendants(bench.pid) if _command(p.pid) == "chromium"]
        _freeze(browser)
        time.sleep(1)
        bench.send_signal(signal.SIGTERM)
        start = time.monotonic()
        code = bench.wait(timeout=60)
        took = time.monotonic() - start
    finally:
        if bench.poll() is None:
            bench.kill()
    assert code == 130 and took < 15, f"exit {code} after {took:.1f} s"
    assert browser and not [p for p in browser if p.alive()]
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "interrupted"
    assert predictions.read_text().count("\n") >= 3


@needs_browser
@pytest.mark.slow
def test_network_profile_throttles_the_download_and_warm_cache_skips_it(tiny_model):
    throttled = _backend(tiny_model, network="custom:1600:20")
    warm = _backend(tiny_model, cache="warm")
    from_indexeddb = _backend(tiny_model, cache="warm", indexeddb="true")
    try:
        cold = throttled.open()
        second = warm.open()
        warm_notes = warm.describe()["notes"]
        stored = from_indexeddb.open()
        assert all(r.error is None for r in from_indexeddb.recognize([_photo(np.zeros((20, 30, 3), np.uint8))]))
    finally:
        throttled.close()
        warm.close()
        from_indexeddb.close()
    expected_ms = cold.download_bytes / (1600 * 1000 / 8) * 1000
    assert cold.download_ms >= 0.8 * expected_ms
    assert cold.details["resource_timing_ms"] >= 0.8 * expected_ms
    assert second.download_bytes == 0 and second.details["resource_timing_body_bytes"] > 0
    fetched = {e["name"] for e in second.details["library_entries"] if e["transferBytes"] > 0}
    assert fetched == {"/"} and second.library_bytes < 2000, "only the page itself (Cache-Control: no-cache) again"
    assert second.details["first_visit"]["library_ms"] > 0
    assert not any("Resource Timing" in note or "by the server" in note for note in warm_notes)
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


# OD API exports as the exporter and the converter leave them.

def _od_api_photos():
    from tests.od_api_fixture import photo

    return [_photo(photo(seed, 40 + 10 * seed, 70), f"od{seed}.png") for seed in range(3)]


def _tf_candidates(saved_model: Path, photos) -> list:
    from backends.tf import TFBackend, TFOptions

    backend = TFBackend(TFOptions(model=str(saved_model), threshold=0.0))
    backend.open()
    try:
        return [r.candidates for r in backend.recognize(photos)]
    finally:
        backend.close()


def _same_detections(expected, found, photo, box_tolerance: float = 1e-3, score_tolerance: float = 1e-4) -> None:
    """Every expected detection has one found with its label and score, its box within the tolerance
    of the photo's size."""
    size = max(photo.width, photo.height)
    assert len(found) == len(expected), (photo.photo.image, len(found), len(expected))
    for want in expected:
        assert any(d.label == want.label and abs(d.score - want.score) <= score_tolerance
                   and max(abs(d.left - want.left), abs(d.top - want.top), abs(d.width - want.width),
                           abs(d.height - want.height)) <= box_tolerance * size for d in found), (photo.photo.image, want)


@needs_browser
@pytest.mark.slow
@pytest.mark.parametrize("tfjs_backend", ["wasm", "webgl", "cpu"])
def test_an_od_api_export_runs_unchanged_with_tensorflow_s_detections(od_api_export, tfjs_backend):
    photos = _od_api_photos()
    expected = _tf_candidates(od_api_export / "saved_model", photos)
    backend = _backend(od_api_export / "tfjs" / "none", tfjs_backend=tfjs_backend, min_score="0")
    try:
        backend.open()
        results = backend.recognize(photos)
        facts = backend.describe()
    finally:
        backend.close()
    assert facts["outputs"]["found_from"] == f"the signature of {(od_api_export / 'saved_model').resolve()}"
    assert facts["classes"].startswith("label map (") and facts["outputs"]["detection_scores"] == "Identity_4:0"
    for photo, want, result in zip(photos, expected, results):
        assert result.error is None
        _same_detections(want, result.candidates, photo)
    if tfjs_backend == "wasm":
        assert facts["tfjs_patches"] == ["Cast to bool (tfjs #2590)"]


@needs_browser
@pytest.mark.slow
def test_uint8_classes_are_rounded_and_the_two_output_export_runs(od_api_export, od_api_two_output):
    photos = _od_api_photos()
    quantized = _backend(od_api_export / "tfjs" / "uint8", quantization="uint8", min_score="0")
    two = _backend(od_api_two_output / "tfjs" / "none", min_score="0")
    try:
        quantized.open()
        rounded = quantized.recognize(photos)
        notes = quantized.describe()["notes"]
        two.open()
        two_results = two.recognize(photos)
        two_facts = two.describe()
    finally:
        quantized.close()
        two.close()
    assert all(r.error is None and r.candidates for r in rounded)
    assert not any("not digits" in note for note in notes)
    assert list(two_facts["outputs"])[:2] == ["detection_boxes", "detection_multiclass_scores"]
    for photo, want, result in zip(photos, _tf_candidates(od_api_two_output / "saved_model", photos), two_results):
        _same_detections(want, result.candidates, photo)


@needs_browser
@pytest.mark.slow
def test_other_converter_flags_structured_names_uint16_and_shards(tmp_path, tiny_dataset):
    """The same kind of export converted with --use_structured_outputs_names, uint16 and small shards,
    with no SavedModel beside it any more: the structured keys name the outputs."""
    tf = pytest.importorskip("tensorflow")
    from bench.cli import main
    from tests.od_api_fixture import export

    root = export(tf, tmp_path / "export", quantizations=("uint16",), use_structured_outputs_names=True,
                  weight_shard_size_bytes=1000)
    saved_model = root / "saved_model"
    assert main(["model", "convert", str(saved_model), "--quantization", "uint16", "--weight_shard_size_bytes",
                 "1000", "--out", str(tmp_path / "ours")]) == 0
    ours = read_model(tmp_path / "ours" / "uint16")
    assert ours.quantization == "uint16" and len(ours.shards) > 1
    assert json.loads((tmp_path / "ours" / "uint16" / "conversion.json").read_text())["weight_shard_size_bytes"] == 1000
    assert "detection_scores" in json.loads((tmp_path / "ours" / "uint16" / "model.json").read_text())["signature"]["outputs"]
    saved_model.rename(tmp_path / "elsewhere")
    theirs = root / "tfjs" / "uint16"
    assert len(read_model(theirs).shards) > 1
    code = main(["run", "--backends", "tfjs", "--dataset", str(tiny_dataset), "--out", str(tmp_path / "run"),
                 "--warmup", "0", "--tfjs-model", str(theirs)])
    assert code == 0
    row = json.loads((tmp_path / "run" / "run.json").read_text())["backends"]["tfjs-wasm-uint16"]
    assert row["errors"] == 0 and row["describe"]["outputs"]["found_from"] == "model.json structuredOutputKeys"
    assert row["describe"]["classes"].startswith("label map")


# A real first visit: the page's own image path, the whole first load, phone photos.

@needs_browser
@pytest.mark.slow
def test_the_page_path_decodes_uploads_and_letterboxes_on_the_backend(tiny_model, photos):
    """The exact path's input equals Python's letterbox; the page path's is close, its parts add up."""
    from bench.model.preprocess import letterbox

    backend = _backend(tiny_model)
    try:
        backend.open()
        inputs = [(backend.session.model_input(p, "page"), letterbox(p.rgb, INPUT_H, INPUT_W)[0]) for p in photos]
        exact = [backend.session.model_input(p, "exact") for p in photos]
        results = backend.recognize(photos)
    finally:
        backend.close()
    for (page, python), same in zip(inputs, exact):
        assert np.array_equal(same, python)
        assert page.shape == python.shape
        assert np.abs(page - python).mean() < 8.0
    for result in results:
        parts = result.details["parts"]
        assert set(parts) == {"decode_ms", "upload_ms", "preprocess_ms", "model_ms", "readback_ms"}
        assert result.end_to_end_ms >= result.latency_ms
        assert sum(parts.values()) == pytest.approx(result.end_to_end_ms, abs=0.5)
        assert result.latency_ms == pytest.approx(parts["model_ms"] + parts["readback_ms"], abs=0.5)


@needs_browser
@pytest.mark.slow
def test_a_3g_first_visit_costs_at_least_its_bytes_at_1_6_mbps(tiny_model, tiny_dataset, tmp_path):
    from bench.runner import RunConfig, run_benchmark

    config = RunConfig(backends=("tfjs",), dataset=str(tiny_dataset), out=tmp_path / "run", warmup=0, limit=1,
                       backend_options={"tfjs": {"model": str(tiny_model), "network": "3g"}})
    row = run_benchmark(config).to_json()["backends"]["tfjs-wasm-none"]
    cold = row["cold_start_ms"]
    assert row["library_bytes"] > 300_000 and row["download_bytes"] > 0
    at_3g_ms = (row["library_bytes"] + row["download_bytes"]) * 8 / 1_600_000 * 1000
    assert cold["total"] >= at_3g_ms
    assert cold["library"] >= row["library_bytes"] * 8 / 1_600_000 * 1000
    assert cold["total"] == pytest.approx(cold["library"] + cold["download"] + cold["init"] + cold["first_inference"],
                                          abs=0.01)
    details = row["cold_start_details"]
    assert details["library_resource_timing_end_ms"] <= cold["library"] + 20
    assert abs(details["library_body_bytes"] - details["library_server_bytes"]) <= 0.25 * details["library_server_bytes"]
    assert {"/", "/tfjs/tf.min.js", "/tfjs/tf-backend-wasm.min.js"} <= {e["name"] for e in details["library_entries"]}


@needs_browser
@pytest.mark.slow
def test_the_minimal_bundle_is_smaller_and_runs(tiny_model):
    full = _backend(tiny_model, tfjs_backend="webgl")
    minimal = _backend(tiny_model, tfjs_backend="webgl", bundle="minimal", compression="br")
    try:
        first_full, first_minimal = full.open(), minimal.open()
        read = minimal.recognize([_photo(np.zeros((20, 30, 3), np.uint8))])
        described = minimal.describe()
    finally:
        for backend in (full, minimal):
            backend.close()
    assert 0 < first_minimal.library_bytes < first_full.library_bytes
    assert read[0].error is None and described["bundle"] == "minimal" and described["tfjs_version"] == "4.22.0"
    assert described["compression"] == "br"


def _phone_photo():
    """A 48-megapixel (8000 x 6000) JPEG, as a phone camera writes it."""
    from PIL import Image

    x = (np.arange(8000) // 32 % 256).astype(np.uint8)
    y = (np.arange(6000) // 24 % 256).astype(np.uint8)
    rgb = np.empty((6000, 8000, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = x[None, :], y[:, None], x[None, :] ^ y[:, None]
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=80)
    data = buffer.getvalue()
    return Photo("phone.jpg", "", [], lambda: data).load()


@needs_browser
@pytest.mark.slow
def test_a_phone_photo_on_webgl_at_4096_fails_with_the_texture_error_and_max_side_reads_it(tiny_model):
    photo = _phone_photo()
    phone = dict(tfjs_backend="webgl", device="phone", network="none", cpu_throttle="1")
    crashing = _backend(tiny_model, **phone)
    downsized = _backend(tiny_model, **phone, max_side="2048")
    try:
        crashing.open()
        [failed] = crashing.recognize([photo])
        described = crashing.describe()
        downsized.open()
        [read] = downsized.recognize([photo])
    finally:
        crashing.close()
        downsized.close()
    assert failed.error.startswith("Requested texture size [")
    assert "greater than WebGL maximum on this browser / GPU [4096x4096]" in failed.error
    assert described["viewport"]["width"] == 412 and described["viewport"]["devicePixelRatio"] == 2.625
    assert "Android" in described["user_agent"] and "Mobile" in described["user_agent"]
    assert read.error is None and read.details["fed"] == {"width": 2048, "height": 1536}
    assert "downsize_ms" in read.details["parts"]
    assert all(0 <= d.left <= d.left + d.width <= 8000 + 1e-6 for d in read.candidates)


@needs_browser
@pytest.mark.slow
def test_the_browser_keeps_its_crash_dumps_and_home_in_its_own_temporary_folder(tiny_model):
    backend = _backend(tiny_model)
    try:
        backend.open()
        browser = backend.session.browser
        root = browser.root
        main = browser.browser_processes()[0]
        command = Path(f"/proc/{main.pid}/cmdline").read_bytes().split(b"\0")
        environment = dict(item.split(b"=", 1) for item in Path(f"/proc/{main.pid}/environ").read_bytes().split(b"\0")
                           if b"=" in item)
    finally:
        backend.close()
    assert f"--crash-dumps-dir={root / 'crashes'}".encode() in command
    assert f"--user-data-dir={root / 'profile'}".encode() in command
    assert environment[b"HOME"] == str(root / "home").encode()
    assert not root.exists()
