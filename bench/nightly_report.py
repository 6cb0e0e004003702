"""The nightly report: ``index.html`` (images embedded, opens offline) and ``report.md`` (images beside).

A pure function of the stored runs and the comparison: nothing here measures anything.
"""
from __future__ import annotations

import base64
import html
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bench.compare import IMPROVEMENT, REGRESSION, UNSTABLE, Comparison, table_rows
from bench.gallery import GalleryItem, gallery
from bench.photos import Photo
from bench.plots import TrendPoint, distribution_figure, trend_figure
from bench.report import display_rows, markdown_table
from bench.results.run import Run
from bench.suites import Suite

INDEX_HTML = "index.html"
REPORT_MD = "report.md"
IMAGES = "images"

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1240px; color: #222; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 18px; margin-top: 28px; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 8px 0; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; }
th { background: #f4f4f4; } td:first-child, td:nth-child(2) { text-align: left; }
tr.regression td { background: #fde2e2; } tr.improvement td { background: #e2f6e2; }
tr.unstable td { background: #fff4d6; }
.verdict { font-weight: 600; } .bad { color: #b00020; } .good { color: #1a7f37; }
.banner { padding: 10px 14px; border-radius: 6px; margin: 10px 0; font-size: 15px; }
.banner.bad { background: #fde2e2; } .banner.good { background: #e2f6e2; }
.banner.info { background: #eef2fb; color: #222; }
.gallery { display: flex; flex-wrap: wrap; gap: 12px; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 6px; font-size: 12px; max-width: 380px; }
.card img { display: block; max-width: 366px; image-rendering: pixelated; }
.muted { color: #666; font-size: 12px; } img.plot { max-width: 100%; }
"""


@dataclass(frozen=True)
class PastRun:
    """A recorded run of the suite and whether it was accepted as a baseline."""

    run: Run
    accepted: bool


@dataclass(frozen=True)
class NightlyResult:
    """What a nightly run produced: the run (recorded in the history), its comparison and verdict."""

    suite: Suite
    run: Run
    report_dir: Path
    baseline_id: int | None
    comparison: Comparison | None
    refused: str | None
    accepted: bool

    @property
    def history_id(self) -> int | None:
        return self.run.history_id

    @property
    def status(self) -> str:
        return self.run.status


def trend_series(history: list[PastRun]) -> dict[str, list[TrendPoint]]:
    """Per backend row, p50/p90/cold start/digit F1 of each past run, from its raw records."""
    series: dict[str, list[TrendPoint]] = {}
    last = history[-1].run if history else None
    for past in history:
        run = past.run
        label = f"#{run.history_id} {str(run.started or '')[:10]}"
        for name, row in run.rows.items():
            figures = row.figures
            latency = figures.latency if figures else None
            values = {"p50_ms": latency.p50 if latency else None, "p90_ms": latency.p90 if latency else None,
                      "cold_start_ms": row.cold_start_total,
                      "digit_f1": figures.accuracy.f1 if figures else None}
            series.setdefault(name, []).append(TrendPoint(label, past.accepted, run is last, values))
    return series


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _html_table(rows: list[list[str]], classes: list[str] | None = None) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
    body = []
    for index, row in enumerate(rows[1:]):
        css = f' class="{classes[index]}"' if classes and classes[index] else ""
        body.append(f"<tr{css}>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _summary(result: NightlyResult) -> tuple[str, str]:
    """(sentence, css class) for the banner."""
    if result.status != "complete":
        return f"The run is '{result.status}': not accepted.", "bad"
    if result.refused:
        return (f"Not compared: {result.refused}. Not accepted; accept it by hand with "
                f"`bench accept {result.history_id}`."), "bad"
    if result.comparison is None:
        return f"First run of suite '{result.suite.name}' on this machine: accepted as the baseline.", "info"
    verdict = result.comparison.headline()
    state = "accepted as the new baseline" if result.accepted else "not accepted; the baseline stays"
    return (f"Against baseline #{result.baseline_id}: {verdict}. Run #{result.history_id} {state}.",
            "bad" if result.comparison.regressions else "good")


def _gallery_caption(item: GalleryItem) -> str:
    if item.error:
        return f"{item.image}: error: {item.error}"
    latency = "-" if item.latency_ms is None else f"{item.latency_ms:.1f} ms"
    return (f"{item.image}: true {item.truth!r}, read {item.predicted!r}; matched {item.matched}, "
            f"missed {item.missed}, false {item.false}; {latency}")


def write_nightly_report(result: NightlyResult, base: Run | None, history: list[PastRun], day: str,
                         photos: Mapping[str, Photo]) -> Path:
    """Write ``index.html`` and ``report.md`` (with ``images/``) into the result's report folder;
    ``photos`` are the photos the run used, by image, for the failure gallery."""
    new = result.run
    folder = result.report_dir
    images = folder / IMAGES
    images.mkdir(parents=True, exist_ok=True)
    sentence, css = _summary(result)
    trend_png = trend_figure(trend_series(history)) if history else None
    samples = {name: (base.rows[name].latencies() if base is not None and name in base.rows else [],
                      row.latencies()) for name, row in new.rows.items()}
    distribution_png = distribution_figure(samples, (f"baseline #{result.baseline_id}" if base else "no baseline",
                                                     f"this run #{result.history_id}"))
    worst = gallery(new, photos, per_row=result.suite.gallery)
    files = {"trend.png": trend_png, "latency.png": distribution_png}
    for row, items in worst.items():
        for index, item in enumerate(items):
            if item.png:
                files[f"gallery-{row}-{index}.png"] = item.png
    for name, png in files.items():
        if png:
            (images / name).write_bytes(png)

    run_table = display_rows(new)
    compare_rows = table_rows(result.comparison) if result.comparison else None
    env = new.environment
    facts = (f"Suite <b>{html.escape(result.suite.name)}</b> on machine {html.escape(env.machine_text)}, digitbench "
             f"{html.escape(env.commit_text)}; dataset {html.escape(str(new.dataset.name))} "
             f"({new.dataset.photos} photos), {result.suite.repeats} pass(es) after "
             f"{result.suite.warmup} warm-up call(s). Run folder: {html.escape(str(new.folder))}.")
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>digitbench nightly {html.escape(day)} "
             f"{html.escape(result.suite.name)}</title><style>{STYLE}</style></head><body>",
             f"<h1>digitbench nightly - {html.escape(result.suite.name)} - {html.escape(day)}</h1>",
             f"<p class='muted'>{facts}</p>", f"<div class='banner {css}'>{html.escape(sentence)}</div>"]
    md = [f"# digitbench nightly - {result.suite.name} - {day}", "", sentence, "",
          facts.replace("<b>", "**").replace("</b>", "**"), ""]
    if compare_rows:
        marked = (REGRESSION, IMPROVEMENT, UNSTABLE)
        classes = [c.verdict if c.verdict in marked else "" for c in result.comparison.changes]
        thresholds = result.comparison.thresholds
        rule = (f"A verdict needs p &lt; {thresholds.alpha:g} AND a change of at least {thresholds.latency:.0%} "
                f"(latency), {thresholds.cold_start:.0%} (cold start), {100 * thresholds.accuracy:g} point(s) "
                f"(accuracy) or {100 * thresholds.errors:g} point(s) (errors), in the metric's bad direction. "
                "'unstable': p50/p90 moved but the per-photo floor (minimum over the passes) did not confirm it.")
        parts += [f"<h2>Comparison with baseline #{result.baseline_id}</h2>", f"<p class='muted'>{rule}</p>",
                  _html_table(compare_rows, classes)]
        parts += [f"<p class='muted'>note: {html.escape(n)}</p>" for n in result.comparison.notes]
        md += [f"## Comparison with baseline #{result.baseline_id}", "", rule.replace("&lt;", "<"), "",
               *markdown_table(compare_rows), ""] + [f"- note: {n}" for n in result.comparison.notes] + [""]
    parts += ["<h2>This run</h2>", _html_table(run_table)]
    md += ["## This run", "", *markdown_table(run_table), ""]
    if trend_png:
        parts += ["<h2>Trend</h2>", f"<img class='plot' alt='trend' src='{_data_uri(trend_png)}'>"]
        md += ["## Trend", "", f"![trend]({IMAGES}/trend.png)", ""]
    parts += ["<h2>Latency distributions</h2>", f"<img class='plot' alt='latency' src='{_data_uri(distribution_png)}'>"]
    md += ["## Latency distributions", "", f"![latency]({IMAGES}/latency.png)", ""]
    parts.append("<h2>Failure gallery</h2><p class='muted'>The worst photos per backend row: errors first, then "
                 "wrong numbers with the most mistakes. Green: true boxes; red: predicted boxes and labels.</p>")
    md += ["## Failure gallery", "", "Green: true boxes; red: predicted boxes and labels.", ""]
    for row, items in worst.items():
        parts.append(f"<h3>{html.escape(row)}</h3>")
        md += [f"### {row}", ""]
        if not items:
            parts.append("<p class='muted'>no failures</p>")
            md += ["no failures", ""]
            continue
        cards = []
        for index, item in enumerate(items):
            picture = (f"<img alt='{html.escape(item.image)}' src='{_data_uri(item.png)}'>" if item.png
                       else f"<p class='muted'>{html.escape(item.note)}</p>")
            cards.append(f"<div class='card'>{picture}{html.escape(_gallery_caption(item))}</div>")
            md.append(f"- {_gallery_caption(item)}" + (f" ![{item.image}]({IMAGES}/gallery-{row}-{index}.png)"
                                                       if item.png else f" ({item.note})"))
        parts.append(f"<div class='gallery'>{''.join(cards)}</div>")
        md.append("")
    parts.append("</body></html>")
    (folder / INDEX_HTML).write_text("\n".join(parts), encoding="utf-8")
    (folder / REPORT_MD).write_text("\n".join(md) + "\n", encoding="utf-8")
    return folder / INDEX_HTML
