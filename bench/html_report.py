"""``report.html``: one run as a static page a person reads, a pure function of the
:class:`bench.results.run.Run` and a lookup of the run's photos by image name.

The page holds the comparison table, the latency distributions on a log axis (with the intervals
of their percentiles), a cold-start waterfall per row, the accuracy breakdowns (AP, thresholds and
coverage, per class, confusion, digit size, precision/recall curves), the agreement between rows, a
failure gallery per model (true and predicted boxes drawn, worst photos first) and the photos on
which the rows disagree. Images are embedded; the page has no script and its
Content Security Policy forbids every request, so it opens offline (:mod:`bench.html_page`).
"""
from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path

from bench.gallery import Disagreement, GalleryItem, disagreements, gallery
from bench.html_page import data_uri, html_table, page, plot
from bench.photos import Photo
from bench.plots import (confusion_figure, cold_start_figure, curve_figure, latency_figure, per_class_figure,
                         size_bucket_figure)
from bench.report import dataset_caveat, display_rows, method_sentence, photos_sentence
from bench.results.run import COMPLETE, Run

REPORT_HTML = "report.html"
GALLERY_PER_MODEL = 8
DISAGREEMENTS = 8


def _e(text: object) -> str:
    return html.escape(str(text))


def _header(run: Run) -> list[str]:
    env = run.environment
    parts = [f"<h1>digitbench run {_e(run.run_id)}</h1>",
             f"<p class='muted'>Status <b>{_e(run.status)}</b>; started {_e(run.started)}, finished "
             f"{_e(run.finished)}; machine {_e(env.machine_text)}; digitbench {_e(env.commit_text)}.</p>"]
    caveat = dataset_caveat(run)
    if caveat:
        parts.append(f"<div class='banner warn'>{_e(caveat)}</div>")
    if run.status != COMPLETE:
        failed = [f"{name}: {row.error}" for name, row in run.rows.items() if row.error]
        parts.append(f"<div class='banner bad'>The run is '{_e(run.status)}'."
                     + "".join(f"<br>{_e(line)}" for line in failed) + "</div>")
    parts.append(f"<p>{_e(photos_sentence(run))} {_e(method_sentence(run))}</p>")
    return parts


def _table(run: Run) -> list[str]:
    parts = ["<h2>Comparison</h2>", html_table(display_rows(run))]
    if run.skipped:
        parts.append("<p class='muted'>Skipped: " + "; ".join(f"{_e(k)}: {_e(v)}" for k, v in run.skipped.items())
                     + "</p>")
    return parts


def _latency(run: Run) -> list[str]:
    samples = {name: row.latencies() for name, row in run.rows.items() if row.latencies()}
    if not samples:
        return []
    table = [["row", "n", "p50 ms [95% interval]", "p90 ms [95% interval]", "p99 ms [95% interval]"]]
    for name, row in run.rows.items():
        latency = row.figures.latency if row.figures else None
        if latency is not None:
            table.append([name, str(latency.n), *(_with_interval(getattr(latency, key), getattr(latency, f"{key}_ci"))
                                                  for key in ("p50", "p90", "p99"))])
    return ["<h2>Warm latency</h2>",
            "<p class='muted'>Every measured latency of every pass, per row, on a log axis: a row ten times "
            "faster than another is as readable as the slow one. The intervals are distribution-free 95% "
            "intervals of each percentile.</p>",
            plot(latency_figure(samples), "latency distributions"), html_table(table)]


def _number(value: float | None) -> str:
    if value is None or value != value:
        return "-"
    return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"


def _with_interval(value: float | None, interval: tuple[float, float] | None) -> str:
    low, high = interval if interval else (None, None)
    if low is None or low != low:
        return _number(value)
    return f"{_number(value)} [{_number(low)}, {_number(high)}]"


def _percent(value: float | None) -> str:
    return "-" if value is None or value != value else f"{100 * value:.1f}%"


def _threshold(point) -> str:
    return "-" if point is None else f"{point.threshold:.3g}"


def _analysed(run: Run) -> dict:
    return {name: row for name, row in run.rows.items() if row.records and row.analysis is not None}


