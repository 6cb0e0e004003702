"""The `bench` command: exit codes and one-line errors, before any work is done."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import main

BENCH = [sys.executable, "-m", "bench.cli"]


def test_unknown_backend_exits_2_before_any_work_and_suggests(tmp_path: Path, capsys):
    out = tmp_path / "out"
    code = main(["run", "--backends", "oracel", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert "unknown backend 'oracel'. Did you mean: oracle?" in err
    assert err.count("\n") == 1
    assert not out.exists()


def test_unwritable_out_is_one_line(tmp_path: Path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code = main(["run", "--backends", "oracle", "--limit", "2", "--out", str(blocker / "sub")])
    err = capsys.readouterr().err
    assert code == 2 and "--out" in err and "not writable" in err and err.count("\n") == 1


def test_missing_tesseract_binary_exits_2_with_the_fix(tmp_path: Path, capsys):
    code = main(["run", "--backends", "tesseract", "--tesseract-cmd", "/nonexistent/tesseract",
                 "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2
    assert "tesseract not found" in err and "apt-get install tesseract-ocr" in err
    assert not (tmp_path / "o").exists()


def test_bad_option_value_names_the_flag(tmp_path: Path, capsys):
    code = main(["run", "--backends", "tesseract", "--tesseract-binarize", "sauvola", "--out", str(tmp_path / "o")])
    assert code == 2
    assert "--tesseract-binarize: 'sauvola' is not one of none, otsu" in capsys.readouterr().err


def test_run_prints_a_table_and_writes_the_folder(tmp_path: Path):
    out = tmp_path / "run"
    done = subprocess.run([*BENCH, "run", "--backends", "oracle", "--limit", "5", "--oracle-miss-rate", "0.5",
                           "--out", str(out)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    assert "oracle" in done.stdout and "digit F1" in done.stdout
    run = json.loads((out / "run.json").read_text())
    assert run["backends"]["oracle"]["options"]["miss_rate"] == 0.5


def test_backends_lists_each_backend_with_its_availability(capsys):
    from bench.commands.backends import backend_status

    rows = {row["name"]: row for row in backend_status()}
    assert rows["oracle"]["available"] == "yes" and rows["oracle"]["default"] == "no"
    assert "tesseract" in rows
    assert main(["backends"]) == 0
    assert "oracle" in capsys.readouterr().out


def test_main_called_in_process_leaves_the_signal_handlers_as_it_found_them(capsys):
    import signal

    def mine(signum, frame):
        raise AssertionError("not called")

    previous = signal.signal(signal.SIGTERM, mine)
    try:
        assert main(["backends"]) == 0
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGHUP"])
def test_sigterm_marks_the_run_interrupted_and_keeps_records(tmp_path: Path, signal_name: str):
    import signal
    import time

    out = tmp_path / "slow"
    proc = subprocess.Popen([*BENCH, "run", "--backends", "oracle", "--oracle-delay-ms", "200", "--warmup", "0",
                             "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            lines = (out / "predictions.jsonl").read_text().splitlines() if (out / "predictions.jsonl").exists() else []
            if len(lines) >= 2:
                break
            time.sleep(0.1)
        proc.send_signal(getattr(signal, signal_name))
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "interrupted"
    assert len((out / "predictions.jsonl").read_text().splitlines()) >= 2
    from bench.history import HistoryStore

    assert [r.status for r in HistoryStore(os.environ["DIGITBENCH_STORE"]).runs()] == ["interrupted"]
