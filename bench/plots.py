"""Figures for the nightly report and the sweep, drawn with matplotlib's Agg backend into PNG bytes."""
from __future__ import annotations

import io
import os
import stat
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


def matplotlib_config_dir() -> str:
    """Where matplotlib keeps its config and font cache: ``$MPLCONFIGDIR`` when set, else a private
    folder of this user under the temporary folder (never ``$HOME``, which may be read-only or shared)."""
    if os.environ.get("MPLCONFIGDIR"):
        return os.environ["MPLCONFIGDIR"]
    folder = Path(tempfile.gettempdir()) / f"digitbench-matplotlib-{os.getuid() if hasattr(os, 'getuid') else 0}"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        info = os.lstat(folder)
        if not stat.S_ISDIR(info.st_mode) or (hasattr(os, "getuid") and info.st_uid != os.getuid()):
            raise PermissionError(f"{folder} is not a private folder of this user")
    except OSError:
        folder = Path(tempfile.mkdtemp(prefix="digitbench-matplotlib-"))
    return str(folder)


def _pyplot():
    os.environ["MPLCONFIGDIR"] = matplotlib_config_dir()
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    _pyplot().close(fig)
    return buffer.getvalue()


@dataclass(frozen=True)
class TrendPoint:
    """One past run's figures for one backend row.

    ``differs`` says how the row's options or model differ from the baseline's (empty when they
    match): such a point is drawn apart and not joined to the line of the others.
    """

    label: str
    accepted: bool
    current: bool
    values: Mapping[str, float | None]
    differs: str = ""


TREND_METRICS = (("p50_ms", "latency p50 (ms)"), ("p90_ms", "latency p90 (ms)"),
                 ("cold_start_ms", "cold start (ms)"), ("digit_f1", "digit F1"))
LOG_METRICS = frozenset({"p50_ms", "p90_ms", "cold_start_ms"})


def _log_axis(ax, values: Sequence[float]) -> None:
    """A log axis with plain-number tick labels when every value is positive."""
    from matplotlib.ticker import FuncFormatter

    if values and min(values) > 0:
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))


