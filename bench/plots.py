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
    """One past run's figures for one backend row."""

    label: str
    accepted: bool
    current: bool
    values: Mapping[str, float | None]


TREND_METRICS = (("p50_ms", "latency p50 (ms)"), ("p90_ms", "latency p90 (ms)"),
                 ("cold_start_ms", "cold start (ms)"), ("digit_f1", "digit F1"))


def trend_figure(series: Mapping[str, Sequence[TrendPoint]]) -> bytes:
    """Four panels (p50, p90, cold start, digit F1) over past runs, a line per backend row.

    Filled markers are accepted runs, hollow ones were not accepted; the current run is starred.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(11, 6.5), sharex=True)
    labels: list[str] = []
    for points in series.values():
        labels = [p.label for p in points] if len(points) > len(labels) else labels
    for (key, title), ax in zip(TREND_METRICS, axes.flat):
        for index, (row, points) in enumerate(series.items()):
            colour = COLOURS[index % len(COLOURS)]
            xs = [labels.index(p.label) for p in points if p.values.get(key) is not None]
            ys = [p.values[key] for p in points if p.values.get(key) is not None]
            if not xs:
                continue
            ax.plot(xs, ys, "-", color=colour, alpha=0.6, label=row)
            for p in points:
                value = p.values.get(key)
                if value is None:
                    continue
                x = labels.index(p.label)
                if p.current:
                    ax.plot([x], [value], "*", color=colour, markersize=14)
                else:
                    ax.plot([x], [value], "o", color=colour, markerfacecolor=colour if p.accepted else "white")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        if key == "digit_f1":
            ax.yaxis.set_major_formatter(lambda v, _: f"{100 * v:.1f}%")
    for ax in axes[1]:
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels, rotation=45, ha="right", fontsize=8)
    axes[0][0].legend(fontsize=8, loc="best")
    fig.suptitle("Trend over past runs of this suite on this machine (hollow: not accepted, star: this run)",
                 fontsize=10)
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
