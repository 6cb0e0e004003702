"""What the commands print: whole table cells without a TTY, --json on stdout, no native start-up noise,
and `bench show --html`."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.cli import main
from bench.terminal import WIDE, console_width

BENCH = [sys.executable, "-m", "bench.cli"]
NOISE = ("absl::InitializeLog", "cuDNN", "cuBLAS", "computation_placer", "E0000", "W0000")


def test_without_a_tty_tables_are_as_wide_as_columns_says_or_wide(monkeypatch, tmp_path):
    with open(tmp_path / "not-a-tty", "w") as stream:
        monkeypatch.delenv("COLUMNS", raising=False)
        assert console_width(stream) == WIDE
        monkeypatch.setenv("COLUMNS", "132")
        assert console_width(stream) == 132


def test_tf_run_in_a_pipe_keeps_cells_whole_prints_json_and_no_native_noise(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "TF_CPP_MIN_LOG_LEVEL")}
    out = tmp_path / "run"
    done = subprocess.run([*BENCH, "run", "--backends", "tf,oracle", "--limit", "3", "--warmup", "0", "--no-store",
                           "--out", str(out), "--json", "--oracle-delay-ms", "0.2"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["status"] == "complete" and [r["backend"] for r in summary["rows"]] == ["tf", "oracle"]
    assert summary["dataset"]["photos"] == 3 and "harness at work" in summary["caveat"]
    assert not [line for line in done.stderr.splitlines() if any(word in line for word in NOISE)], done.stderr
    header = next(line for line in done.stderr.splitlines() if "backend" in line)
    assert "whole number" in header and "cold start ms" in header
    native = out / "native.log"
    assert native.is_file() and any(word in native.read_text() for word in NOISE)


def test_nightly_json_is_the_verdict_on_stdout(tiny_dataset, tmp_path, capsys):
    config = tmp_path / "bench.toml"
    config.write_text(f'[suites.s]\nbackends = ["oracle"]\ndataset = "{tiny_dataset}"\nwarmup = 0\n')
    args = ["nightly", "--config", str(config), "--suite", "s", "--store", str(tmp_path / "h.sqlite"),
            "--reports", str(tmp_path / "reports"), "--date", "2026-11-25", "--json"]
    assert main(args) == 0
    captured = capsys.readouterr()
    verdict = json.loads(captured.out)
    assert verdict["suite"] == "s" and verdict["accepted"] and verdict["comparison"] is None
    assert verdict["run"]["rows"][0]["backend"] == "oracle" and verdict["exit_code"] == 0
    assert "first run of suite s" in captured.err


def test_show_html_renders_a_stored_run_with_its_photos(tiny_dataset, tmp_path, capsys):
    store = tmp_path / "h.sqlite"
    out = tmp_path / "run"
    assert main(["run", "--backends", "oracle", "--oracle-miss-rate", "0.5", "--dataset", str(tiny_dataset),
                 "--out", str(out), "--store", str(store), "--warmup", "0"]) == 0
    (out / "report.html").unlink()
    capsys.readouterr()
    assert main(["show", "1", "--store", str(store), "--html"]) == 0
    assert f"report: {out / 'report.html'}" in capsys.readouterr().out
    page = (out / "report.html").read_text()
    assert "Failure gallery" in page and "photo not available" not in page and "data:image/png" in page
    target = tmp_path / "elsewhere.html"
    (tiny_dataset / "annotations.jsonl").write_text((tiny_dataset / "annotations.jsonl").read_text() + "\n\n")
    assert main(["show", str(out), "--html", str(target)]) == 0
    assert "gallery without photos: the photos at" in capsys.readouterr().out
    assert "photo not available" in target.read_text()
