"""A run as one typed object: its metadata and, per backend row, cold start, raw records and figures.

Raw records are kept and every figure is derived from them, once per object (pytest-benchmark's
``Stats``): a :class:`RowResult` scores its photos and summarises its latencies the first time
they are asked for, and everything after the runner (history, compare, nightly, sweep, reports)
reads those figures from the object it was handed.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from bench.agreement import Agreement, Readings, agreement_table
from bench.confidence import CurvePoint, at_precision, best_threshold, coverage, curve
from bench.detection import PhotoDetections, detection_figures, detections_of
from bench.metrics import IOU_THRESHOLD, Accuracy, PhotoScore, aggregate, read_number, score_photo
from bench.results.metadata import DatasetInfo, Environment, RunOptions
from bench.results.records import ColdStart, Digit, Recognition, TrueDigit
from bench.stats import LatencyStats

SCHEMA_VERSION = 2
"""The version of ``run.json`` and the JSONL files this digitbench writes.

Change log:
- 1: run.json with ``backends: {ROW: {...}}``; predictions.jsonl, repeats.jsonl, truth.jsonl.
- 2: ``cold_start_ms.library`` (the recognizer's own code before the model) and ``library_bytes`` on
  each row; ``end_to_end_ms`` per record (and per repeat) and its statistics per row;
  ``candidates`` per record (every detection above a low floor). Version 1 files read as having
  no library part, no end-to-end time and no candidates.
"""
READABLE_SCHEMAS = (1, 2)

RUNNING, COMPLETE, INTERRUPTED, FAILED = "running", "complete", "interrupted", "failed"


def _rounded(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)


@dataclass(frozen=True)
class TruthRecord:
    """One line of ``truth.jsonl``: a photo's true number and digit boxes."""

    image: str
    label: str
    digits: tuple[TrueDigit, ...]

    def to_json(self) -> dict[str, Any]:
        return {"image": self.image, "label": self.label, "boxes": [d.to_json() for d in self.digits]}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> TruthRecord:
        return cls(str(raw["image"]), str(raw["label"]), tuple(TrueDigit.from_json(b) for b in raw["boxes"]))


@dataclass(frozen=True)
class PhotoRecord:
    """One line of ``predictions.jsonl``: a backend row's answer for one photo (first measured pass).

    ``latency_source`` is ``"wall"`` when the backend gave no latency of its own and the runner's
    wall-clock time stands in for it.
    """

    row: str
    image: str
    text: str = ""
    digits: tuple[Digit, ...] = ()
    latency_ms: float | None = None
    wall_ms: float | None = None
    error: str | None = None
    latency_source: str | None = None
    replayed: bool = False
    details: Mapping[str, Any] = field(default_factory=dict)
    end_to_end_ms: float | None = None
    candidates: tuple[Digit, ...] | None = None
    session: int | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None

    @property
    def measured_latency(self) -> float | None:
        """The latency of a photo that succeeded, else ``None``."""
        return None if self.failed else self.latency_ms

    @classmethod
    def of(cls, row: str, image: str, result: Recognition, wall_ms: float | None,
           candidates_floor: float = 0.0, session: int | None = None) -> PhotoRecord:
        """The record of a backend's result; the wall time stands in for a missing latency, and only the
        candidates scoring at least ``candidates_floor`` are kept."""
        latency, source = _rounded(result.latency_ms), None
        if latency is None and result.error is None and wall_ms is not None:
            latency, source = _rounded(wall_ms), "wall"
        candidates = None
        if result.candidates is not None and result.error is None:
            candidates = tuple(c for c in result.candidates if c.score >= candidates_floor)
        return cls(row=row, image=image, text=result.text,
                   digits=tuple(result.digits) if result.error is None else (),
                   latency_ms=latency, wall_ms=_rounded(wall_ms), error=result.error, latency_source=source,
                   replayed=result.replayed, details=dict(result.details),
                   end_to_end_ms=_rounded(result.end_to_end_ms), candidates=candidates, session=session)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"backend": self.row, "image": self.image, "text": self.text,
                               "digits": [d.to_dict() for d in self.digits], "latency_ms": self.latency_ms,
                               "wall_ms": self.wall_ms, "error": self.error}
        if self.end_to_end_ms is not None:
            out["end_to_end_ms"] = self.end_to_end_ms
        if self.candidates is not None:
            out["candidates"] = [d.to_dict() for d in self.candidates]
        if self.session is not None:
            out["session"] = self.session
        if self.latency_source:
            out["latency_source"] = self.latency_source
        if self.replayed:
            out["replayed"] = True
        if self.details:
            out["details"] = dict(self.details)
        return out

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> PhotoRecord:
        candidates = raw.get("candidates")
        return cls(row=str(raw["backend"]), image=str(raw["image"]), text=str(raw.get("text") or ""),
                   digits=tuple(Digit.from_json(d) for d in raw.get("digits") or ()),
                   latency_ms=raw.get("latency_ms"), wall_ms=raw.get("wall_ms"), error=raw.get("error"),
                   latency_source=raw.get("latency_source"), replayed=bool(raw.get("replayed")),
                   details=dict(raw.get("details") or {}), end_to_end_ms=raw.get("end_to_end_ms"),
                   candidates=None if candidates is None else tuple(Digit.from_json(d) for d in candidates),
                   session=raw.get("session"))

    @property
    def measured_end_to_end(self) -> float | None:
        """The end-to-end time of a photo that succeeded, else ``None``."""
        return None if self.failed else self.end_to_end_ms


