"""SQLite perceptual-hash index: the embedded default.

One row per content id: the hash (signed 64-bit) and one indexed INTEGER column
per band (see hash_index.py for the method and its recall guarantee). A lookup
is one statement, a UNION of the per-band `IN (...)` lookups, each served by
its band's index; candidates are verified in Python with int.bit_count().
One connection per thread, WAL journal; the table is created on first use. It
may live in the catalog's file (its own table) or in a file of its own.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Iterable

from origin.errors import CatalogUnavailable
from origin.ports.hash_index import (
    BANDS,
    DEFAULT_MAX_DISTANCE,
    MASK64,
    bands,
    check_hash,
    check_max_distance,
    check_query,
    probes,
    to_signed,
)
from origin.ports.sqlite import ThreadConnections

BAND_COLUMNS = tuple(f"b{k}" for k in range(BANDS))
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS phash_index (\n"
    "    content_id TEXT PRIMARY KEY,\n"
    "    phash INTEGER NOT NULL,\n"
    + ",\n".join(f"    {c} INTEGER NOT NULL" for c in BAND_COLUMNS)
    + "\n);\n"
    + "".join(f"CREATE INDEX IF NOT EXISTS phash_index_{c} ON phash_index ({c});\n" for c in BAND_COLUMNS)
)
UPSERT = (
    f"INSERT INTO phash_index (content_id, phash, {', '.join(BAND_COLUMNS)}) "
    f"VALUES ({', '.join('?' * (2 + BANDS))}) "
    f"ON CONFLICT (content_id) DO UPDATE SET phash = excluded.phash, "
    + ", ".join(f"{c} = excluded.{c}" for c in BAND_COLUMNS)
)


def _row(content_id: str, phash: int) -> tuple:
    check_hash(phash)
    return (content_id, to_signed(phash), *bands(phash))


class SqliteHashIndex:
    def __init__(self, path: str | Path, max_distance: int = DEFAULT_MAX_DISTANCE):
        self._db = ThreadConnections(path, "hash index", lambda conn: conn.executescript(SCHEMA))
        self.path = self._db.path
        self.max_distance = check_max_distance(max_distance)
        self._queries: dict[tuple[int, ...], str] = {}

    def _conn(self) -> sqlite3.Connection:
        return self._db.conn()

    def _run(self, sql: str, params=()) -> sqlite3.Cursor:
        return self._db.run(sql, params)

    def _lookup_sql(self, shape: tuple[int, ...]) -> str:
        """One statement per probe shape (probes per band), so sqlite3's statement cache hits."""
        sql = self._queries.get(shape)
        if sql is None:
            parts = [
                f"SELECT content_id, phash FROM phash_index WHERE {column} IN ({', '.join('?' * n)})"
                for column, n in zip(BAND_COLUMNS, shape)
                if n
            ]
            sql = self._queries[shape] = " UNION ".join(parts)
        return sql

    def add(self, content_id: str, phash: int) -> None:
        self._run(UPSERT, _row(content_id, phash))

    def add_many(self, items: Iterable[tuple[str, int]]) -> int:
        rows = [_row(content_id, phash) for content_id, phash in items]
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(UPSERT, rows)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            conn.execute("ANALYZE phash_index")
        except sqlite3.OperationalError as exc:
            raise CatalogUnavailable(f"sqlite hash index: {exc}") from exc
        return len(rows)

    def remove(self, content_id: str) -> None:
        self._run("DELETE FROM phash_index WHERE content_id = ?", (content_id,))

    def near(self, phash: int, max_distance: int) -> list[tuple[str, int]]:
        check_hash(phash)
        check_query(max_distance, self.max_distance)
        per_band = probes(phash, max_distance)
        params = [value for values in per_band for value in values]
        rows = self._run(self._lookup_sql(tuple(len(v) for v in per_band)), params).fetchall()
        found = []
        for content_id, stored in rows:
            distance = ((stored & MASK64) ^ phash).bit_count()
            if distance <= max_distance:
                found.append((distance, content_id))
        found.sort()
        return [(content_id, distance) for distance, content_id in found]

    def count(self) -> int:
        return self._run("SELECT count(*) FROM phash_index").fetchone()[0]

    def ping(self) -> None:
        self._run("SELECT 1").fetchone()

    def close(self) -> None:
        self._db.close()
