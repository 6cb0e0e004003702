"""The vision backend with the real google-cloud-vision client against a local server on 127.0.0.1.

Every test talks over a real socket to :class:`VisionEmulator`, on both transports where the
behaviour could differ: REST JSON and gRPC.
"""
from __future__ import annotations

import io
import random
from collections.abc import Iterator

import numpy as np
import pytest

pytest.importorskip("google.cloud.vision")

from backends.vision import VisionBackend  # noqa: E402
from backends.vision.annotations import Glyph, error_response, text_response  # noqa: E402
from backends.vision.calls import RetryPolicy  # noqa: E402
from backends.vision.emulator import Fault, VisionEmulator, throwaway_service_account  # noqa: E402
from backends.vision.options import VisionOptions  # noqa: E402
from bench.photos import LoadedPhoto, Photo  # noqa: E402
from bench.results.records import Box  # noqa: E402

TRANSPORTS = ("grpc", "rest")


@pytest.fixture(autouse=True)
def no_ambient_credentials(monkeypatch, tmp_path):
    for name in ("DIGITBENCH_VISION_API_KEY", "GOOGLE_APPLICATION_CREDENTIALS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.setenv("NO_GCE_CHECK", "true")


@pytest.fixture
def emulator() -> Iterator[VisionEmulator]:
    with VisionEmulator() as server:
        yield server


def make_photo(name: str, shade: int, width: int = 40, height: int = 20) -> LoadedPhoto:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.full((height, width, 3), shade, np.uint8)).save(buffer, format="PNG")
    data = buffer.getvalue()
    return Photo(image=name, label="", truth=[], read_bytes=lambda: data).load()


@pytest.fixture
def backend_for(emulator):
    opened: list[VisionBackend] = []

    def make(transport: str, **overrides) -> VisionBackend:
        settings = dict(endpoint=emulator.endpoint(transport), transport=transport, backoff_s=0.01, timeout_s=5.0)
        backend = VisionBackend(VisionOptions(**{**settings, **overrides}))
        opened.append(backend)
        backend.cold = backend.open()
        return backend

    yield make
    for backend in opened:
        backend.close()


