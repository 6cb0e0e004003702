"""digitbench: which recognizer, model and quantization should a web page ship?

The library API, the front door of everything the ``bench`` command does::

    from bench import RunConfig, run_benchmark, compare_runs, read_run

    run = run_benchmark(RunConfig(backends=("tesseract",), dataset="path/to/svhn/test-dev", limit=50))
    run.rows["tesseract"].figures.accuracy.f1        # typed, frozen results (bench.results)
    compare_runs(read_run("reports/old-run"), run)    # significance-tested comparison

Names are imported on first use, so ``import bench`` stays cheap.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "run_benchmark": "bench.runner", "RunConfig": "bench.runner", "Observer": "bench.runner",
    "Run": "bench.results.run", "RowResult": "bench.results.run", "PhotoRecord": "bench.results.run",
    "TruthRecord": "bench.results.run", "read_run": "bench.results.folder",
    "Backend": "bench.backend", "SweepAxis": "bench.backend", "option": "bench.options",
    "Recognition": "bench.results.records", "ColdStart": "bench.results.records", "Digit": "bench.results.records",
    "load_dataset": "bench.dataset", "Dataset": "bench.dataset",
    "compare_runs": "bench.compare", "Thresholds": "bench.compare", "Comparison": "bench.compare",
    "HistoryStore": "bench.history", "record_run": "bench.history", "open_run": "bench.history",
    "run_nightly": "bench.nightly", "load_config": "bench.suites",
    "BenchError": "bench.errors", "UsageError": "bench.errors",
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'bench' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
