"""Runs backends over a dataset: cold start, first inference, warm-up, measured passes.

The runner owns timing and order; backends only recognize. Every record is appended to the
output folder as soon as it exists, and ``run.json`` is rewritten after each backend row, so an
interrupted run keeps everything it measured. What it returns is the finished
:class:`bench.results.run.Run`.
"""
from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from bench.backend import Backend
from bench.clock import ms_since
from bench.dataset import Dataset, load_dataset
from bench.environment import PACKAGES, describe_environment
from bench.errors import BackendUnavailable, BenchError, PhotoError, RunInterrupted, UsageError, first_line
from bench.metrics import IOU_THRESHOLD
from bench.options import build_options
from bench.photos import MAX_MEGAPIXELS, LoadedPhoto, Photo
from bench.registry import check_unselected_options, declared_packages, lookup, registered
from bench.report_files import write_reports
from bench.results.folder import RunWriter
from bench.results.metadata import RunOptions
from bench.results.records import ColdStart, Recognition
from bench.results.run import (COMPLETE, DEFAULT_TARGET_PRECISION, FAILED, INTERRUPTED, RUNNING, ColdStartFigures,
                               PhotoRecord, RepeatRecord, RowResult, Run, SessionFacts, TruthRecord, measured)
from bench.sessions import Dealt, Session, deal
from bench.stats import LatencyStats


DEFAULT_MAX_ERROR_RATE = 0.5
"""A row whose photos fail more often than this did not do what was asked: the row and the run fail."""
DEFAULT_CANDIDATES_FLOOR = 0.05
"""Candidates (detections below the operating threshold, kept so any threshold can be rebuilt) score at
least this."""
DEFAULT_MAX_REPEATS = 20
"""The most measured passes the run-length rules (``--min-photos``, ``--min-duration-s``,
``--latency-precision``) may add up to."""


@dataclass(frozen=True)
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
    max_error_rate: float = DEFAULT_MAX_ERROR_RATE
    iou: float = IOU_THRESHOLD
    target_precision: float = DEFAULT_TARGET_PRECISION
    candidates_floor: float = DEFAULT_CANDIDATES_FLOOR
    min_photos: int = 0
    min_duration_s: float = 0.0
    latency_precision: float | None = None
    max_repeats: int = DEFAULT_MAX_REPEATS
    sessions: int = 1

    def options(self) -> RunOptions:
        """The run-wide options as ``run.json`` records them."""
        return RunOptions(backends=tuple(self.backends) if self.backends else None, dataset=self.dataset,
                          limit=self.limit, warmup=self.warmup, repeats=self.repeats,
                          max_megapixels=self.max_megapixels, label=self.label, max_error_rate=self.max_error_rate,
                          iou=self.iou, target_precision=self.target_precision,
                          candidates_floor=self.candidates_floor, min_photos=self.min_photos,
                          min_duration_s=self.min_duration_s, latency_precision=self.latency_precision,
                          max_repeats=self.max_repeats, sessions=self.sessions)


@dataclass(frozen=True)
class Started:
    """A backend opened and warmed up: its cold start as it reported it, the figures, the open wall time."""

    cold: ColdStart
    figures: ColdStartFigures
    open_wall_ms: float


@dataclass(frozen=True)
class PlannedRow:
    """One backend configuration to measure, as a row of the report."""

    backend: str
    row: str
    cls: type[Backend]
    options: Any


@dataclass(frozen=True)
class Plan:
    """The rows to run and the default backends left out, with the reason."""

    rows: list[PlannedRow]
    skipped: dict[str, str]
    notes: list[str] = field(default_factory=list)


class Observer(Protocol):
    """Progress reporting hooks (the CLI shows rich progress bars through these)."""

    def row_started(self, row: str, photos: int) -> None: ...
    def photo_done(self, row: str, record: PhotoRecord) -> None: ...
    def row_finished(self, row: str, result: RowResult) -> None: ...
    def note(self, message: str) -> None: ...


