"""The run folder: written as results are produced, read back as one :class:`bench.results.run.Run`.

Files (names and keys are a contract other tools rely on):

- ``run.json``: metadata and one summary per backend row; rewritten atomically after every row,
  ``status`` says ``running``, ``complete``, ``interrupted`` or ``failed``.
- ``predictions.jsonl``: one line per backend row per photo (first measured pass), appended and
  flushed as each photo is recognized.
- ``repeats.jsonl``: latency of the extra passes when ``--repeats`` > 1.
- ``truth.jsonl``: the dataset's numbers and boxes, so anyone can rescore the predictions.

Everything is strict JSON: a non-finite number is written as ``null``.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, TextIO

from bench.errors import UsageError
from bench.results.run import READABLE_SCHEMAS, SCHEMA_VERSION, PhotoRecord, RepeatRecord, Run, TruthRecord

RUN_JSON = "run.json"
PREDICTIONS = "predictions.jsonl"
REPEATS = "repeats.jsonl"
TRUTH = "truth.jsonl"


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_finite(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return _finite(value.item())
    return value


def dumps(value: Any, indent: int | None = None) -> str:
    """Strict JSON text the way digitbench writes it (non-finite numbers become ``null``)."""
    return json.dumps(_finite(value), ensure_ascii=False, allow_nan=False, indent=indent)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json_atomic(path: Path, value: Any) -> None:
    """Write JSON so that a reader never sees a half-written file; the file gets the usual mode."""
    fd, tmp = tempfile.mkstemp(prefix=path.name, dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(dumps(value, indent=2))
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class RunWriter:
    """The output folder of one run, claimed when opened; every append is flushed before it returns."""

    def __init__(self, out: Path) -> None:
        self.out = Path(out)
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"--out {self.out}: not writable ({exc.strerror or exc}); choose another folder") from None
        if (self.out / PREDICTIONS).exists():
            raise UsageError(f"--out {self.out}: already holds a run; choose an empty or new folder")
        try:
            os.close(os.open(self.out / RUN_JSON, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        except FileExistsError:
            raise UsageError(f"--out {self.out}: already holds a run; choose an empty or new folder") from None
        except OSError as exc:
            raise UsageError(f"--out {self.out}: not writable ({exc.strerror or exc}); choose another folder") from None
        self._files: dict[str, TextIO] = {}

    def _append(self, name: str, line: dict[str, Any]) -> None:
        if name not in self._files:
            self._files[name] = open(self.out / name, "a", encoding="utf-8")
        handle = self._files[name]
        handle.write(dumps(line) + "\n")
        handle.flush()

    def truth(self, record: TruthRecord) -> None:
        """Append a line to ``truth.jsonl``."""
        self._append(TRUTH, record.to_json())

    def prediction(self, record: PhotoRecord) -> None:
        """Append a line to ``predictions.jsonl``."""
        self._append(PREDICTIONS, record.to_json())

    def repeat(self, record: RepeatRecord) -> None:
        """Append a line to ``repeats.jsonl``."""
        self._append(REPEATS, record.to_json())

    def write_run(self, run: Run) -> None:
        """Rewrite ``run.json`` atomically."""
        write_json_atomic(self.out / RUN_JSON, run.to_json())

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()
        self._files.clear()


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Lines of a JSONL file; a torn last line (a crash mid-write) is ignored."""
    records: list[dict[str, Any]] = []
    if not path.exists():
        return records
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines):
                break
            raise UsageError(f"{path}:{number}: not valid JSON; the file is damaged") from None
    return records


def read_run_json(folder: Path) -> dict[str, Any]:
    """``run.json`` of a run folder as parsed JSON, refusing unknown schema versions loudly."""
    path = Path(folder) / RUN_JSON
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: not found; give a run folder written by `bench run`") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: not valid JSON ({exc.msg}); the run folder is damaged") from None
    version = raw.get("schema_version") if isinstance(raw, dict) else None
    if version not in READABLE_SCHEMAS:
        raise UsageError(f"{path}: schema_version {version!r}, this digitbench reads "
                         f"{', '.join(map(str, READABLE_SCHEMAS))}; use the digitbench version that wrote it")
    return raw


def read_run(folder: str | os.PathLike) -> Run:
    """A run folder written by ``bench run``, as one :class:`Run`."""
    folder = Path(folder)
    raw = read_run_json(folder)
    try:
        return Run.from_json(raw, map(PhotoRecord.from_json, read_jsonl(folder / PREDICTIONS)),
                             map(RepeatRecord.from_json, read_jsonl(folder / REPEATS)),
                             map(TruthRecord.from_json, read_jsonl(folder / TRUTH)), folder=folder)
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"{folder}: a record is damaged ({type(exc).__name__}: {exc}); "
                         "the run folder was not written by this digitbench") from None


__all__ = ["PREDICTIONS", "REPEATS", "RUN_JSON", "SCHEMA_VERSION", "TRUTH", "RunWriter", "dumps", "read_jsonl",
           "read_run", "read_run_json", "write_json_atomic"]
