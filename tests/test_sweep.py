"""The quantization decision as a pure function of a run's variants, its table and its report."""
from __future__ import annotations

import pytest

from bench.backend import SweepAxis
from bench.errors import UsageError
from bench.results.metadata import DatasetInfo, Environment, RunOptions
from bench.results.run import ColdStartFigures, RowResult, Run
from bench.sweep import Variant, decide, sweep_table, variants_from_run, write_sweep_report

QUANTIZATION = SweepAxis("quantization", ("none", "float16", "uint8"), "none")


def row(quantization: str, cold: float, f1: float, *, weights: int = 1000, status: str = "complete",
        errors: int = 0, sequence: float | None = None) -> Variant:
    return Variant(row=f"tfjs-wasm-{quantization}", quantization=quantization, reference=quantization == "none",
                   status=status, weights_bytes=weights, cold_start_ms=cold, p50_ms=20.0, p90_ms=25.0,
                   digit_f1=f1, sequence_accuracy=f1 - 0.1 if sequence is None else sequence, images=100,
                   errors=errors)


def run_of(*variants: Variant) -> list[Variant]:
    return list(variants)


def stored_row(quantization: str, cold: float, weights: int, describe: bool = True) -> RowResult:
    facts = {"quantization": quantization, "weights_bytes": weights, "network": "3g"} if describe else {}
    return RowResult(row=f"tfjs-wasm-{quantization}", backend="tfjs", status="complete",
                     cold_start=ColdStartFigures(0.0, cold, 0.0, 0.0, cold), download_bytes=weights, describe=facts)


def stored_run(*rows: RowResult) -> Run:
    return Run(run_id="s", status="complete", started=None, finished=None, options=RunOptions(),
               dataset=DatasetInfo(name="test-dev", photos=100), environment=Environment(),
               rows={r.row: r for r in rows})


def test_the_smallest_cold_start_within_the_bound_is_recommended():
    run = run_of(row("none", 3000, 0.900, weights=4000), row("float16", 2000, 0.898, weights=2000),
                 row("uint8", 1500, 0.880, weights=1000))
    decision = decide(run)
    assert decision.recommended.quantization == "float16"
    assert decision.verdicts["tfjs-wasm-uint8"].startswith("rejected: digit F1 drops 2.00 points")
    assert "Ship float16" in decision.reason and "uint8" in decision.reason and "33% less" in decision.reason


def test_every_variant_within_the_bound_gives_the_smallest():
    run = run_of(row("none", 3000, 0.90), row("float16", 2000, 0.90), row("uint8", 1500, 0.899))
    assert decide(run).recommended.quantization == "uint8"


def test_float32_is_kept_when_every_quantized_variant_loses_too_much():
    run = run_of(row("none", 3000, 0.90), row("float16", 2000, 0.85), row("uint8", 1500, 0.80))
    decision = decide(run, max_accuracy_drop=0.5)
    assert decision.recommended.quantization == "none" and decision.reason.startswith("Ship float32")


def test_the_bound_and_the_metric_are_options():
    run = run_of(row("none", 3000, 0.90, sequence=0.80), row("uint8", 1500, 0.88, sequence=0.795))
    assert decide(run, max_accuracy_drop=2.5, min_relative_accuracy=None).recommended.quantization == "uint8"
    assert "below 99%" in decide(run, max_accuracy_drop=2.5).verdicts["tfjs-wasm-uint8"]
    assert decide(run, metric="sequence_accuracy").recommended.quantization == "uint8"
    with pytest.raises(UsageError, match="accuracy-metric"):
        decide(run, metric="recall")


def test_the_mlperf_rule_can_be_added_to_the_bound():
    run = run_of(row("none", 3000, 0.400), row("float16", 2000, 0.3955), row("uint8", 1500, 0.3975))
    decision = decide(run, max_accuracy_drop=0.5, min_relative_accuracy=0.99)
    assert decision.recommended.quantization == "uint8"
    assert "below 99%" in decision.verdicts["tfjs-wasm-float16"]


