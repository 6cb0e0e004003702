"""The files a run's folder gets from its :class:`bench.results.run.Run`, beside the records:
``summary.csv`` / ``summary.parquet`` (the comparison table), ``predictions.parquet`` (one row per
record, with its score), ``curves.json`` (each row's precision/recall curve), ``report.md`` and
``report.html``."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from bench.html_report import REPORT_HTML, write_html_report
from bench.photos import Photo
from bench.report import markdown_report, predictions_frame, summary_frame
from bench.results.folder import write_json_atomic
from bench.results.run import Run

SUMMARY_CSV = "summary.csv"
SUMMARY_PARQUET = "summary.parquet"
PREDICTIONS_PARQUET = "predictions.parquet"
REPORT_MD = "report.md"
CURVES_JSON = "curves.json"

__all__ = ["CURVES_JSON", "PREDICTIONS_PARQUET", "REPORT_HTML", "REPORT_MD", "SUMMARY_CSV", "SUMMARY_PARQUET", "write_reports"]


def write_reports(run: Run, photos: Mapping[str, Photo] | None = None) -> None:
    """Write every report into the run's folder, next to run.json; ``photos`` (the run's photos by
    image name) feed report.html's galleries, which say so where a photo is missing."""
    folder = Path(run.folder)
    summary = summary_frame(run)
    summary.to_csv(folder / SUMMARY_CSV, index=False)
    summary.to_parquet(folder / SUMMARY_PARQUET, index=False)
    predictions_frame(run).to_parquet(folder / PREDICTIONS_PARQUET, index=False)
    (folder / REPORT_MD).write_text(markdown_report(run), encoding="utf-8")
    write_json_atomic(folder / CURVES_JSON, {name: [p.to_json() for p in row.curve] for name, row in run.rows.items()
                                             if row.records})
    write_html_report(run, photos or {})