def analysis_section(run: Run) -> list[str]:
    """AP, thresholds and coverage per row, then per class, confusion, digit size and the curves."""
    rows = _analysed(run)
    if not rows:
        return []
    table = [["row", "AP50", "mAP .5:.95", "AP from", "best threshold", "its whole number",
              "threshold for precision >= target", "its recall", "coverage at 98% whole number", "its cut"]]
    for name, row in rows.items():
        detection, confidence = row.analysis.detection, row.analysis.confidence
        coverage = confidence.coverage_98 or {}
        target = f" ({100 * confidence.target:g}%)"
        table.append([name, _percent(detection.get("ap50")), _percent(detection.get("coco_map")),
                      str(detection.get("ap_from") or "-"), _threshold(confidence.best),
                      _percent(confidence.best.sequence_accuracy) if confidence.best else "-",
                      _threshold(confidence.at_target) + (target if confidence.at_target else ""),
                      _percent(confidence.at_target.recall) if confidence.at_target else "-",
                      _percent(coverage.get("coverage")), _number(coverage.get("cut"))])
    parts = ["<h2>Accuracy breakdown</h2>",
             "<p class='muted'>AP by pycocotools from each row's candidates (or its digits where it reports none, "
             "which cuts the curve short). Best threshold: the score cut with the best whole-number accuracy. "
             "Coverage: the share of photos a row can answer at 98% whole-number accuracy by refusing those whose "
             "weakest digit scores under the cut.</p>", html_table(table)]
    per_class = {name: row.analysis.detection.get("per_class") or {} for name, row in rows.items()}
    if any(per_class.values()):
        parts += ["<h3>Per digit</h3>", plot(per_class_figure(per_class), "per class")]
    confusions = {name: row.analysis.detection.get("confusion") or {} for name, row in rows.items()}
    if any(confusions.values()):
        parts += ["<h3>Confusion</h3>",
                  "<p class='muted'>True digit against the label of the box that overlaps it (IoU at the threshold, "
                  "whatever its label), or missed; counts written in, shaded by share of the true digit.</p>",
                  plot(confusion_figure(confusions), "confusion")]
    buckets = {name: row.analysis.detection.get("size_buckets") or {} for name, row in rows.items()}
    if any(buckets.values()):
        parts += ["<h3>By digit size</h3>", plot(size_bucket_figure(buckets), "size buckets")]
    curves = {name: [(p.threshold, p.precision, p.recall, p.sequence_accuracy) for p in row.curve]
              if len(row.curve) > 1 else [] for name, row in rows.items()}
    if any(curves.values()):
        operating = {name: (row.figures.accuracy.precision, row.figures.accuracy.recall) for name, row in rows.items()}
        parts += ["<h3>Precision/recall curves</h3>", plot(curve_figure(curves, operating), "precision recall curves")]
    return parts


def agreement_section(run: Run) -> list[str]:
    """Per pair of rows: the share of photos read the same, and where only one of them is right."""
    agreement = run.agreement if len(run.rows) > 1 else {}
    if len(agreement) < 2:
        return []
    names = list(agreement)
    table = [["row", *names]]
    for a in names:
        cells = [a]
        for b in names:
            pair = agreement[a].get(b)
            cells.append("-" if pair is None else f"{_percent(pair.share)} same; only {a} right "
                         f"{pair.only_a_right}, only {b} right {pair.only_b_right}")
        table.append(cells)
    return ["<h2>Agreement between rows</h2>",
            "<p class='muted'>Per pair of rows, on the photos both read: the share read as the same number, and the "
            "photos only one of the two reads right (where the other could learn).</p>", html_table(table)]


def _cold_start(run: Run) -> list[str]:
    parts = {name: row.cold_start.to_json() for name, row in run.rows.items() if row.cold_start is not None}
    if not parts:
        return []
    for values in parts.values():
        values.pop("total", None)
    return ["<h2>Cold start</h2>",
            "<p class='muted'>Per row, from its start to its first digits: the recognizer's library import "
            "(paid by the first row of a backend in this process), the model download, init and the first "
            "inference.</p>",
            plot(cold_start_figure(parts), "cold start waterfall")]


