"""What the SQLite adapters share: one connection per thread, WAL journal, busy retries, typed errors.

A file that several processes open at once (gunicorn workers booting together, the
`imagehost` command beside a running origin) answers "database is locked" to
whoever loses the race for the write lock, and switching the journal to WAL does
not wait on SQLite's busy handler: every such step is retried with backoff for up
to `BUSY_SECONDS` before it counts as unavailable. The one-time preparation (the
schema) runs on the first connection that succeeds, not in a constructor, so an
unreachable file makes requests answer 503 instead of stopping a process at boot.
"""
from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Callable, TypeVar

from origin.errors import CatalogUnavailable

BUSY_SECONDS = 15.0
T = TypeVar("T")


def is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def retry_busy(fn: Callable[[], T], seconds: float = BUSY_SECONDS) -> T:
    """fn(), again with backoff while the database is locked by another connection."""
    deadline = time.monotonic() + seconds
    pause = 0.005
    while True:
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.25)


def use_wal(conn: sqlite3.Connection) -> None:
    # reading the mode takes no lock; only a file not yet in WAL needs the (exclusive) switch
    if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        retry_busy(lambda: conn.execute("PRAGMA journal_mode=WAL").fetchone())


class ThreadConnections:
    def __init__(self, path: str | Path, what: str, prepare: Callable[[sqlite3.Connection], None] | None = None):
        self.path = str(path)
        self.what = what  # "catalog", "hash index": named in errors
        self.prepare = prepare  # run once, on the first connection (idempotent DDL)
        self._prepared = prepare is None
        self._prepare_lock = threading.Lock()
        self._local = threading.local()

    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                if self.path != ":memory:":
                    Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
                use_wal(conn)
                conn.execute("PRAGMA synchronous=NORMAL")
                self._prepare(conn)
            except (sqlite3.Error, OSError) as exc:
                if conn is not None:
                    conn.close()
                raise CatalogUnavailable(f"sqlite {self.what} {self.path}: {exc}") from exc
            self._local.conn = conn
        return conn

    def _prepare(self, conn: sqlite3.Connection) -> None:
        if self._prepared:
            return
        with self._prepare_lock:
            if not self._prepared:
                retry_busy(lambda: self.prepare(conn))
                self._prepared = True

    def run(self, sql: str, params=()) -> sqlite3.Cursor:
        try:
            return self.conn().execute(sql, params)
        except sqlite3.OperationalError as exc:
            raise CatalogUnavailable(f"sqlite {self.what}: {exc}") from exc

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
