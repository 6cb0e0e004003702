"""bench sweep end to end in the real browser: the MLPerf gate by default, --json, --fail-if-none-passes."""
from __future__ import annotations

import json

import pytest

from backends.tfjs import TfjsBackend
from backends.tfjs.options import TfjsOptions
from bench.cli import main

needs_browser = pytest.mark.skipif(TfjsBackend.unavailable_reason(TfjsOptions()) is not None,
                                   reason=f"tfjs backend unavailable: {TfjsBackend.unavailable_reason(TfjsOptions())}")


@needs_browser
@pytest.mark.slow
def test_sweep_prints_its_gated_decision_as_json_and_can_fail_when_no_variant_passes(tmp_path, capsys):
    common = ["sweep", "--limit", "12", "--warmup", "0", "--tfjs-backend", "wasm", "--quantization", "none,uint8",
              "--no-store", "--json"]
    assert main([*common, "--out", str(tmp_path / "a")]) in (0, 1)
    printed = json.loads(capsys.readouterr().out)
    decision = printed["decision"]
    assert decision["min_relative_accuracy"] == 0.99 and "MLPerf" in decision["rule"]
    assert decision["judged_on"].startswith("lower bound") and decision["reference"] == "tfjs-wasm-none"
    assert set(printed["intervals"]) == {"tfjs-wasm-uint8"}
    strict = ["--max-accuracy-drop", "0", "--min-relative-accuracy", "1", "--fail-if-none-passes"]
    code = main([*common, "--out", str(tmp_path / "b"), *strict])
    strict_decision = json.loads(capsys.readouterr().out)["decision"]
    assert (code == 1) == (strict_decision["quantized_passed"] == [])
