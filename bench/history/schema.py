"""The history store's tables and their version (``PRAGMA user_version``).

Change log:
- 1: runs, rows, predictions (one line per backend row per photo, with correctness),
  repeats, truth.

To change the schema, raise :data:`SCHEMA_VERSION` and add the statements that upgrade from the
previous version to :data:`MIGRATIONS`; a store written by a newer digitbench is refused.
"""
from __future__ import annotations

SCHEMA_VERSION = 1

CREATE = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    folder TEXT,
    status TEXT NOT NULL,
    started TEXT,
    finished TEXT,
    recorded TEXT NOT NULL,
    machine_id TEXT,
    cpu_model TEXT,
    commit_sha TEXT,
    dirty INTEGER,
    digitbench_version TEXT,
    dataset_name TEXT,
    dataset_fingerprint TEXT,
    photos INTEGER,
    label TEXT,
    suite TEXT,
    accepted INTEGER NOT NULL DEFAULT 0,
    run_json TEXT NOT NULL,
    UNIQUE (run_id, started, machine_id)
);
CREATE INDEX IF NOT EXISTS runs_suite ON runs (suite, machine_id, started);
CREATE TABLE IF NOT EXISTS rows (
    run INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    row TEXT NOT NULL,
    backend TEXT,
    status TEXT,
    PRIMARY KEY (run, row)
);
CREATE INDEX IF NOT EXISTS rows_backend ON rows (backend);
CREATE TABLE IF NOT EXISTS predictions (
    run INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    row TEXT NOT NULL,
    image TEXT NOT NULL,
    latency_ms REAL,
    wall_ms REAL,
    error TEXT,
    predicted INTEGER,
    true_digits INTEGER,
    matched INTEGER,
    sequence_correct INTEGER,
    record TEXT NOT NULL,
    PRIMARY KEY (run, seq)
);
CREATE INDEX IF NOT EXISTS predictions_row ON predictions (run, row);
CREATE TABLE IF NOT EXISTS repeats (
    run INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    row TEXT NOT NULL,
    image TEXT NOT NULL,
    repeat INTEGER NOT NULL,
    latency_ms REAL,
    wall_ms REAL,
    error TEXT,
    PRIMARY KEY (run, seq)
);
CREATE TABLE IF NOT EXISTS truth (
    run INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    image TEXT NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (run, seq)
);
"""

MIGRATIONS: dict[int, str] = {}
"""Statements that upgrade a store from version ``key`` to ``key + 1``."""
