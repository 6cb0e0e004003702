"""A run as the comparison, the store and the reports need it: metadata plus raw records."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.results import PREDICTIONS, REPEATS, TRUTH, read_jsonl, read_run
from bench.summary import measured_latencies, photo_correctness, summarize_row


@dataclass
class RunData:
    """``run.json`` with every prediction line, repeat line and truth line of one run.

    ``source`` says where it was read from (a folder, or ``history #ID`` for a stored run).
    """

    run: dict[str, Any]
    predictions: list[dict[str, Any]]
    truth: dict[str, dict[str, Any]]
    repeats: list[dict[str, Any]] = field(default_factory=list)
    source: str = ""
    history_id: int | None = None

    @classmethod
    def from_folder(cls, folder: str | Path) -> RunData:
        """Read a run folder written by ``bench run``."""
        folder = Path(folder)
        run = read_run(folder)
        truth = {t["image"]: t for t in read_jsonl(folder / TRUTH)}
        return cls(run, read_jsonl(folder / PREDICTIONS), truth, read_jsonl(folder / REPEATS),
                   source=str(folder))

    @property
    def label(self) -> str:
        """How to name this run to a person."""
        if self.history_id is not None:
            return f"#{self.history_id} ({self.run.get('run_id')})"
        return self.source or str(self.run.get("run_id"))

    @property
    def rows(self) -> list[str]:
        """Backend rows in run order."""
        return list(self.run.get("backends", {}))

    def row_summary(self, row: str) -> dict[str, Any]:
        """The row's entry of ``run.json`` (cold start, options, describe ...)."""
        return self.run.get("backends", {}).get(row, {})

    def records(self, row: str) -> list[dict[str, Any]]:
        """The row's prediction lines, in dataset order."""
        return [r for r in self.predictions if r.get("backend") == row]

    def latencies(self, row: str) -> list[float]:
        """Every measured latency of the row in ms: the first pass, then the repeats."""
        return [*measured_latencies(self.records(row)), *self.repeat_latencies(row)]

    def repeat_latencies(self, row: str) -> list[float]:
        """The measured latencies of the row's extra passes (``--repeats``), in ms."""
        return measured_latencies(r for r in self.repeats if r.get("backend") == row)

    def latency_floors(self, row: str) -> tuple[dict[str, float], int]:
        """Per image, the smallest latency over its passes, and the most passes any image had.

        Other work on the machine only ever adds time, so the floor of several passes is the
        figure least moved by interference (Chen & Revels, "Robust benchmarking in noisy
        environments", 2016).
        """
        passes: dict[str, list[float]] = {}
        for record in [*self.records(row), *(r for r in self.repeats if r.get("backend") == row)]:
            if record.get("error") is None and record.get("latency_ms") is not None:
                passes.setdefault(record["image"], []).append(float(record["latency_ms"]))
        return {image: min(values) for image, values in passes.items()}, max(map(len, passes.values()), default=0)

    def recomputed(self, row: str) -> dict[str, Any]:
        """The row's figures recomputed from its raw records (:func:`bench.summary.summarize_row`)."""
        return summarize_row(self.records(row), self.truth, self.repeat_latencies(row))

    def correctness(self, row: str) -> dict[str, Any]:
        """Per image: the :class:`bench.metrics.PhotoScore` of the row's prediction."""
        return {r["image"]: photo_correctness(r, self.truth[r["image"]]) for r in self.records(row)
                if r["image"] in self.truth}
