"""PostgreSQL catalog through psycopg 3: the production adapter.

The same table and behaviour as catalog_sqlite.py. Connections come from a small
thread-safe pool that opens on first use, so each gunicorn worker makes its own
after the fork. The URL may carry `options=-csearch_path=...` to pick a schema.
Leases (`claim`, `release`) run on the database's clock, so workers on several
hosts agree on them; `claim` uses SKIP LOCKED, so no two workers get one image.
A database that cannot be reached raises `CatalogUnavailable` within a few
seconds, never a raw psycopg exception. Contents and merge intents
(catalog_contents.py) run in transactions with row locks (SELECT … FOR UPDATE);
one that loses a race is retried. A schema made before contents existed gets its
new columns on first use (ADD COLUMN IF NOT EXISTS, under the schema lock).
"""
from __future__ import annotations

from contextlib import contextmanager

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import ConnectionPool

from origin.ports.catalog import (COLUMNS, ImageRecord, MaintenanceBusy, RecordMissing, check_fields, check_state,
                                  signed64, unsigned64)
from origin.ports.catalog_contents import Conflict, ContentsMixin
from origin.ports.catalog_queries import QueriesMixin
from origin.ports.catalog_usage import POSTGRES_SCHEMA as USAGE_SCHEMA, UsageMixin
from origin.ports.postgres import CONNECT_TIMEOUT, LazyPool


SCHEMA = (
    # concurrent first uses (several workers) must not race on CREATE TABLE
    "SELECT pg_advisory_xact_lock(hashtext('imagehost.catalog.schema'))",
    """CREATE TABLE IF NOT EXISTS images (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        content_type TEXT NOT NULL,
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        bytes BIGINT NOT NULL,
        sha256 TEXT NOT NULL,
        state TEXT NOT NULL,
        has_alpha BOOLEAN NOT NULL DEFAULT FALSE,
        pages INTEGER NOT NULL DEFAULT 1,
        created_at TIMESTAMPTZ NOT NULL,
        owner TEXT NOT NULL DEFAULT '',
        filename TEXT NOT NULL DEFAULT '',
        callback_url TEXT NOT NULL DEFAULT '',
        reason TEXT NOT NULL DEFAULT '',
        detail TEXT NOT NULL DEFAULT '',
        metadata TEXT NOT NULL DEFAULT '{}',
        phash BIGINT,
        nsfw_score DOUBLE PRECISION,
        attempts INTEGER NOT NULL DEFAULT 0,
        lease_until DOUBLE PRECISION NOT NULL DEFAULT 0
    )""",
    "CREATE INDEX IF NOT EXISTS images_sha256 ON images (sha256)",
    "CREATE INDEX IF NOT EXISTS images_owner ON images (owner, seq)",
    "CREATE INDEX IF NOT EXISTS images_state ON images (state, lease_until)",
    "ALTER TABLE images ADD COLUMN IF NOT EXISTS content_id TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE images ADD COLUMN IF NOT EXISTS source_key TEXT NOT NULL DEFAULT ''",
    "CREATE INDEX IF NOT EXISTS images_content ON images (content_id)",
    "CREATE INDEX IF NOT EXISTS images_source_key ON images (source_key) WHERE source_key <> ''",
    """CREATE TABLE IF NOT EXISTS contents (
        id TEXT PRIMARY KEY,
        sha256 TEXT NOT NULL,
        content_type TEXT NOT NULL,
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        has_alpha INTEGER NOT NULL DEFAULT 0,
        pages INTEGER NOT NULL DEFAULT 1,
        bytes BIGINT NOT NULL DEFAULT 0,
        phash BIGINT,
        refs INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL DEFAULT 'live',
        nsfw_score DOUBLE PRECISION,
        checked INTEGER NOT NULL DEFAULT 0,
        created_at DOUBLE PRECISION NOT NULL,
        repointed_at DOUBLE PRECISION NOT NULL DEFAULT 0
    )""",
    "ALTER TABLE contents ADD COLUMN IF NOT EXISTS thumbhash TEXT",
    "CREATE UNIQUE INDEX IF NOT EXISTS contents_sha256_live ON contents (sha256) WHERE state = 'live'",
    "ALTER TABLE contents ADD COLUMN IF NOT EXISTS qualities TEXT",
    "CREATE INDEX IF NOT EXISTS contents_retired ON contents (state) WHERE state <> 'live'",
    "CREATE INDEX IF NOT EXISTS contents_unchecked ON contents (id) WHERE checked = 0",
    "CREATE INDEX IF NOT EXISTS contents_unreferenced ON contents (id) WHERE refs <= 0",
    """CREATE TABLE IF NOT EXISTS merges (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        from_id TEXT NOT NULL,
        into_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        step TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        repointed_at DOUBLE PRECISION NOT NULL DEFAULT 0
    )""",
    "CREATE UNIQUE INDEX IF NOT EXISTS merges_open ON merges (from_id)"
    " WHERE step IN ('planned', 'preserved', 'repointed')",
    *USAGE_SCHEMA,
)
RACES = (pg_errors.UniqueViolation, pg_errors.DeadlockDetected, pg_errors.SerializationFailure)
SELECTED = f"{', '.join(COLUMNS)}, seq"
NOW = "extract(epoch FROM now())::float8"  # leases run on the database's clock (statement start)