class SilentObserver:
    """An observer that reports nothing."""

    def row_started(self, row: str, photos: int) -> None:
        pass

    def photo_done(self, row: str, record: PhotoRecord) -> None:
        pass

    def row_finished(self, row: str, result: RowResult) -> None:
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


def _checked(backend: Backend, result: Recognition) -> Recognition:
    """The backend's result, or a failed one saying what in it is unusable."""
    problem = result.problem() if result.error is None else None
    if problem is None:
        return result
    return Recognition.failed(f"{backend.row} returned {problem}")


def _described(backend: Backend) -> dict[str, Any]:
    try:
        return backend.describe()
    except Exception as exc:
        return {"error": _one_line(exc)}


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
        self.truth = {p.image: TruthRecord(p.image, p.label, tuple(p.truth)) for p in dataset.photos}
        self.run = Run(run_id=uuid.uuid4().hex, status=RUNNING, started=_now(), finished=None,
                       options=config.options(), dataset=dataset.info(),
                       environment=describe_environment(tuple(dict.fromkeys(PACKAGES + declared_packages()))),
                       skipped=dict(plan.skipped), truth=self.truth, folder=writer.out)

    def execute(self) -> Run:
        """Run every row; the run is complete only when every row is. On Ctrl-C or SIGTERM mark the
        run interrupted, keep what was written, and raise :class:`bench.errors.RunInterrupted`."""
        for record in self.truth.values():
            self.writer.truth(record)
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
            self._finish(INTERRUPTED)
            raise RunInterrupted(self.run) from None
        except BaseException:
            self._finish(FAILED)
            raise
        self._finish(COMPLETE if all(row.status == COMPLETE for row in self.run.rows.values()) else FAILED)
        return self.run

    def _finish(self, status: str) -> None:
        self.run = self.run.ended(status, _now())
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

    def _call(self, backend: Backend, photos: Sequence[LoadedPhoto]) -> tuple[list[Recognition], float, bool]:
        """Recognize loaded photos: the results, the wall time per photo, and whether the backend raised."""
        start = time.perf_counter_ns()
        raised = False
        try:
            results = backend.recognize(photos)
            if len(results) != len(photos):
                raise RuntimeError(f"backend returned {len(results)} results for {len(photos)} photos")
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            message, raised = _one_line(exc), True
            results = [Recognition.failed(message) for _ in photos]
        wall = ms_since(start) / max(len(photos), 1)
        return [_checked(backend, r) for r in results], wall, raised

    def _batches(self, size: int) -> Iterator[list[Photo]]:
        photos = self.dataset.photos
        for start in range(0, len(photos), max(size, 1)):
            yield photos[start:start + size]

    def _start(self, backend: Backend, row: str) -> Started:
        """Open a backend, then its first inference and the warm-up calls."""
        size = backend.batch_size
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise UsageError(f"{row}: the backend's batch_size is {size!r}; it must be a whole number of 1 or more")
        start = time.perf_counter_ns()
        cold = backend.open()
        open_wall = ms_since(start)
        warm = self._warm_photos(max(self.config.warmup, backend.batch_size, 1))
        first_ms = None
        if warm:
            first, first_wall, _ = self._call(backend, warm[:1])
            first_ms = first[0].latency_ms if first[0].latency_ms is not None else first_wall
            if first[0].error:
                self.observer.note(f"{row}: first inference failed: {first[0].error}")
            size = backend.batch_size
            for call in range(self.config.warmup):
                self._call(backend, [warm[(call * size + k) % len(warm)] for k in range(size)])
        return Started(cold, ColdStartFigures.of(cold, first_ms), open_wall)

    def _start_sessions(self, planned: PlannedRow, first: Backend) -> list[tuple[Backend, Started | Exception]]:
        """Start ``first`` and the row's other sessions (``--sessions``) at once, each opened and warmed up."""
        backends = [first, *(planned.cls(planned.options, planned.row) for _ in range(self.config.sessions - 1))]

        def start_one(backend: Backend) -> tuple[Backend, Started | Exception]:
            try:
                return backend, self._start(backend, planned.row)
            except Exception as exc:
                if backend is not first:
                    backend.close()
                return backend, exc

        if len(backends) == 1:
            return [start_one(first)]
        with ThreadPoolExecutor(max_workers=len(backends)) as pool:
            return list(pool.map(start_one, backends))

    def _replacement(self, planned: PlannedRow) -> Callable[[], Backend]:
        def replace_session() -> Backend:
            backend = planned.cls(planned.options, planned.row)
            try:
                self._start(backend, planned.row)
            except BaseException:
                backend.close()
                raise
            self.observer.note(f"{planned.row}: a lost session was replaced by a new one")
            return backend
        return replace_session

    def _run_row(self, planned: PlannedRow) -> None:
        row = planned.row
        backend = planned.cls(planned.options, row)
        result = RowResult(row=row, backend=planned.backend, status=RUNNING, options=backend.public_options(),
                           truth=self.truth, iou=self.config.iou, target_precision=self.config.target_precision)
        self.run = self.run.with_row(result)
        self.observer.row_started(row, len(self.dataset.photos))
        records: list[PhotoRecord] = []
        repeats: list[RepeatRecord] = []
        sessions = [Session(0, backend)]
        started: list[Started] = []
        cold_facts: dict[str, Any] = {}
        status, error = RUNNING, None
        try:
            outcomes = self._start_sessions(planned, backend)
            if isinstance(outcomes[0][1], Exception):
                status, error = FAILED, _one_line(outcomes[0][1])
                self.observer.note(f"{row}: could not start: {error}")
                return
            started.append(outcomes[0][1])
            for more, outcome in outcomes[1:]:
                if isinstance(outcome, Exception):
                    self.observer.note(f"{row}: a session could not start: {_one_line(outcome)}")
                    continue
                sessions.append(Session(len(sessions), more))
                started.append(outcome)
            first = started[0]
            cold_facts = dict(cold_start=first.figures, download_bytes=int(first.cold.download_bytes),
                              library_bytes=int(first.cold.library_bytes), open_wall_ms=round(first.open_wall_ms, 3),
                              cold_start_details=dict(first.cold.details), warmup=self.config.warmup)
            passes, measuring = 0, time.perf_counter_ns()
            while passes == 0 or self._another_pass(row, passes, measuring, records, repeats):
                for record in self._measured_pass(sessions, planned):
                    if passes == 0:
                        self.writer.prediction(record)
                        records.append(record)
                        self.observer.photo_done(row, record)
                    else:
                        extra = RepeatRecord.of(record, passes)
                        self.writer.repeat(extra)
                        repeats.append(extra)
                passes += 1
            cold_facts["repeats"] = passes
            status, error = self._judged(records)
        except KeyboardInterrupt:
            status = INTERRUPTED
            raise
        finally:
            described = [_described(s.backend) for s in sessions]
            for session in sessions:
                for used in session.backends:
                    used.close()
            describe = described[0]
            if len(sessions) > 1:
                cold_facts.update(sessions=tuple(SessionFacts(s.index, facts.figures, s.photos, len(s.retired), about)
                                                 for s, facts, about in zip(sessions, started, described)),
                                  sessions_share_machine=planned.cls.runs_on_this_machine(planned.options))
            result = replace(result, status=status, error=error, describe=describe, records=tuple(records),
                             repeat_records=tuple(repeats), **cold_facts)
            self.run = self.run.with_row(result)
            if status != RUNNING:
                self.observer.row_finished(row, result)

    def _another_pass(self, row: str, passes: int, since_ns: int, records: list[PhotoRecord],
                      repeats: list[RepeatRecord]) -> bool:
        """Whether the run-length rules (MLPerf LoadGen's minimum query count and duration, and an
        optional precision of p90) ask for one more measured pass."""
        config = self.config
        if passes < config.repeats:
            return True
        samples = measured([*records, *repeats])
        if passes >= max(config.max_repeats, config.repeats) or not measured(records):
            return False
        wanted = []
        if len(samples) < config.min_photos:
            wanted.append(f"{len(samples)} of --min-photos {config.min_photos} latency samples")
        if ms_since(since_ns) / 1000 < config.min_duration_s:
            wanted.append(f"under --min-duration-s {config.min_duration_s:g}")
        if config.latency_precision is not None:
            stats = LatencyStats.of(samples)
            if stats is None or stats.relative_halfwidth("p90") > config.latency_precision:
                wanted.append(f"p90 interval wider than +-{config.latency_precision:.0%}")
        if wanted and passes + 1 >= max(config.max_repeats, config.repeats):
            self.observer.note(f"{row}: pass {passes + 1} is the last (--max-repeats): " + "; ".join(wanted))
        return bool(wanted)

    def _judged(self, records: list[PhotoRecord]) -> tuple[str, str | None]:
        """A measured row is complete unless its photos failed more often than ``max_error_rate``."""
        failed = [r for r in records if r.failed]
        if records and len(failed) / len(records) > self.config.max_error_rate:
            return FAILED, (f"{len(failed)} of {len(records)} photos failed, over --max-error-rate "
                            f"{self.config.max_error_rate:g}; first: {failed[0].error}")
        return COMPLETE, None

    def _loaded_call(self, backend: Backend, batch: Sequence[Photo]) -> tuple[list[Recognition], list[float | None],
                                                                               bool]:
        """Load a batch's photos and recognize those that load: a result and a wall time per photo (none for
        a photo that did not load), and whether the backend's engine failed (it raised, or is not healthy)."""
        loaded, failed = [], {}
        for photo in batch:
            try:
                loaded.append(self._load(photo))
            except PhotoError as exc:
                failed[photo.image] = str(exc)
        results, wall, raised = self._call(backend, loaded) if loaded else ([], None, False)
        by_image = {lp.photo.image: r for lp, r in zip(loaded, results)}
        merged = [Recognition.failed(failed[p.image]) if p.image in failed else by_image[p.image] for p in batch]
        walls = [None if p.image in failed else wall for p in batch]
        return merged, walls, raised or not backend.healthy()

    def _measured_pass(self, sessions: list[Session], planned: PlannedRow) -> Iterator[PhotoRecord]:
        """One pass over every photo, batch by batch, dealt across the row's sessions; a row that keeps
        failing stops calling the backend."""
        row, failures = planned.row, 0
        batches = list(self._batches(sessions[0].backend.batch_size))
        if len(sessions) == 1:
            dealt = (Dealt(number, batch, *self._loaded_call(sessions[0].backend, batch)[:2], None)
                     for number, batch in enumerate(batches))
        else:
            dealt = deal(sessions, batches, self._loaded_call, self._replacement(planned))
        done = 0
        for item in dealt:
            for photo, result, wall in zip(item.items, item.results, item.walls):
                yield PhotoRecord.of(row, photo.image, result, wall, self.config.candidates_floor, item.session)
                failures = failures + 1 if result.error else 0
            done += 1
            if failures >= self.config.max_consecutive_failures:
                break
        dealt.close()
        for batch in batches[done:]:
            for photo in batch:
                yield PhotoRecord.of(row, photo.image, Recognition.failed(
                    f"not run: {row} stopped after {failures} consecutive failures"), None)


def run_benchmark(config: RunConfig, observer: Observer | None = None, dataset: Dataset | None = None) -> Run:
    """Plan, load the dataset, run every row, and write the output folder with its reports."""
    plan = plan_run(config)
    if dataset is None:
        dataset = load_dataset(config.dataset)
    dataset = dataset.limited(config.limit)
    out = Path(config.out) if config.out else default_out(config.reports_dir)
    writer = RunWriter(out)
    runner = Runner(config, plan, dataset, writer, observer)
    try:
        return runner.execute()
    finally:
        write_reports(runner.run, {photo.image: photo for photo in dataset.photos})
