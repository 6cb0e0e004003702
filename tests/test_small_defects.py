"""Smaller defects of issue 15, item 9: huge history ids, --date, matplotlib's cache (SIGHUP: tests/test_cli.py)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import main
from bench.errors import UsageError


def test_show_and_accept_with_a_huge_id_are_one_line(tmp_path: Path, capsys):
    store = tmp_path / "history.sqlite"
    assert main(["run", "--backends", "oracle", "--limit", "2", "--warmup", "0", "--out", str(tmp_path / "r"),
                 "--store", str(store)]) == 0
    capsys.readouterr()
    for command in ("show", "accept"):
        code = main([command, "9" * 40, "--store", str(store)])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and "no such run" in err, err


def test_a_nightly_date_that_is_not_a_date_never_names_a_folder(tmp_path: Path):
    from bench.nightly import run_nightly
    from bench.suites import parse_config

    config = parse_config({"suites": {"s": {"backends": ["oracle"], "limit": 2}}}, tmp_path / "bench.toml")
    for day in ("../../outside", "2026-01-01/../../x", "<script>", "2026-13-01"):
        with pytest.raises(UsageError, match="--date"):
            run_nightly(config, "s", store_path=tmp_path / "h.sqlite", reports_dir=tmp_path / "reports", day=day)
    assert not (tmp_path / "outside").exists() and not (tmp_path / "reports").exists()


def test_matplotlib_keeps_its_cache_out_of_home(tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("MPLCONFIGDIR", "XDG_CACHE_HOME", "XDG_CONFIG_HOME")}
    env["HOME"] = str(home)
    code = "from bench.plots import distribution_figure; assert distribution_figure({'a': ([1.0, 2.0], [1.5, 2.5])}, ('x', 'y'))"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert list(home.rglob("*")) == []

