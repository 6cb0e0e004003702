"""Reports of one run, as pure functions of its :class:`bench.results.run.Run`: summary.csv, report.md,
a rich table."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.results.folder import write_json_atomic
from bench.results.run import RowResult, Run
from bench.validation import markup_safe

SUMMARY_CSV = "summary.csv"
REPORT_MD = "report.md"
CURVES_JSON = "curves.json"

COLUMNS = ("backend", "status", "images", "errors", "digit_precision", "digit_recall", "digit_f1",
           "sequence_accuracy", "p50_ms", "p90_ms", "p99_ms", "mean_ms", "std_ms", "latency_n",
           "end_to_end_p50_ms", "end_to_end_p90_ms", "cold_total_ms", "library_ms", "download_ms", "init_ms",
           "first_inference_ms", "library_bytes", "download_bytes", "notes")


def markdown_table(rows: list[list[str]]) -> list[str]:
    """The lines of a Markdown table whose first row is the header; ``|`` in a cell becomes ``/``."""
    return (["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
            + ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows[1:]])


def row_notes(row: RowResult) -> str:
    """Short remarks for a row: the backend's own notes, replayed figures, failures, warnings."""
    notes = list(row.notes)
    if row.figures is not None and row.figures.replayed:
        notes.append("latency replayed, not measured")
    if row.error:
        notes.append(row.error)
    notes.extend(row.warnings)
    return "; ".join(notes)


def summary_rows(run: Run) -> list[dict[str, Any]]:
    """One flat dict per backend row, in run order (the columns of ``summary.csv``)."""
    rows = []
    for name, row in run.rows.items():
        figures = row.figures
        accuracy = figures.accuracy if figures else None
        latency = figures.latency if figures else None
        end_to_end = figures.end_to_end if figures else None
        cold = row.cold_start
        rows.append({
            "backend": name, "status": row.status, "images": figures.images if figures else 0,
            "errors": figures.errors if figures else 0,
            "digit_precision": _rounded(accuracy.precision) if accuracy else None,
            "digit_recall": _rounded(accuracy.recall) if accuracy else None,
            "digit_f1": _rounded(accuracy.f1) if accuracy else None,
            "sequence_accuracy": _rounded(accuracy.sequence_accuracy) if accuracy else None,
            **{f"{key}_ms": _rounded(getattr(latency, key), 3) if latency else None
               for key in ("p50", "p90", "p99", "mean", "std")},
            "latency_n": latency.n if latency else None,
            "end_to_end_p50_ms": _rounded(end_to_end.p50, 3) if end_to_end else None,
            "end_to_end_p90_ms": _rounded(end_to_end.p90, 3) if end_to_end else None,
            "cold_total_ms": _rounded(cold.total, 3) if cold else None, "library_ms": cold.library if cold else None,
            "download_ms": cold.download if cold else None, "init_ms": cold.init if cold else None,
            "first_inference_ms": cold.first_inference if cold else None, "library_bytes": row.library_bytes,
            "download_bytes": row.download_bytes,
            "notes": row_notes(row),
        })
    return rows


def _rounded(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(value, digits)


def summary_frame(run: Run):
    """The comparison table as a pandas DataFrame."""
    import pandas as pd

    return pd.DataFrame(summary_rows(run), columns=list(COLUMNS))


def _fmt(value: Any, kind: str) -> str:
    if value is None or value != value:
        return "-"
    if kind == "ratio":
        return f"{100 * value:.1f}%"
    if kind == "ms":
        return f"{value:.2f}" if value < 100 else f"{value:.0f}"
    if kind == "bytes":
        return f"{value / 1e6:.2f} MB" if value >= 1e6 else (f"{value / 1e3:.1f} KB" if value else "0")
    return str(value)


DISPLAY = (("backend", "backend", ""), ("images", "photos", ""), ("errors", "errors", ""),
           ("digit_f1", "digit F1", "ratio"), ("digit_precision", "precision", "ratio"),
           ("digit_recall", "recall", "ratio"), ("sequence_accuracy", "whole number", "ratio"),
           ("p50_ms", "p50 ms", "ms"), ("p90_ms", "p90 ms", "ms"), ("p99_ms", "p99 ms", "ms"),
           ("std_ms", "std ms", "ms"), ("cold_total_ms", "cold start ms", "ms"),
           ("download_bytes", "download", "bytes"), ("notes", "notes", ""))


def display_rows(run: Run) -> list[list[str]]:
    """The comparison table's cells as text, header first."""
    table = [[title for _, title, _ in DISPLAY]]
    for row in summary_rows(run):
        table.append([_fmt(row[key], kind) for key, _, kind in DISPLAY])
    return table


def markdown_report(run: Run) -> str:
    """report.md: the table, what it rests on, and the environment."""
    env = run.environment
    dataset = run.dataset
    table = display_rows(run)
    lines = [f"# digitbench run {run.run_id}", "",
             f"Status: **{run.status}** (started {run.started}, finished {run.finished}).", "",
             f"Dataset: {dataset.description or dataset.name} (fingerprint {dataset.fingerprint}). "
             f"Each latency figure rests on every successfully recognized photo x {run.options.repeats} "
             f"pass(es), after 1 first inference and {run.options.warmup} warm-up call(s); "
             "latency is the backend's own measurement, as close to the work as it can get.", "",
             *markdown_table(table)]
    if run.skipped:
        lines += ["", "Skipped backends:", ""] + [f"- {k}: {v}" for k, v in run.skipped.items()]
    if dataset.problems:
        lines += ["", "Dataset problems:", ""] + [f"- {p}" for p in dataset.problems]
    packages = ", ".join(f"{k} {v}" for k, v in env.packages.items() if v)
    lines += ["", "## Environment", "",
              f"- CPU: {env.cpu_model} x {env.cpu_count}; OS: {env.os}; Python {env.python}",
              f"- digitbench {env.version} commit {env.commit}" + (" (with local changes)" if env.dirty else ""),
              f"- packages: {packages}"]
    for name, row in run.rows.items():
        describe = {k: v for k, v in row.describe.items() if k != "notes"}
        if describe:
            lines.append(f"- {name}: " + ", ".join(f"{k}={v}" for k, v in describe.items()))
    return "\n".join(lines) + "\n"


def write_reports(run: Run) -> None:
    """Write summary.csv, report.md and curves.json (each row's precision/recall curve) into the run's
    folder, next to run.json."""
    folder = Path(run.folder)
    summary_frame(run).to_csv(folder / SUMMARY_CSV, index=False)
    (folder / REPORT_MD).write_text(markdown_report(run), encoding="utf-8")
    write_json_atomic(folder / CURVES_JSON, {name: [p.to_json() for p in row.curve] for name, row in run.rows.items()
                                             if row.records})


TERMINAL = ("backend", "photos", "errors", "digit F1", "whole number", "p50 ms", "p90 ms", "cold start ms",
            "download")


def rich_table(run: Run):
    """The comparison as a rich Table for the terminal; row notes become the caption."""
    from rich.table import Table

    rows = [[markup_safe(cell) for cell in row] for row in display_rows(run)]
    keep = [rows[0].index(title) for title in TERMINAL]
    notes = [f"{row[0]}: {row[-1]}" for row in rows[1:] if row[-1]]
    table = Table(title=markup_safe(f"digitbench {run.run_id} - {run.dataset.name}"),
                  caption="\n".join(notes) or None, caption_justify="left")
    for index in keep:
        table.add_column(rows[0][index], justify="left" if index == 0 else "right", overflow="fold")
    for row in rows[1:]:
        table.add_row(*(row[index] for index in keep))
    return table
