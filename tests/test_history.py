"""The history store: recording runs with their raw records, reading them back, safety under failure."""
from __future__ import annotations

import sqlite3
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from bench.cli import main
from bench.errors import UsageError
from bench.history import HistoryStore, StoreError, open_run, record_run, resolve_store_path
from bench.results.folder import read_run, read_run_json
from bench.runner import RunConfig, run_benchmark


def oracle_run(dataset: Path, out: Path, **options) -> Path:
    config = RunConfig(backends=("oracle",), dataset=str(dataset), out=out, warmup=0, repeats=2,
                       backend_options={"oracle": {"miss_rate": 0.3, **options}})
    run_benchmark(config)
    return out


@pytest.fixture
def run_folder(tiny_dataset, tmp_path) -> Path:
    return oracle_run(tiny_dataset, tmp_path / "run")


def test_a_recorded_run_keeps_every_raw_record_and_its_figures_recompute(run_folder, tmp_path):
    store_path = tmp_path / "h.sqlite"
    history_id = record_run(run_folder, store_path)
    folder, stored = read_run(run_folder), HistoryStore(store_path).load(history_id)
    assert stored.records() == folder.records() and stored.truth == folder.truth
    assert len(stored.repeat_records()) == len(folder.repeat_records()) == 3
    figures = stored.rows["oracle"].to_json()
    summary = read_run_json(run_folder)["backends"]["oracle"]
    assert figures["digit_f1"] == summary["digit_f1"] and figures["sequence_accuracy"] == summary["sequence_accuracy"]
    assert figures["latency_ms"] == summary["latency_ms"]


def test_per_photo_correctness_is_queryable(run_folder, tmp_path):
    store_path = tmp_path / "h.sqlite"
    history_id = record_run(run_folder, store_path)
    db = sqlite3.connect(store_path)
    rows = db.execute("SELECT image, matched, true_digits, sequence_correct FROM predictions WHERE run = ?",
                      (history_id,)).fetchall()
    scores = read_run(run_folder).rows["oracle"].scores
    assert {r[0]: (r[1], r[2], bool(r[3])) for r in rows} == {
        image: (s.matched, s.true, s.sequence_correct) for image, s in scores.items()}


def test_recording_the_same_run_twice_keeps_one_copy(run_folder, tmp_path):
    store_path = tmp_path / "h.sqlite"
    assert record_run(run_folder, store_path) == record_run(run_folder, store_path)
    assert len(HistoryStore(store_path).runs()) == 1


def test_a_failure_inside_the_write_leaves_no_half_run(run_folder, tmp_path):
    store = HistoryStore(tmp_path / "h.sqlite")
    run = read_run(run_folder)
    row = run.rows["oracle"]
    damaged = replace(row, records=(*row.records[:-1], replace(row.records[-1], image=None)))
    with pytest.raises(StoreError, match="refused"):
        store.append(run.with_row(damaged))
    counts = [store.db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("runs", "rows", "predictions")]
    assert counts == [0, 0, 0]


def test_a_store_from_a_newer_digitbench_is_refused(tmp_path):
    path = tmp_path / "h.sqlite"
    HistoryStore(path).close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(StoreError, match="schema version 99"):
        HistoryStore(path)


def test_a_file_that_is_not_a_store_is_refused(tmp_path):
    path = tmp_path / "h.sqlite"
    path.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(StoreError, match="not a digitbench history"):
        HistoryStore(path)


_APPEND_COPIES = """
import sys
from dataclasses import replace
from bench.history import HistoryStore
from bench.results.folder import read_run

folder, store_path, worker = sys.argv[1:]
run = read_run(folder)
with HistoryStore(store_path) as store:
    print(*(store.append(replace(run, run_id=f"w{worker}-{copy}")) for copy in range(4)))
"""


