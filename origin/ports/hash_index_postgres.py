"""PostgreSQL perceptual-hash index through psycopg 3: the production adapter.

The same table as hash_index_sqlite.py: the hash as BIGINT (signed two's
complement) and one btree-indexed INTEGER column per band (hash_index.py has the
method and its recall guarantee). A lookup is one statement with a constant
text (so psycopg prepares it after a few uses): a UNION ALL of one
`band = ANY(probes)` index lookup per band, each verified in SQL with
`bit_count((phash # q)::bit(64))`, then de-duplicated and sorted by distance.
Verifying in SQL rather than in Python measured the same at 1M rows (~80
candidates, p50 0.87 vs 0.93 ms interleaved A/B) and ships only the matches,
which matters as candidates grow with the table.

Connections come from a small thread-safe pool opened on first use (after a
fork, each process makes its own); the table is created on first use. The pool
does not test a connection on every checkout (a second round trip per lookup);
a statement whose connection turns out to be closed by the server is retried
once on a fresh one (every statement here is idempotent). The URL
may carry `options=-csearch_path=...` to pick a schema. A database that cannot
be reached raises `CatalogUnavailable` within a few seconds.
"""
from __future__ import annotations

from typing import Iterable

import psycopg
from psycopg_pool import ConnectionPool

from origin.ports.hash_index import (
    BANDS,
    DEFAULT_MAX_DISTANCE,
    bands,
    check_hash,
    check_max_distance,
    check_query,
    probes,
    to_signed,
)
from origin.ports.postgres import LazyPool


BAND_COLUMNS = tuple(f"b{k}" for k in range(BANDS))
SCHEMA = (
    # concurrent first uses (several workers) must not race on CREATE TABLE
    "SELECT pg_advisory_xact_lock(hashtext('imagehost.hash_index.schema'))",
    "CREATE TABLE IF NOT EXISTS phash_index (content_id TEXT PRIMARY KEY, phash BIGINT NOT NULL, "
    + ", ".join(f"{c} INTEGER NOT NULL" for c in BAND_COLUMNS)
    + ")",
    *(f"CREATE INDEX IF NOT EXISTS phash_index_{c} ON phash_index ({c})" for c in BAND_COLUMNS),
)
SET_FROM_EXCLUDED = "phash = EXCLUDED.phash, " + ", ".join(f"{c} = EXCLUDED.{c}" for c in BAND_COLUMNS)
UPSERT = (
    f"INSERT INTO phash_index (content_id, phash, {', '.join(BAND_COLUMNS)}) "
    f"VALUES ({', '.join(['%s'] * (2 + BANDS))}) "
    f"ON CONFLICT (content_id) DO UPDATE SET {SET_FROM_EXCLUDED}"
)
NEAR = (
    "SELECT DISTINCT content_id, distance FROM ("
    + " UNION ALL ".join(
        f"SELECT content_id, bit_count((phash # %(q)s::bigint)::bit(64)) AS distance "
        f"FROM phash_index WHERE {c} = ANY(%(p{k})s::integer[])"
        for k, c in enumerate(BAND_COLUMNS)
    )
    + ") AS candidates WHERE distance <= %(d)s::integer ORDER BY distance, content_id"
)


def _row(content_id: str, phash: int) -> tuple:
    check_hash(phash)
    return (content_id, to_signed(phash), *bands(phash))


class PostgresHashIndex:
    def __init__(self, url: str, max_distance: int = DEFAULT_MAX_DISTANCE):
        self.url = url
        self.max_distance = check_max_distance(max_distance)
        self._pg = LazyPool(url, SCHEMA, "imagehost-hash-index", check_on_checkout=False)

    def _errors(self, pool: ConnectionPool | None = None):
        return self._pg.errors("hash index", pool)

    def _open(self) -> ConnectionPool:
        return self._pg.get("hash index")

    def _run(self, sql: str, params=()) -> list[tuple]:
        """Execute one statement, return its rows. Every statement here is idempotent
        (upsert, delete, reads), so one that failed because its pooled connection had
        been closed by the server (restart, idle timeout) is retried once, after the
        pool has dropped its other dead connections."""
        pool = self._open()
        with self._errors(pool):
            for attempt in (1, 2):
                conn = None
                try:
                    with pool.connection() as conn:
                        cur = conn.execute(sql, params)
                        return cur.fetchall() if cur.description is not None else []
                except psycopg.OperationalError:
                    if attempt == 2 or conn is None or not conn.broken:
                        raise
                    pool.check()
        raise AssertionError("unreachable")

    def add(self, content_id: str, phash: int) -> None:
        self._run(UPSERT, _row(content_id, phash))

    def add_many(self, items: Iterable[tuple[str, int]]) -> int:
        """COPY into a temporary table, then one upsert (a later duplicate id wins),
        then ANALYZE so the planner keeps using the band indexes after a bulk load."""
        pool = self._open()
        count = 0
        with self._errors(pool), pool.connection() as conn:
            with conn.transaction():
                conn.execute(
                    "CREATE TEMP TABLE phash_stage (seq BIGINT, content_id TEXT, phash BIGINT, "
                    + ", ".join(f"{c} INTEGER" for c in BAND_COLUMNS)
                    + ") ON COMMIT DROP"
                )
                with conn.cursor().copy("COPY phash_stage FROM STDIN") as copy:
                    for content_id, phash in items:
                        copy.write_row((count, *_row(content_id, phash)))
                        count += 1
                conn.execute(
                    f"INSERT INTO phash_index (content_id, phash, {', '.join(BAND_COLUMNS)}) "
                    f"SELECT DISTINCT ON (content_id) content_id, phash, {', '.join(BAND_COLUMNS)} "
                    f"FROM phash_stage ORDER BY content_id, seq DESC "
                    f"ON CONFLICT (content_id) DO UPDATE SET {SET_FROM_EXCLUDED}"
                )
            conn.execute("ANALYZE phash_index")
        return count

    def remove(self, content_id: str) -> None:
        self._run("DELETE FROM phash_index WHERE content_id = %s", (content_id,))

    def near(self, phash: int, max_distance: int) -> list[tuple[str, int]]:
        check_hash(phash)
        check_query(max_distance, self.max_distance)
        params = {"q": to_signed(phash), "d": max_distance}
        for k, values in enumerate(probes(phash, max_distance)):
            params[f"p{k}"] = values
        return [(content_id, int(distance)) for content_id, distance in self._run(NEAR, params)]

    def count(self) -> int:
        return self._run("SELECT count(*) FROM phash_index")[0][0]

    def ping(self) -> None:
        self._run("SELECT 1")

    def close(self) -> None:
        self._pg.close()
