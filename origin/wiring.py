"""Wiring: which adapter each port gets. The one module that knows every adapter.

The port modules (origin/ports/{store,catalog,queue,…}.py) hold only their Protocol
and shared types; their adapters import those. Choosing an adapter from the
settings happens here, above both, so no port module imports its own adapters.
Adapters are imported when chosen: a deployment on SQLite never loads psycopg.
"""
from __future__ import annotations

import threading

from origin.errors import Unavailable
from origin.ports.catalog import Catalog
from origin.ports.cdn import Cdn
from origin.ports.hash_index import DEFAULT_MAX_DISTANCE, HashIndex
from origin.ports.moderation import Moderator, OffModerator, parse_setting
from origin.ports.queue import Queue
from origin.ports.scanner import Scanner, ScanOff, default_socket
from origin.ports.store import Store

INDEX_DISTANCE = 10  # what the hash index is built to guarantee; lookups use the configured distance


def open_store(settings, metrics=None) -> Store:
    """The adapter named by IMAGEHOST_STORE, placing objects by the lifecycle rules; S3 behind a local
    read-through cache of the objects that never change (IMAGEHOST_STORE_CACHE_BYTES; 0 turns it off)."""
    from origin.lifecycle.rules import Rules

    placement = Rules.from_settings(settings).placement()
    if settings.store == "s3":
        from origin.ports.store_s3 import S3Store

        store = S3Store.from_settings(settings, placement)
        if settings.store_cache_bytes > 0:
            from origin.ports.store_cache import CachedStore

            store = CachedStore(store, settings.store_cache_dir, settings.store_cache_bytes, metrics)
        return store
    from origin.ports.store_local import LocalStore

    return LocalStore(settings.store_dir, settings.local_tiers, placement)


def open_catalog(url: str) -> Catalog:
    """The adapter named by the URL's scheme."""
    if url.startswith(("postgresql://", "postgres://")):
        from origin.ports.catalog_postgres import PostgresCatalog

        return PostgresCatalog(url)
    from origin.ports.catalog_sqlite import SqliteCatalog

    return SqliteCatalog(url.removeprefix("sqlite:///"))


def open_hash_index(url: str, max_distance: int = DEFAULT_MAX_DISTANCE) -> HashIndex:
    """The adapter named by the URL's scheme (the same URLs as the catalog's)."""
    if url.startswith(("postgresql://", "postgres://")):
        from origin.ports.hash_index_postgres import PostgresHashIndex

        return PostgresHashIndex(url, max_distance=max_distance)
    from origin.ports.hash_index_sqlite import SqliteHashIndex

    return SqliteHashIndex(url.removeprefix("sqlite:///"), max_distance=max_distance)


_indexes: dict[str, HashIndex] = {}
_indexes_lock = threading.Lock()


def hash_index_for(catalog_url: str) -> HashIndex:
    """The hash index in the catalog's database, one per process and URL."""
    with _indexes_lock:
        index = _indexes.get(catalog_url)
        if index is None:
            index = _indexes[catalog_url] = open_hash_index(catalog_url, max_distance=INDEX_DISTANCE)
        return index


def open_queue(settings, catalog: Catalog) -> Queue:
    if settings.queue == "sqs":
        from origin.ports.queue_sqs import SqsQueue

        return SqsQueue.from_settings(settings)
    from origin.ports.queue_local import LocalQueue

    return LocalQueue(catalog, lease_seconds=settings.job_lease_seconds)


def open_cdn(settings) -> Cdn | None:
    """Purges go to every edge in IMAGEHOST_PURGE_URLS; none configured: no edge to purge (None)."""
    if not settings.purge_urls.strip():
        return None
    from origin.ports.cdn_nginx import EdgePurger

    return EdgePurger.from_settings(settings)


def open_scanner(settings) -> Scanner:
    """The scanner the settings name: clamd on its socket (or host:port), or ScanOff when scan is off.

    Nothing is started here; `origin.services.clamd.ensure_clamd` starts the local clamd.
    """
    if not settings.scan:
        return ScanOff()
    from origin.ports.scanner_clamd import ClamdScanner

    return ClamdScanner(default_socket(settings))


def open_moderator(setting: str, *, threads: int = 1) -> Moderator:
    """The adapter named by IMAGEHOST_MODERATION.

    "open_nsfw" (the default) and "nudenet" (an opt-in extra) return a moderator whose model
    loads on first use (or on `load()`), once per process; `threads` caps onnxruntime's
    intra-op threads.
    """
    name, value, delay = parse_setting(setting)
    if name == "off":
        return OffModerator()
    if name == "fixed":
        from origin.ports.moderation_fixed import FixedModerator

        return FixedModerator(value, delay)
    if name == "nudenet":
        from origin.ports.moderation_nudenet import NudeNetModerator

        return NudeNetModerator(threads=threads)
    from origin.ports.moderation_opennsfw import OpenNsfwModerator

    return OpenNsfwModerator(threads=threads)


def open_compactor(settings, metrics=None):
    """`imagehost compact`'s context: the store, catalog and hash index the settings name."""
    from origin.ingest.compact import Compactor
    from origin.ingest.dedup import Policy

    return Compactor(open_store(settings), open_catalog(settings.catalog), hash_index_for(settings.catalog),
                     Policy.from_settings(settings), metrics, settings.compact_stop_after,
                     intermediate_sizes=settings.intermediate_sizes)


def open_lifecycle(settings, metrics=None):
    """`imagehost lifecycle`'s context: the store and catalog the settings name, the tier rules, the budget."""
    from origin.lifecycle.run import Lifecycle

    return Lifecycle.from_settings(settings, open_store(settings), open_catalog(settings.catalog), metrics)


def prepare_backends(settings) -> list[str]:
    """Create the store root and the catalog's and hash index's schemas once, in the process that
    forks the workers, so workers never race to create them. Returns what could not be reached:
    the workers start all the same, answer 503 for what needs it, and /readyz names it."""
    down = []
    for name, open_port in (("store", lambda: open_store(settings)),
                            ("catalog", lambda: open_catalog(settings.catalog)),
                            ("hash index", lambda: open_hash_index(settings.catalog))):
        port = None
        try:
            port = open_port()
            port.ping()
        except Unavailable as exc:
            down.append(f"{name}: {exc.message}")
        finally:
            if port is not None and hasattr(port, "close"):
                port.close()  # nothing opened here may cross the fork
    return down
