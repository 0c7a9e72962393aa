"""SQLite catalog: the embedded default. One connection per thread, WAL journal."""
from __future__ import annotations

import sqlite3
import threading
import time
from datetime import datetime
from pathlib import Path

from origin.errors import CatalogUnavailable
from origin.ports.catalog import (COLUMNS, ImageRecord, RecordMissing, check_fields, check_state, signed64,
                                  unsigned64)

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
"""
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


class SqliteCatalog:
    def __init__(self, path: str | Path):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._conn().executescript(SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.Error as exc:
                raise CatalogUnavailable(f"sqlite catalog {self.path}: {exc}") from exc
            self._local.conn = conn
        return conn

    def _run(self, sql: str, params=()) -> sqlite3.Cursor:
        try:
            return self._conn().execute(sql, params)
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

    def delete(self, image_id: str) -> None:
        self._run("DELETE FROM images WHERE id = ?", (image_id,))

    def ping(self) -> None:
        self._run("SELECT 1").fetchone()

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
