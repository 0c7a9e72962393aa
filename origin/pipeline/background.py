"""Background renders: deferred work (pipeline/deferral.py) off the request's path.

At most `threads` run at once per process; a key is queued once while it waits or runs;
the backlog is bounded (a full one drops the job: the next miss of that key queues it
again). Threads start on the first job, so a forking server starts them in each child,
and run at a lower CPU priority (Linux: nice is per thread), so deferred encodes yield
the cores to the renders that a client waits for.
"""
from __future__ import annotations

import logging
import os
import queue
import threading
from typing import Callable

from origin.errors import Unavailable

log = logging.getLogger("imagehost.background")
BACKLOG = 512
NICE = 10


class Background:
    def __init__(self, threads: int, backlog: int = BACKLOG):
        self.threads = threads
        self._jobs: queue.Queue = queue.Queue(backlog)
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self._started = False

    def submit(self, key: str, fn: Callable[[], object]) -> bool:
        """Queue fn under key; False when that key is already queued or the backlog is full."""
        with self._lock:
            if key in self._pending:
                return False
            try:
                self._jobs.put_nowait((key, fn))
            except queue.Full:
                return False
            self._pending.add(key)
            if not self._started:
                self._started = True
                for n in range(self.threads):
                    threading.Thread(target=self._work, name=f"imagehost-background-{n}", daemon=True).start()
        return True

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def _work(self) -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)
        except (AttributeError, OSError):  # not Linux: same priority
            pass
        while True:
            key, fn = self._jobs.get()
            try:
                fn()
            except Unavailable as exc:  # the store or the catalog is out of reach: the next miss tries again
                log.warning("background render of %s not done: %s", key, exc.message)
            except Exception:  # the next miss of this key tries again
                log.exception("background render of %s failed", key)
            finally:
                with self._lock:
                    self._pending.discard(key)
