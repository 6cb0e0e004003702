"""`bench run --backends vision` end to end against the local Vision server: scoring, the batched
row, record/replay, the no-credentials exit, the default-run skip, and secrets kept out of outputs."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("google.cloud.vision")

from backends.vision.emulator import Fault, VisionEmulator, answers_from_dataset, throwaway_service_account  # noqa: E402
from bench.cli import main  # noqa: E402
from bench.results.folder import read_jsonl  # noqa: E402
from bench.runner import RunConfig, plan_run  # noqa: E402

KEY = "AIzaSy-digitbench-secret-0123456789"


@pytest.fixture(autouse=True)
def no_ambient_credentials(monkeypatch, tmp_path):
    for name in ("DIGITBENCH_VISION_API_KEY", "GOOGLE_APPLICATION_CREDENTIALS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.setenv("DIGITBENCH_STORE", str(tmp_path / "history.sqlite"))


@pytest.fixture
def emulator(tiny_dataset):
    with VisionEmulator(answers_from_dataset(str(tiny_dataset))) as server:
        yield server


def bench(*args: str) -> int:
    return main(["run", "--warmup", "0", *args])


def predictions(out: Path) -> list[dict]:
    return read_jsonl(out / "predictions.jsonl")


def test_run_without_credentials_exits_2_with_one_line_before_any_work(tmp_path):
    ambient = ("DIGITBENCH_VISION_API_KEY", "GOOGLE_APPLICATION_CREDENTIALS")
    env = {k: v for k, v in os.environ.items() if k not in ambient}
    env.update(CLOUDSDK_CONFIG=str(tmp_path / "gcloud"), NO_GCE_CHECK="", DIGITBENCH_STORE=str(tmp_path / "h.sqlite"))
    done = subprocess.run([sys.executable, "-m", "bench.cli", "run", "--backends", "vision", "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [done.stderr.strip()]
    assert done.stderr.startswith("bench: error: --backends vision: no Google Cloud credentials: pass --vision-api-key")
    assert done.stdout.strip() == "" and not (tmp_path / "out").exists() and not (tmp_path / "h.sqlite").exists()


def test_default_run_skips_vision_with_the_reason(monkeypatch, tmp_path):
    assert plan_run(RunConfig()).skipped["vision"].startswith("no Google Cloud credentials")
    monkeypatch.setenv("DIGITBENCH_VISION_API_KEY", KEY)
    assert plan_run(RunConfig()).skipped["vision"].startswith("paid API (about $1.50 per 1,000 photos): name it")
    config = RunConfig(backend_options={"vision": {"replay": str(tmp_path)}})
    assert "vision" in [row.row for row in plan_run(config).rows]


def test_run_against_the_local_server_is_scored_like_any_backend(emulator, tiny_dataset, tmp_path):
    out = tmp_path / "out"
    assert bench("--backends", "vision", "--vision-endpoint", emulator.grpc_endpoint, "--dataset", str(tiny_dataset),
                 "--out", str(out)) == 0
    row = json.loads((out / "run.json").read_text())["backends"]["vision"]
    assert row["status"] == "complete" and row["digit_f1"] == 1.0 and row["sequence_accuracy"] == 1.0
    assert row["cold_start_ms"]["first_inference"] > 0 and row["cold_start_details"]["connect_ms"] > 0
    assert row["describe"]["requests"] == 4 and row["describe"]["units"] == 4
    assert "vision" in (out / "summary.csv").read_text() and "4 requests, 0 retries" in (out / "report.md").read_text()


def test_batch_option_adds_a_batched_row(emulator, tiny_dataset, tmp_path):
    out = tmp_path / "out"
    assert bench("--backends", "vision", "--vision-endpoint", emulator.grpc_endpoint, "--vision-batch-size", "2",
                 "--vision-record", str(tmp_path / "rec"), "--dataset", str(tiny_dataset), "--out", str(out)) == 0
    run = json.loads((out / "run.json").read_text())
    assert list(run["backends"]) == ["vision", "vision-batch2"]
    assert run["backends"]["vision-batch2"]["digit_f1"] == 1.0
    assert run["backends"]["vision-batch2"]["describe"]["photos_per_request"] == 2
    assert [r.images for r in emulator.received] == [1, 1, 1, 1] + [1, 2, 1]
    batched = [r for r in predictions(out) if r["backend"] == "vision-batch2"]
    assert batched[0]["details"]["photos_in_request"] == 2
    assert batched[0]["latency_ms"] == pytest.approx(batched[0]["details"]["request_ms"] / 2, abs=1e-3)
    assert sorted(p.parent.name for p in (tmp_path / "rec").glob("*/*.json")) == ["vision"] * 3 + ["vision-batch2"] * 3


def test_record_then_replay_gives_the_same_scores_without_the_service(emulator, tiny_dataset, tmp_path):
    recorded, replayed, folder = tmp_path / "rec-run", tmp_path / "replay-run", tmp_path / "responses"
    assert bench("--backends", "vision", "--vision-transport", "rest", "--vision-endpoint", emulator.rest_endpoint,
                 "--vision-record", str(folder), "--dataset", str(tiny_dataset), "--out", str(recorded)) == 0
    emulator.stop()
    assert len(list((folder / "vision").glob("*.json"))) == 3
    assert bench("--backends", "vision", "--vision-replay", str(folder), "--dataset", str(tiny_dataset),
                 "--out", str(replayed)) == 0
    live, again = predictions(recorded), predictions(replayed)
    assert [(r["digits"], r["text"]) for r in again] == [(r["digits"], r["text"]) for r in live]
    assert all(r["replayed"] for r in again) and not any(r.get("replayed") for r in live)
    assert [r["latency_ms"] for r in again] == pytest.approx([r["latency_ms"] for r in live], abs=1e-3)
    row = json.loads((replayed / "run.json").read_text())["backends"]["vision"]
    assert row["replayed"] and row["digit_f1"] == 1.0
    assert "latency replayed, not measured" in (replayed / "report.md").read_text()


def test_replay_without_a_recording_fails_only_that_photo(emulator, tiny_dataset, tmp_path):
    folder = tmp_path / "responses"
    assert bench("--backends", "vision", "--vision-endpoint", emulator.grpc_endpoint, "--vision-record", str(folder),
                 "--dataset", str(tiny_dataset), "--out", str(tmp_path / "a")) == 0
    sorted((folder / "vision").glob("*.json"))[0].unlink()
    assert bench("--backends", "vision", "--vision-replay", str(folder), "--dataset", str(tiny_dataset),
                 "--out", str(tmp_path / "b")) == 0
    errors = [r["error"] for r in predictions(tmp_path / "b") if r["error"]]
    assert len(errors) == 1 and "no recorded response for" in errors[0] and "--vision-record DIR" in errors[0]


def every_file_bytes(*folders: Path) -> bytes:
    return b"\n".join(p.read_bytes() for f in folders for p in sorted(f.rglob("*")) if p.is_file())


def test_keys_and_tokens_never_reach_outputs_or_the_terminal(emulator, tiny_dataset, tmp_path, capsys, monkeypatch):
    emulator.api_key = KEY
    emulator.faults.extend([Fault(429, f"quota exceeded for key {KEY}"), Fault(),
                            Fault(400, f"API key {KEY} not valid")])
    key_run, env_run, token_run, folder = (tmp_path / n for n in ("key-run", "env-run", "token-run", "responses"))
    assert bench("--backends", "vision", "--vision-transport", "rest", "--vision-endpoint", emulator.rest_endpoint,
                 "--vision-api-key", KEY, "--vision-record", str(folder), "--dataset", str(tiny_dataset),
                 "--out", str(key_run)) == 0
    monkeypatch.setenv("DIGITBENCH_VISION_API_KEY", KEY)
    assert bench("--backends", "vision", "--vision-endpoint", emulator.grpc_endpoint, "--dataset", str(tiny_dataset),
                 "--out", str(env_run)) == 0
    monkeypatch.delenv("DIGITBENCH_VISION_API_KEY")
    emulator.api_key = None
    assert bench("--backends", "vision", "--vision-endpoint", emulator.grpc_endpoint, "--vision-key-file",
                 str(throwaway_service_account(tmp_path / "sa.json")), "--dataset", str(tiny_dataset),
                 "--out", str(token_run)) == 0
    sent = [r.headers.get("x-goog-api-key") or r.headers.get("authorization") for r in emulator.received]
    tokens = {s.removeprefix("Bearer ") for s in sent if s and s.startswith("Bearer ")}
    assert sent.count(KEY) == 9 and tokens, "the secrets must really have been sent"
    key_errors = [r["error"] for r in predictions(key_run) if r["error"]]
    assert key_errors == ["Cloud Vision 400 BadRequest: API key *** not valid"]
    terminal = capsys.readouterr()
    haystack = every_file_bytes(tmp_path) + (terminal.out + terminal.err).encode()
    assert b"api_key" in haystack and b'"retries": 1' in haystack
    for secret in [KEY, *tokens]:
        assert secret.encode() not in haystack
    run = json.loads((key_run / "run.json").read_text())
    assert run["backends"]["vision"]["options"]["api_key"] == "***"


def test_the_emulator_command_serves_a_dataset_to_bench_run(tiny_dataset, tmp_path):
    server = subprocess.Popen([sys.executable, "-m", "backends.vision.emulator", "--dataset", str(tiny_dataset)],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        lines = [server.stdout.readline() for _ in range(3)]
        assert lines[0].startswith("Cloud Vision emulator: 3 photos known")
        rest = lines[2].split("--vision-endpoint ")[1].strip()
        assert bench("--backends", "vision", "--vision-transport", "rest", "--vision-endpoint", rest,
                     "--dataset", str(tiny_dataset), "--out", str(tmp_path / "out")) == 0
        row = json.loads((tmp_path / "out" / "run.json").read_text())["backends"]["vision"]
        assert row["digit_f1"] == 1.0
    finally:
        server.terminate()
        server.wait(10)