@dataclass(frozen=True)
class RepeatRecord:
    """One line of ``repeats.jsonl``: the latency of a photo in an extra measured pass."""

    row: str
    image: str
    repeat: int
    latency_ms: float | None
    wall_ms: float | None
    error: str | None
    end_to_end_ms: float | None = None

    @property
    def measured_latency(self) -> float | None:
        return None if self.error is not None else self.latency_ms

    @property
    def measured_end_to_end(self) -> float | None:
        return None if self.error is not None else self.end_to_end_ms

    @classmethod
    def of(cls, record: PhotoRecord, repeat: int) -> RepeatRecord:
        """The repeat line of a record measured in extra pass ``repeat``."""
        return cls(record.row, record.image, repeat, record.latency_ms, record.wall_ms, record.error,
                   record.end_to_end_ms)

    def to_json(self) -> dict[str, Any]:
        out = {"backend": self.row, "image": self.image, "repeat": self.repeat, "latency_ms": self.latency_ms,
               "wall_ms": self.wall_ms, "error": self.error}
        if self.end_to_end_ms is not None:
            out["end_to_end_ms"] = self.end_to_end_ms
        return out

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> RepeatRecord:
        return cls(str(raw["backend"]), str(raw["image"]), int(raw.get("repeat", 0)), raw.get("latency_ms"),
                   raw.get("wall_ms"), raw.get("error"), raw.get("end_to_end_ms"))


@dataclass(frozen=True)
class ColdStartFigures:
    """The cold-start breakdown in ms: the recognizer's library, the model download, init, the first
    inference, and their total (the time to the first digits of a first visit)."""

    library: float
    download: float
    init: float
    first_inference: float | None
    total: float

    @classmethod
    def of(cls, cold: ColdStart, first_inference_ms: float | None) -> ColdStartFigures:
        """The breakdown of a backend's cold start and the runner's first inference."""
        parts = [float(cold.library_ms or 0.0), float(cold.download_ms or 0.0), float(cold.init_ms or 0.0)]
        first = None if first_inference_ms is None else float(first_inference_ms)
        return cls(*(round(p, 3) for p in parts), None if first is None else round(first, 3),
                   round(sum(parts) + (first or 0.0), 3))

    def to_json(self) -> dict[str, float | None]:
        return {"library": self.library, "download": self.download, "init": self.init,
                "first_inference": self.first_inference, "total": self.total}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ColdStartFigures:
        parts = [float(raw.get(key) or 0.0) for key in ("library", "download", "init")]
        first, total = raw.get("first_inference"), raw.get("total")
        return cls(*parts, first, float(total) if total is not None else sum(parts) + (first or 0.0))


