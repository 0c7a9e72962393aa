"""A read-through disk cache in front of a remote store (S3), one per origin or worker host.

What lives under images/ and sources/ never changes once written (a content id is never reused,
and every key under it names one rendering of it), so a local copy never goes stale. Reads of
those keys are kept on local disk, up to `max_bytes` (least recently read out first): a miss then
renders without a round trip for its source, and keeps rendering while the store cannot be reached.
records/, uploads/ and quarantine/ change, and are always read from the store.

`local(key)` answers from the local copy alone, or None (a stand-in while the store is out of
reach, origin/pipeline/standin.py). `prefetch(key)` copies an object in ahead of need, in a
background thread (delivery asks for an image's smallest render source when it serves one of its
stored variants: with the edge routing each image to one origin, that origin can then still
render the image's other variants while S3 is out of reach). Deletions through this store drop
the local copies as well. Another host's copies of a deleted image are never read: delivery
refuses a deleted record before it reads any store key.
Several processes may share one cache directory: writes are atomic (temporary file + rename), and
each process trims the directory when its own estimate of the total passes the budget.
"""
from __future__ import annotations

import logging
import os
import queue
import tempfile
import threading
from pathlib import Path

from origin.keys import IMAGES, SOURCES

TRIM_TO = 0.9  # a trim leaves the cache at this share of its budget
PREFETCH_QUEUE = 256  # keys waiting to be copied in; more are dropped (they are only a head start)
log = logging.getLogger("imagehost.store_cache")


def cacheable(key: str) -> bool:
    return key.startswith((f"{IMAGES}/", f"{SOURCES}/")) and ".." not in key.split("/")


class CachedStore:
    def __init__(self, inner, root: Path, max_bytes: int, metrics=None):
        self.inner = inner
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.metrics = metrics
        self._lock = threading.Lock()
        self._estimate: int | None = None  # bytes under root, as of the last scan plus this process's writes
        self._wanted: queue.Queue = queue.Queue(PREFETCH_QUEUE)
        self._queued: set[str] = set()
        self._fetcher: threading.Thread | None = None

    def __getattr__(self, name):  # folders, objects, ping, presigned_post, …: the store's own
        return getattr(self.inner, name)

    def _path(self, key: str) -> Path:
        return self.root / key

    def get(self, key: str) -> bytes:
        data = self.local(key)
        if data is not None:
            return data
        if not cacheable(key):
            return self.inner.get(key)
        self._count("miss")
        data = self.inner.get(key)
        self._keep(key, data)
        return data

    def local(self, key: str) -> bytes | None:
        """This host's copy of `key`, or None: never a read of the store (what can still be served
        while the store is out of reach)."""
        if not cacheable(key):
            return None
        path = self._path(key)
        try:
            data = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None
        try:
            os.utime(path)  # recently read: the last to go
        except OSError:
            pass
        self._count("hit")
        return data

    def prefetch(self, key: str) -> None:
        """Copy `key` in soon, if it is not here yet (never blocks; at most PREFETCH_QUEUE wait)."""
        if not cacheable(key) or self._path(key).is_file():
            return
        with self._lock:
            if key in self._queued:
                return
            try:
                self._wanted.put_nowait(key)
            except queue.Full:
                return
            self._queued.add(key)
            if self._fetcher is None or not self._fetcher.is_alive():
                self._fetcher = threading.Thread(target=self._fetch, name="imagehost-prefetch", daemon=True)
                self._fetcher.start()

    def _fetch(self) -> None:
        while True:
            key = self._wanted.get()
            try:
                if not self._path(key).is_file():
                    self._keep(key, self.inner.get(key))
            except Exception as exc:  # noqa: BLE001 (a head start that failed costs nothing)
                log.debug("prefetch of %s failed: %s", key, exc)
            finally:
                with self._lock:
                    self._queued.discard(key)

    def put(self, key: str, data: bytes, content_type: str = "", **options) -> None:
        self.inner.put(key, data, content_type, **options)
        if cacheable(key):
            self._keep(key, data)

    def exists(self, key: str) -> bool:
        return (cacheable(key) and self._path(key).is_file()) or self.inner.exists(key)

    def delete(self, key: str) -> None:
        self.inner.delete(key)
        self._drop(self._path(key))

    def delete_prefix(self, prefix: str) -> int:
        count = self.inner.delete_prefix(prefix)
        self._drop(self._path(prefix.rstrip("/")))
        return count

    def _count(self, result: str) -> None:
        if self.metrics is not None:
            self.metrics.store_cache.labels(result).inc()

    def _keep(self, key: str, data: bytes) -> None:
        if len(data) > self.max_bytes // 10:
            return  # one object never takes a tenth of the cache
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except OSError:
            return  # a full or read-only disk costs the cache, never the request
        with self._lock:
            if self._estimate is None:
                self._estimate = self._scan_total()
            self._estimate += len(data)
            over = self._estimate > self.max_bytes
        if over:
            self._trim()

    def _files(self):
        for folder, _, names in os.walk(self.root):  # folders may vanish meanwhile: passed over
            for path in (Path(folder) / name for name in names):
                if path.name.startswith(".tmp-"):
                    continue
                try:
                    stat = path.stat()
                except FileNotFoundError:
                    continue
                yield stat.st_mtime, stat.st_size, path

    def _scan_total(self) -> int:
        return sum(size for _, size, _ in self._files())

    def _trim(self) -> None:
        files = sorted(self._files())
        total = sum(size for _, size, _ in files)
        for _, size, path in files:
            if total <= self.max_bytes * TRIM_TO:
                break
            try:
                path.unlink()
                total -= size
            except FileNotFoundError:
                pass
        with self._lock:
            self._estimate = total

    @staticmethod
    def _drop(path: Path) -> None:
        import shutil

        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                path.unlink()
            except (FileNotFoundError, NotADirectoryError):
                pass
