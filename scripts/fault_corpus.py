#!/usr/bin/env python3
"""Run digitbench against a corpus of bad datasets, bad options and injected faults; print how many
were handled cleanly and how many finished records were lost.

    .venv/bin/python scripts/fault_corpus.py            # every case, 3-6 minutes
    .venv/bin/python scripts/fault_corpus.py -k signal  # only cases whose name contains "signal"
    .venv/bin/python scripts/fault_corpus.py --json corpus.json --keep /tmp/corpus

Each case is one real ``bench`` process (the oracle backend, or tesseract where the fault is
Tesseract's) on a dataset built for it. *Handled cleanly* means: the process ended within its time
limit with the expected exit code; no traceback; a usage error is one line on stderr; nothing
outside the dataset folder was read (a readable photo planted outside would score); every file of
the run folder is strict JSON (no NaN/Infinity) and says what happened (``status``); and, for a
signal, the process ended within a few seconds of it. *Records lost*: lines a row's ``images``
count in run.json promises but predictions.jsonl lacks, damaged lines before the last one, and
records of a run in the history store that its folder lacks.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.digitstruct import write_digitstruct  # noqa: E402

TIME_LIMIT_S = 90.0
SIGNAL_GRACE_S = 10.0
"""A signalled run must end this soon after the signal."""


def png(width: int = 40, height: int = 20, shade: int = 200) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.full((height, width, 3), shade, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


BOX = {"label": 1, "left": 2, "top": 2, "width": 8, "height": 12}
GOOD = [{"image": f"images/good{i}.png", "label": "1", "width": 40, "height": 20, "boxes": [BOX]} for i in range(3)]


@dataclass
class Case:
    """One bad input or fault: how to build it, what to run, what a clean outcome is."""

    name: str
    kind: str
    argv: Callable[[Path], list[str]]
    exit_codes: tuple[int, ...]
    expect_status: str | None = None
    bad_images: tuple[str, ...] = ()
    signal_after: tuple[int, int] | None = None
    """(records written before the signal, signal number), sent from outside."""
    memory_limit_mb: int | None = None
    browser_fault: tuple[int, int] | None = None
    """(records written before it, signal sent to every Chromium process of the run: SIGSTOP freezes)."""
    check: Callable[[Path, dict], str | None] | None = None


@dataclass
class Outcome:
    """What one case did."""

    name: str
    kind: str
    clean: bool
    lost: int
    exit_code: int | None
    seconds: float
    problems: list[str] = field(default_factory=list)
    after_signal_s: float | None = None
    """How long the process took to end after the signal sent from outside."""


def jsonl_dataset(base: Path, lines: list, images: dict[str, bytes] | None = None, good: bool = True) -> Path:
    root = base / "data"
    (root / "images").mkdir(parents=True, exist_ok=True)
    for name, data in {**({e["image"]: png() for e in GOOD} if good else {}), **(images or {})}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    text = [json.dumps(e) if isinstance(e, dict) else e for e in ((GOOD if good else []) + lines)]
    (root / "annotations.jsonl").write_bytes("\n".join(text).encode("utf-8", "surrogatepass") + b"\n")
    return root


def outside_photo(base: Path) -> Path:
    """A readable, perfectly scorable photo outside the dataset folder: reading it is a leak."""
    secret = base / "outside" / "secret.png"
    secret.parent.mkdir(parents=True, exist_ok=True)
    secret.write_bytes(png())
    return secret


def run_argv(root: Path | str, *extra: str, backend: str = "oracle") -> list[str]:
    return ["run", "--backends", backend, "--dataset", str(root), "--warmup", "0", *extra]


def entry(image: str, **fields) -> dict:
    return {"image": image, "label": "1", "width": 40, "height": 20, "boxes": [BOX], **fields}


def dataset_case(name: str, lines: Callable[[Path], list], bad: tuple[str, ...], images=None, setup=None,
                 exit_codes=(0,), check=None) -> Case:
    def argv(base: Path) -> list[str]:
        root = jsonl_dataset(base, lines(base), images(base) if images else None)
        if setup:
            setup(base, root)
        return run_argv(root)

    return Case(name, "dataset", argv, exit_codes, "complete" if exit_codes == (0,) else None, bad, check=check)


def dataset_error_case(name: str, build: Callable[[Path], Path]) -> Case:
    return Case(name, "dataset", lambda base: run_argv(build(base)), (2,))


def digitstruct(base: Path, entries: list[dict], mutate=None) -> Path:
    root = base / "svhn"
    root.mkdir(parents=True, exist_ok=True)
    for i in range(3):
        (root / f"good{i}.png").write_bytes(png())
    boxes = [{"label": 1, "left": 2.0, "top": 2.0, "width": 8.0, "height": 12.0}]
    write_digitstruct(root / "digitStruct.mat", [{"image": f"good{i}.png", "boxes": boxes} for i in range(3)] + entries)
    if mutate:
        mutate(root / "digitStruct.mat", base)
    return root


def _external_link(mat: Path, base: Path) -> None:
    import h5py

    other = base / "outside" / "other.mat"
    other.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(mat, other)
    with h5py.File(mat, "r+") as f:
        del f["digitStruct"]
        f["digitStruct"] = h5py.ExternalLink(str(other), "/digitStruct")


def perfect_scores(folder: Path, run: dict) -> str | None:
    row = (run.get("backends") or {}).get("oracle") or {}
    if row.get("digit_f1") != 1.0 or row.get("sequence_accuracy") != 1.0:
        return f"a perfect answer scored F1 {row.get('digit_f1')}, whole number {row.get('sequence_accuracy')}"
    return None


def cases() -> list[Case]:
    box = [{"label": 1, "left": 2.0, "top": 2.0, "width": 8.0, "height": 12.0}]
    nan_box = [{**box[0], "left": float("nan")}]
    found = [
        dataset_case("dataset: image path with ..", lambda b: [entry("../outside/secret.png")], ("../outside/secret.png",),
                     setup=lambda b, r: outside_photo(b)),
        dataset_case("dataset: absolute image path", lambda b: [entry(str(outside_photo(b)))], ()),
        dataset_case("dataset: image is a link out of the folder", lambda b: [entry("images/link.png")],
                     ("images/link.png",), setup=lambda b, r: (r / "images/link.png").symlink_to(outside_photo(b))),
        dataset_case("dataset: image is a named pipe", lambda b: [entry("images/pipe.png")], ("images/pipe.png",),
                     setup=lambda b, r: os.mkfifo(r / "images/pipe.png")),
        dataset_case("dataset: image links to /dev/zero", lambda b: [entry("images/zero.png")], ("images/zero.png",),
                     setup=lambda b, r: (r / "images/zero.png").symlink_to("/dev/zero")),
        dataset_case("dataset: image is /dev/zero", lambda b: [entry("/dev/zero")], ("/dev/zero",)),
        dataset_case("dataset: image is a folder", lambda b: [entry("images")], ("images",)),
        dataset_case("dataset: NaN literal", lambda b: ['{"image": "images/x.png", "label": "1", "width": NaN}'], ()),
        dataset_case("dataset: Infinity literal", lambda b: ['{"image": "images/x.png", "left": -Infinity}'], ()),
        dataset_case("dataset: width 1e400", lambda b: ['{"image": "images/x.png", "label": "1", "width": 1e400}'], ()),
        dataset_case("dataset: box coordinate 10**400", lambda b: [entry("images/bad.png", boxes=[{**BOX, "left": 10**400}])],
                     ("images/bad.png",), images=lambda b: {"images/bad.png": png()}),
        dataset_case("dataset: nesting 100000 deep", lambda b: ["[" * 100000 + "]" * 100000], ()),
        dataset_case("dataset: name with a lone surrogate", lambda b: ['{"image": "images/\\ud800.png", "label": "1"}'], ()),
        dataset_case("dataset: name with a terminal escape", lambda b: ['{"image": "images/\\u001b[2J.png", "label": "1"}'], ()),
        dataset_case("dataset: rich markup in a name", lambda b: [entry("images/[/red][bold]x.png")] * 2,
                     (), images=lambda b: {"images/[/red][bold]x.png": png()}),
        dataset_case("dataset: a line that is not UTF-8", lambda b: [b"\xff\xfe{".decode("latin-1")], ()),
        dataset_case("dataset: duplicate photo entries", lambda b: [GOOD[0], {**GOOD[0], "label": "7"}], (),
                     check=perfect_scores),
        dataset_case("dataset: label disagrees with its boxes", lambda b: [entry("images/bad.png", label="12")],
                     ("images/bad.png",), images=lambda b: {"images/bad.png": png()}),
        dataset_case("dataset: non-digit label", lambda b: [entry("images/bad.png", label="1a")], ("images/bad.png",),
                     images=lambda b: {"images/bad.png": png()}),
        dataset_case("dataset: box label 11", lambda b: [entry("images/bad.png", boxes=[{**BOX, "label": 11}])],
                     ("images/bad.png",), images=lambda b: {"images/bad.png": png()}),
        dataset_case("dataset: truncated PNG", lambda b: [entry("images/bad.png")], ("images/bad.png",),
                     images=lambda b: {"images/bad.png": png()[:40]}),
        dataset_case("dataset: empty photo file", lambda b: [entry("images/bad.png")], ("images/bad.png",),
                     images=lambda b: {"images/bad.png": b""}),
        dataset_case("dataset: photo is not an image", lambda b: [entry("images/bad.png")], ("images/bad.png",),
                     images=lambda b: {"images/bad.png": b"hello, not a png"}),
        dataset_case("dataset: photo header says 100000x100000", lambda b: [entry("images/bad.png")], ("images/bad.png",),
                     images=lambda b: {"images/bad.png": _huge_png_header()}),
        dataset_error_case("dataset: annotations are binary garbage",
                           lambda b: _write(b / "d" / "annotations.jsonl", os.urandom(300))),
        dataset_error_case("dataset: annotations file is empty", lambda b: _write(b / "d" / "annotations.jsonl", b"")),
        dataset_error_case("dataset: annotations file is a folder", lambda b: _mkdir(b / "d" / "annotations.jsonl")),
        dataset_error_case("dataset: annotations file is a pipe", lambda b: _fifo(b / "d" / "annotations.jsonl")),
        dataset_error_case("dataset: annotations link out of the folder", lambda b: _link_out(b)),
        Case("dataset: digitStruct name with ..", "dataset",
             lambda b: (outside_photo(b), run_argv(digitstruct(b, [{"image": "../outside/secret.png", "boxes": box}])))[1],
             (0,), "complete", ("../outside/secret.png",)),
        Case("dataset: digitStruct box with NaN", "dataset",
             lambda b: run_argv(digitstruct(b, [{"image": "good0.png", "boxes": box}, {"image": "n.png", "boxes": nan_box}])),
             (0,), "complete", ("n.png",)),
        Case("dataset: digitStruct links to another file", "dataset",
             lambda b: run_argv(digitstruct(b, [], _external_link)), (2,)),
        Case("dataset: digitStruct truncated", "dataset",
             lambda b: run_argv(digitstruct(b, [], lambda m, _: _write(m, m.read_bytes()[:900]))), (2,)),
        Case("tesseract: 20000 x 1 photo within 1.5 GB", "fault",
             lambda b: run_argv(jsonl_dataset(b, [{"image": "images/thin.png", "label": "", "width": 20000, "height": 1,
                                                   "boxes": []}], {"images/thin.png": png(20000, 1)}, good=False),
                                "--max-error-rate", "1", backend="tesseract"), (0,), "complete", memory_limit_mb=1500,
             check=_no_memory_error),
        Case("tesseract: a Tesseract error is not called a timeout", "fault",
             lambda b: run_argv(jsonl_dataset(b, []), "--tesseract-oem", "0", "--max-error-rate", "1", backend="tesseract"),
             (0,), "complete", check=_tesseract_error_is_named),
    ]
    for flag, value, backend in [("--tfjs-batch-size", "0", "tfjs"), ("--tfjs-batch-size", "-3", "tfjs"),
                                 ("--tfjs-batch-timeout-s", "0", "tfjs"), ("--limit", "0", "oracle"),
                                 ("--max-megapixels", "nan", "oracle"), ("--max-megapixels", "0", "oracle"),
                                 ("--vision-backoff-s", "-1", "vision"), ("--vision-batch-size", "17", "vision"),
                                 ("--tesseract-timeout-s", "0", "tesseract"), ("--oracle-miss-rate", "nan", "oracle"),
                                 ("--warmup", "-1", "oracle"), ("--repeats", "0", "oracle"),
                                 ("--tfjs-batch-size", "0", "oracle")]:
        found.append(Case(f"option: {flag} {value} (backends {backend})", "option",
                          lambda b, f=flag, v=value, k=backend: ["run", "--backends", k, f, v], (2,)))
    found += [
        Case("option: --backends ''", "option", lambda b: ["run", "--backends", ""], (2,)),
        Case("option: nightly --date ../x", "option", lambda b: ["nightly", "--date", "../x"], (2,)),
        Case("option: show a 40-digit id", "option", lambda b: (_empty_store(b), ["show", "9" * 40])[1], (2,)),
    ]
    synthetic = ["run", "--backends", "oracle", "--limit", "20", "--warmup", "0"]
    found += [
        Case("fault: open() fails", "fault", lambda b: [*synthetic, "--oracle-fail-open", "true"], (1,), "failed"),
        Case("fault: every photo fails", "fault", lambda b: [*synthetic, "--oracle-fail-rate", "1"], (1,), "failed"),
        Case("fault: some photos fail", "fault", lambda b: [*synthetic, "--oracle-fail-rate", "0.3"], (0,), "complete"),
        Case("fault: recognize() raises", "fault",
             lambda b: [*synthetic, "--oracle-fault", "raise", "--oracle-fault-after", "15"], (0,), "complete"),
        Case("fault: one result too few", "fault",
             lambda b: [*synthetic, "--oracle-fault", "wrong-count", "--oracle-fault-after", "15"], (0,), "complete"),
        Case("fault: non-finite digits", "fault",
             lambda b: [*synthetic, "--oracle-fault", "nan", "--oracle-fault-after", "15"], (0, 1)),
        Case("fault: digit label 12", "fault",
             lambda b: [*synthetic, "--oracle-fault", "bad-label", "--oracle-fault-after", "15"], (0, 1)),
        Case("fault: the process crashes mid-run", "fault",
             lambda b: [*synthetic, "--oracle-fault", "crash", "--oracle-fault-after", "10"], (70,), "running"),
    ]
    slow = ["run", "--backends", "oracle", "--limit", "60", "--warmup", "0", "--oracle-delay-ms", "100"]
    for name, number in (("SIGTERM", signal.SIGTERM), ("SIGINT", signal.SIGINT), ("SIGHUP", signal.SIGHUP)):
        found.append(Case(f"signal: {name} mid-run", "signal", lambda b: slow, (130,), "interrupted",
                          signal_after=(5, number)))
    found += [
        Case("signal: SIGKILL mid-run", "signal", lambda b: slow, (-9,), "running", signal_after=(5, signal.SIGKILL)),
        Case("signal: SIGTERM to itself", "signal",
             lambda b: [*synthetic, "--oracle-fault", "sigterm", "--oracle-fault-after", "10"], (130,), "interrupted"),
        Case("signal: SIGINT to itself", "signal",
             lambda b: [*synthetic, "--oracle-fault", "sigint", "--oracle-fault-after", "10"], (130,), "interrupted"),
        Case("signal: SIGTERM while recognize() hangs", "signal",
             lambda b: [*slow, "--oracle-fault", "hang", "--oracle-fault-after", "6"], (130,), "interrupted",
             signal_after=(5, signal.SIGTERM)),
        Case("signal: SIGTERM during a slow open()", "signal",
             lambda b: [*slow, "--oracle-init-ms", "20000"], (130,), "interrupted", signal_after=(0, signal.SIGTERM)),
    ]
    browser = ["run", "--backends", "tfjs", "--limit", "30", "--warmup", "0", "--tfjs-backend", "wasm",
               "--quantization", "none", "--tfjs-batch-size", "2", "--tfjs-batch-timeout-s", "3"]
    found += [
        Case("fault: Chromium killed mid-row", "fault", lambda b: browser, (0,), "complete",
             browser_fault=(4, signal.SIGKILL), check=_browser_restarted),
        Case("fault: Chromium frozen (SIGSTOP) mid-row", "fault", lambda b: browser, (0,), "complete",
             browser_fault=(4, signal.SIGSTOP), check=_browser_restarted),
        Case("signal: SIGTERM with Chromium frozen", "signal",
             lambda b: [*browser[:-1], "300"], (130,), "interrupted",
             browser_fault=(4, signal.SIGSTOP), signal_after=(4, signal.SIGTERM)),
    ]
    return found


def _browser_restarted(folder: Path, run: dict) -> str | None:
    restarts = [row.get("describe", {}).get("restarts") for row in (run.get("backends") or {}).values()]
    if not restarts or not all(restarts):
        return f"the browser was not restarted (restarts: {restarts})"
    return None


def _signal_browser(pid: int, number: int) -> int:
    from backends.tfjs.browser import descendants

    def command(process) -> str:
        try:
            return Path(f"/proc/{process.pid}/comm").read_text().strip()
        except OSError:
            return ""

    browser = [p for p in descendants(pid) if command(p) == "chromium"]
    for process in browser:
        try:
            os.kill(process.pid, number)
        except ProcessLookupError:
            pass
    return len(browser)


def _wait_for_records(folder: Path, count: int, proc: subprocess.Popen, start: float) -> str | None:
    """Wait until the run wrote ``count`` records (or, for 0, its run.json); why not, if it never did."""
    while True:
        if time.monotonic() - start > TIME_LIMIT_S or proc.poll() is not None:
            return f"the run never wrote {count} records"
        predictions = folder / "predictions.jsonl"
        lines = predictions.read_bytes().count(b"\n") if predictions.exists() else 0
        if lines >= count and (count or (folder / "run.json").exists()):
            return None
        time.sleep(0.05)


def _empty_store(base: Path) -> None:
    from bench.history import HistoryStore

    HistoryStore(base / "history.sqlite").close()


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path.parent


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True)
    return path.parent


def _fifo(path: Path) -> Path:
    path.parent.mkdir(parents=True)
    os.mkfifo(path)
    return path.parent


def _link_out(base: Path) -> Path:
    elsewhere = base / "outside" / "annotations.jsonl"
    elsewhere.parent.mkdir(parents=True, exist_ok=True)
    elsewhere.write_text(json.dumps(GOOD[0]) + "\n")
    root = base / "d"
    root.mkdir()
    (root / "annotations.jsonl").symlink_to(elsewhere)
    return root


def _huge_png_header() -> bytes:
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))


def _no_memory_error(folder: Path, run: dict) -> str | None:
    errors = [r["error"] for r in _jsonl(folder / "predictions.jsonl")[0] if "Memory" in str(r.get("error"))]
    return f"ran out of memory: {errors[0]}" if errors else None


def _tesseract_error_is_named(folder: Path, run: dict) -> str | None:
    errors = [r.get("error") for r in _jsonl(folder / "predictions.jsonl")[0] if r.get("error")]
    if not errors:
        return "no photo failed (expected Tesseract's own error for --tesseract-oem 0)"
    if any("timeout" in e for e in errors):
        return f"a Tesseract failure reported as a timeout: {errors[0]}"
    return None


def _strict(name: str):
    raise ValueError(f"{name} is not strict JSON")


def _jsonl(path: Path) -> tuple[list[dict], int, bool]:
    """(records, damaged lines before the last, last line torn)."""
    if not path.exists():
        return [], 0, False
    data = path.read_bytes()
    lines = data.split(b"\n")
    records, damaged, torn = [], 0, False
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line, parse_constant=_strict))
        except ValueError:
            if index >= len(lines) - 2 and not data.endswith(b"\n"):
                torn = True
            else:
                damaged += 1
    return records, damaged, torn


def judge(case: Case, base: Path, folder: Path, store: Path, code: int | None, err: str, seconds: float,
          after_signal_s: float | None) -> Outcome:
    problems: list[str] = []
    lost = 0
    if code is None:
        problems.append(f"still running after {TIME_LIMIT_S:g} s (killed)")
    elif code not in case.exit_codes:
        problems.append(f"exit code {code}, expected {' or '.join(map(str, case.exit_codes))}")
    if "Traceback" in err:
        problems.append("traceback: " + [line for line in err.splitlines() if line.strip()][-1][:160])
    if code == 2 and err.strip().count("\n") != 0:
        problems.append(f"usage error in {err.strip().count(chr(10)) + 1} lines")
    if after_signal_s is not None and after_signal_s > SIGNAL_GRACE_S:
        problems.append(f"ended {after_signal_s:.1f} s after the signal")
    run: dict = {}
    if (folder / "run.json").exists():
        try:
            run = json.loads((folder / "run.json").read_text(encoding="utf-8"), parse_constant=_strict)
        except ValueError as exc:
            problems.append(f"run.json is not strict JSON ({exc})")
        if case.expect_status and run and run.get("status") != case.expect_status:
            problems.append(f"run.json status {run.get('status')!r}, expected {case.expect_status!r}")
    elif case.expect_status:
        problems.append("no run.json")
    records, damaged, _ = _jsonl(folder / "predictions.jsonl")
    for name in ("truth.jsonl", "repeats.jsonl"):
        if _jsonl(folder / name)[1]:
            problems.append(f"{name} has damaged lines")
    lost += damaged
    by_row: dict[str, int] = {}
    for record in records:
        by_row[record.get("backend")] = by_row.get(record.get("backend"), 0) + 1
    for row, summary in (run.get("backends") or {}).items():
        promised = summary.get("images") or 0
        if promised > by_row.get(row, 0):
            lost += promised - by_row.get(row, 0)
    lost += _lost_in_store(store, folder, len(records))
    by_image = {r.get("image"): r for r in records}
    for image in case.bad_images:
        if image in by_image and by_image[image].get("error") is None:
            problems.append(f"{image} was read and scored (outside or unusable input)")
    leaked = [r["image"] for r in records if r.get("error") is None and str(r.get("image", "")).startswith(("/", ".."))]
    if leaked:
        problems.append(f"read outside the dataset folder: {leaked[0]}")
    if case.check and run:
        problem = case.check(folder, run)
        if problem:
            problems.append(problem)
    return Outcome(case.name, case.kind, not problems, lost, code, round(seconds, 2), problems,
                   None if after_signal_s is None else round(after_signal_s, 2))


def _lost_in_store(store: Path, folder: Path, in_folder: int) -> int:
    import sqlite3

    if not store.exists():
        return 0
    try:
        with sqlite3.connect(store) as db:
            found = db.execute("SELECT id FROM runs WHERE folder = ?", (str(folder.resolve()),)).fetchone()
            if not found:
                return 0
            stored = db.execute("SELECT COUNT(*) FROM predictions WHERE run = ?", (found[0],)).fetchone()[0]
    except sqlite3.Error:
        return 0
    return max(0, in_folder - stored)


def run_case(case: Case, base: Path) -> Outcome:
    folder, store = base / "out", base / "history.sqlite"
    home = base / "home"
    home.mkdir()
    try:
        argv = case.argv(base)
    except Exception as exc:
        return Outcome(case.name, case.kind, False, 0, None, 0.0, [f"could not build the case: {exc!r}"])
    if argv[0] == "run":
        argv = [*argv, "--out", str(folder)]
    argv = [*argv, "--store", str(store)] if argv[0] in ("run", "show", "nightly") else argv
    env = {**os.environ, "HOME": str(home), "COLUMNS": "160", "SE_OFFLINE": "true", "NO_GCE_CHECK": "true"}
    env.pop("DIGITBENCH_STORE", None)

    def limits() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if case.memory_limit_mb:
            size = case.memory_limit_mb * 2**20
            resource.setrlimit(resource.RLIMIT_AS, (size, size))

    start = time.monotonic()
    missed = None
    proc = subprocess.Popen([sys.executable, "-m", "bench.cli", *argv], cwd=base, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, preexec_fn=limits)
    after_signal = None
    try:
        if case.browser_fault:
            count, number = case.browser_fault
            missed = _wait_for_records(folder, count, proc, start)
            if not missed and not _signal_browser(proc.pid, number):
                missed = "no Chromium process to signal"
        if case.signal_after:
            count, number = case.signal_after
            missed = missed or _wait_for_records(folder, count, proc, start)
            time.sleep(0.5)
            signalled = time.monotonic()
            proc.send_signal(number)
            out, err = proc.communicate(timeout=SIGNAL_GRACE_S * 3)
            after_signal = time.monotonic() - signalled
        else:
            out, err = proc.communicate(timeout=TIME_LIMIT_S)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        code = None
    seconds = time.monotonic() - start
    outcome = judge(case, base, folder, store, code, err.decode("utf-8", "replace"), seconds, after_signal)
    if missed:
        outcome.problems.append(missed)
        outcome.clean = False
    if list(home.rglob("*")):
        outcome.problems.append(f"wrote into $HOME: {next(home.rglob('*')).relative_to(home)}")
        outcome.clean = False
    return outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-k", dest="select", help="only cases whose name contains this text")
    parser.add_argument("--json", help="also write every outcome to this JSON file")
    parser.add_argument("--keep", help="keep each case's folder under this folder")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    args = parser.parse_args(argv)
    selected = [c for c in cases() if not args.select or args.select in c.name]
    if args.list:
        print("\n".join(c.name for c in selected))
        return 0
    outcomes = []
    keep = Path(args.keep) if args.keep else None
    with tempfile.TemporaryDirectory(prefix="digitbench-corpus-") as tmp:
        for index, case in enumerate(selected, 1):
            base = (keep or Path(tmp)) / f"case{index:03d}"
            base.mkdir(parents=True, exist_ok=True)
            outcome = run_case(case, base)
            outcomes.append(outcome)
            mark = "ok  " if outcome.clean else "FAIL"
            detail = "; ".join(outcome.problems)
            ended = "" if outcome.after_signal_s is None else f", ended {outcome.after_signal_s:.1f} s after the signal"
            print(f"{mark} {outcome.name} (exit {outcome.exit_code}, {outcome.seconds:.1f} s{ended}"
                  f"{f', {outcome.lost} records lost' if outcome.lost else ''}){': ' + detail if detail else ''}",
                  flush=True)
    for kind in ("dataset", "option", "fault", "signal"):
        part = [o for o in outcomes if o.kind == kind]
        if part:
            print(f"{kind}: {len(part)} tried, {sum(o.clean for o in part)} handled cleanly, "
                  f"{sum(o.lost for o in part)} records lost")
    print(f"{len(outcomes)} tried, {sum(o.clean for o in outcomes)} handled cleanly, "
          f"{sum(o.lost for o in outcomes)} records lost")
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(o) for o in outcomes], indent=2))
    return 0 if all(o.clean and not o.lost for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