def trend_figure(series: Mapping[str, Sequence[TrendPoint]]) -> bytes:
    """Four panels (p50, p90, cold start on log axes; digit F1) over past runs, a line per backend row.

    Filled markers are accepted runs, hollow ones were not accepted; the current run is starred; a
    run whose options or model differ from the baseline is a square, not joined to the line.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(11, 6.8), sharex=True)
    labels: list[str] = []
    for points in series.values():
        labels = [p.label for p in points] if len(points) > len(labels) else labels
    for (key, title), ax in zip(TREND_METRICS, axes.flat):
        drawn: list[float] = []
        for index, (row, points) in enumerate(series.items()):
            colour = COLOURS[index % len(COLOURS)]
            like = [p for p in points if p.values.get(key) is not None and not p.differs]
            if like:
                ax.plot([labels.index(p.label) for p in like], [p.values[key] for p in like], "-", color=colour,
                        alpha=0.6, label=row)
            for p in points:
                value = p.values.get(key)
                if value is None:
                    continue
                drawn.append(value)
                x = labels.index(p.label)
                if p.differs:
                    ax.plot([x], [value], "s", color=colour, markersize=8, markerfacecolor="white",
                            markeredgewidth=1.8)
                if p.current:
                    ax.plot([x], [value], "*", color=colour, markersize=14)
                elif not p.differs:
                    ax.plot([x], [value], "o", color=colour, markerfacecolor=colour if p.accepted else "white")
        ax.set_title(title + (" - log scale" if key in LOG_METRICS else ""), fontsize=10)
        ax.grid(alpha=0.3, which="both")
        if key in LOG_METRICS:
            _log_axis(ax, drawn)
        if key == "digit_f1":
            ax.yaxis.set_major_formatter(lambda v, _: f"{100 * v:.1f}%")
    for ax in axes[1]:
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels, rotation=45, ha="right", fontsize=8)
    axes[0][0].legend(fontsize=8, loc="best")
    fig.suptitle("Trend over past runs of this suite on this machine (hollow: not accepted, star: this run, "
                 "square: options or model differ from the baseline)", fontsize=10)
    fig.tight_layout()
    return _png(fig)


def distribution_figure(samples: Mapping[str, tuple[Sequence[float], Sequence[float]]],
                        names: tuple[str, str] = ("baseline", "this run")) -> bytes:
    """Per backend row, the latency histograms of the baseline and this run on shared bins."""
    plt = _pyplot()
    rows = list(samples)
    cols = min(3, max(1, len(rows)))
    lines = (len(rows) + cols - 1) // cols
    fig, axes = plt.subplots(lines, cols, figsize=(4.2 * cols, 3.0 * lines), squeeze=False)
    for ax, row in zip(axes.flat, rows):
        base, new = (np.asarray(s, float) for s in samples[row])
        both = np.concatenate([base, new]) if base.size + new.size else np.zeros(1)
        low, high = np.quantile(both, [0.0, 0.99]) if both.size else (0, 1)
        bins = np.linspace(low, high if high > low else low + 1, 40)
        for values, name, colour in ((base, names[0], COLOURS[0]), (new, names[1], COLOURS[1])):
            if values.size:
                ax.hist(np.clip(values, bins[0], bins[-1]), bins=bins, histtype="step", linewidth=1.6,
                        color=colour, label=f"{name} (n={values.size}, p50 {np.median(values):.2f})")
        ax.set_title(row, fontsize=10)
        ax.set_xlabel("latency ms (values above p99 in the last bin)", fontsize=8)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(rows):]:
        ax.axis("off")
    fig.tight_layout()
    return _png(fig)


def sweep_figure(points: Sequence[tuple[str, float | None, float | None, bool]], reference_accuracy: float | None,
                 max_drop_points: float, metric_title: str) -> bytes:
    """Accuracy against cold start, one point per variant; the band below float32 that is allowed."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for index, (name, cold, accuracy, chosen) in enumerate(points):
        if cold is None or accuracy is None:
            continue
        ax.plot([cold], [100 * accuracy], "*" if chosen else "o", markersize=16 if chosen else 9,
                color=COLOURS[index % len(COLOURS)])
        ax.annotate(name + (" (recommended)" if chosen else ""), (cold, 100 * accuracy), textcoords="offset points",
                    xytext=(6, 6), fontsize=8)
    if reference_accuracy is not None:
        ax.axhline(100 * reference_accuracy, color="grey", linewidth=0.8, linestyle=":")
        ax.axhline(100 * reference_accuracy - max_drop_points, color="red", linewidth=0.8, linestyle="--",
                   label=f"float32 - {max_drop_points:g} points (allowed drop)")
        ax.legend(fontsize=8)
    ax.margins(0.15)
    ax.set_xlabel("cold start (ms)")
    ax.set_ylabel(f"{metric_title} (%)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _png(fig)


def latency_figure(samples: Mapping[str, Sequence[float]]) -> bytes:
    """Per backend row, every measured latency (jittered dots) and its box plot on one log axis,
    with p50/p90/p99 written beside it."""
    plt = _pyplot()
    rows = [row for row, values in samples.items() if len(values)]
    fig, ax = plt.subplots(figsize=(10, 1.0 + 0.62 * max(1, len(rows))))
    rng = np.random.default_rng(0)
    everything: list[float] = []
    for position, row in enumerate(rows):
        values = np.asarray(samples[row], float)
        values = values[values > 0]
        if not values.size:
            continue
        colour = COLOURS[position % len(COLOURS)]
        everything.extend(values)
        ax.scatter(values, position + rng.uniform(-0.22, 0.22, values.size), s=6, color=colour, alpha=0.35,
                   linewidths=0)
        ax.boxplot([values], positions=[position], orientation="horizontal", widths=0.55, whis=(1, 99), showfliers=False,
                   medianprops={"color": "black", "linewidth": 1.6}, boxprops={"color": colour},
                   whiskerprops={"color": colour}, capprops={"color": colour})
        p50, p90, p99 = np.quantile(values, [0.5, 0.9, 0.99])
        ax.annotate(f"p50 {p50:.3g}  p90 {p90:.3g}  p99 {p99:.3g} ms (n={values.size})", (1.01, position),
                    xycoords=("axes fraction", "data"), va="center", fontsize=8)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(rows, fontsize=9)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    if everything:
        ax.set_xscale("log")
        from matplotlib.ticker import FuncFormatter

        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xlabel("warm latency per photo, ms (log scale; box: quartiles, whiskers p1-p99)")
    ax.grid(alpha=0.3, axis="x", which="both")
    fig.tight_layout()
    return _png(fig)


COLD_START_PARTS = (("library", "library import", "#8c564b"), ("download", "model download", "#1f77b4"),
                    ("init", "init", "#ff7f0e"), ("first_inference", "first inference", "#2ca02c"))


def cold_start_figure(parts: Mapping[str, Mapping[str, float | None]]) -> bytes:
    """A waterfall per backend row: library import, model download, init and first inference, each
    starting where the one before ended, with the total at the end."""
    plt = _pyplot()
    rows = list(parts)
    fig, ax = plt.subplots(figsize=(10, 1.2 + 0.55 * max(1, len(rows))))
    longest = max((sum(v or 0.0 for v in parts[row].values()) for row in rows), default=0.0) or 1.0
    for position, row in enumerate(rows):
        start = 0.0
        for key, title, colour in COLD_START_PARTS:
            width = float(parts[row].get(key) or 0.0)
            ax.barh(position, width, left=start, height=0.6, color=colour, label=title if position == 0 else None)
            if width >= 0.08 * longest:
                ax.text(start + width / 2, position, f"{width:.0f}", ha="center", va="center", fontsize=7,
                        color="white")
            start += width
        ax.text(start + 0.01 * longest, position, f"{start:,.0f} ms", va="center", fontsize=8)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(rows, fontsize=9)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlim(0, longest * 1.15)
    ax.set_xlabel("cold start, ms from the start of the row (the time to the first digits of a first visit)")
    ax.legend(fontsize=8, ncol=4, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    return _png(fig)


def _heatmap(ax, values: np.ndarray, rows: Sequence[str], columns: Sequence[str], text: Sequence[Sequence[str]],
             cmap: str = "RdYlGn", vmax: float = 1.0) -> None:
    ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=0.0, vmax=vmax, aspect="auto")
    ax.set_xticks(range(len(columns)))
    ax.set_xticklabels(columns, fontsize=8)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(rows, fontsize=8)
    for i in range(len(rows)):
        for j in range(len(columns)):
            if text[i][j]:
                ax.text(j, i, text[i][j], ha="center", va="center", fontsize=7)


def per_class_figure(per_class: Mapping[str, Mapping[str, Mapping[str, float]]]) -> bytes:
    """Digit F1 per class (0-9) per backend row, as a heatmap with the values written in."""
    plt = _pyplot()
    rows = list(per_class)
    digits = [str(d) for d in range(10)]
    values = np.array([[per_class[r].get(d, {}).get("f1", np.nan) if per_class[r].get(d, {}).get("n") else np.nan
                        for d in digits] for r in rows], float)
    counts = [max((per_class[r].get(d, {}).get("n") or 0) for r in rows) for d in digits]
    fig, ax = plt.subplots(figsize=(10, 0.9 + 0.42 * max(1, len(rows))))
    text = [["" if np.isnan(v) else f"{100 * v:.0f}" for v in line] for line in values]
    _heatmap(ax, values, rows, [f"{d}\n(n={n})" for d, n in zip(digits, counts)], text)
    ax.set_title("digit F1 (%) per class at the operating threshold; n: true digits", fontsize=9)
    fig.tight_layout()
    return _png(fig)


def confusion_figure(confusions: Mapping[str, Mapping[str, Mapping[str, int]]]) -> bytes:
    """Per backend row, true digit (rows) against the label of the box that overlaps it, or "missed"
    (columns), as shares of the true digits of each class."""
    plt = _pyplot()
    rows = list(confusions)
    digits = [str(d) for d in range(10)]
    columns = [*digits, "missed"]
    cols = min(3, max(1, len(rows)))
    lines = (len(rows) + cols - 1) // cols
    fig, axes = plt.subplots(lines, cols, figsize=(4.3 * cols, 3.9 * lines), squeeze=False)
    for ax, row in zip(axes.flat, rows):
        table = confusions[row]
        counts = np.array([[table.get(t, {}).get(p, 0) for p in columns] for t in digits], float)
        totals = counts.sum(axis=1, keepdims=True)
        shares = np.divide(counts, totals, out=np.full_like(counts, np.nan), where=totals > 0)
        text = [[f"{int(c)}" if c else "" for c in line] for line in counts]
        _heatmap(ax, shares, digits, ["" if c == "missed" else c for c in columns], text, cmap="Blues")
        ax.set_xticks(range(len(columns)))
        ax.set_xticklabels([*digits, "miss"], fontsize=7)
        ax.set_title(row, fontsize=9)
        ax.set_xlabel("predicted", fontsize=8)
        ax.set_ylabel("true", fontsize=8)
    for ax in list(axes.flat)[len(rows):]:
        ax.axis("off")
    fig.tight_layout()
    return _png(fig)


def size_bucket_figure(buckets: Mapping[str, Mapping[str, Mapping[str, float | None]]]) -> bytes:
    """Per backend row, digit recall by the true digit's height and whole-number accuracy by the
    photo's median digit height, bucket by bucket (photo pixels)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    names = list(next(iter(buckets.values()), {}))
    for index, (row, table) in enumerate(buckets.items()):
        colour = COLOURS[index % len(COLOURS)]
        for ax, key, count in ((axes[0], "recall", "digits"), (axes[1], "sequence_accuracy", "photos")):
            xs = [i for i, name in enumerate(names) if table[name].get(count) and table[name].get(key) is not None]
            ax.plot(xs, [100 * table[names[i]][key] for i in xs], "o-", color=colour, label=row)
    first = next(iter(buckets.values()), {})
    for ax, title, count in ((axes[0], "digit recall (%) by digit height", "digits"),
                             (axes[1], "whole-number accuracy (%) by the photo's median digit height", "photos")):
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels([f"{n} px\n(n={first[n].get(count) or 0})" for n in names], fontsize=8)
        ax.set_ylim(-3, 103)
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def curve_figure(curves: Mapping[str, Sequence[tuple[float, float, float, float]]],
                 operating: Mapping[str, tuple[float, float]]) -> bytes:
    """Per backend row, digit precision against recall as the score threshold moves (from the row's
    candidates), with the row's own operating point starred; and whole-number accuracy against the
    threshold. ``curves`` holds (threshold, precision, recall, whole-number accuracy) points."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.0))
    for index, (row, points) in enumerate(curves.items()):
        colour = COLOURS[index % len(COLOURS)]
        if points:
            ordered = sorted(points)
            axes[0].plot([p[2] for p in ordered], [p[1] for p in ordered], "-", color=colour, label=row)
            axes[1].plot([p[0] for p in ordered], [100 * p[3] for p in ordered], "-", color=colour, label=row)
        if row in operating:
            precision, recall = operating[row]
            axes[0].plot([recall], [precision], "*", color=colour, markersize=12)
    axes[0].set_xlabel("digit recall")
    axes[0].set_ylabel("digit precision")
    axes[0].set_xlim(0, 1.02)
    axes[0].set_ylim(0, 1.02)
    axes[0].set_title("precision/recall over score thresholds (star: the row's own threshold)", fontsize=9)
    axes[1].set_xlabel("score threshold")
    axes[1].set_ylabel("whole-number accuracy (%)")
    axes[1].set_title("whole-number accuracy by threshold", fontsize=9)
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return _png(fig)