def number_response(digits: str, left: float = 4, width: int = 40, height: int = 20, confidence: float = 0.9):
    glyphs = [Glyph(d, Box(left + 9 * i, 3, 8, 12), confidence) for i, d in enumerate(digits)]
    return text_response([glyphs], width, height)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_multi_digit_number_is_read_from_symbol_boxes(emulator, backend_for, transport):
    photo = make_photo("a.png", 10)
    emulator.add_answer(photo.encoded, number_response("127", confidence=0.88))
    [result] = backend_for(transport, language_hints=("en",)).recognize([photo])
    assert result.error is None and result.text == "127"
    assert [(d.label, d.score, d.box) for d in result.digits] == [
        (1, 0.88, Box(4, 3, 8, 12)), (2, 0.88, Box(13, 3, 8, 12)), (7, 0.88, Box(22, 3, 8, 12))]
    assert result.latency_ms > 0 and not result.replayed
    sent = emulator.received[-1].body["requests"][0]
    assert sent["features"][0]["type"] in ("TEXT_DETECTION", 5)
    assert sent["imageContext"] == {"languageHints": ["en"],
                                    "textDetectionParams": {"enableTextDetectionConfidenceScore": True}}


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_document_feature_is_requested_as_document_text_detection(emulator, backend_for, transport):
    backend_for(transport, feature="document").recognize([make_photo("a.png", 10)])
    sent = emulator.received[-1].body["requests"][0]
    assert sent["features"][0]["type"] in ("DOCUMENT_TEXT_DETECTION", 11)
    assert "imageContext" not in sent or "textDetectionParams" not in sent["imageContext"]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_photo_without_text_has_no_digits_and_no_error(backend_for, transport):
    [result] = backend_for(transport).recognize([make_photo("blank.png", 200)])
    assert (result.digits, result.text, result.error) == ([], "", None)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_non_digit_text_keeps_only_the_digits(emulator, backend_for, transport):
    photo = make_photo("sign.png", 30)
    emulator.add_answer(photo.encoded, text_response(
        [[Glyph("N", Box(0, 0, 6, 9)), Glyph("o", Box(6, 0, 6, 9))], [Glyph("5", Box(20, 0, 6, 9)),
                                                                      Glyph("b", Box(26, 0, 6, 9))]], 40, 20))
    [result] = backend_for(transport).recognize([photo])
    assert result.text == "No 5b" and [d.label for d in result.digits] == [5]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_per_image_error_fails_only_that_photo(emulator, backend_for, transport):
    good, bad = make_photo("good.png", 40), make_photo("bad.png", 50)
    emulator.add_answer(good.encoded, number_response("9"))
    emulator.add_answer(bad.encoded, error_response(3, "Bad image data."))
    backend = backend_for(transport, batch_size=2)
    ok, failed = backend.recognize([good, bad])
    assert [d.label for d in ok.digits] == [9] and ok.error is None
    assert failed.error == "Cloud Vision error for this photo (INVALID_ARGUMENT): Bad image data."
    assert len(emulator.received) == 1 and emulator.received[0].images == 2
    assert backend.describe()["units"] == 1


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_403_is_one_clear_line_not_retried_and_stops_further_requests(emulator, backend_for, transport):
    emulator.faults.append(Fault(403, "Cloud Vision API has not been used in project 42 or it is disabled."))
    backend = backend_for(transport, retries=3)
    [first] = backend.recognize([make_photo("a.png", 1)])
    assert "\n" not in first.error
    assert first.error.startswith("Cloud Vision refused the request (403 PERMISSION_DENIED): Cloud Vision API has")
    assert "enable the Vision API and billing" in first.error
    [second] = backend.recognize([make_photo("b.png", 2)])
    assert second.error.startswith("not sent: an earlier request failed: Cloud Vision refused")
    assert len(emulator.received) == 1
    described = backend.describe()
    assert (described["requests"], described["retries"], described["failed_requests"]) == (1, 0, 1)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_429_then_success_is_retried_and_the_retry_counted(emulator, backend_for, transport):
    photo = make_photo("a.png", 3)
    emulator.add_answer(photo.encoded, number_response("42"))
    emulator.faults.append(Fault(429, "Quota exceeded"))
    backend = backend_for(transport)
    [result] = backend.recognize([photo])
    assert result.error is None and [d.label for d in result.digits] == [4, 2]
    assert result.details["retries"] == 1 and result.details["total_ms_with_retries"] >= result.latency_ms
    described = backend.describe()
    assert (described["requests"], described["retries"], described["units"]) == (2, 1, 1)
    assert "2 requests, 1 retries" in described["notes"]
    assert len(emulator.received) == 2


@pytest.mark.parametrize(("transport", "status"), [("grpc", 500), ("rest", 503), ("grpc", 503), ("rest", 500)])
def test_server_errors_are_retried_within_the_budget_then_reported(emulator, backend_for, transport, status):
    emulator.faults.extend([Fault(status)] * 5)
    backend = backend_for(transport, retries=2)
    [result] = backend.recognize([make_photo("a.png", 4)])
    assert f"Cloud Vision {status}" in result.error and result.error.endswith("(gave up after 2 retries)")
    assert len(emulator.received) == 3 and backend.describe()["retries"] == 2


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_malformed_body_is_an_error_without_retry(emulator, backend_for, transport):
    emulator.faults.append(Fault(malformed=True))
    [result] = backend_for(transport).recognize([make_photo("a.png", 5)])
    assert result.error.startswith("malformed response from Cloud Vision") and "\n" not in result.error
    assert len(emulator.received) == 1


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_slow_answer_past_the_timeout_is_retried_then_fails(emulator, backend_for, transport):
    emulator.faults.extend([Fault(delay_s=2.0), Fault(delay_s=2.0)])
    backend = backend_for(transport, timeout_s=0.2, retries=1)
    [result] = backend.recognize([make_photo("a.png", 6)])
    assert result.error.endswith("(gave up after 1 retries)")
    assert "Deadline" in result.error or "timed out" in result.error
    assert len(emulator.received) == 2


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_api_key_travels_in_the_request_header(backend_for, emulator, transport):
    emulator.api_key = "AIza-test-key-0001"
    photo = make_photo("a.png", 7)
    emulator.add_answer(photo.encoded, number_response("8"))
    [result] = backend_for(transport, api_key="AIza-test-key-0001").recognize([photo])
    assert result.error is None and emulator.received[-1].headers["x-goog-api-key"] == "AIza-test-key-0001"
    assert backend_for(transport).recognize([photo])[0].error.startswith("Cloud Vision refused the request (403")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_service_account_key_file_sends_a_self_signed_token(backend_for, emulator, transport, tmp_path):
    key_file = str(throwaway_service_account(tmp_path / "sa.json"))
    backend = backend_for(transport, key_file=key_file)
    [result] = backend.recognize([make_photo("a.png", 8)])
    assert result.error is None
    assert emulator.received[-1].headers["authorization"].startswith("Bearer ey")
    assert backend.cold.details["auth_ms"] is not None
    assert backend.describe()["credentials"] == f"key-file ({key_file})"


