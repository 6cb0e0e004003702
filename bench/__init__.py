"""digitbench: which recognizer, model and quantization should a web page ship?

The library API: :func:`bench.runner.run_benchmark` runs backends over a dataset and writes
the results; :func:`bench.dataset.load_dataset` reads datasets; :mod:`bench.metrics` defines
accuracy. The ``bench`` command is a thin layer over these.
"""

__version__ = "0.1.0"
