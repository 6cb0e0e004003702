"""The accuracy analysis of a run folder as Markdown tables (issue 13's README figures).

    .venv/bin/python scripts/analysis_table.py reports/RUN

Prints per row: digit F1 and whole-number accuracy at the operating threshold, AP50 and COCO mAP
(from the candidates), the threshold that maximises whole-number accuracy, the one reaching the
target precision, coverage at 98% whole-number accuracy, and digit F1 by digit height. Everything is
recomputed from the folder's records, as ``bench show`` does.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.detection import SIZE_BUCKETS, bucket_name  # noqa: E402
from bench.report import markdown_table  # noqa: E402
from bench.results.folder import read_run  # noqa: E402


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def main(folder: str) -> int:
    run = read_run(folder)
    head = ["row", "digit F1", "whole number", "AP50", "mAP .5:.95", "best threshold (whole number)",
            f"threshold at precision {run.options.target_precision:g} (recall)", "coverage at 98%"]
    sizes = ["row", *(f"F1 {bucket_name(i)} px" for i in range(len(SIZE_BUCKETS)))]
    table, by_size = [head], [sizes]
    for name, row in run.rows.items():
        if row.figures is None or row.analysis is None:
            continue
        accuracy, detection, confidence = row.figures.accuracy, row.analysis.detection, row.analysis.confidence
        best, target = confidence.best, confidence.at_target
        table.append([name, pct(accuracy.f1), pct(accuracy.sequence_accuracy), pct(detection["ap50"]),
                      pct(detection["coco_map"]),
                      "-" if best is None else f"{best.threshold:.2f} ({pct(best.sequence_accuracy)})",
                      "-" if target is None else f"{target.threshold:.2f} ({pct(target.recall)})",
                      pct(confidence.coverage_98["coverage"])])
        buckets = detection["size_buckets"]
        by_size.append([name, *(f"{pct(b['f1'])} ({b['digits']})" for b in buckets.values())])
    print(f"{run.dataset.photos} photos of {run.dataset.name}, IoU {run.options.iou:g}, candidates from score "
          f"{run.options.candidates_floor:g}")
    print("\n".join(markdown_table(table)))
    print()
    print("\n".join(markdown_table(by_size)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
