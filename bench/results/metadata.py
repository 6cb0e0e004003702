"""What a run was asked to do and where it ran: its options, its dataset and its environment."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RunOptions:
    """The run-wide options (``run.json`` ``options``); backend options live on each row."""

    backends: tuple[str, ...] | None = None
    dataset: str | None = None
    limit: int | None = None
    warmup: int = 3
    repeats: int = 1
    max_megapixels: float = 50.0
    label: str | None = None
    max_error_rate: float = 0.5
    iou: float = 0.5
    target_precision: float = 0.95
    candidates_floor: float = 0.05
    min_photos: int = 0
    min_duration_s: float = 0.0
    latency_precision: float | None = None
    max_repeats: int = 20
    sessions: int = 1

    def to_json(self) -> dict[str, Any]:
        return {"backends": list(self.backends) if self.backends else None, "dataset": self.dataset,
                "limit": self.limit, "warmup": self.warmup, "repeats": self.repeats,
                "max_megapixels": self.max_megapixels, "label": self.label, "max_error_rate": self.max_error_rate,
                "iou": self.iou, "target_precision": self.target_precision, "candidates_floor": self.candidates_floor,
                "min_photos": self.min_photos, "min_duration_s": self.min_duration_s,
                "latency_precision": self.latency_precision, "max_repeats": self.max_repeats,
                "sessions": self.sessions}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> RunOptions:
        backends = raw.get("backends")
        return cls(backends=tuple(backends) if backends else None, dataset=raw.get("dataset"),
                   limit=raw.get("limit"), warmup=int(raw.get("warmup", 3)), repeats=int(raw.get("repeats", 1)),
                   max_megapixels=float(raw.get("max_megapixels", 50.0)), label=raw.get("label"),
                   max_error_rate=float(raw.get("max_error_rate", 1.0)), iou=float(raw.get("iou", 0.5)),
                   target_precision=float(raw.get("target_precision", 0.95)),
                   candidates_floor=float(raw.get("candidates_floor", 0.05)), min_photos=int(raw.get("min_photos", 0)),
                   min_duration_s=float(raw.get("min_duration_s", 0.0)),
                   latency_precision=raw.get("latency_precision"), max_repeats=int(raw.get("max_repeats", 20)),
                   sessions=int(raw.get("sessions", 1)))


@dataclass(frozen=True)
class DatasetInfo:
    """The dataset a run used: its name, where it lives, how many photos ran, and its fingerprint."""

    name: str | None = None
    root: str | None = None
    photos: int | None = None
    fingerprint: str | None = None
    problems: tuple[str, ...] = ()
    description: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "root": self.root, "photos": self.photos, "fingerprint": self.fingerprint,
                "problems": list(self.problems), "description": self.description}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> DatasetInfo:
        return cls(name=raw.get("name"), root=raw.get("root"), photos=raw.get("photos"),
                   fingerprint=raw.get("fingerprint"), problems=tuple(raw.get("problems") or ()),
                   description=str(raw.get("description") or ""))


@dataclass(frozen=True)
class Environment:
    """What produced a run: software versions, machine and digitbench commit.

    ``extra`` keeps keys this digitbench does not know, so that reading and writing a run keeps them.
    """

    version: str | None = None
    commit: str | None = None
    dirty: bool | None = None
    python: str | None = None
    python_implementation: str | None = None
    packages: Mapping[str, str | None] = field(default_factory=dict)
    os: str | None = None
    cpu_model: str | None = None
    cpu_count: int | None = None
    machine_id: str | None = None
    load_average: tuple[float, ...] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    KEYS = ("digitbench", "python", "python_implementation", "packages", "os", "cpu_model", "cpu_count",
            "machine_id", "load_average")

    @property
    def commit_text(self) -> str:
        """The commit as a person reads it: 10 hex digits and ``+dirty`` for local changes."""
        return f"{str(self.commit)[:10]}{'+dirty' if self.dirty else ''}"

    @property
    def machine_text(self) -> str:
        """``machine-id (CPU model x count)``."""
        return f"{self.machine_id} ({self.cpu_model} x {self.cpu_count})"

    def to_json(self) -> dict[str, Any]:
        return {"digitbench": {"version": self.version, "commit": self.commit, "dirty": self.dirty},
                "python": self.python, "python_implementation": self.python_implementation,
                "packages": dict(self.packages), "os": self.os, "cpu_model": self.cpu_model,
                "cpu_count": self.cpu_count, "machine_id": self.machine_id,
                "load_average": list(self.load_average) if self.load_average is not None else None, **self.extra}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Environment:
        git = raw.get("digitbench") or {}
        load = raw.get("load_average")
        return cls(version=git.get("version"), commit=git.get("commit"), dirty=git.get("dirty"),
                   python=raw.get("python"), python_implementation=raw.get("python_implementation"),
                   packages=dict(raw.get("packages") or {}), os=raw.get("os"), cpu_model=raw.get("cpu_model"),
                   cpu_count=raw.get("cpu_count"), machine_id=raw.get("machine_id"),
                   load_average=tuple(load) if isinstance(load, (list, tuple)) else None,
                   extra={k: v for k, v in raw.items() if k not in cls.KEYS})
