"""The nightly report: ``index.html`` (images embedded, opens offline) and ``report.md`` (images beside).

A pure function of the stored runs and the comparison: nothing here measures anything.
"""
from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bench.compare import IMPROVEMENT, REGRESSION, UNSTABLE, Comparison, table_rows
from bench.gallery import gallery, model_key
from bench.html_page import data_uri, html_table, page
from bench.html_report import gallery_section
from bench.photos import Photo
from bench.plots import TrendPoint, distribution_figure, trend_figure
from bench.report import dataset_caveat, display_rows, markdown_table
from bench.results.run import RowResult, Run
from bench.suites import Suite

INDEX_HTML = "index.html"
REPORT_MD = "report.md"
IMAGES = "images"

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


def differences(row: RowResult, run: Run, base: Run | None) -> str:
    """How a run's row differs from the baseline's in what it measured (photos, run options, the row's
    options, its model); empty when it does not, or when there is no baseline to differ from."""
    if base is None or run is base:
        return ""
    found = []
    if run.dataset.fingerprint != base.dataset.fingerprint:
        found.append("photos")
    if (run.options.limit, run.options.warmup) != (base.options.limit, base.options.warmup):
        found.append("run options")
    base_row = base.rows.get(row.row)
    if base_row is None:
        return "; ".join(found + ["not in the baseline"])
    if dict(row.options) != dict(base_row.options):
        changed = sorted(k for k in {*row.options, *base_row.options} if row.options.get(k) != base_row.options.get(k))
        found.append("options " + ", ".join(changed))
    if (model_key(row), row.describe.get("model_sha256")) != (model_key(base_row), base_row.describe.get("model_sha256")):
        found.append("model")
    return "; ".join(found)


def trend_series(history: list[PastRun], base: Run | None = None) -> dict[str, list[TrendPoint]]:
    """Per backend row, p50/p90/cold start/digit F1 of each past run, from its raw records; points whose
    photos, options or model differ from ``base`` (the baseline) say how."""
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
            series.setdefault(name, []).append(TrendPoint(label, past.accepted, run is last, values,
                                                          differences(row, run, base)))
    return series


def trend_table(series: Mapping[str, list[TrendPoint]]) -> list[list[str]] | None:
    """The points drawn apart in the trend (options or model differ from the baseline), as a table."""
    rows = [[point.label, row, point.differs] for row, points in series.items() for point in points if point.differs]
    return [["run", "row", "differs from the baseline in"], *rows] if rows else None


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


def _file_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")


def write_nightly_report(result: NightlyResult, base: Run | None, history: list[PastRun], day: str,
                         photos: Mapping[str, Photo]) -> Path:
    """Write ``index.html`` and ``report.md`` (with ``images/``) into the result's report folder;
    ``photos`` are the photos the run used, by image, for the failure gallery."""
    new = result.run
    folder = result.report_dir
    images = folder / IMAGES
    images.mkdir(parents=True, exist_ok=True)
    sentence, css = _summary(result)
    series = trend_series(history, base)
    trend_png = trend_figure(series) if history else None
    samples = {name: (base.rows[name].latencies() if base is not None and name in base.rows else [],
                      row.latencies()) for name, row in new.rows.items()}
    distribution_png = distribution_figure(samples, (f"baseline #{result.baseline_id}" if base else "no baseline",
                                                     f"this run #{result.history_id}"))
    worst = gallery(new, photos, per_group=result.suite.gallery)
    files = {"trend.png": trend_png, "latency.png": distribution_png}
    for group, items in worst.items():
        for index, item in enumerate(items):
            if item.png:
                files[f"gallery-{_file_name(group)}-{index}.png"] = item.png
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
    caveat = dataset_caveat(new)
    parts = [f"<h1>digitbench nightly - {html.escape(result.suite.name)} - {html.escape(day)}</h1>",
             f"<p class='muted'>{facts}</p>", f"<div class='banner {css}'>{html.escape(sentence)}</div>"]
    md = [f"# digitbench nightly - {result.suite.name} - {day}", "", sentence, "",
          facts.replace("<b>", "**").replace("</b>", "**"), ""]
    if caveat:
        parts.append(f"<div class='banner warn'>{html.escape(caveat)}</div>")
        md += [f"> **Note:** {caveat}", ""]
    if compare_rows:
        marked = (REGRESSION, IMPROVEMENT, UNSTABLE)
        classes = [c.verdict if c.verdict in marked else "" for c in result.comparison.changes]
        thresholds = result.comparison.thresholds
        rule = (f"A verdict needs p &lt; {thresholds.alpha:g} AND a change of at least {thresholds.latency:.0%} "
                f"(latency), {thresholds.cold_start:.0%} (cold start), {100 * thresholds.accuracy:g} point(s) "
                f"(accuracy) or {100 * thresholds.errors:g} point(s) (errors), in the metric's bad direction. "
                "'unstable': p50/p90 moved but the per-photo floor (minimum over the passes) did not confirm it.")
        parts += [f"<h2>Comparison with baseline #{result.baseline_id}</h2>", f"<p class='muted'>{rule}</p>",
                  html_table(compare_rows, classes)]
        parts += [f"<p class='muted'>note: {html.escape(n)}</p>" for n in result.comparison.notes]
        md += [f"## Comparison with baseline #{result.baseline_id}", "", rule.replace("&lt;", "<"), "",
               *markdown_table(compare_rows), ""] + [f"- note: {n}" for n in result.comparison.notes] + [""]
    parts += ["<h2>This run</h2>", html_table(run_table)]
    md += ["## This run", "", *markdown_table(run_table), ""]
    if trend_png:
        parts += ["<h2>Trend</h2>", f"<img class='plot' alt='trend' src='{data_uri(trend_png)}'>"]
        md += ["## Trend", "", f"![trend]({IMAGES}/trend.png)", ""]
        apart = trend_table(series)
        if apart:
            note = ("Drawn as squares and not joined to the line: runs whose photos, options or model differ from "
                    f"baseline #{result.baseline_id}.")
            parts += [f"<p class='muted'>{note}</p>", html_table(apart, ["differs"] * (len(apart) - 1))]
            md += [note, "", *markdown_table(apart), ""]
    parts += ["<h2>Latency distributions</h2>", f"<img class='plot' alt='latency' src='{data_uri(distribution_png)}'>"]
    md += ["## Latency distributions", "", f"![latency]({IMAGES}/latency.png)", ""]
    parts += gallery_section(worst)
    md += ["## Failure gallery", "", "Rows that ran the same model share one gallery. Green: true boxes; red: "
           "predicted boxes and labels.", ""]
    for group, items in worst.items():
        md += [f"### {group}", ""]
        md += [f"- {item.caption}" + (f" ![{item.image}]({IMAGES}/gallery-{_file_name(group)}-{index}.png)"
                                      if item.png else f" ({item.note})") for index, item in enumerate(items)]
        md += ([] if items else ["no failures"]) + [""]
    (folder / INDEX_HTML).write_text(page(f"digitbench nightly {day} {result.suite.name}", parts), encoding="utf-8")
    (folder / REPORT_MD).write_text("\n".join(md) + "\n", encoding="utf-8")
    return folder / INDEX_HTML
