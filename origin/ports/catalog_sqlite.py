"""SQLite catalog: the embedded default. One connection per thread, WAL journal.

Contents and merge intents (catalog_contents.py) run as BEGIN IMMEDIATE transactions.
A catalog file made before contents existed gets its new columns on first open
(ADD COLUMN, checked against the table first).
"""
from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from origin.errors import CatalogUnavailable
from origin.ports.catalog import (COLUMNS, ImageRecord, MaintenanceBusy, RecordMissing, check_fields, check_state,
                                  signed64, unsigned64)
from origin.ports.catalog_contents import Conflict, ContentsMixin
from origin.ports.catalog_queries import QueriesMixin
from origin.ports.catalog_usage import SQLITE_SCHEMA as USAGE_SCHEMA, UsageMixin
from origin.ports.sqlite import ThreadConnections

SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    content_type TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    state TEXT NOT NULL,
    has_alpha INTEGER NOT NULL DEFAULT 0,
    pages INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    owner TEXT NOT NULL DEFAULT '',
    filename TEXT NOT NULL DEFAULT '',
    callback_url TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT '',
    metadata TEXT NOT NULL DEFAULT '{}',
    phash INTEGER,
    nsfw_score REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_until REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS images_sha256 ON images (sha256);
CREATE INDEX IF NOT EXISTS images_owner ON images (owner, seq);
CREATE INDEX IF NOT EXISTS images_state ON images (state, lease_until);
CREATE TABLE IF NOT EXISTS contents (
    id TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    content_type TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    has_alpha INTEGER NOT NULL DEFAULT 0,
    pages INTEGER NOT NULL DEFAULT 1,
    bytes INTEGER NOT NULL DEFAULT 0,
    phash INTEGER,
    refs INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'live',
    nsfw_score REAL,
    checked INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    repointed_at REAL NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS contents_sha256_live ON contents (sha256) WHERE state = 'live';
CREATE INDEX IF NOT EXISTS contents_retired ON contents (state) WHERE state <> 'live';
CREATE INDEX IF NOT EXISTS contents_unchecked ON contents (id) WHERE checked = 0;
CREATE INDEX IF NOT EXISTS contents_unreferenced ON contents (id) WHERE refs <= 0;
CREATE TABLE IF NOT EXISTS merges (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    from_id TEXT NOT NULL,
    into_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    step TEXT NOT NULL,
    created_at REAL NOT NULL,
    repointed_at REAL NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS merges_open ON merges (from_id) WHERE step IN ('planned', 'preserved', 'repointed');
"""
# columns added after the first release: (name, definition); then the indexes that use them
ADDED_COLUMNS = (("content_id", "TEXT NOT NULL DEFAULT ''"), ("source_key", "TEXT NOT NULL DEFAULT ''"))
ADDED_INDEXES = """
CREATE INDEX IF NOT EXISTS images_content ON images (content_id);
CREATE INDEX IF NOT EXISTS images_source_key ON images (source_key) WHERE source_key <> '';
"""
ADDED_CONTENT_COLUMNS = (("thumbhash", "TEXT"), ("qualities", "TEXT"))
SELECT = f"SELECT {', '.join(COLUMNS)}, seq FROM images"


def _record(row) -> ImageRecord:
    values = dict(zip((*COLUMNS, "seq"), row))
    values["has_alpha"] = bool(values["has_alpha"])
    values["created_at"] = datetime.fromisoformat(values["created_at"])
    values["phash"] = unsigned64(values["phash"])
    return ImageRecord(**values)


def _value(name: str, value):
    if name == "phash":
        return signed64(value)
    if name == "has_alpha":
        return int(value)
    if name == "created_at":
        return value.isoformat()
    return value


def _add_columns(conn: sqlite3.Connection, table: str, columns) -> None:
    for name, definition in columns:
        present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if name not in present:
            try:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {definition}")
            except sqlite3.OperationalError as exc:  # another process added it first
                if "duplicate column" not in str(exc):
                    raise


def _migrate(conn: sqlite3.Connection) -> None:
    conn.executescript(SCHEMA)
    _add_columns(conn, "images", ADDED_COLUMNS)
    _add_columns(conn, "contents", ADDED_CONTENT_COLUMNS)
    conn.executescript(ADDED_INDEXES)
    conn.executescript(USAGE_SCHEMA)


_memory_locks: dict[str, threading.Lock] = {}


class SqliteCatalog(QueriesMixin, ContentsMixin, UsageMixin):
    LOCK = ""
    NOW = "((julianday('now') - 2440587.5) * 86400.0)"

    def __init__(self, path: str | Path):
        self._db = ThreadConnections(path, "catalog", _migrate)  # the schema on first use
        self.path = self._db.path

    @property
    def url(self) -> str:
        return f"sqlite:///{self.path}"

    def _conn(self) -> sqlite3.Connection:
        return self._db.conn()

    def _run(self, sql: str, params=()) -> sqlite3.Cursor:
        return self._db.run(sql, params)

    def _exec(self, sql: str, params=()) -> tuple[list, int]:
        cur = self._run(sql, params)
        rows = cur.fetchall()
        return rows, cur.rowcount

    def _to_record(self, row) -> ImageRecord:
        return _record(row)

    @contextmanager
    def _tx(self):
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise CatalogUnavailable(f"sqlite catalog: {exc}") from exc

        def run(sql: str, params=()) -> tuple[list, int]:
            cur = conn.execute(sql, params)
            rows = cur.fetchall()
            return rows, cur.rowcount

        try:
            yield run
        except BaseException as exc:
            conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.IntegrityError):
                raise Conflict(str(exc)) from exc
            if isinstance(exc, sqlite3.OperationalError):
                raise CatalogUnavailable(f"sqlite catalog: {exc}") from exc
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            raise CatalogUnavailable(f"sqlite catalog: {exc}") from exc

    def add(self, record: ImageRecord) -> None:
        check_state(record.state)
        row = tuple(_value(name, getattr(record, name)) for name in COLUMNS)
        self._run(f"INSERT INTO images ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})", row)

    def get(self, image_id: str) -> ImageRecord:
        row = self._run(f"{SELECT} WHERE id = ?", (image_id,)).fetchone()
        if row is None:
            raise RecordMissing(f"no image {image_id}")
        return _record(row)

    def set_state(self, image_id: str, state: str) -> None:
        cur = self._run("UPDATE images SET state = ? WHERE id = ?", (check_state(state), image_id))
        if cur.rowcount == 0:
            raise RecordMissing(f"no image {image_id}")

    def transition(self, image_id: str, from_states: tuple[str, ...], to_state: str, **fields) -> bool:
        check_state(to_state)
        names = list(check_fields(fields))
        sets = ", ".join(["state = ?", *(f"{n} = ?" for n in names)])
        params = [to_state, *(_value(n, fields[n]) for n in names), image_id, *from_states]
        marks = ", ".join("?" * len(from_states))
        return self._run(f"UPDATE images SET {sets} WHERE id = ? AND state IN ({marks})", params).rowcount == 1

    def claim(self, states: tuple[str, ...], lease_seconds: float) -> ImageRecord | None:
        now = time.time()
        marks = ", ".join("?" * len(states))
        row = self._run(
            f"UPDATE images SET lease_until = ?, attempts = attempts + 1 WHERE seq = ("
            f"  SELECT seq FROM images WHERE state IN ({marks}) AND lease_until <= ? ORDER BY seq LIMIT 1"
            f") RETURNING id",
            (now + lease_seconds, *states, now),
        ).fetchone()
        return self.get(row[0]) if row else None

    def release(self, image_id: str, delay_seconds: float) -> None:
        self._run("UPDATE images SET lease_until = ? WHERE id = ?", (time.time() + delay_seconds, image_id))

    def list_owner(self, owner: str, limit: int, before_seq: int | None = None) -> list[ImageRecord]:
        rows = self._run(f"{SELECT} WHERE owner = ? AND seq < ? ORDER BY seq DESC LIMIT ?",
                         (owner, before_seq if before_seq is not None else 2**62, limit)).fetchall()
        return [_record(r) for r in rows]

    def list_state(self, state: str, limit: int) -> list[ImageRecord]:
        rows = self._run(f"{SELECT} WHERE state = ? ORDER BY seq LIMIT ?", (state, limit)).fetchall()
        return [_record(r) for r in rows]

    @contextmanager
    def maintenance_lock(self, name: str = "maintenance"):
        """flock on a file beside the database: the kernel releases it when the holder dies."""
        if self.path == ":memory:":
            lock = _memory_locks.setdefault(name, threading.Lock())
            if not lock.acquire(blocking=False):
                raise MaintenanceBusy(f"another {name} run holds the guard")
            try:
                yield
            finally:
                lock.release()
            return
        path = f"{self.path}.{name}.lock"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise CatalogUnavailable(f"sqlite catalog: cannot open {path}: {exc.strerror}") from exc
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise MaintenanceBusy(f"another {name} run holds the guard ({path})") from None
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())  # who holds it, for a person looking
            yield
        finally:
            os.close(fd)

    def ping(self) -> None:
        self._run("SELECT 1").fetchone()

    def close(self) -> None:
        self._db.close()
