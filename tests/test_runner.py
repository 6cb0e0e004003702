"""The runner through the real backend protocol: records, errors, interruption, repeats."""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from backends.oracle import OracleBackend, OracleOptions
from bench.backend import Backend
from bench.dataset import load_dataset
from bench.photos import LoadedPhoto
from bench.results.records import ColdStart, Digit, Recognition
from bench.results.folder import RunWriter, read_jsonl
from bench.runner import Plan, PlannedRow, Runner, RunConfig, run_benchmark


def read_run(out: Path) -> dict:
    return json.loads((out / "run.json").read_text())


def run_rows(tmp_path: Path, dataset, rows: list[PlannedRow], **config) -> tuple[Path, dict]:
    out = tmp_path / "out"
    runner = Runner(RunConfig(out=out, **config), Plan(rows, {}), dataset, RunWriter(out))
    try:
        runner.execute()
    finally:
        from bench.report_files import write_reports

        write_reports(runner.run, {p.image: p for p in dataset.photos})
    return out, read_run(out)


def oracle_row(row="oracle", **options) -> PlannedRow:
    return PlannedRow("oracle", row, OracleBackend, OracleOptions(**options))


def test_run_writes_the_output_contract(tiny_dataset: Path, tmp_path: Path):
    result = run_benchmark(RunConfig(backends=("oracle",), dataset=str(tiny_dataset), out=tmp_path / "r"))
    run = read_run(result.folder)
    assert run["status"] == "complete" and run["schema_version"] == 2
    for key in ("version", "commit"):
        assert key in run["environment"]["digitbench"]
    for key in ("python", "packages", "os", "cpu_model", "cpu_count"):
        assert key in run["environment"]
    row = run["backends"]["oracle"]
    for key in ("images", "errors", "digit_precision", "digit_recall", "digit_f1", "sequence_accuracy",
                "latency_ms", "cold_start_ms", "download_bytes"):
        assert key in row, key
    assert set(row["latency_ms"]) >= {"p50", "p90", "p99", "mean", "std", "min", "max", "n"}
    assert set(row["cold_start_ms"]) == {"library", "download", "init", "first_inference", "total"}
    assert row["images"] == 3 and row["errors"] == 0 and row["digit_f1"] == 1.0 and row["sequence_accuracy"] == 1.0
    predictions = read_jsonl(result.folder / "predictions.jsonl")
    assert [p["image"] for p in predictions] == ["images/1.png", "images/2.png", "images/3.png"]
    assert set(predictions[0]) >= {"backend", "image", "text", "digits", "latency_ms", "error"}
    assert set(predictions[0]["digits"][0]) == {"label", "score", "left", "top", "width", "height"}
    for name in ("summary.csv", "report.md", "truth.jsonl"):
        assert (result.folder / name).is_file()
    assert "oracle" in (result.folder / "summary.csv").read_text()


def test_injected_misses_show_in_recall_not_precision(tmp_path: Path):
    dataset = load_dataset(None, synthetic_count=40, seed=1)
    _, run = run_rows(tmp_path, dataset, [oracle_row(miss_rate=0.3, seed=3)])
    row = run["backends"]["oracle"]
    assert row["digit_precision"] == 1.0
    assert 0.5 < row["digit_recall"] < 0.9
    assert row["sequence_accuracy"] < 1.0


def test_bad_photos_are_error_records_and_the_run_goes_on(tiny_dataset: Path, tmp_path: Path):
    (tiny_dataset / "images/2.png").write_bytes(b"garbage")
    (tiny_dataset / "images/3.png").unlink()
    out, run = run_rows(tmp_path, load_dataset(tiny_dataset), [oracle_row()])
    records = read_jsonl(out / "predictions.jsonl")
    assert [r["error"] is None for r in records] == [True, False, False]
    assert "images/2.png: not an image" in records[1]["error"]
    assert "3.png: file not found" in records[2]["error"]
    row = run["backends"]["oracle"]
    assert row["images"] == 3 and row["errors"] == 2
    assert row["sequence_accuracy"] == pytest.approx(1 / 3)


class InterruptingBackend(OracleBackend):
    """Answers two photos, then the user presses Ctrl-C."""

    calls = 0

    def recognize(self, photos: Sequence[LoadedPhoto]) -> list[Recognition]:
        InterruptingBackend.calls += 1
        if InterruptingBackend.calls > 2 + 1 + 0:  # first inference, no warm-up, two photos
            raise KeyboardInterrupt
        return super().recognize(photos)


def test_ctrl_c_keeps_every_record_and_marks_the_run_interrupted(tiny_dataset: Path, tmp_path: Path):
    rows = [PlannedRow("oracle", "oracle", InterruptingBackend, OracleOptions()), oracle_row("second")]
    with pytest.raises(KeyboardInterrupt):
        run_rows(tmp_path, load_dataset(tiny_dataset), rows, warmup=0)
    out = tmp_path / "out"
    run = read_run(out)
    assert run["status"] == "interrupted"
    assert run["backends"]["oracle"]["status"] == "interrupted"
    assert "second" not in run["backends"]
    assert len(read_jsonl(out / "predictions.jsonl")) == 2
    assert (out / "report.md").is_file()


