"""What the SQLite adapters share: one connection per thread, WAL journal, typed errors."""
from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from origin.errors import CatalogUnavailable


class ThreadConnections:
    def __init__(self, path: str | Path, what: str, schema: str = ""):
        self.path = str(path)
        self.what = what  # "catalog", "hash index": named in errors
        self.schema = schema  # run on every new connection (idempotent DDL)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()

    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                if self.schema:
                    conn.executescript(self.schema)
            except sqlite3.Error as exc:
                raise CatalogUnavailable(f"sqlite {self.what} {self.path}: {exc}") from exc
            self._local.conn = conn
        return conn

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
