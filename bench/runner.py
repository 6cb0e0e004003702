"""Runs backends over a dataset: cold start, first inference, warm-up, measured passes.

The runner owns timing and order; backends only recognize. Every record is appended to the
output folder as soon as it exists, and ``run.json`` is rewritten after each backend row, so an
interrupted run keeps everything it measured.
"""
from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from bench.backend import Backend
from bench.clock import ms_since
from bench.dataset import Dataset, load_dataset
from bench.environment import describe_environment
from bench.errors import BackendUnavailable, BenchError, PhotoError, UsageError, first_line
from bench.options import build_options
from bench.photos import MAX_MEGAPIXELS, LoadedPhoto, Photo
from bench.records import Recognition
from bench.registry import check_unselected_options, lookup, registered
from bench.results import PREDICTIONS, REPEATS, SCHEMA_VERSION, TRUTH, RunWriter
from bench.summary import cold_start_ms, summarize_row, truth_record


@dataclass
class RunConfig:
    """What to run. ``backends=None`` means every default backend that can run here."""

    backends: tuple[str, ...] | None = None
    dataset: str | None = None
    limit: int | None = None
    out: Path | None = None
    warmup: int = 3
    repeats: int = 1
    backend_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    max_megapixels: float = MAX_MEGAPIXELS
    max_consecutive_failures: int = 25
    reports_dir: Path = Path("reports")
    label: str | None = None

    def public(self) -> dict[str, Any]:
        return {"backends": list(self.backends) if self.backends else None, "dataset": self.dataset,
                "limit": self.limit, "warmup": self.warmup, "repeats": self.repeats,
                "max_megapixels": self.max_megapixels, "label": self.label}


@dataclass
class PlannedRow:
    """One backend configuration to measure, as a row of the report."""

    backend: str
    row: str
    cls: type[Backend]
    options: Any


@dataclass
class Plan:
    """The rows to run and the default backends left out, with the reason."""

    rows: list[PlannedRow]
    skipped: dict[str, str]
    notes: list[str] = field(default_factory=list)


@dataclass
class RunResult:
    """Where a run was written and its ``run.json`` content."""

    out: Path
    run: dict[str, Any]


class Observer(Protocol):
    """Progress reporting hooks (the CLI shows rich progress bars through these)."""

    def row_started(self, row: str, photos: int) -> None: ...
    def photo_done(self, row: str, record: dict[str, Any]) -> None: ...
    def row_finished(self, row: str, summary: dict[str, Any]) -> None: ...
    def note(self, message: str) -> None: ...


class SilentObserver:
    """An observer that reports nothing."""

    def row_started(self, row: str, photos: int) -> None:
        pass

    def photo_done(self, row: str, record: dict[str, Any]) -> None:
        pass

    def row_finished(self, row: str, summary: dict[str, Any]) -> None:
        pass

    def note(self, message: str) -> None:
        pass


def _options_for(name: str, cls: type[Backend], config: RunConfig) -> Any:
    return build_options(cls.Options, name, config.backend_options.get(name, {}))


def plan_run(config: RunConfig) -> Plan:
    """Resolve backend names to rows; unknown or unavailable named backends fail here, before any work."""
    rows: list[PlannedRow] = []
    skipped: dict[str, str] = {}
    if config.backends:
        for name in config.backends:
            cls = lookup(name).load()
            options = _options_for(name, cls, config)
            reason = cls.unavailable_reason(options)
            if reason:
                raise BackendUnavailable(f"--backends {name}: {reason}")
            rows.extend(PlannedRow(name, row, cls, opts) for row, opts in cls.rows(options))
    else:
        for name, entry in registered().items():
            try:
                cls = entry.load()
            except UsageError as exc:
                skipped[name] = str(exc)
                continue
            if not cls.default_enabled:
                continue
            options = _options_for(name, cls, config)
            reason = cls.skip_by_default_reason(options)
            if reason:
                skipped[name] = reason
                continue
            rows.extend(PlannedRow(name, row, cls, opts) for row, opts in cls.rows(options))
    if not rows:
        detail = "; ".join(f"{k}: {v}" for k, v in skipped.items()) or "no backends are registered"
        raise BackendUnavailable(f"no backend can run here ({detail})")
    return Plan(rows, skipped, check_unselected_options(config.backend_options, {r.backend for r in rows}))