def test_cold_start_separates_import_client_auth_and_grpc_connection(backend_for):
    grpc_cold = backend_for("grpc").cold
    rest_cold = backend_for("rest").cold
    assert grpc_cold.details["connect_ms"] > 0
    assert grpc_cold.init_ms >= grpc_cold.details["client_ms"] + grpc_cold.details["connect_ms"] - 1e-6
    assert grpc_cold.library_ms == grpc_cold.details["import_ms"], "the client library's import is the library part"
    assert grpc_cold.init_ms == pytest.approx(grpc_cold.details["client_ms"] + grpc_cold.details["connect_ms"]
                                              + (grpc_cold.details["auth_ms"] or 0), abs=0.01)
    assert rest_cold.details["connect_ms"] is None and "first_inference" in rest_cold.details["connect"]


def test_a_batch_shares_one_round_trip_between_its_photos(emulator, backend_for):
    photos = [make_photo(f"{i}.png", 100 + i) for i in range(4)]
    for i, photo in enumerate(photos):
        emulator.add_answer(photo.encoded, number_response(str(i)))
    backend = backend_for("grpc", batch_size=4)
    results = backend.recognize(photos)
    assert [r.digits[0].label for r in results] == [0, 1, 2, 3]
    assert len(emulator.received) == 1 and emulator.received[0].images == 4
    request_ms = results[0].details["request_ms"]
    assert all(r.latency_ms == pytest.approx(request_ms / 4, rel=1e-3) for r in results)
    assert results[0].details["photos_in_request"] == 4
    assert backend.batch_size == 4


def test_unreachable_grpc_endpoint_fails_open_with_the_fix():
    backend = VisionBackend(VisionOptions(endpoint="http://127.0.0.1:9", timeout_s=0.3))
    with pytest.raises(RuntimeError, match=r"cannot connect to http://127.0.0.1:9 .*--vision-endpoint"):
        backend.open()
    backend.close()


def test_without_credentials_the_reason_names_the_env_var_and_flags():
    reason = VisionBackend.unavailable_reason(VisionOptions())
    assert reason.startswith("no Google Cloud credentials: pass --vision-api-key KEY or set DIGITBENCH_VISION_API_KEY")
    assert "--vision-key-file" in reason and "GOOGLE_APPLICATION_CREDENTIALS" in reason and "\n" not in reason


def test_credentials_found_in_files_or_the_environment(monkeypatch, tmp_path):
    assert VisionBackend.unavailable_reason(VisionOptions(endpoint="http://127.0.0.1:1")) is None
    monkeypatch.setenv("DIGITBENCH_VISION_API_KEY", "AIza-env")
    assert VisionBackend.unavailable_reason(VisionOptions()) is None
    monkeypatch.delenv("DIGITBENCH_VISION_API_KEY")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    assert "GOOGLE_APPLICATION_CREDENTIALS=" in VisionBackend.unavailable_reason(VisionOptions())
    assert "no such file" in VisionBackend.unavailable_reason(VisionOptions(key_file=str(tmp_path / "x.json")))