DEFAULT_TARGET_PRECISION = 0.95


@dataclass(frozen=True)
class Confidence:
    """What the row's scores are worth (:mod:`bench.confidence`): its best threshold for whole numbers,
    the threshold reaching the target precision, and coverage at 98% whole-number accuracy."""

    best: CurvePoint | None
    target: float
    at_target: CurvePoint | None
    coverage_98: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"best_threshold": self.best.to_json() if self.best else None,
                "target_precision": {"target": self.target, **(self.at_target.to_json() if self.at_target else
                                                                {"threshold": None})},
                "coverage_98": dict(self.coverage_98)}


@dataclass(frozen=True)
class RowAnalysis:
    """A row's detection metrics (:mod:`bench.detection`) and what its scores are worth
    (:mod:`bench.confidence`), derived from its records and candidates."""

    detection: Mapping[str, Any]
    confidence: Confidence

    def to_json(self) -> dict[str, Any]:
        return {**self.detection, **self.confidence.to_json()}


@dataclass(frozen=True)
class RowFigures:
    """A row's figures, derived from its records: accuracy and latency statistics."""

    images: int
    errors: int
    accuracy: Accuracy
    latency: LatencyStats | None
    wall: LatencyStats | None
    replayed: bool
    end_to_end: LatencyStats | None = None

    @property
    def warnings(self) -> tuple[str, ...]:
        """Stability warnings with their remedy (large spread, few samples, a thin p99)."""
        if not self.latency:
            return ()
        return tuple(w for w in (self.latency.stability_warning(), self.latency.p99_note()) if w)

    def to_json(self) -> dict[str, Any]:
        accuracy = self.accuracy
        return {"images": self.images, "errors": self.errors, "digit_precision": round(accuracy.precision, 6),
                "digit_recall": round(accuracy.recall, 6), "digit_f1": round(accuracy.f1, 6),
                "sequence_accuracy": round(accuracy.sequence_accuracy, 6), "digits_true": accuracy.true,
                "digits_predicted": accuracy.predicted, "digits_matched": accuracy.matched,
                "latency_ms": self.latency.to_dict() if self.latency else None,
                "wall_ms": self.wall.to_dict() if self.wall else None,
                "end_to_end_ms": self.end_to_end.to_dict() if self.end_to_end else None, "replayed": self.replayed,
                "warnings": list(self.warnings)}


@dataclass(frozen=True)
class SessionFacts:
    """One of a row's parallel sessions (``--sessions``): its cold start, the photos it read, how many
    times it was replaced after its engine was lost, and what its backend says of itself."""

    index: int
    cold_start: ColdStartFigures | None
    photos: int = 0
    replaced: int = 0
    describe: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "cold_start_ms": self.cold_start.to_json() if self.cold_start else None,
                "photos": self.photos, "replaced": self.replaced, "describe": dict(self.describe)}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> SessionFacts:
        cold = raw.get("cold_start_ms")
        return cls(int(raw["index"]), ColdStartFigures.from_json(cold) if cold else None, int(raw.get("photos", 0)),
                   int(raw.get("replaced", 0)), dict(raw.get("describe") or {}))


def score_record(record: PhotoRecord, truth: TruthRecord, iou: float = IOU_THRESHOLD) -> PhotoScore:
    """How one prediction line compares with its truth line."""
    return score_photo(record.digits, truth.digits, truth.label, failed=record.failed, iou_threshold=iou)


