"""report.html in real headless Chromium, Parquet read back with pandas, and what report.md says of the photos."""
from __future__ import annotations

import importlib.util
import io
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backends.oracle import OracleBackend, OracleOptions
from bench.dataset import load_dataset
from bench.html_report import html_report
from bench.report import prediction_rows, summary_rows
from bench.report_files import PREDICTIONS_PARQUET, SUMMARY_CSV, SUMMARY_PARQUET, write_reports
from bench.results.folder import RunWriter, read_run
from bench.runner import Plan, PlannedRow, Runner, RunConfig, run_benchmark

ROOT = Path(__file__).resolve().parent.parent


def _screenshot_module():
    spec = importlib.util.spec_from_file_location("screenshot_report", ROOT / "scripts" / "screenshot_report.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def two_row_run(tmp_path: Path, dataset_path: Path):
    """Two oracle rows that make different mistakes, so both galleries and the disagreements have photos."""
    dataset = load_dataset(dataset_path)
    rows = [PlannedRow("oracle", "oracle-miss", OracleBackend,
                       OracleOptions(miss_rate=0.5, seed=1, delay_ms=0.3, jitter_ms=0.6, init_ms=20)),
            PlannedRow("oracle", "oracle-label", OracleBackend,
                       OracleOptions(wrong_label_rate=0.5, seed=2, delay_ms=4, jitter_ms=6, init_ms=40))]
    out = tmp_path / "run"
    runner = Runner(RunConfig(out=out, warmup=1, repeats=2), Plan(rows, {}), dataset, RunWriter(out))
    run = runner.execute()
    photos = {p.image: p for p in dataset.photos}
    write_reports(run, photos)
    return run, photos


def colour_share(png: bytes, box, colour: tuple[int, int, int], tolerance: int = 40) -> float:
    """The share of the pixels inside ``box`` (left, top, width, height) within ``tolerance`` of ``colour``."""
    from PIL import Image

    left, top, width, height = box
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=int)[top:top + height, left:left + width]
    return float((np.abs(pixels - np.array(colour)).max(axis=2) <= tolerance).mean()) if pixels.size else 0.0


def test_report_html_loads_in_headless_chromium_without_errors_and_shows_its_plots(tiny_dataset, tmp_path):
    shooter = _screenshot_module()
    reason = shooter.unavailable_reason()
    if reason:
        pytest.skip(reason)
    run, _ = two_row_run(tmp_path, tiny_dataset)
    shot = shooter.shoot(run.folder / "report.html")
    assert shot.console_errors == []
    figures = {f.alt: f for f in shot.figures}
    assert all(f.decoded for f in shot.figures) and len(shot.figures) >= 4
    latency, cold = figures["latency distributions"], figures["cold start waterfall"]
    box = lambda f: (f.left, f.top, f.width, f.height)  # noqa: E731
    assert latency.width > 400 and latency.top + latency.height <= shot.height
    assert colour_share(shot.png, box(latency), (0x1F, 0x77, 0xB4)) > 0.0005    # row 1's dots and box
    assert colour_share(shot.png, box(latency), (0xD6, 0x27, 0x28)) > 0.0005    # row 2's
    assert colour_share(shot.png, box(cold), (0xFF, 0x7F, 0x0E)) > 0.01         # init bars
    drawn = [f for alt, f in figures.items() if alt.startswith("images/")]
    assert drawn and max(colour_share(shot.png, box(f), (0, 200, 0), 30) for f in drawn) > 0.005  # true boxes
    assert colour_share(shot.png, (0, 0, 1280, 60), (255, 255, 255), 10) > 0.8   # a page, not a blank


def test_the_page_is_static_and_names_what_the_rows_got_wrong(tiny_dataset, tmp_path):
    run, photos = two_row_run(tmp_path, tiny_dataset)
    page = (run.folder / "report.html").read_text()
    assert "<script" not in page and not re.search(r"https?://", page)
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    for heading in ("Comparison", "Warm latency", "Cold start", "Accuracy breakdown", "Agreement between rows",
                    "Failure gallery", "Where the rows disagree"):
        assert f"<h2>{heading}</h2>" in page
    for heading in ("Per digit", "Confusion", "By digit size"):
        assert f"<h3>{heading}</h3>" in page
    pair = run.agreement["oracle-miss"]["oracle-label"]
    assert f"only oracle-miss right {pair.only_a_right}, only oracle-label right {pair.only_b_right}" in page
    assert "<h3>oracle-miss</h3>" in page and "<h3>oracle-label</h3>" in page
    assert page.count("src='data:image/png;base64,") >= 4
    again = html_report(read_run(run.folder), {})
    assert "photo not available" in again and "Warm latency" in again