def test_failed_rows_and_rows_with_errors_are_rejected():
    run = run_of(row("none", 3000, 0.90), row("float16", 100, 0.90, status="failed"),
                 row("uint8", 200, 0.90, errors=3))
    decision = decide(run)
    assert decision.recommended.quantization == "none"
    assert "'failed'" in decision.verdicts["tfjs-wasm-float16"] and "3 of 100" in decision.verdicts["tfjs-wasm-uint8"]


def test_a_sweep_without_float32_is_refused():
    with pytest.raises(UsageError, match="float32"):
        decide(run_of(row("uint8", 1500, 0.9)))


def test_quantization_falls_back_to_the_row_name_and_other_rows_are_ignored():
    run = stored_run(stored_row("none", 3000, 4000, describe=False), stored_row("uint8", 1500, 1000, describe=False),
                     RowResult(row="tesseract", backend="tesseract", status="complete"))
    variants = variants_from_run(run, QUANTIZATION)
    assert [v.quantization for v in variants] == ["none", "uint8"] and variants[1].weights_bytes == 1000


def test_the_table_shows_changes_against_float32_and_the_report_is_written(tmp_path):
    run = run_of(row("none", 3000, 0.900, weights=4_000_000), row("uint8", 1500, 0.897, weights=1_000_000))
    decision = decide(run)
    table = sweep_table(decision, {"tfjs-wasm-uint8": (-0.01, 0.004)})
    assert table[0][:3] == ["variant", "weights", "cold start"]
    assert table[2][1] == "1.00 MB (-75%)" and table[2][2] == "1.50 s (-50%)" and "(-0.30 pt)" in table[2][5]
    assert table[2][7] == "[-1.00, +0.40] pt" and table[2][-1] == "recommended"
    md, png = write_sweep_report(tmp_path, decision, stored_run(stored_row("none", 3000, 4_000_000),
                                                                stored_row("uint8", 1500, 1_000_000)))
    assert png.read_bytes().startswith(b"\x89PNG")
    assert "**Recommendation:** Ship uint8" in md.read_text() and "network 3g" in md.read_text()


def test_the_sweep_command_refuses_a_backend_without_quantizations_before_any_work(tiny_dataset, tmp_path, capsys):
    from bench.cli import main

    code = main(["sweep", "--backends", "oracle", "--dataset", str(tiny_dataset), "--out", str(tmp_path / "s"),
                 "--store", str(tmp_path / "h.sqlite")])
    assert code == 2 and "has no quantization option" in capsys.readouterr().err
    assert not (tmp_path / "s").exists() and not (tmp_path / "h.sqlite").exists()


def test_cold_starts_too_close_to_call_are_decided_by_the_download():
    run = run_of(row("none", 446, 0.90, weights=2752), row("float16", 441, 0.90, weights=1430),
                 row("uint8", 452, 0.90, weights=769))
    decision = decide(run)
    assert decision.recommended.quantization == "uint8"
    assert "too close to call" in decision.reason and "none, float16, uint8 (441.0 ms to 452.0 ms" in decision.reason
    assert "weights 0.8 KB instead of 2.8 KB" in decision.reason


def test_mlperf_rule_is_the_default_and_is_judged_on_the_lower_bound_of_the_interval():
    run = run_of(row("none", 3000, 0.900), row("float16", 2000, 0.899), row("uint8", 1500, 0.898))
    point = decide(run)
    assert point.recommended.quantization == "uint8" and point.judged_on == "point estimate"
    bounded = decide(run, lower_bounds={"tfjs-wasm-float16": -0.005, "tfjs-wasm-uint8": -0.02})
    assert bounded.recommended.quantization == "float16"
    assert "keeps 97.78% of float32's digit F1 at the lower bound of its 95% interval, below 99%" in \
        bounded.verdicts["tfjs-wasm-uint8"]
    assert "MLPerf" in bounded.rule and "lower bound" in bounded.rule
    decision = bounded.to_json()
    assert decision["recommended"] == "tfjs-wasm-float16" and decision["quantized_passed"] == ["tfjs-wasm-float16"]
    assert [v["verdict"].split(":")[0] for v in decision["variants"]] == ["reference", "recommended", "rejected"]


def test_no_quantized_variant_passing_is_visible_in_the_decision():
    run = run_of(row("none", 3000, 0.90), row("uint8", 1500, 0.80))
    decision = decide(run)
    assert decision.recommended.quantization == "none" and decision.quantized_passed == []
