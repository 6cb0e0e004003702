"""The result model and its run folder: a Run written and read back is the same Run, strictly JSON."""
from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path

import pytest

from bench.errors import UsageError
from bench.results.folder import RunWriter, dumps, read_run
from bench.results.metadata import DatasetInfo, Environment, RunOptions
from bench.results.records import Box, ColdStart, Digit, Recognition, TrueDigit
from bench.results.run import ColdStartFigures, PhotoRecord, RepeatRecord, RowResult, Run, TruthRecord

TRUTH = {"a.png": TruthRecord("a.png", "12", (TrueDigit(1, Box(0, 0, 10, 20)), TrueDigit(2, Box(12, 0, 10, 20))))}


def a_run(folder: Path | None = None) -> Run:
    digit = Digit(1, 0.9, 0.0, 0.0, 10.0, 20.0)
    record = PhotoRecord.of("x", "a.png", Recognition(digits=[digit], text="1", latency_ms=3.25, end_to_end_ms=5.5,
                                                      candidates=[digit, Digit(2, 0.07, 12, 0, 10, 20)]), 4.0)
    cold = ColdStartFigures.of(ColdStart(download_ms=10, download_bytes=1000, init_ms=5, library_ms=100,
                                         library_bytes=5000), 7.0)
    row = RowResult(row="x", backend="x", status="complete", options={"k": [1]}, cold_start=cold, download_bytes=1000,
                    library_bytes=5000, records=(record,), repeat_records=(RepeatRecord.of(record, 1),), truth=TRUTH)
    return Run(run_id="r1", status="complete", started="2026-12-01T00:00:00+00:00", finished=None,
               options=RunOptions(backends=("x",)), dataset=DatasetInfo(name="d", photos=1, fingerprint="f"),
               environment=Environment(machine_id="m", load_average=(0.5, 0.4, 0.3)), rows={"x": row}, truth=TRUTH,
               folder=folder)


def write(run: Run, folder: Path) -> None:
    writer = RunWriter(folder)
    for truth in run.truth.values():
        writer.truth(truth)
    for record in run.records():
        writer.prediction(record)
    for record in run.repeat_records():
        writer.repeat(record)
    writer.write_run(run)
    writer.close()


def test_a_run_written_and_read_back_is_the_same_run(tmp_path):
    run = a_run()
    write(run, tmp_path / "r")
    back = read_run(tmp_path / "r")
    assert back == run and back.rows["x"].records == run.rows["x"].records
    row = back.rows["x"]
    assert row.records[0].candidates[1].score == 0.07 and row.records[0].end_to_end_ms == 5.5
    assert row.cold_start.total == pytest.approx(100 + 10 + 5 + 7) and row.cold_start.library == 100
    assert row.figures.end_to_end.n == 2 and row.figures.accuracy.recall == 0.5


def test_figures_are_scored_once_per_row(monkeypatch):
    import bench.results.run as model

    calls = []
    real = model.score_photo
    monkeypatch.setattr(model, "score_photo", lambda *a, **k: calls.append(1) or real(*a, **k))
    row = a_run().rows["x"]
    for _ in range(3):
        row.figures, row.scores  # noqa: B018
    assert len(calls) == 1


def test_non_finite_numbers_are_written_as_null():
    assert json.loads(dumps({"a": math.nan, "b": [math.inf, 1.5], "c": -math.inf})) == {"a": None, "b": [None, 1.5],
                                                                                            "c": None}


def test_run_json_gets_the_usual_file_mode_not_0600(tmp_path):
    write(a_run(), tmp_path / "r")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE((tmp_path / "r" / "run.json").stat().st_mode) == 0o666 & ~mask


def test_an_out_folder_is_claimed_once(tmp_path):
    RunWriter(tmp_path / "r")
    with pytest.raises(UsageError, match="already holds a run"):
        RunWriter(tmp_path / "r")


def test_schema_1_folders_still_read_and_unknown_schemas_are_refused(tmp_path):
    write(a_run(), tmp_path / "r")
    raw = json.loads((tmp_path / "r" / "run.json").read_text())
    raw["schema_version"] = 1
    for row in raw["backends"].values():
        row["cold_start_ms"].pop("library")
    (tmp_path / "r" / "run.json").write_text(json.dumps(raw))
    assert read_run(tmp_path / "r").rows["x"].cold_start.library == 0.0
    raw["schema_version"] = 99
    (tmp_path / "r" / "run.json").write_text(json.dumps(raw))
    with pytest.raises(UsageError, match="schema_version 99"):
        read_run(tmp_path / "r")
