"""bench nightly: suite configuration, baselines and acceptance, and the offline HTML report."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.cli import main
from bench.errors import UsageError
from bench.history import HistoryStore
from bench.nightly import load_config, run_nightly

SUITE = """
[nightly]
default = "smoke"

[suites.smoke]
backends = ["oracle"]
dataset = "{dataset}"
warmup = 0
repeats = 2
gallery = 2

[suites.smoke.options.oracle]
miss_rate = 0.4
seed = 3

[suites.other]
backends = "oracle"
dataset = "{dataset}"
warmup = 0

[compare]
latency = 0.5
"""


@pytest.fixture
def config_file(tiny_dataset, tmp_path) -> Path:
    path = tmp_path / "bench.toml"
    path.write_text(SUITE.format(dataset=tiny_dataset))
    return path


def test_suites_come_from_bench_toml(config_file):
    config = load_config(config_file)
    smoke = config.suite(None)
    assert smoke.name == "smoke" and smoke.backends == ("oracle",) and smoke.repeats == 2
    assert smoke.options == {"oracle": {"miss_rate": 0.4, "seed": 3}}
    assert config.suite("other").backends == ("oracle",) and config.compare == {"latency": 0.5}
    with pytest.raises(UsageError, match="suites: smoke, other"):
        config.suite("missing")


def test_suites_come_from_pyproject_tool_table_found_upwards(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n\n'
                                             '[tool.digitbench.suites.a]\nbackends = ["oracle"]\n')
    inner = tmp_path / "deep" / "er"
    inner.mkdir(parents=True)
    config = load_config(start=inner)
    assert config.source == tmp_path / "pyproject.toml" and config.suite(None).name == "a"


@pytest.mark.parametrize("text, message", [
    ('[suites.a]\nbackend = ["oracle"]\n', "unknown key"),
    ("[suites.a]\nlimit = 3\n", "give backends"),
    ('[compare]\nlatncy = 0.1\n', "unknown key"),
    ('[compare]\nlatency = "10%"\n', "not a number"),
    ('[nightly]\ndefault = "b"\n[suites.a]\nbackends = ["oracle"]\n', "not a suite"),
    ("[suites.a\n", "not valid TOML"),
])
def test_bad_configuration_is_one_clear_line(tmp_path, text, message):
    path = tmp_path / "bench.toml"
    path.write_text(text)
    with pytest.raises(UsageError, match=message):
        load_config(path)


def test_no_suite_defined_says_how_to_add_one(tmp_path):
    path = tmp_path / "bench.toml"
    path.write_text("[compare]\n")
    with pytest.raises(UsageError, match=r"add a \[tool.digitbench.suites.NAME\]"):
        load_config(path).suite(None)


def test_two_nightly_runs_record_compare_and_report(config_file, tmp_path):
    config = load_config(config_file)
    store = tmp_path / "h.sqlite"
    reports = tmp_path / "reports"
    first = run_nightly(config, store_path=store, reports_dir=reports, day="2026-11-24")
    assert first.accepted and first.baseline_id is None and first.comparison is None
    second = run_nightly(config, store_path=store, reports_dir=reports, day="2026-11-25")
    assert second.baseline_id == first.history_id
    assert {c.metric for c in second.comparison.changes} >= {"latency p50", "digit F1", "whole number"}
    accuracy = {c.metric: c.verdict for c in second.comparison.changes}
    assert accuracy["digit F1"] == "no change" and accuracy["whole number"] == "no change"
    assert second.report_dir == reports / "nightly" / "2026-11-25"
    page = (second.report_dir / "index.html").read_text()
    assert "Comparison with baseline #1" in page and "Failure gallery" in page
    assert len(re.findall(r"src='data:image/png;base64,", page)) >= 3
    assert "<script" not in page and not re.search(r"https?://", page)
    markdown = (second.report_dir / "report.md").read_text()
    for image in re.findall(r"\]\((images/[^)]+)\)", markdown):
        assert (second.report_dir / image).is_file()
    assert len(HistoryStore(store).runs(suite="smoke")) == 2


def test_a_suite_changed_since_the_baseline_is_refused_and_not_accepted(config_file, tmp_path):
    store = tmp_path / "h.sqlite"
    reports = tmp_path / "reports"
    run_nightly(load_config(config_file), store_path=store, reports_dir=reports, day="2026-11-24")
    config_file.write_text(config_file.read_text().replace("seed = 3", "seed = 4"))
    changed = run_nightly(load_config(config_file), store_path=store, reports_dir=reports, day="2026-11-25")
    assert changed.refused and "seed 3 -> 4" in changed.refused and not changed.accepted
    page = (changed.report_dir / "index.html").read_text()
    assert "bench accept" in page
    assert "differs from the baseline in" in page and re.search(r"<td>#2 [^<]*</td><td>oracle</td><td>options seed</td>", page)
    assert "Drawn as squares" in (changed.report_dir / "report.md").read_text()


def test_other_suites_report_in_their_own_folder(config_file, tmp_path, capsys):
    args = ["nightly", "--config", str(config_file), "--store", str(tmp_path / "h.sqlite"), "--reports",
            str(tmp_path / "reports"), "--date", "2026-11-25"]
    assert main([*args, "--list"]) == 0
    assert "smoke (default)" in capsys.readouterr().out
    assert main([*args, "--suite", "other", "--fail-on-regression"]) == 0
    assert (tmp_path / "reports" / "nightly" / "2026-11-25" / "other" / "index.html").is_file()
