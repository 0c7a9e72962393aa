"""What the PostgreSQL adapters share: a pool opened on first use, with its schema.

The pool opens lazily, so each gunicorn worker makes its own after the fork. One
direct connection comes first, outside the lock (threads must not queue behind a
slow connect): it runs the schema statements, and an unreachable database fails
then with its real reason rather than a pool timeout. Any connection failure
surfaces as `CatalogUnavailable` naming host:port/db, never the password.

A pool that times out handing out a connection is dropped. While the database is
away the pool's reconnect attempts back off exponentially without bound (1 s, 2 s,
4 s...), so after a long outage it could sit out a backoff longer than its timeout
with the database already back; the next call instead starts over with a direct
connect, which fails at once with the real reason while the database is down and
builds a fresh pool once it is up. A pool that timed out because every connection
was busy is replaced too: its connections close as their callers give them back, so
the connections open stay bounded by the threads holding them.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from origin.errors import CatalogUnavailable

CONNECT_TIMEOUT = 3  # seconds, to connect and to wait for a free pooled connection
POOL_MAX = 8


def describe(url: str) -> str:
    """host:port/dbname, never the password."""
    try:
        info = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "(unparseable URL)"
    return f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"


class LazyPool:
    def __init__(self, url: str, schema: tuple[str, ...], name: str, check_on_checkout: bool):
        self.url = url
        self.where = describe(url)
        self.schema = schema
        self.name = name
        self.check_on_checkout = check_on_checkout
        self._pool: ConnectionPool | None = None
        self._lock = threading.Lock()

    @contextmanager
    def errors(self, what: str, pool: ConnectionPool | None = None):
        """Connection failures as `CatalogUnavailable`; a timeout waiting on `pool` drops it."""
        try:
            yield
        except psycopg.OperationalError as exc:  # includes psycopg_pool.PoolTimeout
            if isinstance(exc, PoolTimeout):
                self._drop(pool)
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CatalogUnavailable(f"postgres {what} {self.where}: {reason}") from exc

    def get(self, what: str) -> ConnectionPool:
        pool = self._pool
        if pool is not None:
            return pool
        with self.errors(what), psycopg.connect(self.url, connect_timeout=CONNECT_TIMEOUT) as conn:
            for statement in self.schema:
                conn.execute(statement)
        with self._lock:
            if self._pool is None:
                self._pool = ConnectionPool(
                    self.url,
                    min_size=1,
                    max_size=POOL_MAX,
                    kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT},
                    # checking costs a round trip per checkout; without it the caller
                    # must retry a statement whose connection the server closed
                    check=ConnectionPool.check_connection if self.check_on_checkout else None,
                    timeout=CONNECT_TIMEOUT,
                    name=self.name,
                    open=False,
                )
                self._pool.open()
            return self._pool

    def _drop(self, pool: ConnectionPool | None) -> None:
        """Forget `pool` (if it is still the current one) and close it without waiting:
        connections still in use close as they come back."""
        with self._lock:
            if pool is None or self._pool is not pool:
                return
            self._pool = None
        threading.Thread(target=pool.close, name=f"{self.name}-close", daemon=True).start()

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()
