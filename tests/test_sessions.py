"""--sessions: photos dealt across parallel sessions of a row, merged in dataset order, lost sessions replaced."""
from __future__ import annotations

import json
import threading
from pathlib import Path

from backends.oracle import OracleBackend, OracleOptions
from bench.dataset import load_dataset
from bench.results.folder import RunWriter, read_jsonl
from bench.runner import Plan, PlannedRow, Runner, RunConfig


def run_rows(tmp_path: Path, rows: list[PlannedRow], name: str = "out", **config) -> dict:
    out = tmp_path / name
    dataset = load_dataset(None, synthetic_count=30, seed=3)
    Runner(RunConfig(out=out, warmup=0, **config), Plan(rows, {}), dataset, RunWriter(out)).execute()
    return json.loads((out / "run.json").read_text())


def without_timing(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in ("latency_ms", "wall_ms", "session")}


def test_three_sessions_give_the_same_records_in_dataset_order_as_one(tmp_path):
    row = PlannedRow("oracle", "oracle", OracleBackend, OracleOptions(miss_rate=0.3, seed=5, delay_ms=2))
    single = run_rows(tmp_path, [row], "one")
    parallel = run_rows(tmp_path, [row], "three", sessions=3)
    one, three = (read_jsonl(tmp_path / name / "predictions.jsonl") for name in ("one", "three"))
    assert [without_timing(r) for r in one] == [without_timing(r) for r in three]
    assert {r["session"] for r in three} == {0, 1, 2} and "session" not in one[0]
    facts = parallel["backends"]["oracle"]["sessions"]
    assert [s["index"] for s in facts] == [0, 1, 2] and sum(s["photos"] for s in facts) == 30
    assert all(s["cold_start_ms"]["total"] is not None for s in facts)
    assert parallel["backends"]["oracle"]["digit_f1"] == single["backends"]["oracle"]["digit_f1"]
    assert any("3 sessions ran at once on this machine" in w for w in parallel["backends"]["oracle"]["warnings"])


class LosesItsEngine(OracleBackend):
    """The first session's engine goes away after two batches (a browser the grid killed)."""

    created = 0
    lock = threading.Lock()

    def open(self):
        with LosesItsEngine.lock:
            self.number = LosesItsEngine.created
            LosesItsEngine.created += 1
        self.calls = 0
        return super().open()

    def recognize(self, photos):
        self.calls += 1
        if self.number == 0 and self.calls > 3:
            raise RuntimeError("invalid session id: the grid ended this session")
        return super().recognize(photos)

    def healthy(self) -> bool:
        return not (self.number == 0 and self.calls > 3)


def test_a_lost_session_is_replaced_and_its_photos_are_retried_elsewhere(tmp_path):
    LosesItsEngine.created = 0
    row = PlannedRow("oracle", "oracle", LosesItsEngine, OracleOptions(delay_ms=3))
    run = run_rows(tmp_path, [row], sessions=2)
    records = read_jsonl(tmp_path / "out" / "predictions.jsonl")
    assert len(records) == 30 and all(r["error"] is None for r in records)
    assert run["backends"]["oracle"]["status"] == "complete" and run["backends"]["oracle"]["digit_f1"] == 1.0
    assert [s["replaced"] for s in run["backends"]["oracle"]["sessions"]] == [1, 0]
    assert LosesItsEngine.created == 3