class FlakyBackend(Backend):
    """Raises on every other call; proves a failing call is recorded per photo."""

    name = "flaky"

    def open(self) -> ColdStart:
        self.calls = 0
        return ColdStart(download_ms=5.0, download_bytes=1234, init_ms=2.0)

    def recognize(self, photos):
        self.calls += 1
        if self.calls % 2 == 0:
            raise RuntimeError("backend exploded\nwith a traceback-like second line")
        return [Recognition([], "", 1.0) for _ in photos]


def test_backend_exceptions_become_one_line_photo_errors(tiny_dataset: Path, tmp_path: Path):
    out, run = run_rows(tmp_path, load_dataset(tiny_dataset), [PlannedRow("flaky", "flaky", FlakyBackend, None)],
                        warmup=0)
    records = read_jsonl(out / "predictions.jsonl")
    exploded = "RuntimeError: backend exploded"  # call 1 is the first inference, then 2, 3, 4
    assert [r["error"] for r in records] == [exploded, None, exploded]
    row = run["backends"]["flaky"]
    assert row["errors"] == 2 and row["download_bytes"] == 1234
    assert row["cold_start_ms"]["download"] == 5.0 and row["cold_start_ms"]["init"] == 2.0
    assert row["cold_start_ms"]["total"] == pytest.approx(5.0 + 2.0 + row["cold_start_ms"]["first_inference"])


class AlwaysFailing(FlakyBackend):
    def recognize(self, photos):
        raise RuntimeError("down")


def test_a_dead_backend_stops_after_consecutive_failures_but_every_photo_is_recorded(tmp_path: Path):
    dataset = load_dataset(None, synthetic_count=12, seed=2)
    out, run = run_rows(tmp_path, dataset, [PlannedRow("dead", "dead", AlwaysFailing, None), oracle_row()],
                        warmup=0, max_consecutive_failures=4)
    records = [r for r in read_jsonl(out / "predictions.jsonl") if r["backend"] == "dead"]
    assert len(records) == 12
    assert sum(r["error"] == "RuntimeError: down" for r in records) == 4
    assert all("stopped after 4 consecutive failures" in r["error"] for r in records[4:])
    assert run["backends"]["oracle"]["digit_f1"] == 1.0


def test_a_backend_that_cannot_open_is_a_failed_row_and_others_still_run(tiny_dataset: Path, tmp_path: Path):
    _, run = run_rows(tmp_path, load_dataset(tiny_dataset), [oracle_row("broken", fail_open=True), oracle_row()])
    assert run["backends"]["broken"]["status"] == "failed"
    assert "oracle told to fail" in run["backends"]["broken"]["error"]
    assert run["backends"]["oracle"]["status"] == "complete"


def test_repeats_add_latency_samples_but_accuracy_uses_the_first_pass(tiny_dataset: Path, tmp_path: Path):
    out, run = run_rows(tmp_path, load_dataset(tiny_dataset), [oracle_row(delay_ms=1)], repeats=3)
    assert run["backends"]["oracle"]["latency_ms"]["n"] == 9
    assert len(read_jsonl(out / "predictions.jsonl")) == 3
    assert len(read_jsonl(out / "repeats.jsonl")) == 6
    assert run["backends"]["oracle"]["latency_ms"]["min"] >= 1.0


def test_first_inference_and_warmup_are_not_in_the_warm_distribution(tiny_dataset: Path, tmp_path: Path):
    class SlowStart(OracleBackend):
        def recognize(self, photos):
            results = super().recognize(photos)
            if not getattr(self, "warmed", False):
                self.warmed = True
                results[0] = replace(results[0], latency_ms=500.0)
            return results

    _, run = run_rows(tmp_path, load_dataset(tiny_dataset), [PlannedRow("oracle", "oracle", SlowStart, OracleOptions())])
    row = run["backends"]["oracle"]
    assert row["cold_start_ms"]["first_inference"] == 500.0
    assert row["latency_ms"]["max"] < 500.0


class Unsound(FlakyBackend):
    """Returns a digit labelled 12, then a NaN score, then a sound answer."""

    def recognize(self, photos):
        self.calls += 1
        bad = {2: Digit(12, 0.9, 0, 0, 5, 5), 3: Digit(1, float("nan"), 0, 0, 5, 5)}.get(self.calls)
        return [Recognition([bad] if bad else [], "", 1.0) for _ in photos]


def test_unsound_backend_answers_are_error_records_not_a_crash(tiny_dataset: Path, tmp_path: Path):
    out, run = run_rows(tmp_path, load_dataset(tiny_dataset), [PlannedRow("unsound", "unsound", Unsound, None)],
                        warmup=0, max_error_rate=1.0)
    errors = [r["error"] for r in read_jsonl(out / "predictions.jsonl")]
    assert errors[0] == "unsound returned a digit labelled 12; labels are the digits 0-9"
    assert "not a finite number" in errors[1] and errors[2] is None
    assert run["backends"]["unsound"]["status"] == "complete" and run["status"] == "complete"