def default_out(reports_dir: Path) -> Path:
    """``reports/<timestamp>-<short id>``."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(reports_dir) / f"{stamp}-{uuid.uuid4().hex[:6]}"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _one_line(exc: BaseException) -> str:
    text = first_line(exc, "")
    return text if isinstance(exc, BenchError) else f"{type(exc).__name__}: {text}"


class Runner:
    """Measures planned rows over a dataset and writes the output folder."""

    def __init__(self, config: RunConfig, plan: Plan, dataset: Dataset, writer: RunWriter,
                 observer: Observer | None = None) -> None:
        self.config = config
        self.plan = plan
        self.dataset = dataset
        self.writer = writer
        self.observer = observer or SilentObserver()
        self.truth = {p.image: truth_record(p.image, p.label, p.truth) for p in dataset.photos}
        self.run: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "run_id": writer.out.name,
            "status": "running",
            "started": _now(),
            "finished": None,
            "options": config.public(),
            "dataset": dataset.to_dict(),
            "environment": describe_environment(),
            "skipped": dict(plan.skipped),
            "backends": {},
        }

    def execute(self) -> dict[str, Any]:
        """Run every row; on Ctrl-C mark the run interrupted, keep what was written, re-raise."""
        for record in self.truth.values():
            self.writer.append(TRUTH, record)
        for problem in self.dataset.problems:
            self.observer.note(problem)
        for name, reason in self.plan.skipped.items():
            self.observer.note(f"skipped {name}: {reason}")
        for note in self.plan.notes:
            self.observer.note(note)
        self.writer.write_run(self.run)
        try:
            for planned in self.plan.rows:
                self._run_row(planned)
                self.writer.write_run(self.run)
        except KeyboardInterrupt:
            self._finish("interrupted")
            raise
        except BaseException:
            self._finish("failed")
            raise
        self._finish("complete")
        return self.run

    def _finish(self, status: str) -> None:
        self.run["status"] = status
        self.run["finished"] = _now()
        self.writer.write_run(self.run)
        self.writer.close()

    def _load(self, photo: Photo) -> LoadedPhoto:
        return photo.load(self.config.max_megapixels)

    def _warm_photos(self, count: int) -> list[LoadedPhoto]:
        loaded: list[LoadedPhoto] = []
        for photo in self.dataset.photos:
            if len(loaded) >= count:
                break
            try:
                loaded.append(self._load(photo))
            except PhotoError:
                continue
        return loaded

    def _call(self, backend: Backend, photos: Sequence[LoadedPhoto]) -> tuple[list[Recognition], float]:
        start = time.perf_counter_ns()
        try:
            results = backend.recognize(photos)
            if len(results) != len(photos):
                raise RuntimeError(f"backend returned {len(results)} results for {len(photos)} photos")
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            message = _one_line(exc)
            results = [Recognition.failed(message) for _ in photos]
        wall = ms_since(start) / max(len(photos), 1)
        return results, wall

    def _batches(self, size: int) -> Iterator[list[Photo]]:
        photos = self.dataset.photos
        for start in range(0, len(photos), max(size, 1)):
            yield photos[start:start + size]

    def _record(self, row: str, photo: Photo, result: Recognition, wall_ms: float | None) -> dict[str, Any]:
        record: dict[str, Any] = {
            "backend": row,
            "image": photo.image,
            "text": result.text,
            "digits": [d.to_dict() for d in result.digits] if result.error is None else [],
            "latency_ms": None if result.latency_ms is None else round(result.latency_ms, 4),
            "wall_ms": None if wall_ms is None else round(wall_ms, 4),
            "error": result.error,
        }
        if result.latency_ms is None and result.error is None and wall_ms is not None:
            record["latency_ms"] = record["wall_ms"]
            record["latency_source"] = "wall"
        if result.replayed:
            record["replayed"] = True
        if result.details:
            record["details"] = result.details
        return record

    def _run_row(self, planned: PlannedRow) -> None:
        row = planned.row
        backend = planned.cls(planned.options, row)
        summary: dict[str, Any] = {"backend": planned.backend, "status": "running",
                                   "options": backend.public_options()}
        self.run["backends"][row] = summary
        self.observer.row_started(row, len(self.dataset.photos))
        records: list[dict[str, Any]] = []
        extra_latency: list[float] = []
        try:
            start = time.perf_counter_ns()
            try:
                cold = backend.open()
            except KeyboardInterrupt:
                raise
            except Exception as exc:
                summary.update(status="failed", error=_one_line(exc))
                self.observer.note(f"{row}: could not start: {_one_line(exc)}")
                self.observer.row_finished(row, summary)
                return
            open_wall = ms_since(start)
            warm = self._warm_photos(max(self.config.warmup, backend.batch_size, 1))
            first_ms = None
            if warm:
                first, first_wall = self._call(backend, warm[:1])
                first_ms = first[0].latency_ms if first[0].latency_ms is not None else first_wall
                if first[0].error:
                    self.observer.note(f"{row}: first inference failed: {first[0].error}")
                size = backend.batch_size
                for call in range(self.config.warmup):
                    self._call(backend, [warm[(call * size + k) % len(warm)] for k in range(size)])
            summary.update(cold_start_ms=cold_start_ms(cold.to_dict(), first_ms),
                           download_bytes=int(cold.download_bytes), open_wall_ms=round(open_wall, 3),
                           cold_start_details=cold.details, warmup=self.config.warmup,
                           repeats=self.config.repeats)
            for repeat in range(self.config.repeats):
                failures = 0
                for batch in self._batches(backend.batch_size):
                    loaded, failed = [], {}
                    for photo in batch:
                        try:
                            loaded.append(self._load(photo))
                        except PhotoError as exc:
                            failed[photo.image] = str(exc)
                    stopped = failures >= self.config.max_consecutive_failures
                    results, wall = self._call(backend, loaded) if loaded and not stopped else ([], None)
                    by_image = {lp.photo.image: r for lp, r in zip(loaded, results)}
                    for photo in batch:
                        if photo.image in failed:
                            result, photo_wall = Recognition.failed(failed[photo.image]), None
                        elif stopped:
                            result, photo_wall = Recognition.failed(
                                f"not run: {row} stopped after {failures} consecutive failures"), None
                        else:
                            result, photo_wall = by_image[photo.image], wall
                            failures = failures + 1 if result.error else 0
                        record = self._record(row, photo, result, photo_wall)
                        if repeat == 0:
                            self.writer.append(PREDICTIONS, record)
                            records.append(record)
                            self.observer.photo_done(row, record)
                        else:
                            self.writer.append(REPEATS, {"backend": row, "image": photo.image, "repeat": repeat,
                                                         "latency_ms": record["latency_ms"],
                                                         "wall_ms": record["wall_ms"], "error": record["error"]})
                            if record["error"] is None and record["latency_ms"] is not None:
                                extra_latency.append(record["latency_ms"])
            summary["status"] = "complete"
        except KeyboardInterrupt:
            summary["status"] = "interrupted"
            raise
        finally:
            try:
                summary["describe"] = backend.describe()
            except Exception as exc:
                summary["describe"] = {"error": _one_line(exc)}
            backend.close()
            if records:
                summary.update(summarize_row(records, self.truth, extra_latency))
            if summary["status"] != "running":
                self.observer.row_finished(row, summary)


def run_benchmark(config: RunConfig, observer: Observer | None = None,
                  dataset: Dataset | None = None) -> RunResult:
    """Plan, load the dataset, run every row, and write the output folder with its reports."""
    plan = plan_run(config)
    if dataset is None:
        dataset = load_dataset(config.dataset)
    dataset = dataset.limited(config.limit)
    out = Path(config.out) if config.out else default_out(config.reports_dir)
    writer = RunWriter(out)
    runner = Runner(config, plan, dataset, writer, observer)
    try:
        run = runner.execute()
    finally:
        from bench.report import write_reports

        write_reports(out, runner.run)
    return RunResult(out, run)
