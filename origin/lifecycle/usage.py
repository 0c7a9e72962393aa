"""Usage: which contents are read, and which lazy variants are stored, written in batches.

Every origin process keeps a small map in memory (content → last access, bytes of
variants it stored, their names); a request only updates that map under a lock.
The map goes to the catalog (`Catalog.note_usage`, one transaction) when it is
older than IMAGEHOST_ACCESS_FLUSH_SECONDS, on the request that notices it (in a
thread of its own, so no request waits on the catalog), when it grows past
`MAX_PENDING` contents, and when the process exits. A flush that fails keeps its
notes for the next one. Accesses lost to a crash only make eviction's order
less exact; the lifecycle's store walk makes the byte counts exact again.

The flush learns how many of the variants it reports had been evicted before:
those are re-renders caused by eviction (imagehost_eviction_rerenders_total).
"""
from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from typing import Callable

from origin.errors import Unavailable
from origin.ports.catalog import UsageNote

log = logging.getLogger("imagehost.usage")
MAX_PENDING = 50_000  # contents noted before a flush is due anyway (a few MB of memory)
_live: "weakref.WeakSet[Usage]" = weakref.WeakSet()


class Usage:
    def __init__(self, catalog, flush_seconds: float = 30.0, metrics=None, clock: Callable[[], float] = time.time):
        self.catalog = catalog
        self.flush_seconds = flush_seconds
        self.metrics = metrics
        self.clock = clock
        self._lock = threading.Lock()
        self._pending: dict[str, list] = {}  # content id → [last access, added bytes, set of names]
        self._last_flush = time.monotonic()
        self._scheduled = False  # a flush thread was started and has not taken the notes yet
        self._flushing = threading.Lock()
        _live.add(self)

    def seen(self, content_id: str) -> None:
        """A read of one of the content's objects."""
        self._note(content_id, 0, None)

    def stored(self, content_id: str, name: str, size: int) -> None:
        """A lazy variant of the content was stored (a render)."""
        self._note(content_id, size, name)

    def _note(self, content_id: str, size: int, name: str | None) -> None:
        now = self.clock()
        with self._lock:
            entry = self._pending.get(content_id)
            if entry is None:
                entry = self._pending[content_id] = [now, 0, set()]
            elif now > entry[0]:
                entry[0] = now
            if name is not None:
                entry[1] += size
                entry[2].add(name)
            due = not self._scheduled and (len(self._pending) >= MAX_PENDING
                                           or time.monotonic() - self._last_flush >= self.flush_seconds)
            if due:
                self._scheduled = True
        if due:
            threading.Thread(target=self.flush, name="imagehost-usage-flush", daemon=True).start()

    def flush(self) -> int:
        """Write what was noted; returns how many notes went out (0 when another flush runs)."""
        if not self._flushing.acquire(blocking=False):
            return 0
        try:
            with self._lock:
                pending, self._pending = self._pending, {}
                self._last_flush = time.monotonic()
                self._scheduled = False
            if not pending:
                return 0
            notes = [UsageNote(cid, last, size, frozenset(names)) for cid, (last, size, names) in pending.items()]
            try:
                again = self.catalog.note_usage(notes)
            except Unavailable as exc:
                log.warning("usage: %d notes kept for the next flush: %s", len(notes), exc.message)
                self._restore(pending)
                return 0
            if again and self.metrics is not None:
                self.metrics.eviction_rerenders.inc(again)
            return len(notes)
        finally:
            self._flushing.release()

    def _restore(self, pending: dict) -> None:
        with self._lock:
            for cid, (last, size, names) in pending.items():
                entry = self._pending.setdefault(cid, [last, 0, set()])
                entry[0] = max(entry[0], last)
                entry[1] += size
                entry[2] |= names


@atexit.register
def flush_all() -> None:
    """Every live map to the catalog: at exit (a process that exits cleanly, as gunicorn's workers do,
    loses nothing), or before a catalog is closed under an app that is still alive."""
    for usage in list(_live):
        try:
            usage.flush()
        except Exception:  # the others still get their turn
            log.exception("usage: the last flush failed")