@dataclass(frozen=True)
class RowResult:
    """One backend row of a run: how it was configured, its cold start and every raw record.

    ``truth`` is the run's truth, shared by every row, so that a row scores itself.
    """

    row: str
    backend: str
    status: str
    options: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None
    cold_start: ColdStartFigures | None = None
    download_bytes: int | None = None
    library_bytes: int | None = None
    open_wall_ms: float | None = None
    cold_start_details: Mapping[str, Any] = field(default_factory=dict)
    warmup: int | None = None
    repeats: int | None = None
    describe: Mapping[str, Any] = field(default_factory=dict)
    records: tuple[PhotoRecord, ...] = ()
    repeat_records: tuple[RepeatRecord, ...] = ()
    sessions: tuple[SessionFacts, ...] = ()
    sessions_share_machine: bool = False
    truth: Mapping[str, TruthRecord] = field(default_factory=dict, repr=False, compare=False)
    iou: float = field(default=IOU_THRESHOLD, compare=False)
    target_precision: float = field(default=DEFAULT_TARGET_PRECISION, compare=False)

    @cached_property
    def scores(self) -> dict[str, PhotoScore]:
        """Per image, the :class:`bench.metrics.PhotoScore` of the row's prediction (scored once)."""
        return {r.image: score_record(r, self.truth[r.image], self.iou) for r in self.records if r.image in self.truth}

    @cached_property
    def detections(self) -> list[PhotoDetections]:
        """Per photo with a truth, what detection metrics need: truth, digits, candidates."""
        return [detections_of(r.image, self.truth[r.image].label, self.truth[r.image].digits, r.digits,
                              r.candidates, r.failed) for r in self.records if r.image in self.truth]

    @cached_property
    def curve(self) -> list[CurvePoint]:
        """The precision/recall curve rebuilt from the candidates (:mod:`bench.confidence`)."""
        return curve(self.detections, self.iou)

    @property
    def readings(self) -> Readings:
        """What the row read on each photo, and whether it was right."""
        return Readings({r.image: None if r.failed else read_number(r.digits) for r in self.records},
                        {image: score.sequence_correct for image, score in self.scores.items()})

    @cached_property
    def figures(self) -> RowFigures | None:
        """Accuracy and latency statistics of the row; ``None`` when it has no records."""
        if not self.records:
            return None
        walls = [r.wall_ms for r in self.records if not r.failed and r.wall_ms is not None]
        ends = [r.measured_end_to_end for r in (*self.records, *self.repeat_records)
                if r.measured_end_to_end is not None]
        return RowFigures(images=len(self.records), errors=sum(r.failed for r in self.records),
                          accuracy=aggregate(self.scores.values()), latency=LatencyStats.of(self.latencies()),
                          wall=LatencyStats.of(walls), replayed=any(r.replayed for r in self.records),
                          end_to_end=LatencyStats.of(ends))

    @cached_property
    def analysis(self) -> RowAnalysis | None:
        """AP, per-class, confusion, size buckets, the best thresholds and coverage; ``None`` without records."""
        if not self.records:
            return None
        confidence = Confidence(best_threshold(self.curve), self.target_precision,
                                at_precision(self.curve, self.target_precision), coverage(self.detections).to_json())
        return RowAnalysis(detection_figures(self.detections, self.iou), confidence)

    @property
    def cold_start_total(self) -> float | None:
        """The total cold start in ms, when the row got that far."""
        return None if self.cold_start is None else self.cold_start.total

    @property
    def notes(self) -> tuple[str, ...]:
        """The backend's own notes on the row (``describe()["notes"]``)."""
        return tuple(self.describe.get("notes") or ())

    @property
    def warnings(self) -> tuple[str, ...]:
        """The figures' stability warnings, and a warning when parallel sessions shared this machine."""
        shared = ()
        if len(self.sessions) > 1 and self.sessions_share_machine:
            shared = (f"{len(self.sessions)} sessions ran at once on this machine: each photo's latency includes "
                      "their competition for its cores; measure latency with one session",)
        return (*(self.figures.warnings if self.figures else ()), *shared)

    def errors_by_image(self) -> dict[str, bool]:
        """Per image, whether the row failed on it."""
        return {r.image: r.failed for r in self.records}

    def repeat_latencies(self) -> list[float]:
        """The measured latencies of the row's extra passes (``--repeats``), in ms."""
        return measured(self.repeat_records)

    def latencies(self) -> list[float]:
        """Every measured latency of the row in ms: the first pass, then the repeats."""
        return [*measured(self.records), *self.repeat_latencies()]

    def latency_floors(self) -> tuple[dict[str, float], int]:
        """Per image, the smallest latency over its passes, and the most passes any image had.

        Other work on the machine only ever adds time, so the floor of several passes is the
        figure least moved by interference (Chen & Revels, "Robust benchmarking in noisy
        environments", 2016).
        """
        passes: dict[str, list[float]] = {}
        for record in (*self.records, *self.repeat_records):
            if record.measured_latency is not None:
                passes.setdefault(record.image, []).append(float(record.measured_latency))
        return {image: min(values) for image, values in passes.items()}, max(map(len, passes.values()), default=0)

    def to_json(self) -> dict[str, Any]:
        """The row's entry of ``run.json``: its configuration, cold start and derived figures."""
        out: dict[str, Any] = {"backend": self.backend, "status": self.status, "options": dict(self.options)}
        if self.error is not None:
            out["error"] = self.error
        if self.cold_start is not None:
            out.update(cold_start_ms=self.cold_start.to_json(), download_bytes=self.download_bytes,
                       library_bytes=self.library_bytes, open_wall_ms=self.open_wall_ms, cold_start_details=dict(self.cold_start_details),
                       warmup=self.warmup, repeats=self.repeats)
        if self.status != RUNNING:
            out["describe"] = dict(self.describe)
        if self.sessions:
            out.update(sessions=[s.to_json() for s in self.sessions], sessions_share_machine=self.sessions_share_machine)
        if self.figures is not None:
            out.update(self.figures.to_json())
            out["warnings"] = list(self.warnings)
        if self.analysis is not None:
            out.update(self.analysis.to_json())
        return out

    @classmethod
    def from_json(cls, row: str, raw: Mapping[str, Any], records: Iterable[PhotoRecord],
                  repeats: Iterable[RepeatRecord], truth: Mapping[str, TruthRecord],
                  options: RunOptions | None = None) -> RowResult:
        """A row from its ``run.json`` entry and its raw records; figures are recomputed, not read."""
        cold = raw.get("cold_start_ms")
        return cls(row=row, backend=str(raw.get("backend") or row), status=str(raw.get("status")),
                   options=dict(raw.get("options") or {}), error=raw.get("error"),
                   cold_start=ColdStartFigures.from_json(cold) if cold else None,
                   download_bytes=raw.get("download_bytes"), library_bytes=raw.get("library_bytes"),
                   open_wall_ms=raw.get("open_wall_ms"),
                   cold_start_details=dict(raw.get("cold_start_details") or {}), warmup=raw.get("warmup"),
                   repeats=raw.get("repeats"), describe=dict(raw.get("describe") or {}),
                   records=tuple(records), repeat_records=tuple(repeats),
                   sessions=tuple(SessionFacts.from_json(s) for s in raw.get("sessions") or ()),
                   sessions_share_machine=bool(raw.get("sessions_share_machine")), truth=truth,
                   iou=(options or RunOptions()).iou, target_precision=(options or RunOptions()).target_precision)