def test_concurrent_writers_lose_nothing(run_folder, tmp_path):
    store_path = str(tmp_path / "h.sqlite")
    writers = [subprocess.Popen([sys.executable, "-c", _APPEND_COPIES, str(run_folder), store_path, str(worker)],
                                stdout=subprocess.PIPE, text=True) for worker in range(4)]
    try:
        outputs = [writer.communicate(timeout=120)[0] for writer in writers]
    finally:
        for writer in writers:
            writer.kill()
    assert [writer.returncode for writer in writers] == [0] * 4
    ids = [int(i) for output in outputs for i in output.split()]
    store = HistoryStore(store_path)
    assert sorted(ids) == list(range(1, 17))
    assert store.integrity() == "ok"
    per_run = store.db.execute("SELECT count(*) FROM predictions GROUP BY run").fetchall()
    assert [c[0] for c in per_run] == [3] * 16


def test_listing_filters_by_backend_machine_and_date(run_folder, tmp_path):
    store_path = tmp_path / "h.sqlite"
    record_run(run_folder, store_path, suite="nightly")
    store = HistoryStore(store_path)
    machine = store.runs()[0].machine_id
    assert [r.rows for r in store.runs(backend="oracle")] == [("oracle",)]
    assert store.runs(backend="tesseract") == []
    assert len(store.runs(machine=machine, suite="nightly", since="2000-01-01")) == 1
    assert store.runs(until="2000-01-01") == []


def test_baseline_is_the_last_accepted_complete_run_of_the_suite(run_folder, tmp_path):
    store = HistoryStore(tmp_path / "h.sqlite")
    run = read_run(run_folder)
    machine = run.environment.machine_id
    ids = []
    for index in range(3):
        ids.append(store.append(replace(run, run_id=f"n{index}"), suite="nightly", accepted=index < 2))
    assert store.baseline("nightly", machine) == ids[1]
    assert store.baseline("nightly", machine, before=ids[1]) == ids[0]
    assert store.baseline("other", machine) is None


def test_open_run_takes_a_folder_or_an_id(run_folder, tmp_path):
    store_path = tmp_path / "h.sqlite"
    history_id = record_run(run_folder, store_path)
    assert open_run(run_folder).folder == run_folder
    assert open_run(f"#{history_id}", store_path).history_id == history_id
    with pytest.raises(UsageError, match="no such run"):
        open_run("99", store_path)
    with pytest.raises(UsageError, match="does not exist"):
        open_run("1", tmp_path / "absent.sqlite")


def test_store_path_defaults_to_the_environment_then_reports(monkeypatch, tmp_path):
    monkeypatch.delenv("DIGITBENCH_STORE", raising=False)
    assert resolve_store_path() == Path("reports") / "history.sqlite"
    monkeypatch.setenv("DIGITBENCH_STORE", str(tmp_path / "x.sqlite"))
    assert resolve_store_path() == tmp_path / "x.sqlite"
    assert resolve_store_path(tmp_path / "y.sqlite") == tmp_path / "y.sqlite"


def test_bench_run_records_unless_told_not_to(tiny_dataset, tmp_path, capsys):
    store_path = tmp_path / "h.sqlite"
    common = ["run", "--backends", "oracle", "--dataset", str(tiny_dataset), "--warmup", "0",
              "--store", str(store_path)]
    assert main([*common, "--out", str(tmp_path / "a")]) == 0
    assert main([*common, "--out", str(tmp_path / "b"), "--no-store"]) == 0
    assert [r.folder for r in HistoryStore(store_path).runs()] == [str((tmp_path / "a").resolve())]
    capsys.readouterr()
    assert main(["history", "--store", str(store_path)]) == 0
    assert "oracle" in capsys.readouterr().out
    assert main(["show", "1", "--store", str(store_path)]) == 0
    assert "recomputed" in capsys.readouterr().out
    assert main(["accept", "1", "--store", str(store_path)]) == 0
    assert HistoryStore(store_path).runs()[0].accepted
