"""A real Selenium Grid 4 (standalone, and hub + node) running tfjs rows with --sessions (issue 17)."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from backends.tfjs import TfjsBackend
from backends.tfjs.grid import LocalGrid, grid_problem
from backends.tfjs.options import TfjsOptions
from bench.cli import main
from bench.results.folder import read_jsonl

problem = grid_problem() or TfjsBackend.unavailable_reason(TfjsOptions())
pytestmark = [pytest.mark.slow, pytest.mark.skipif(problem is not None, reason=f"no local grid: {problem}")]
PHOTOS = "20"


def bench_run(out: Path, *options: str) -> dict:
    code = main(["run", "--backends", "tfjs", "--limit", PHOTOS, "--warmup", "0", "--no-store", "--out", str(out),
                 "--tfjs-batch-size", "2", *options])
    assert code == 0
    return json.loads((out / "run.json").read_text())["backends"]["tfjs-wasm-none"]


def readings(out: Path) -> list[tuple]:
    return [(r["image"], r["text"], json.dumps(r["digits"]), r["error"]) for r in read_jsonl(out / "predictions.jsonl")]


@pytest.fixture(scope="module")
def grid():
    with LocalGrid("standalone", max_sessions=2) as running:
        yield running


def test_two_sessions_on_the_grid_read_like_one_local_session(grid, tmp_path):
    local = bench_run(tmp_path / "local")
    row = bench_run(tmp_path / "grid", "--webdriver-url", grid.url, "--sessions", "2")
    assert readings(tmp_path / "local") == readings(tmp_path / "grid")
    assert row["digit_f1"] == local["digit_f1"] and [s["index"] for s in row["sessions"]] == [0, 1]
    assert {r["session"] for r in read_jsonl(tmp_path / "grid" / "predictions.jsonl")} == {0, 1}
    assert row["sessions_share_machine"] is True


def test_a_session_whose_browser_the_grid_loses_is_restarted_and_no_photo_is_lost(grid, tmp_path):
    out = tmp_path / "killed"
    ended: list[bool] = []

    def crash_one_session() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not ended:
            lines = (out / "predictions.jsonl").read_text().splitlines() if (out / "predictions.jsonl").exists() else []
            if len(lines) >= 1 and len(grid.session_ids()) == 2 and grid.crash_one_browser():
                ended.append(True)
            time.sleep(0.1)

    killer = threading.Thread(target=crash_one_session, daemon=True)
    killer.start()
    row = bench_run(out, "--webdriver-url", grid.url, "--sessions", "2")
    killer.join(timeout=5)
    assert ended, "the test never saw a running session to end"
    records = read_jsonl(out / "predictions.jsonl")
    assert len(records) == int(PHOTOS) and all(r["error"] is None for r in records)
    assert row["status"] == "complete"
    restarted = sum(s["describe"].get("restarts", 0) + s["replaced"] for s in row["sessions"])
    assert restarted >= 1


def test_a_hub_and_node_grid_runs_a_row(tmp_path):
    with LocalGrid("hub-node") as hub:
        row = bench_run(tmp_path / "hub", "--webdriver-url", hub.url)
    assert row["status"] == "complete" and row["errors"] == 0


def test_capabilities_reach_the_grid_and_a_device_it_lacks_fails_the_row_in_one_line(grid, tmp_path):
    code = main(["run", "--backends", "tfjs", "--limit", "2", "--warmup", "0", "--no-store", "--out",
                 str(tmp_path / "android"), "--tfjs-capabilities", '{"platformName": "android"}', "--webdriver-url",
                 grid.url])
    row = json.loads((tmp_path / "android" / "run.json").read_text())["backends"]["tfjs-wasm-none"]
    assert code == 1 and row["status"] == "failed" and "\n" not in row["error"]
    assert "android" in row["error"].lower() or "session" in row["error"].lower()
