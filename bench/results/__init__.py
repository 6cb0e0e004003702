"""The result model: what a run is, typed, frozen, written and read in one place.

- :mod:`bench.results.records`: boxes, digits, and what a backend returns (``Recognition``,
  ``ColdStart``);
- :mod:`bench.results.metadata`: a run's options, dataset and environment;
- :mod:`bench.results.run`: ``Run`` and its ``RowResult`` rows with their raw records and derived
  figures;
- :mod:`bench.results.folder`: the run folder (``run.json`` + JSONL files), written as results
  are produced and read back as a ``Run``.
"""