@pytest.mark.parametrize(("options", "message"), [
    (VisionOptions(batch_size=17), "--vision-batch-size 17: must be 1 to 16"),
    (VisionOptions(record="a", replay="b"), "--vision-record and --vision-replay: give one of them"),
    (VisionOptions(replay="/nonexistent/rec"), "--vision-replay /nonexistent/rec: no such folder"),
    (VisionOptions(endpoint="ftp://x"), "--vision-endpoint 'ftp://x': give scheme://host[:port]"),
])
def test_option_problems_are_one_line_with_the_fix(options, message):
    assert VisionBackend.unavailable_reason(options).startswith(message)


def test_batching_adds_a_second_row():
    rows = VisionBackend.rows(VisionOptions(batch_size=16))
    assert [(name, o.batch_size) for name, o in rows] == [("vision", 1), ("vision-batch16", 16)]
    assert [name for name, _ in VisionBackend.rows(VisionOptions())] == ["vision"]


def test_backoff_doubles_is_jittered_and_bounded():
    policy, rng = RetryPolicy(retries=10, initial_s=1.0, maximum_s=8.0), random.Random(1)
    for retry, ceiling in enumerate([1, 2, 4, 8, 8, 8]):
        delays = [policy.delay_s(retry, rng) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays) and len(set(delays)) > 1


def test_missing_client_library_names_the_install_command(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "google.cloud.vision"
                        else real(name, *a))
    assert VisionBackend.unavailable_reason(VisionOptions()) == (
        "google-cloud-vision not installed: pip install 'digitbench[vision]'")
    assert VisionBackend.unavailable_reason(VisionOptions(replay=".")) is None


def test_cost_is_measured_over_the_photos_read_and_projected_after_the_free_tier():
    from backends.vision.usage import Usage, monthly_cost_usd

    usage = Usage(units=104, photos={f"{i}.png" for i in range(100)})
    assert usage.cost_per_1000_photos(1.50) == pytest.approx(1.56)
    assert monthly_cost_usd(1000, 1.50) == 0.0 and monthly_cost_usd(31_000, 1.50) == pytest.approx(45.0)
    assert monthly_cost_usd(6_001_000, 1.50) == pytest.approx(4_999_000 * 1.5 / 1000 + 1_001_000 * 0.6 / 1000)
    assert usage.projection(1000, 1.50, 1000).startswith("1,000 photos a day costs about $45.30 a month")


def test_requests_are_paced_under_a_quota_and_the_wait_is_counted_apart():
    from backends.vision.usage import Pacer

    now, slept = [0.0], []
    pacer = Pacer(120, clock=lambda: now[0], sleep=lambda s: slept.append(s) or now.__setitem__(0, now[0] + s))
    assert [pacer.wait() for _ in range(3)] == [0.0, 0.5, 0.5] and slept == [0.5, 0.5]
    now[0] += 2.0
    assert pacer.wait() == 0.0 and Pacer(0).wait() == 0.0


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_describe_reports_the_measured_cost_and_the_monthly_projection(emulator, backend_for, transport):
    photo = make_photo("a.png", 5)
    emulator.add_answer(photo.encoded, number_response("7"))
    backend = backend_for(transport, max_rpm=6000.0)
    for _ in range(3):
        backend.recognize([photo])
    described = backend.describe()
    assert described["units"] == 3 and described["photos"] == 1
    assert described["estimated_cost_usd_per_1000"] == pytest.approx(4.5)
    assert "1,000 photos a day costs about" in described["monthly_projection"]
    assert any("per 1,000 photos as measured" in note for note in described["notes"])


def test_a_rest_401_the_auth_library_retries_itself_is_counted(emulator, backend_for, tmp_path):
    key_file = str(throwaway_service_account(tmp_path / "sa.json"))
    backend = backend_for("rest", key_file=key_file)
    emulator.faults.append(Fault(401, "Request had invalid authentication credentials."))
    [result] = backend.recognize([make_photo("a.png", 9)])
    assert len(emulator.received) == 2
    described = backend.describe()
    assert result.error is None
    assert (described["requests"], described["retries"], described["auth_retries"]) == (2, 1, 1)
    assert "2 requests, 1 retries (1 by google-auth after a 401)" in described["notes"]
