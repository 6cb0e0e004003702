"""Measure Tesseract preprocessing/segmentation settings on a dataset and print a table.

    .venv/bin/python scripts/tune_tesseract.py ../shared/datasets/svhn/test-dev --limit 150

Each configuration is a normal `bench run` (library API) into a temporary folder; the table
shows digit F1, whole-number accuracy and p50 latency, best F1 first. The README's Tesseract
defaults come from this script.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench.dataset import load_dataset
from bench.runner import RunConfig, run_benchmark

CONFIGS = {
    "psm7 raw": {"psm": "7", "grayscale": "false", "min_height": "0", "invert": "never"},
    "psm7 gray": {"psm": "7", "min_height": "0", "invert": "never"},
    "psm7 gray up96": {"psm": "7", "invert": "never"},
    "psm7 gray up96 auto-invert": {"psm": "7"},
    "psm7 gray up96 auto-invert otsu": {"psm": "7", "binarize": "otsu"},
    "psm8 gray up96 auto-invert": {"psm": "8"},
    "psm13 gray up96 auto-invert": {"psm": "13"},
    "psm11 gray up96 auto-invert": {"psm": "11"},
    "psm7 gray up160 auto-invert": {"psm": "7", "min_height": "160"},
    "psm11 gray up160 auto-invert": {"psm": "11", "min_height": "160"},
    "psm11 gray up96": {"psm": "11", "invert": "never"},
    "psm6 gray up96 auto-invert": {"psm": "6"},
    "psm12 gray up96 auto-invert": {"psm": "12"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset")
    parser.add_argument("--limit", type=int, default=150)
    parser.add_argument("--only", help="comma-separated configuration names")
    args = parser.parse_args()
    dataset = load_dataset(args.dataset).limited(args.limit)
    names = args.only.split(",") if args.only else list(CONFIGS)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for index, name in enumerate(names):
            config = RunConfig(backends=("tesseract",), out=Path(tmp) / str(index), warmup=1,
                               backend_options={"tesseract": CONFIGS[name]})
            figures = run_benchmark(config, dataset=dataset).rows["tesseract"].figures
            f1, whole, p50 = figures.accuracy.f1, figures.accuracy.sequence_accuracy, figures.latency.p50
            results.append((name, f1, whole, p50))
            print(f"{name:36s} F1 {f1:.3f}  whole {whole:.3f}  p50 {p50:.0f} ms", flush=True)
    print(f"\n{len(dataset.photos)} photos of {dataset.name}; best digit F1 first:")
    for name, f1, whole, p50 in sorted(results, key=lambda r: -r[1]):
        print(f"| {name} | {f1:.3f} | {whole:.3f} | {p50:.0f} |")


if __name__ == "__main__":
    main()
