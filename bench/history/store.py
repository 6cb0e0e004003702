"""The results history: an SQLite file holding every recorded run with its raw per-photo records.

Writes are one transaction each (``BEGIN IMMEDIATE``): a crash or Ctrl-C rolls back, so a run is
either wholly in the store or absent. The file is in WAL mode and writers that find it locked wait
and retry, so several ``bench run`` processes may record at once.
"""
from __future__ import annotations

import json
import os
import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from bench.errors import StoreError, UsageError
from bench.history.schema import CREATE, MIGRATIONS, SCHEMA_VERSION
from bench.results.folder import dumps
from bench.results.run import PhotoRecord, RepeatRecord, Run, TruthRecord

DEFAULT_STORE = Path("reports") / "history.sqlite"
STORE_ENV = "DIGITBENCH_STORE"
LOCK_WAIT_S = 60.0
UNIQUE_RUN_IDS = 2
"""From this run.json schema on, a run's id is unique by itself (a random id, not the folder name):
it alone says whether a run is already recorded."""

T = TypeVar("T")


def resolve_store_path(path: str | os.PathLike | None = None) -> Path:
    """``path``, else ``$DIGITBENCH_STORE``, else ``reports/history.sqlite``."""
    if path:
        return Path(path)
    env = os.environ.get(STORE_ENV)
    return Path(env) if env else DEFAULT_STORE


@dataclass(frozen=True)
class StoredRun:
    """One line of the history listing."""

    id: int
    run_id: str
    folder: str | None
    status: str
    started: str | None
    machine_id: str | None
    commit: str | None
    dirty: bool | None
    dataset_name: str | None
    dataset_fingerprint: str | None
    photos: int | None
    label: str | None
    suite: str | None
    accepted: bool
    rows: tuple[str, ...]