def _card(item: GalleryItem) -> str:
    picture = (f"<img alt='{_e(item.image)}' src='{data_uri(item.png)}'>" if item.png
               else f"<p class='muted'>{_e(item.note)}</p>")
    return f"<div class='card'>{picture}{_e(item.caption)}</div>"


def gallery_section(groups: Mapping[str, list[GalleryItem]]) -> list[str]:
    """The failure gallery: per model (rows that ran the same model share one), its worst photos."""
    parts = ["<h2>Failure gallery</h2>",
             "<p class='muted'>The worst photos per model: errors first, then wrong numbers with the most "
             "mistakes. Rows that ran the same model share one gallery. Green: true boxes; red: predicted boxes "
             "and labels.</p>"]
    for name, items in groups.items():
        parts.append(f"<h3>{_e(name)}</h3>")
        parts.append(f"<div class='gallery'>{''.join(map(_card, items))}</div>" if items
                     else "<p class='muted'>no failures</p>")
    return parts


def _reading(disagreement: Disagreement) -> str:
    cards = []
    for reading in disagreement.readings:
        verdict = "right" if reading.correct else "wrong"
        what = f"error: {reading.error}" if reading.error else f"read {reading.predicted!r} ({verdict})"
        picture = f"<img alt='{_e(disagreement.image)}' src='{data_uri(reading.png)}'>" if reading.png else ""
        cards.append(f"<div class='reading'>{picture}<b>{_e(', '.join(reading.rows))}</b>: {_e(what)}</div>")
    note = f"<p class='muted'>{_e(disagreement.note)}</p>" if disagreement.note else ""
    return (f"<div class='card'><b>{_e(disagreement.image)}</b>: true {_e(repr(disagreement.truth))}"
            f"{''.join(cards)}{note}</div>")


def disagreement_section(found: list[Disagreement]) -> list[str]:
    """The photos on which the rows read different numbers, one drawing per reading."""
    if not found:
        return []
    return ["<h2>Where the rows disagree</h2>",
            "<p class='muted'>Photos on which the rows read different numbers, those that some row reads right "
            "first; one drawing per distinct reading.</p>",
            f"<div class='gallery'>{''.join(map(_reading, found))}</div>"]


def _environment(run: Run) -> list[str]:
    env = run.environment
    packages = ", ".join(f"{k} {v}" for k, v in env.packages.items() if v)
    lines = [f"CPU: {env.cpu_model} x {env.cpu_count}; OS: {env.os}; Python {env.python}",
             f"load average at start: {env.load_average}", f"packages: {packages}"]
    for name, row in run.rows.items():
        describe = {k: v for k, v in row.describe.items() if k != "notes"}
        if describe:
            lines.append(f"{name}: " + ", ".join(f"{k}={v}" for k, v in describe.items()))
    folder = f" Run folder: {_e(run.folder)}." if run.folder else ""
    return ["<h2>Environment</h2>", f"<p class='muted'>{'<br>'.join(map(_e, lines))}{folder}</p>"]


def html_report(run: Run, photos: Mapping[str, Photo]) -> str:
    """The whole page; ``photos`` are the run's photos by image name (missing ones are noted, not drawn)."""
    body = [*_header(run), *_table(run), *_latency(run), *_cold_start(run), *analysis_section(run),
            *agreement_section(run), *gallery_section(gallery(run, photos, per_group=GALLERY_PER_MODEL)),
            *disagreement_section(disagreements(run, photos, DISAGREEMENTS)), *_environment(run)]
    return page(f"digitbench run {run.run_id}", body)


def write_html_report(run: Run, photos: Mapping[str, Photo], path: Path | None = None) -> Path:
    """Write :func:`html_report` to ``path`` (default ``report.html`` in the run's folder)."""
    path = Path(path) if path is not None else Path(run.folder) / REPORT_HTML
    path.write_text(html_report(run, photos), encoding="utf-8")
    return path
