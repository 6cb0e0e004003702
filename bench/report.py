"""Reports of one run, as pure functions of its ``run.json``: summary.csv, report.md, a rich table."""
from __future__ import annotations

from pathlib import Path
from typing import Any

SUMMARY_CSV = "summary.csv"
REPORT_MD = "report.md"

COLUMNS = ("backend", "status", "images", "errors", "digit_precision", "digit_recall", "digit_f1",
           "sequence_accuracy", "p50_ms", "p90_ms", "p99_ms", "mean_ms", "std_ms", "latency_n",
           "cold_total_ms", "download_ms", "init_ms", "first_inference_ms", "download_bytes", "notes")


def markdown_table(rows: list[list[str]]) -> list[str]:
    """The lines of a Markdown table whose first row is the header; ``|`` in a cell becomes ``/``."""
    return (["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
            + ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows[1:]])


def row_notes(summary: dict[str, Any]) -> str:
    """Short remarks for a row: the backend's own notes, replayed figures, failures, warnings."""
    notes = list((summary.get("describe") or {}).get("notes", []))
    if summary.get("replayed"):
        notes.append("latency replayed, not measured")
    if summary.get("error"):
        notes.append(summary["error"])
    notes.extend(summary.get("warnings", []))
    return "; ".join(notes)


def summary_rows(run: dict[str, Any]) -> list[dict[str, Any]]:
    """One flat dict per backend row, in run order."""
    rows = []
    for name, s in run.get("backends", {}).items():
        latency = s.get("latency_ms") or {}
        cold = s.get("cold_start_ms") or {}
        rows.append({
            "backend": name, "status": s.get("status"), "images": s.get("images", 0), "errors": s.get("errors", 0),
            "digit_precision": s.get("digit_precision"), "digit_recall": s.get("digit_recall"),
            "digit_f1": s.get("digit_f1"), "sequence_accuracy": s.get("sequence_accuracy"),
            "p50_ms": latency.get("p50"), "p90_ms": latency.get("p90"), "p99_ms": latency.get("p99"),
            "mean_ms": latency.get("mean"), "std_ms": latency.get("std"), "latency_n": latency.get("n"),
            "cold_total_ms": cold.get("total"), "download_ms": cold.get("download"), "init_ms": cold.get("init"),
            "first_inference_ms": cold.get("first_inference"), "download_bytes": s.get("download_bytes"),
            "notes": row_notes(s),
        })
    return rows


def summary_frame(run: dict[str, Any]):
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


def display_rows(run: dict[str, Any]) -> list[list[str]]:
    """The comparison table's cells as text, header first."""
    table = [[title for _, title, _ in DISPLAY]]
    for row in summary_rows(run):
        table.append([_fmt(row[key], kind) for key, _, kind in DISPLAY])
    return table


def markdown_report(run: dict[str, Any]) -> str:
    """report.md: the table, what it rests on, and the environment."""
    env = run.get("environment", {})
    dataset = run.get("dataset", {})
    options = run.get("options", {})
    table = display_rows(run)
    lines = [f"# digitbench run {run.get('run_id', '')}", "",
             f"Status: **{run.get('status')}** (started {run.get('started')}, finished {run.get('finished')}).", "",
             f"Dataset: {dataset.get('description', dataset.get('name'))} (fingerprint {dataset.get('fingerprint')}). "
             f"Each latency figure rests on every successfully recognized photo x {options.get('repeats', 1)} "
             f"pass(es), after 1 first inference and {options.get('warmup', 0)} warm-up call(s); "
             "latency is the backend's own measurement, as close to the work as it can get.", "",
             *markdown_table(table)]
    if run.get("skipped"):
        lines += ["", "Skipped backends:", ""] + [f"- {k}: {v}" for k, v in run["skipped"].items()]
    if dataset.get("problems"):
        lines += ["", "Dataset problems:", ""] + [f"- {p}" for p in dataset["problems"]]
    packages = ", ".join(f"{k} {v}" for k, v in (env.get("packages") or {}).items() if v)
    digitbench = env.get("digitbench", {})
    lines += ["", "## Environment", "",
              f"- CPU: {env.get('cpu_model')} x {env.get('cpu_count')}; OS: {env.get('os')}; Python {env.get('python')}",
              f"- digitbench {digitbench.get('version')} commit {digitbench.get('commit')}"
              + (" (with local changes)" if digitbench.get("dirty") else ""),
              f"- packages: {packages}"]
    for name, summary in run.get("backends", {}).items():
        describe = {k: v for k, v in (summary.get("describe") or {}).items() if k != "notes"}
        if describe:
            lines.append(f"- {name}: " + ", ".join(f"{k}={v}" for k, v in describe.items()))
    return "\n".join(lines) + "\n"


def write_reports(out: Path, run: dict[str, Any]) -> None:
    """Write summary.csv and report.md next to run.json."""
    summary_frame(run).to_csv(Path(out) / SUMMARY_CSV, index=False)
    (Path(out) / REPORT_MD).write_text(markdown_report(run), encoding="utf-8")


TERMINAL = ("backend", "photos", "errors", "digit F1", "whole number", "p50 ms", "p90 ms", "cold start ms",
            "download")


def rich_table(run: dict[str, Any]):
    """The comparison as a rich Table for the terminal; row notes become the caption."""
    from rich.table import Table

    from bench.validation import markup_safe

    rows = [[markup_safe(cell) for cell in row] for row in display_rows(run)]
    keep = [rows[0].index(title) for title in TERMINAL]
    notes = [f"{row[0]}: {row[-1]}" for row in rows[1:] if row[-1]]
    table = Table(title=markup_safe(f"digitbench {run.get('run_id', '')} - {run.get('dataset', {}).get('name')}"),
                  caption="\n".join(notes) or None, caption_justify="left")
    for index in keep:
        table.add_column(rows[0][index], justify="left" if index == 0 else "right", overflow="fold")
    for row in rows[1:]:
        table.add_row(*(row[index] for index in keep))
    return table