def _locked(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


class HistoryStore:
    """Open (creating or upgrading) the store at ``path``."""

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = resolve_store_path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, timeout=5.0, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"--store {self.path}: cannot be opened ({exc}); choose a writable path") from None
        self.db.row_factory = sqlite3.Row
        self._retry(self._prepare)

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()

    def _retry(self, work: Callable[[], T]) -> T:
        deadline = time.monotonic() + LOCK_WAIT_S
        delay = 0.05
        while True:
            try:
                return work()
            except sqlite3.OperationalError as exc:
                if not _locked(exc) or time.monotonic() > deadline:
                    raise StoreError(f"--store {self.path}: {exc}; another process holds it, try again") from None
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 1.0)
            except sqlite3.IntegrityError as exc:
                raise StoreError(f"--store {self.path}: a record was refused ({exc}); "
                                 "the run folder is damaged") from None
            except sqlite3.DatabaseError as exc:
                raise StoreError(f"--store {self.path}: not a digitbench history ({exc}); "
                                 "give another path or move the file away") from None

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _prepare(self) -> None:
        self.db.execute("PRAGMA foreign_keys = ON")
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return
        if version > SCHEMA_VERSION:
            raise StoreError(f"--store {self.path}: schema version {version}, this digitbench knows up to "
                             f"{SCHEMA_VERSION}; upgrade digitbench or use another store")
        if self.db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            self.db.execute("PRAGMA journal_mode = WAL")
        with self._transaction() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            scripts = [CREATE] if version == 0 else [MIGRATIONS[step] for step in range(version, SCHEMA_VERSION)]
            for script in scripts:
                for statement in script.split(";"):
                    if statement.strip():
                        db.execute(statement)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def append(self, run: Run, suite: str | None = None, accepted: bool = False) -> int:
        """Record a run with every raw record in one transaction; recording it again returns its id."""
        env = run.environment
        key = (run.run_id, run.started, env.machine_id)
        predictions = []
        for seq, record in enumerate(run.records()):
            score = run.rows[record.row].scores.get(record.image)
            predictions.append((seq, record.row, record.image, record.latency_ms, record.wall_ms, record.error,
                                None if score is None else score.predicted, None if score is None else score.true,
                                None if score is None else score.matched,
                                None if score is None else int(score.sequence_correct), dumps(record.to_json())))
        repeats = [(seq, r.row, r.image, r.repeat, r.latency_ms, r.wall_ms, r.error)
                   for seq, r in enumerate(run.repeat_records())]
        truth_rows = [(seq, image, dumps(t.to_json())) for seq, (image, t) in enumerate(run.truth.items())]
        rows = [(name, row.backend, row.status) for name, row in run.rows.items()]
        recorded = datetime.now(timezone.utc).isoformat(timespec="seconds")
        folder_text = str(Path(run.folder).resolve()) if run.folder else None

        def write() -> int:
            with self._transaction() as db:
                if run.schema_version >= UNIQUE_RUN_IDS:
                    found = db.execute("SELECT id FROM runs WHERE run_id = ?", key[:1]).fetchone()
                else:
                    found = db.execute("SELECT id FROM runs WHERE run_id = ? AND started IS ? AND machine_id IS ?",
                                       key).fetchone()
                if found:
                    return int(found[0])
                cursor = db.execute(
                    "INSERT INTO runs (run_id, folder, status, started, finished, recorded, machine_id, cpu_model,"
                    " commit_sha, dirty, digitbench_version, dataset_name, dataset_fingerprint, photos, label, suite,"
                    " accepted, run_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (key[0], folder_text, run.status, key[1], run.finished, recorded, key[2], env.cpu_model,
                     env.commit, None if env.dirty is None else int(bool(env.dirty)), env.version,
                     run.dataset.name, run.dataset.fingerprint, run.dataset.photos, run.options.label, suite,
                     int(accepted), dumps(run.to_json())))
                ref = int(cursor.lastrowid)
                db.executemany("INSERT INTO rows VALUES (?, ?, ?, ?)", [(ref, *r) for r in rows])
                db.executemany("INSERT INTO predictions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                               [(ref, *p) for p in predictions])
                db.executemany("INSERT INTO repeats VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [(ref, *r) for r in repeats])
                db.executemany("INSERT INTO truth VALUES (?, ?, ?, ?)", [(ref, *t) for t in truth_rows])
                return ref

        return self._retry(write)

    def runs(self, *, backend: str | None = None, machine: str | None = None, since: str | None = None,
             until: str | None = None, suite: str | None = None, status: str | None = None,
             accepted: bool | None = None, limit: int | None = None, newest_first: bool = True) -> list[StoredRun]:
        """Recorded runs matching every given filter (dates compare as ISO text, e.g. ``2026-11-25``)."""
        where, params = [], []
        if backend:
            where.append("id IN (SELECT run FROM rows WHERE row = ? OR backend = ?)")
            params += [backend, backend]
        for column, value in (("machine_id", machine), ("suite", suite), ("status", status)):
            if value:
                where.append(f"{column} = ?")
                params.append(value)
        if since:
            where.append("started >= ?")
            params.append(since)
        if until:
            where.append("started < ?")
            params.append(until)
        if accepted is not None:
            where.append("accepted = ?")
            params.append(int(accepted))
        sql = ("SELECT id, run_id, folder, status, started, machine_id, commit_sha, dirty, dataset_name,"
               " dataset_fingerprint, photos, label, suite, accepted,"
               " (SELECT group_concat(row, char(31)) FROM rows WHERE rows.run = runs.id) AS row_names FROM runs")
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY started {'DESC' if newest_first else 'ASC'}, id {'DESC' if newest_first else 'ASC'}"
        if limit:
            sql += " LIMIT ?"
            params.append(int(limit))
        found = self._retry(lambda: self.db.execute(sql, params).fetchall())
        return [StoredRun(r["id"], r["run_id"], r["folder"], r["status"], r["started"], r["machine_id"],
                          r["commit_sha"], None if r["dirty"] is None else bool(r["dirty"]), r["dataset_name"],
                          r["dataset_fingerprint"], r["photos"], r["label"], r["suite"], bool(r["accepted"]),
                          tuple((r["row_names"] or "").split("\x1f")) if r["row_names"] else ()) for r in found]

    def load(self, history_id: int) -> Run:
        """A stored run with its raw records."""
        def read() -> Run:
            found = self.db.execute("SELECT run_json, folder FROM runs WHERE id = ?", (history_id,)).fetchone()
            if not found:
                raise UsageError(f"history #{history_id}: no such run in {self.path}; see `bench history`")
            predictions = [PhotoRecord.from_json(json.loads(r[0])) for r in self.db.execute(
                "SELECT record FROM predictions WHERE run = ? ORDER BY seq", (history_id,))]
            repeats = [RepeatRecord(*r) for r in self.db.execute(
                "SELECT row, image, repeat, latency_ms, wall_ms, error FROM repeats WHERE run = ? ORDER BY seq",
                (history_id,))]
            truth = [TruthRecord.from_json(json.loads(r[0])) for r in self.db.execute(
                "SELECT record FROM truth WHERE run = ? ORDER BY seq", (history_id,))]
            return Run.from_json(json.loads(found[0]), predictions, repeats, truth,
                                 folder=Path(found[1]) if found[1] else None, history_id=history_id)

        return self._retry(read)

    def find_folder(self, folder: str | os.PathLike) -> int | None:
        """The id of the newest recorded run written to ``folder``, if any."""
        resolved = str(Path(folder).resolve())
        found = self._retry(lambda: self.db.execute(
            "SELECT id FROM runs WHERE folder = ? ORDER BY id DESC LIMIT 1", (resolved,)).fetchone())
        return int(found[0]) if found else None

    def set_accepted(self, history_id: int, accepted: bool = True) -> None:
        """Mark a run as an accepted baseline (or withdraw it); a run that did not complete, every row of it,
        cannot be one."""
        def write() -> None:
            with self._transaction() as db:
                found = db.execute("SELECT status, (SELECT group_concat(row || ' ' || status, ', ') FROM rows"
                                   " WHERE rows.run = runs.id AND rows.status IS NOT 'complete') FROM runs WHERE id = ?",
                                   (history_id,)).fetchone()
                if found is None:
                    raise UsageError(f"history #{history_id}: no such run in {self.path}; see `bench history`")
                if accepted and (found[0] != "complete" or found[1]):
                    why = f"it is '{found[0]}'" + (f" (rows: {found[1]})" if found[1] else "")
                    raise UsageError(f"history #{history_id}: {why}; only a complete run can be a baseline")
                db.execute("UPDATE runs SET accepted = ? WHERE id = ?", (int(accepted), history_id))

        self._retry(write)

    def baseline(self, suite: str, machine_id: str, before: int | None = None) -> int | None:
        """The last accepted run of ``suite`` on ``machine_id`` (older than ``before``) that is complete,
        every row of it included: a run with a failed row is never a baseline."""
        sql = ("SELECT id FROM runs WHERE suite = ? AND machine_id = ? AND accepted = 1 AND status = 'complete'"
               " AND NOT EXISTS (SELECT 1 FROM rows WHERE rows.run = runs.id AND rows.status IS NOT 'complete')"
               + (" AND id < ?" if before is not None else "") + " ORDER BY started DESC, id DESC LIMIT 1")
        params: list[Any] = [suite, machine_id] + ([before] if before is not None else [])
        found = self._retry(lambda: self.db.execute(sql, params).fetchone())
        return int(found[0]) if found else None

    def integrity(self) -> str:
        """SQLite's own integrity check ('ok' when sound)."""
        return self._retry(lambda: self.db.execute("PRAGMA integrity_check").fetchone()[0])
