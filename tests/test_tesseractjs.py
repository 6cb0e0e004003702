"""The real Tesseract.js (wasm core, npm traineddata) in real headless Chromium, served locally."""
from __future__ import annotations

from pathlib import Path

import pytest

from backends.tesseractjs import TesseractJsBackend
from backends.tesseractjs.backend import TesseractJsOptions, symbol_digits
from tests.conftest import loaded_photo, rendered_line


def _missing() -> str | None:
    return TesseractJsBackend.unavailable_reason(TesseractJsOptions())


needs_page = pytest.mark.skipif(_missing() is not None, reason=str(_missing()))


@pytest.fixture(scope="module")
def started():
    backend = TesseractJsBackend(TesseractJsOptions(batch_timeout_s=60))
    cold = backend.open()
    yield backend, cold
    backend.close()


@needs_page
def test_cold_start_counts_the_worker_wasm_and_traineddata(started):
    backend, cold = started
    parts = cold.details["body_bytes"]
    assert set(parts) == {"worker", "core", "traineddata"}
    assert parts["traineddata"] > 1_000_000
    assert parts["core"] > 1_000_000 and cold.details["core"].endswith("lstm.wasm.js")
    assert 0 < cold.download_bytes <= parts["traineddata"] + 1_000 and cold.download_ms > 0
    assert parts["worker"] < cold.library_bytes < parts["worker"] + parts["core"] + 200_000 and cold.library_ms > 0
    assert cold.init_ms > 0
    facts = backend.describe()
    assert facts["tesseract.js"] == "7.0.0" and "4.0.0_best_int" in facts["traineddata"]


@needs_page
@pytest.mark.parametrize("text,size", [("4071", 40), ("258", 16)])
def test_reads_a_number_with_a_box_on_each_digit_in_photo_pixels(started, text, size):
    backend, _ = started
    rgb, extents = rendered_line(text, size)
    result = backend.recognize([loaded_photo(rgb)])[0]
    assert result.error is None and result.latency_ms > 0 and result.end_to_end_ms == result.latency_ms
    assert [d.label for d in result.digits] == [int(c) for c in text]
    for digit, (x0, x1) in zip(result.digits, extents):
        assert x0 - 2 <= digit.left + digit.width / 2 <= x1 + 2
        assert 0 <= digit.top and digit.top + digit.height <= rgb.shape[0] + 1
        assert 0.0 < digit.score <= 1.0
    assert result.details["recognize_ms"] > 0


@needs_page
def test_a_corrupt_photo_fails_alone(started):
    backend, _ = started
    good, _ = rendered_line("36", 40)
    bad = loaded_photo(good)
    bad.encoded = b"\x89PNG\r\n\x1a\n not really"
    bad.rgb = good
    results = backend.recognize([bad, loaded_photo(good)])
    assert results[0].error and "tesseract.js" in results[0].error
    assert [d.label for d in results[1].digits] == [3, 6]


@needs_page
def test_without_the_whitelist_letters_come_through():
    backend = TesseractJsBackend(TesseractJsOptions(whitelist=False, psm=7))
    backend.open()
    try:
        rgb, _ = rendered_line("NO 12", 40)
        result = backend.recognize([loaded_photo(rgb)])[0]
    finally:
        backend.close()
    assert "NO" in result.text.upper()
    assert [d.label for d in result.digits] == [1, 2]


def test_symbols_are_scaled_back_and_filtered():
    symbols = [["1", 90.0, 20, 10, 40, 50], ["A", 95.0, 40, 10, 60, 50], ["7", 30.0, 60, 10, 80, 50]]
    digits = symbol_digits(symbols, 2.0, 2.0, 0.5)
    assert [(d.label, d.left, d.top, d.width, d.height, d.score) for d in digits] == [(1, 10.0, 5.0, 10.0, 20.0, 0.9)]


def test_missing_npm_packages_name_the_install_step(monkeypatch, tmp_path: Path):
    monkeypatch.setattr(TesseractJsBackend, "required_files", (tmp_path / "nothing" / "worker.min.js",))
    reason = TesseractJsBackend.unavailable_reason(TesseractJsOptions())
    if reason and "npm" not in reason:
        pytest.skip(f"the browser is missing first: {reason}")
    assert "npm ci" in reason and "worker.min.js" in reason


@needs_page
@pytest.mark.slow
def test_a_killed_or_frozen_browser_is_replaced_and_the_batch_retried_until_the_restarts_run_out():
    import os
    import signal

    from backends.tfjs.browser import stop_processes

    backend = TesseractJsBackend(TesseractJsOptions(max_restarts=2, batch_timeout_s=3))
    backend.open()
    rgb, _ = rendered_line("36", 40)
    try:
        stop_processes(backend.page.browser.browser_processes())
        after_kill = backend.recognize([loaded_photo(rgb)])[0]
        frozen = backend.page.browser.browser_processes()
        for process in frozen:
            os.kill(process.pid, signal.SIGSTOP)
        after_freeze = backend.recognize([loaded_photo(rgb)])[0]
        stop_processes(backend.page.browser.browser_processes())
        given_up = backend.recognize([loaded_photo(rgb)])[0]
    finally:
        backend.close()
    assert [d.label for d in after_kill.digits] == [3, 6] and [d.label for d in after_freeze.digits] == [3, 6]
    assert not [p for p in frozen if p.alive()]
    assert given_up.error and "--tesseractjs-max-restarts" in given_up.error and backend.restarts == 2
