"""Exit codes CI can trust (issue 15, items 1 and 6): a failed row fails the run, a failed run is never a
baseline, and the history keeps distinct runs apart and interrupted ones too."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from bench.cli import main
from bench.errors import UsageError
from bench.history import HistoryStore
from bench.nightly import load_config, run_nightly
from bench.results.folder import read_run


def bench_run(tiny_dataset: Path, out: Path, store: Path, *options: str) -> int:
    return main(["run", "--backends", "oracle", "--dataset", str(tiny_dataset), "--warmup", "0", "--out", str(out),
                 "--store", str(store), *options])


def test_a_backend_that_cannot_start_fails_the_run_with_exit_1(tiny_dataset, tmp_path):
    assert bench_run(tiny_dataset, tmp_path / "r", tmp_path / "h.sqlite", "--oracle-fail-open", "true") == 1
    run = json.loads((tmp_path / "r" / "run.json").read_text())
    assert run["status"] == "failed" and run["backends"]["oracle"]["status"] == "failed"


def test_a_row_whose_photos_mostly_fail_fails_the_run_unless_the_rate_allows_it(tiny_dataset, tmp_path):
    store = tmp_path / "h.sqlite"
    assert bench_run(tiny_dataset, tmp_path / "a", store, "--oracle-fail-rate", "1") == 1
    row = read_run(tmp_path / "a").rows["oracle"]
    assert row.status == "failed" and "3 of 3 photos failed, over --max-error-rate 0.5" in row.error
    assert bench_run(tiny_dataset, tmp_path / "b", store, "--oracle-fail-rate", "1", "--max-error-rate", "1") == 0
    assert bench_run(tiny_dataset, tmp_path / "c", store) == 0
    assert [r.status for r in HistoryStore(store).runs(newest_first=False)] == ["failed", "complete", "complete"]


@pytest.mark.parametrize("value", ["-0.1", "1.5", "lots"])
def test_max_error_rate_is_checked_before_any_work(tiny_dataset, tmp_path, value, capsys):
    with pytest.raises(SystemExit) as exited:
        bench_run(tiny_dataset, tmp_path / "r", tmp_path / "h.sqlite", "--max-error-rate", value)
    assert exited.value.code == 2 and "--max-error-rate" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


SUITE = """
[suites.s]
backends = ["oracle"]
dataset = "{dataset}"
warmup = 0

[suites.s.options.oracle]
fail_rate = {fail_rate}
"""


def test_a_failed_nightly_run_exits_1_and_never_becomes_the_baseline(tiny_dataset, tmp_path):
    config = tmp_path / "bench.toml"
    args = ["nightly", "--config", str(config), "--store", str(tmp_path / "h.sqlite"), "--reports",
            str(tmp_path / "reports")]
    config.write_text(SUITE.format(dataset=tiny_dataset, fail_rate=1.0))
    assert main([*args, "--date", "2026-12-01"]) == 1
    config.write_text(SUITE.format(dataset=tiny_dataset, fail_rate=0.0))
    good = run_nightly(load_config(config), store_path=tmp_path / "h.sqlite", reports_dir=tmp_path / "reports",
                       day="2026-12-02")
    assert good.baseline_id is None and good.accepted
    runs = HistoryStore(tmp_path / "h.sqlite").runs(newest_first=False)
    assert [(r.status, r.accepted) for r in runs] == [("failed", False), ("complete", True)]


def test_accepting_a_failed_run_by_hand_is_refused(tiny_dataset, tmp_path, capsys):
    store = tmp_path / "h.sqlite"
    bench_run(tiny_dataset, tmp_path / "r", store, "--oracle-fail-open", "true")
    assert main(["accept", "1", "--store", str(store)]) == 2
    assert "only a complete run can be a baseline" in capsys.readouterr().err
    with pytest.raises(UsageError, match="'failed'"):
        HistoryStore(store).set_accepted(1)


def test_two_runs_with_the_same_folder_name_started_in_the_same_second_stay_two(tiny_dataset, tmp_path):
    for parent in ("a", "b"):
        assert bench_run(tiny_dataset, tmp_path / parent / "results", tmp_path / "h.sqlite", "--no-store") == 0
    first, second = (read_run(tmp_path / parent / "results") for parent in ("a", "b"))
    with HistoryStore(tmp_path / "h.sqlite") as store:
        ids = {store.append(first), store.append(replace(second, started=first.started))}
        assert len(ids) == 2 and store.append(first) in ids