def _record(row) -> ImageRecord:
    values = dict(zip((*COLUMNS, "seq"), row))
    values["phash"] = unsigned64(values["phash"])
    return ImageRecord(**values)


def _value(name: str, value):
    return signed64(value) if name == "phash" else value


class PostgresCatalog(QueriesMixin, ContentsMixin, UsageMixin):
    LOCK = " FOR UPDATE"
    NOW = NOW

    def __init__(self, url: str):
        self.url = url
        self._pg = LazyPool(url, SCHEMA, "imagehost-catalog", check_on_checkout=True)
        self.where = self._pg.where

    def _errors(self, pool: ConnectionPool | None = None):
        return self._pg.errors("catalog", pool)

    def _open(self) -> ConnectionPool:
        return self._pg.get("catalog")

    def _run(self, sql: str, params=()) -> tuple[list[tuple], int]:
        """Execute one statement; return its rows (if any) and its row count."""
        pool = self._open()
        with self._errors(pool), pool.connection() as conn:
            cur = conn.execute(sql, params)
            rows = cur.fetchall() if cur.description is not None else []
            return rows, cur.rowcount

    def _exec(self, sql: str, params=()) -> tuple[list, int]:
        return self._run(sql.replace("?", "%s"), params)

    def _to_record(self, row) -> ImageRecord:
        return _record(row)

    @contextmanager
    def _tx(self):
        pool = self._open()
        with self._errors(pool), pool.connection() as conn:
            try:
                with conn.transaction():
                    def run(sql: str, params=()) -> tuple[list, int]:
                        cur = conn.execute(sql.replace("?", "%s"), params)
                        rows = cur.fetchall() if cur.description is not None else []
                        return rows, cur.rowcount

                    yield run
            except RACES as exc:
                raise Conflict(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from exc

    def add(self, record: ImageRecord) -> None:
        check_state(record.state)
        row = tuple(_value(name, getattr(record, name)) for name in COLUMNS)
        self._run(f"INSERT INTO images ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * len(COLUMNS))})", row)

    def get(self, image_id: str) -> ImageRecord:
        rows, _ = self._run(f"SELECT {SELECTED} FROM images WHERE id = %s", (image_id,))
        if not rows:
            raise RecordMissing(f"no image {image_id}")
        return _record(rows[0])

    def set_state(self, image_id: str, state: str) -> None:
        _, count = self._run("UPDATE images SET state = %s WHERE id = %s", (check_state(state), image_id))
        if count == 0:
            raise RecordMissing(f"no image {image_id}")

    def transition(self, image_id: str, from_states: tuple[str, ...], to_state: str, **fields) -> bool:
        check_state(to_state)
        names = list(check_fields(fields))
        sets = ", ".join(["state = %s", *(f"{name} = %s" for name in names)])
        params = [to_state, *(_value(name, fields[name]) for name in names), image_id, list(from_states)]
        _, count = self._run(f"UPDATE images SET {sets} WHERE id = %s AND state = ANY(%s)", params)
        return count == 1

    def claim(self, states: tuple[str, ...], lease_seconds: float) -> ImageRecord | None:
        # SKIP LOCKED: concurrent workers (threads, processes, hosts) never claim the same image
        rows, _ = self._run(
            f"UPDATE images SET lease_until = {NOW} + %s, attempts = attempts + 1 WHERE seq = ("
            f"  SELECT seq FROM images WHERE state = ANY(%s) AND lease_until <= {NOW}"
            f"  ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED"
            f") RETURNING {SELECTED}",
            (lease_seconds, list(states)),
        )
        return _record(rows[0]) if rows else None

    def release(self, image_id: str, delay_seconds: float) -> None:
        self._run(f"UPDATE images SET lease_until = {NOW} + %s WHERE id = %s", (delay_seconds, image_id))

    def list_owner(self, owner: str, limit: int, before_seq: int | None = None) -> list[ImageRecord]:
        rows, _ = self._run(
            f"SELECT {SELECTED} FROM images WHERE owner = %s AND seq < %s ORDER BY seq DESC LIMIT %s",
            (owner, before_seq if before_seq is not None else 2**62, limit),
        )
        return [_record(row) for row in rows]

    def list_state(self, state: str, limit: int) -> list[ImageRecord]:
        rows, _ = self._run(f"SELECT {SELECTED} FROM images WHERE state = %s ORDER BY seq LIMIT %s", (state, limit))
        return [_record(row) for row in rows]

    @contextmanager
    def maintenance_lock(self, name: str = "maintenance"):
        """A session advisory lock on a connection of its own (per database and schema): the server
        releases it when the connection ends, a killed holder's included."""
        with self._errors():
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT)
        try:
            with self._errors():
                got = conn.execute("SELECT pg_try_advisory_lock(hashtext(current_database() || '.' ||"
                                   " current_schema() || '.' || %s))", (f"imagehost.{name}",)).fetchone()[0]
            if not got:
                raise MaintenanceBusy(f"another {name} run holds the guard ({self.where})")
            yield
        finally:
            conn.close()

    def ping(self) -> None:
        self._run("SELECT 1")

    def close(self) -> None:
        self._pg.close()
