"""Reports of one run, as pure functions of its :class:`bench.results.run.Run`: the comparison table
(as cells, a DataFrame, Markdown, a rich table, JSON), one row per record for Parquet, and report.md."""
from __future__ import annotations

from typing import Any

from bench.dataset import SYNTHETIC
from bench.metrics import read_number
from bench.results.run import RowResult, Run
from bench.validation import markup_safe

REAL_PHOTOS_COMMAND = "bench datasets fetch svhn --split test && bench run --dataset svhn-test"

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
           ("std_ms", "std ms", "ms"), ("end_to_end_p50_ms", "end-to-end p50 ms", "ms"),
           ("cold_total_ms", "cold start ms", "ms"), ("library_ms", "library ms", "ms"),
           ("library_bytes", "library", "bytes"), ("download_bytes", "download", "bytes"), ("notes", "notes", ""))


def display_rows(run: Run) -> list[list[str]]:
    """The comparison table's cells as text, header first."""
    table = [[title for _, title, _ in DISPLAY]]
    for row in summary_rows(run):
        table.append([_fmt(row[key], kind) for key, _, kind in DISPLAY])
    return table


def dataset_caveat(run: Run) -> str | None:
    """What a person must know before reading the accuracy of a run on the embedded synthetic photos."""
    if run.dataset.name != SYNTHETIC:
        return None
    return ("These are the embedded synthetic photos (bench/synthetic.py), drawn by the same generator the "
            "bundled detector was trained on: they show the harness at work, not any model's accuracy on real "
            f"photos. For real photos run `{REAL_PHOTOS_COMMAND}` (or `bench run --dataset FOLDER` with an "
            "SVHN-style folder).")


def photos_sentence(run: Run) -> str:
    """Which photos ran: how many, of which dataset, and the fingerprint of that selection."""
    dataset = run.dataset
    limit = f" (--limit {run.options.limit})" if run.options.limit is not None else ""
    described = f": {dataset.description}" if dataset.description else ""
    return (f"Photos: {dataset.photos} run{limit}, dataset {dataset.name}{described} "
            f"(fingerprint {dataset.fingerprint}).")


def method_sentence(run: Run) -> str:
    """What each latency figure rests on."""
    return (f"Each latency figure rests on every successfully recognized photo x {run.options.repeats} "
            f"pass(es), after 1 first inference and {run.options.warmup} warm-up call(s); latency is the "
            "backend's own measurement, as close to the work as it can get.")


def markdown_report(run: Run) -> str:
    """report.md: the table, what it rests on, and the environment."""
    env = run.environment
    dataset = run.dataset
    table = display_rows(run)
    caveat = dataset_caveat(run)
    lines = [f"# digitbench run {run.run_id}", "",
             f"Status: **{run.status}** (started {run.started}, finished {run.finished}).", "",
             *([f"> **Note:** {caveat}", ""] if caveat else []),
             f"{photos_sentence(run)} {method_sentence(run)}", "",
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


PREDICTION_COLUMNS = ("backend", "image", "truth", "text", "number", "correct", "digits_true", "digits_predicted",
                      "digits_matched", "latency_ms", "end_to_end_ms", "wall_ms", "error", "latency_source",
                      "replayed", "digits", "candidates")


def prediction_rows(run: Run) -> list[dict[str, Any]]:
    """One flat dict per prediction record (row after row, photo after photo), with its score and its
    digits as a list of ``{label, score, left, top, width, height}``."""
    out = []
    for name, row in run.rows.items():
        for record in row.records:
            score = row.scores.get(record.image)
            truth = run.truth.get(record.image)
            out.append({
                "backend": name, "image": record.image, "truth": truth.label if truth else None, "text": record.text,
                "number": read_number(record.digits), "correct": score.sequence_correct if score else None,
                "digits_true": score.true if score else None, "digits_predicted": score.predicted if score else None,
                "digits_matched": score.matched if score else None, "latency_ms": record.latency_ms,
                "end_to_end_ms": record.end_to_end_ms, "wall_ms": record.wall_ms, "error": record.error,
                "latency_source": record.latency_source, "replayed": record.replayed,
                "digits": [d.to_dict() for d in record.digits],
                "candidates": None if record.candidates is None else [d.to_dict() for d in record.candidates]})
    return out


def predictions_frame(run: Run):
    """Every prediction record as a pandas DataFrame (the rows of ``predictions.parquet``)."""
    import pandas as pd

    frame = pd.DataFrame(prediction_rows(run), columns=list(PREDICTION_COLUMNS))
    for column in ("digits_true", "digits_predicted", "digits_matched"):
        frame[column] = frame[column].astype("Int64")
    for column in ("latency_ms", "end_to_end_ms", "wall_ms"):
        frame[column] = frame[column].astype("float64")
    frame["correct"] = frame["correct"].astype("boolean")
    return frame


def summary_json(run: Run) -> dict[str, Any]:
    """What ``bench run --json`` prints: the run, where it is, which photos ran and the table's rows."""
    return {"run_id": run.run_id, "status": run.status, "folder": str(run.folder) if run.folder else None,
            "history_id": run.history_id,
            "dataset": {"name": run.dataset.name, "photos": run.dataset.photos, "limit": run.options.limit,
                        "description": run.dataset.description, "fingerprint": run.dataset.fingerprint},
            "caveat": dataset_caveat(run), "skipped": dict(run.skipped), "rows": summary_rows(run)}


TERMINAL = ("backend", "photos", "errors", "digit F1", "whole number", "p50 ms", "p90 ms", "end-to-end p50 ms",
            "cold start ms", "library", "download")


def rich_table(run: Run):
    """The comparison as a rich Table for the terminal; row notes become the caption."""
    from rich.table import Table

    rows = [[markup_safe(cell) for cell in row] for row in display_rows(run)]
    keep = [rows[0].index(title) for title in TERMINAL]
    notes = [f"{row[0]}: {row[-1]}" for row in rows[1:] if row[-1]]
    table = Table(title=markup_safe(f"digitbench {run.run_id} - {run.dataset.name} ({run.dataset.photos} photos)"),
                  caption="\n".join(notes) or None, caption_justify="left")
    for index in keep:
        table.add_column(rows[0][index], justify="left" if index == 0 else "right", overflow="fold")
    for row in rows[1:]:
        table.add_row(*(row[index] for index in keep))
    return table
