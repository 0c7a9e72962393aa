"""SQLite catalog: the embedded default. One connection per thread, WAL journal."""
from __future__ import annotations

import sqlite3
import threading
from datetime import datetime
from pathlib import Path

from origin.errors import CatalogUnavailable
from origin.ports.catalog import COLUMNS, ImageRecord, RecordMissing, check_state

SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY,
    content_type TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    state TEXT NOT NULL,
    has_alpha INTEGER NOT NULL DEFAULT 0,
    pages INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS images_sha256 ON images (sha256);
"""


class SqliteCatalog:
    def __init__(self, path: str | Path):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._conn() as conn:
            conn.executescript(SCHEMA)

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
        row = (
            record.id,
            record.content_type,
            record.width,
            record.height,
            record.bytes,
            record.sha256,
            record.state,
            int(record.has_alpha),
            record.pages,
            record.created_at.isoformat(),
        )
        self._run(f"INSERT INTO images ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})", row)

    def get(self, image_id: str) -> ImageRecord:
        row = self._run(f"SELECT {', '.join(COLUMNS)} FROM images WHERE id = ?", (image_id,)).fetchone()
        if row is None:
            raise RecordMissing(f"no image {image_id}")
        values = dict(zip(COLUMNS, row))
        values["has_alpha"] = bool(values["has_alpha"])
        values["created_at"] = datetime.fromisoformat(values["created_at"])
        return ImageRecord(**values)

    def set_state(self, image_id: str, state: str) -> None:
        cur = self._run("UPDATE images SET state = ? WHERE id = ?", (check_state(state), image_id))
        if cur.rowcount == 0:
            raise RecordMissing(f"no image {image_id}")

    def delete(self, image_id: str) -> None:
        self._run("DELETE FROM images WHERE id = ?", (image_id,))

    def ping(self) -> None:
        self._run("SELECT 1").fetchone()

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