def measured(records: Iterable[PhotoRecord | RepeatRecord]) -> list[float]:
    """The latency of every record that succeeded and has one."""
    return [r.measured_latency for r in records if r.measured_latency is not None]


@dataclass(frozen=True)
class Run:
    """A whole run: metadata, the truth and one :class:`RowResult` per backend row, in run order.

    ``folder`` is where it was written (or read from); ``history_id`` its id in the history store.
    """

    run_id: str
    status: str
    started: str | None
    finished: str | None
    options: RunOptions
    dataset: DatasetInfo
    environment: Environment
    skipped: Mapping[str, str] = field(default_factory=dict)
    rows: Mapping[str, RowResult] = field(default_factory=dict)
    truth: Mapping[str, TruthRecord] = field(default_factory=dict, repr=False)
    schema_version: int = SCHEMA_VERSION
    folder: Path | None = field(default=None, compare=False)
    history_id: int | None = field(default=None, compare=False)

    @property
    def label(self) -> str:
        """How to name this run to a person."""
        if self.history_id is not None:
            return f"#{self.history_id} ({self.run_id})"
        return str(self.folder) if self.folder is not None else self.run_id

    @property
    def row_names(self) -> list[str]:
        """Backend rows in run order."""
        return list(self.rows)

    @property
    def complete(self) -> bool:
        return self.status == COMPLETE

    def with_row(self, result: RowResult) -> Run:
        """This run with ``result`` added or replacing the row of the same name."""
        return replace(self, rows={**self.rows, result.row: result})

    def ended(self, status: str, finished: str) -> Run:
        """This run with its final status and end time."""
        return replace(self, status=status, finished=finished)

    def stored_as(self, history_id: int) -> Run:
        """This run as the history store knows it."""
        return replace(self, history_id=history_id)

    @cached_property
    def agreement(self) -> dict[str, dict[str, Agreement]]:
        """``{A: {B: Agreement}}`` between every two rows with records (:mod:`bench.agreement`)."""
        return agreement_table({name: row.readings for name, row in self.rows.items() if row.records})

    def records(self) -> list[PhotoRecord]:
        """Every prediction line of the run, row after row."""
        return [record for row in self.rows.values() for record in row.records]

    def repeat_records(self) -> list[RepeatRecord]:
        """Every repeat line of the run, row after row."""
        return [record for row in self.rows.values() for record in row.repeat_records]

    def to_json(self) -> dict[str, Any]:
        """``run.json``."""
        return {"schema_version": self.schema_version, "run_id": self.run_id, "status": self.status,
                "started": self.started, "finished": self.finished, "options": self.options.to_json(),
                "dataset": self.dataset.to_json(), "environment": self.environment.to_json(),
                "skipped": dict(self.skipped), "backends": {name: row.to_json() for name, row in self.rows.items()},
                **({"agreement": {a: {b: pair.to_json() for b, pair in others.items()}
                                  for a, others in self.agreement.items()}} if len(self.agreement) > 1 else {})}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any], records: Iterable[PhotoRecord], repeats: Iterable[RepeatRecord],
                  truth: Iterable[TruthRecord], *, folder: Path | None = None,
                  history_id: int | None = None) -> Run:
        """A run from ``run.json`` and its raw records."""
        by_image = {t.image: t for t in truth}
        per_row: dict[str, list[PhotoRecord]] = {}
        for record in records:
            per_row.setdefault(record.row, []).append(record)
        repeats_per_row: dict[str, list[RepeatRecord]] = {}
        for record in repeats:
            repeats_per_row.setdefault(record.row, []).append(record)
        options = RunOptions.from_json(raw.get("options") or {})
        rows = {name: RowResult.from_json(name, entry, per_row.get(name, ()), repeats_per_row.get(name, ()),
                                          by_image, options)
                for name, entry in (raw.get("backends") or {}).items()}
        return cls(run_id=str(raw.get("run_id")), status=str(raw.get("status", "unknown")),
                   started=raw.get("started"), finished=raw.get("finished"), options=options,
                   dataset=DatasetInfo.from_json(raw.get("dataset") or {}),
                   environment=Environment.from_json(raw.get("environment") or {}),
                   skipped=dict(raw.get("skipped") or {}), rows=rows, truth=by_image,
                   schema_version=int(raw.get("schema_version", SCHEMA_VERSION)), folder=folder,
                   history_id=history_id)
