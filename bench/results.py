"""Writes a run's output folder as results are produced, and reads it back.

Files (names and keys are a contract other tools rely on):

- ``run.json``: metadata and one summary per backend row; rewritten atomically after every row,
  ``status`` says ``running``, ``complete``, ``interrupted`` or ``failed``.
- ``predictions.jsonl``: one line per backend row per photo (first measured pass), appended and
  flushed as each photo is recognized.
- ``repeats.jsonl``: latency of the extra passes when ``--repeats`` > 1.
- ``truth.jsonl``: the dataset's numbers and boxes, so anyone can rescore the predictions.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, TextIO

from bench.errors import UsageError

SCHEMA_VERSION = 1
RUN_JSON = "run.json"
PREDICTIONS = "predictions.jsonl"
REPEATS = "repeats.jsonl"
TRUTH = "truth.jsonl"


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (set, tuple)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def dumps(value: Any) -> str:
    """JSON text the way digitbench writes it."""
    return json.dumps(value, default=_json_default, ensure_ascii=False)


def write_json_atomic(path: Path, value: Any) -> None:
    """Write JSON so that a reader never sees a half-written file."""
    fd, tmp = tempfile.mkstemp(prefix=path.name, dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(value, default=_json_default, indent=2, ensure_ascii=False))
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class RunWriter:
    """The output folder of one run; every append is flushed before it returns."""

    def __init__(self, out: Path) -> None:
        self.out = Path(out)
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            probe = self.out / ".write-test"
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            raise UsageError(f"--out {self.out}: not writable ({exc.strerror or exc}); choose another folder") from None
        if (self.out / RUN_JSON).exists() or (self.out / PREDICTIONS).exists():
            raise UsageError(f"--out {self.out}: already holds a run; choose an empty or new folder")
        self._files: dict[str, TextIO] = {}

    def _handle(self, name: str) -> TextIO:
        if name not in self._files:
            self._files[name] = open(self.out / name, "a", encoding="utf-8")
        return self._files[name]

    def append(self, name: str, record: dict[str, Any]) -> None:
        """Append one JSON line to ``name`` and flush it to the OS."""
        handle = self._handle(name)
        handle.write(dumps(record) + "\n")
        handle.flush()

    def write_run(self, run: dict[str, Any]) -> None:
        write_json_atomic(self.out / RUN_JSON, run)

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()
        self._files.clear()


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Lines of a JSONL file; a torn last line (a crash mid-write) is ignored."""
    records = []
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


def read_run(folder: Path) -> dict[str, Any]:
    """``run.json`` of a run folder, refusing unknown schema versions loudly."""
    path = Path(folder) / RUN_JSON
    try:
        run = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: not found; give a run folder written by `bench run`") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: not valid JSON ({exc.msg}); the run folder is damaged") from None
    version = run.get("schema_version")
    if version != SCHEMA_VERSION:
        raise UsageError(f"{path}: schema_version {version!r}, this digitbench reads {SCHEMA_VERSION}; "
                         "use the digitbench version that wrote it")
    return run