def test_parquet_round_trips_through_pandas(tiny_dataset, tmp_path):
    run, _ = two_row_run(tmp_path, tiny_dataset)
    predictions = pd.read_parquet(run.folder / PREDICTIONS_PARQUET)
    expected = prediction_rows(run)
    assert len(predictions) == len(run.records()) == len(expected) == 6
    assert list(predictions["backend"]) == [r["backend"] for r in expected]
    assert list(predictions["image"]) == [r["image"] for r in expected]
    assert list(predictions["latency_ms"]) == pytest.approx([r["latency_ms"] for r in expected])
    assert list(predictions["correct"]) == [r["correct"] for r in expected]
    for index, row in enumerate(expected):
        digits = predictions.iloc[index]["digits"]
        assert [d["label"] for d in digits] == [d["label"] for d in row["digits"]]
        assert [d["left"] for d in digits] == pytest.approx([d["left"] for d in row["digits"]])
    assert sum(len(row["digits"]) for row in expected) > 0
    summary = pd.read_parquet(run.folder / SUMMARY_PARQUET)
    csv = pd.read_csv(run.folder / SUMMARY_CSV)
    assert list(summary["backend"]) == ["oracle-miss", "oracle-label"] == list(csv["backend"])
    assert list(summary["digit_f1"]) == pytest.approx([row["digit_f1"] for row in summary_rows(run)])
    assert list(summary["p50_ms"]) == pytest.approx(list(csv["p50_ms"]))


def test_report_md_names_the_photos_that_ran(tmp_path):
    run = run_benchmark(RunConfig(backends=("oracle",), limit=4, out=tmp_path / "r", warmup=0))
    markdown = (run.folder / "report.md").read_text()
    assert "Photos: 4 run (--limit 4)" in markdown and "the first 4 of 120 synthetic" in markdown
    assert "harness at work, not any model's accuracy on real photos" in markdown
    assert "bench run --dataset svhn-test" in markdown
    assert "harness at work" in (run.folder / "report.html").read_text()


def test_a_real_dataset_run_carries_no_synthetic_caveat(tiny_dataset, tmp_path):
    run = run_benchmark(RunConfig(backends=("oracle",), dataset=str(tiny_dataset), out=tmp_path / "r", warmup=0))
    markdown = (run.folder / "report.md").read_text()
    assert "harness at work" not in markdown and "Photos: 3 run, dataset tiny: 3 photos from" in markdown


def test_rows_that_ran_the_same_model_share_one_gallery(tiny_dataset, tmp_path, monkeypatch):
    from dataclasses import replace

    monkeypatch.chdir(ROOT)

    from bench.gallery import gallery, model_groups

    run, photos = two_row_run(tmp_path, tiny_dataset)
    same = {"model": "models/digit_detector"}
    rows = {"tf": replace(run.rows["oracle-miss"], row="tf", describe=same),
            "tfjs-wasm-none": replace(run.rows["oracle-miss"], row="tfjs-wasm-none",
                                      describe={"source_model": str(ROOT / "models/digit_detector"),
                                                "quantization": "none"}),
            "tfjs-wasm-uint8": replace(run.rows["oracle-label"], row="tfjs-wasm-uint8",
                                       describe={"source_model": "models/digit_detector", "quantization": "uint8"})}
    shared = replace(run, rows=rows)
    groups = model_groups(shared)
    assert groups == {"tf = tfjs-wasm-none": ["tf", "tfjs-wasm-none"], "tfjs-wasm-uint8": ["tfjs-wasm-uint8"]}
    drawn = gallery(shared, photos, per_group=2)
    assert list(drawn) == list(groups) and all(item.png for items in drawn.values() for item in items)


def test_a_row_that_could_not_start_is_named_not_shown_as_flawless(tiny_dataset, tmp_path):
    dataset = load_dataset(tiny_dataset)
    rows = [PlannedRow("oracle", "oracle", OracleBackend, OracleOptions(miss_rate=0.5)),
            PlannedRow("oracle", "broken", OracleBackend, OracleOptions(fail_open=True))]
    out = tmp_path / "run"
    run = Runner(RunConfig(out=out, warmup=0), Plan(rows, {}), dataset, RunWriter(out)).execute()
    page = html_report(run, {p.image: p for p in dataset.photos})
    assert run.status == "failed" and "The run is 'failed'" in page and "broken: " in page
    assert "<h3>broken</h3>" not in page and "<h3>oracle</h3>" in page
