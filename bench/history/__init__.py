"""The results history: every run recorded in an SQLite store, raw per-photo records included.

Library API: :func:`record_run` (called at the end of ``bench run``), :class:`HistoryStore`,
:func:`open_run` (a run folder or a history id, as ``bench compare`` accepts them).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from bench.errors import StoreError, UsageError
from bench.history.store import DEFAULT_STORE, STORE_ENV, HistoryStore, StoredRun, resolve_store_path
from bench.results.folder import RUN_JSON, read_run
from bench.results.run import Run
from bench.validation import shorten

__all__ = ["DEFAULT_STORE", "STORE_ENV", "HistoryStore", "StoreError", "StoredRun", "open_run", "record_run",
           "resolve_store_path"]


def record_run(run: Run | str | os.PathLike, store_path: str | os.PathLike | None = None,
               suite: str | None = None, accepted: bool = False) -> int:
    """Append a run (or the run written to a folder) to the store; returns its history id.

    ``store_path`` defaults to ``$DIGITBENCH_STORE`` or ``reports/history.sqlite``. Recording the
    same run twice returns the first id.
    """
    if not isinstance(run, Run):
        run = read_run(run)
    with HistoryStore(store_path) as store:
        return store.append(run, suite=suite, accepted=accepted)


_ID = re.compile(r"^#?([0-9]+)$")


def open_run(ref: str | os.PathLike, store_path: str | os.PathLike | None = None) -> Run:
    """A run given as its output folder or as its history id (``12`` or ``#12``)."""
    text = str(ref)
    path = Path(text)
    if (path / RUN_JSON).is_file():
        return read_run(path)
    match = _ID.match(text)
    if match and not path.exists():
        store = resolve_store_path(store_path)
        if not store.exists():
            raise UsageError(f"{text}: looks like a history id but the store {store} does not exist; "
                             "give --store PATH or a run folder")
        digits = match.group(1)
        if len(digits) > 18:
            raise UsageError(f"history #{shorten(digits, 24)}: no such run in {store} (ids are small whole numbers); "
                             "see `bench history`")
        with HistoryStore(store) as opened:
            return opened.load(int(digits))
    raise UsageError(f"{text}: neither a run folder (with {RUN_JSON}) nor a history id; "
                     "see `bench history` for ids")
