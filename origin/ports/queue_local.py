"""The embedded queue: pending images in the catalog, claimed with a lease."""
from __future__ import annotations

import threading
import time

from origin.ports.queue import PENDING, Job


class LocalQueue:
    def __init__(self, catalog, lease_seconds: float = 120.0):
        self.catalog = catalog
        self.lease_seconds = lease_seconds
        self._wake = threading.Condition()
        self._pending_wakes = 0

    def send(self, image_id: str) -> None:
        with self._wake:
            self._pending_wakes += 1
            self._wake.notify()

    def receive(self, wait_seconds: float) -> list[Job]:
        deadline = time.monotonic() + wait_seconds
        while True:
            record = self.catalog.claim(PENDING, self.lease_seconds)
            if record is not None:
                return [Job(record.id)]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            with self._wake:
                if self._pending_wakes == 0:
                    self._wake.wait(min(remaining, 1.0))  # also polls: other processes add jobs too
                self._pending_wakes = max(0, self._pending_wakes - 1)

    def ack(self, job: Job) -> None:
        self.catalog.release(job.image_id, 0)

    def retry_later(self, job: Job, delay_seconds: float) -> None:
        self.catalog.release(job.image_id, delay_seconds)
