"""bench compare: tests on runs with controlled samples, verdict rules, like-with-like, the CLI."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.cli import main
from bench.compare import (IMPROVEMENT, NO_CHANGE, REGRESSION, UNSTABLE, UNTESTED, Thresholds, compare_runs,
                           history_values)
from bench.errors import NotComparable
from bench.results.run import PhotoRecord, RepeatRecord, Run, TruthRecord
from bench.significance import mann_whitney_u, mcnemar_exact, paired_f1, sign_test

BOX = {"left": 10.0, "top": 5.0, "width": 8.0, "height": 12.0}


def fake_run(latencies, hits=None, *, run_id="r", fingerprint="fp", machine="m", options=None, cold=100.0,
             status="complete", download_bytes=0, passes=()) -> Run:
    """A one-row run whose photo i has latency ``latencies[i]`` (and ``pass[i]`` in each extra pass)
    and is read right when ``hits[i]``."""
    n = len(latencies)
    hits = [True] * n if hits is None else hits
    truth = {f"p{i}.png": {"image": f"p{i}.png", "label": "1", "boxes": [{"label": 1, **BOX}]} for i in range(n)}
    predictions = [{"backend": "x", "image": f"p{i}.png", "text": "1" if hit else "",
                    "digits": [{"label": 1, "score": 1.0, **BOX}] if hit else [], "latency_ms": float(latency),
                    "wall_ms": float(latency), "error": None} for i, (latency, hit) in enumerate(zip(latencies, hits))]
    run = {"schema_version": 1, "run_id": run_id, "status": status, "started": f"2026-11-{len(run_id):02d}",
           "options": {"warmup": 3, "repeats": 1, "max_megapixels": 50.0},
           "dataset": {"name": "d", "photos": n, "fingerprint": fingerprint},
           "environment": {"machine_id": machine, "digitbench": {"commit": "abc", "dirty": False}, "packages": {}},
           "backends": {"x": {"backend": "x", "status": "complete", "options": options or {"k": 1},
                              "cold_start_ms": {"total": cold}, "download_bytes": download_bytes}}}
    repeats = [{"backend": "x", "image": f"p{i}.png", "repeat": k + 1, "latency_ms": float(v), "wall_ms": float(v),
                "error": None} for k, extra in enumerate(passes) for i, v in enumerate(extra)]
    return Run.from_json(run, map(PhotoRecord.from_json, predictions), map(RepeatRecord.from_json, repeats),
                         map(TruthRecord.from_json, truth.values()))


def lognormal(seed: int, n: int = 400, scale: float = 1.0) -> np.ndarray:
    return scale * np.random.default_rng(seed).lognormal(np.log(10.0), 0.15, n)


def verdicts(comparison) -> dict[str, str]:
    return {c.metric: c.verdict for c in comparison.changes}


def test_identical_runs_show_no_change_and_untested_cold_start():
    base, new = fake_run(lognormal(1)), fake_run(lognormal(1), run_id="r2")
    found = verdicts(compare_runs(base, new))
    assert found.pop("cold start") == UNTESTED
    assert set(found.values()) == {NO_CHANGE}


def test_a_30_percent_slowdown_is_a_latency_regression():
    comparison = compare_runs(fake_run(lognormal(1)), fake_run(lognormal(2, scale=1.3), run_id="r2"))
    p50 = next(c for c in comparison.changes if c.metric == "latency p50")
    assert p50.verdict == REGRESSION
    assert 0.2 < p50.change < 0.4 and p50.low > 0.1
    assert comparison.headline().startswith("1 regression") or "latency p50" in comparison.headline()


def test_interference_that_barely_moves_the_floor_is_unstable_not_a_regression():
    floor = lognormal(1)
    rng = np.random.default_rng(5)
    busy = [floor * 1.02 * np.where(rng.random(floor.size) < 0.6, 1.5, 1.0) for _ in range(3)]
    base = fake_run(floor, passes=[floor * 1.01, floor * 1.02])
    new = fake_run(busy[0], run_id="r2", passes=busy[1:])
    comparison = compare_runs(base, new)
    found = verdicts(comparison)
    floor_change = next(c for c in comparison.changes if c.metric == "latency floor")
    assert floor_change.change == pytest.approx(0.02) and floor_change.p_value < 0.05
    assert found["latency floor"] == NO_CHANGE and found["latency p50"] == UNSTABLE
    assert not comparison.regressions and "rerun on a quiet machine" in comparison.unstable[0].reason


def test_a_slowdown_of_every_photo_moves_the_floor_too():
    floor = lognormal(1)
    base = fake_run(floor, passes=[floor * 1.05])
    new = fake_run(floor * 1.2, run_id="r2", passes=[floor * 1.3])
    comparison = compare_runs(base, new)
    floor_change = next(c for c in comparison.changes if c.metric == "latency floor")
    assert floor_change.verdict == REGRESSION and floor_change.change == pytest.approx(0.2)
    assert verdicts(comparison)["latency p50"] == REGRESSION


def test_a_faster_run_is_an_improvement_not_a_regression():
    comparison = compare_runs(fake_run(lognormal(1)), fake_run(lognormal(2, scale=0.7), run_id="r2"))
    assert verdicts(comparison)["latency p50"] == IMPROVEMENT
    assert not comparison.regressions


def test_a_significant_change_below_the_threshold_is_no_change():
    base = fake_run(lognormal(1, n=1500))
    new = fake_run(lognormal(2, n=1500, scale=1.05), run_id="r2")
    p50 = next(c for c in compare_runs(base, new).changes if c.metric == "latency p50")
    assert p50.p_value < 0.05
    assert p50.verdict == NO_CHANGE and "below" in p50.reason


def test_a_large_change_on_too_few_samples_is_not_significant():
    base, new = fake_run([10.0, 14.0, 9.0]), fake_run([12.0, 16.0, 10.0], run_id="r2")
    p50 = next(c for c in compare_runs(base, new).changes if c.metric == "latency p50")
    assert p50.change > 0.1 and p50.verdict == NO_CHANGE and "not significant" in p50.reason


def test_ten_lost_photos_are_an_accuracy_regression_on_the_paired_tests():
    latencies = lognormal(1, n=100)
    hits = [i >= 10 for i in range(100)]
    comparison = compare_runs(fake_run(latencies), fake_run(latencies, hits, run_id="r2"))
    found = verdicts(comparison)
    assert found["digit F1"] == REGRESSION and found["whole number"] == REGRESSION
    sequence = next(c for c in comparison.changes if c.metric == "whole number")
    assert sequence.change == pytest.approx(-0.10) and sequence.p_value == pytest.approx(2 / 2 ** 10)


def test_thresholds_are_configurable():
    latencies = lognormal(1, n=100)
    hits = [i >= 10 for i in range(100)]
    comparison = compare_runs(fake_run(latencies), fake_run(latencies, hits, run_id="r2"), Thresholds(accuracy=0.2))
    assert verdicts(comparison)["whole number"] == NO_CHANGE


@pytest.mark.parametrize("change, problem", [({"fingerprint": "other"}, "datasets differ"),
                                             ({"machine": "elsewhere"}, "machines differ"),
                                             ({"options": {"k": 2}}, "backend options differ: k 1 -> 2"),
                                             ({"status": "interrupted"}, "not complete")])
def test_unlike_runs_are_refused_with_the_reason_unless_forced(change, problem):
    base, new = fake_run(lognormal(1)), fake_run(lognormal(1), run_id="r2", **change)
    with pytest.raises(NotComparable, match=problem) as raised:
        compare_runs(base, new)
    assert "--force" in str(raised.value)
    forced = compare_runs(base, new, force=True)
    assert forced.forced and any(problem in p for p in forced.problems)


def test_with_a_noisy_history_a_within_run_shift_is_not_a_regression():
    base, new = fake_run(lognormal(1)), fake_run(lognormal(2, scale=1.15), run_id="r2")
    assert verdicts(compare_runs(base, new))["latency p50"] == REGRESSION
    scales = (0.8, 1.2, 0.9, 1.25, 1.0, 0.85)
    noisy = [fake_run(lognormal(10 + i, scale=s), run_id=f"h{i}") for i, s in enumerate(scales)]
    tight = [fake_run(lognormal(10 + i), run_id=f"h{i}") for i in range(6)]
    assert verdicts(compare_runs(base, new, history=history_values(noisy, ["x"])))["latency p50"] == NO_CHANGE
    assert verdicts(compare_runs(base, new, history=history_values(tight, ["x"])))["latency p50"] == REGRESSION


def test_cold_start_is_judged_against_past_runs_only():
    past = [fake_run(lognormal(1, n=5), run_id=f"h{i}", cold=100.0 + i) for i in range(6)]
    base, slow = fake_run(lognormal(1), cold=101.0), fake_run(lognormal(1), run_id="r2", cold=200.0)
    assert verdicts(compare_runs(base, slow))["cold start"] == UNTESTED
    assert verdicts(compare_runs(base, slow, history=history_values(past, ["x"])))["cold start"] == REGRESSION


def test_download_bytes_growth_is_a_regression_without_noise():
    base = fake_run(lognormal(1), download_bytes=1000)
    new = fake_run(lognormal(1), run_id="r2", download_bytes=2000)
    assert verdicts(compare_runs(base, new))["download bytes"] == REGRESSION


def test_mann_whitney_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    a, b = np.round(lognormal(1, 50), 1), np.round(lognormal(2, 70, 1.05), 1)
    assert mann_whitney_u(a, b) == pytest.approx(
        stats.mannwhitneyu(a, b, alternative="two-sided", method="asymptotic").pvalue)


def test_sign_test_on_hand_computed_cases():
    assert sign_test(np.array([1.0, 2.0, 3.0, 0.0])) == pytest.approx(2 / 8)
    assert sign_test(np.array([1.0, -1.0])) == 1.0


def test_mcnemar_exact_on_hand_computed_cases():
    assert mcnemar_exact(np.ones(5, bool), np.zeros(5, bool)) == (pytest.approx(2 / 32), 5, 0)
    assert mcnemar_exact(np.array([1, 0, 1, 1], bool), np.array([1, 0, 1, 1], bool))[0] == 1.0


def test_paired_f1_of_identical_answers_is_zero_with_p_one():
    counts = np.array([[1, 1, 1], [0, 1, 2], [2, 2, 2]], float)
    interval = paired_f1(counts, counts, np.random.default_rng(0), resamples=100)
    assert (interval.estimate, interval.low, interval.high, interval.p_value) == (0.0, 0.0, 0.0, 1.0)


def write_folder(run: Run, folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps(run.to_json()))
    (folder / "predictions.jsonl").write_text("".join(json.dumps(r.to_json()) + "\n" for r in run.records()))
    (folder / "truth.jsonl").write_text("".join(json.dumps(t.to_json()) + "\n" for t in run.truth.values()))
    return folder


def test_cli_fails_on_regression_only_when_asked(tmp_path, capsys):
    base = write_folder(fake_run(lognormal(1)), tmp_path / "base")
    slow = write_folder(fake_run(lognormal(2, scale=1.25), run_id="r2"), tmp_path / "slow")
    assert main(["compare", str(base), str(slow)]) == 0
    assert main(["compare", str(base), str(slow), "--fail-on-regression"]) == 1
    assert main(["compare", str(base), str(base), "--fail-on-regression"]) == 0
    capsys.readouterr()
    assert main(["compare", str(base), str(slow), "--json", "--latency-threshold", "50%",
                 "--fail-on-regression"]) == 0
    assert json.loads(capsys.readouterr().out)["thresholds"]["latency"] == 0.5


def test_cli_json_and_refusal(tmp_path, capsys):
    base = write_folder(fake_run(lognormal(1)), tmp_path / "base")
    other = write_folder(fake_run(lognormal(1), run_id="r2", fingerprint="zz"), tmp_path / "other")
    assert main(["compare", str(base), str(other)]) == 2
    assert "datasets differ" in capsys.readouterr().err
    assert main(["compare", str(base), str(other), "--force", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["forced"] and report["headline"] == "no change"
    assert main(["compare", str(base), "nowhere"]) == 2
    assert "neither a run folder" in capsys.readouterr().err
