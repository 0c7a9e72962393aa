"""/metrics: Prometheus text exposition — the counters, then what is read at scrape time.

LiveCollector reads the catalog, the store and the purge list when Prometheus scrapes (at most
every CACHE_SECONDS per process, so many scrapers or workers cost the catalog one small query):

    imagehost_images{state}                      records per state (held: the review backlog)
    imagehost_queue_pending_jobs                 images with work to do (uploaded … processing)
    imagehost_queue_oldest_job_age_seconds       how long the oldest of them has existed (0: none)
    imagehost_backend_up{backend}                1 when the store / catalog answers, else 0
    imagehost_purge_pending                      edge purges waiting in the durable retry list
    imagehost_stored_bytes{class}                bytes of live contents' sources (class="source")
    imagehost_scrape_errors_total                live reads that failed (a down catalog: 0s above, up=0)
"""
from __future__ import annotations

import threading
import time
from datetime import datetime, timezone

from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from origin.errors import Unavailable
from origin.ports.catalog import STATES
from origin.ports.queue import PENDING

CACHE_SECONDS = 5.0


class LiveCollector:
    def __init__(self, store, catalog, cdn=None, clock=time.monotonic):
        self.store, self.catalog, self.cdn, self.clock = store, catalog, cdn, clock
        self._lock = threading.Lock()
        self._cached: tuple[float, list] | None = None
        self.errors = 0

    def collect(self):
        with self._lock:
            if self._cached is None or self.clock() - self._cached[0] > CACHE_SECONDS:
                self._cached = (self.clock(), self._read())
            families = self._cached[1]
        yield from families
        errors = CounterMetricFamily("imagehost_scrape_errors", "Live metric reads that failed (catalog, store)")
        errors.add_metric([], self.errors)
        yield errors

    def _read(self) -> list:
        up = GaugeMetricFamily("imagehost_backend_up", "1 when the backend answers, 0 when it does not",
                               labels=["backend"])
        counts: dict = {}
        stored = None
        for name, port in (("store", self.store), ("catalog", self.catalog)):
            try:
                port.ping()
                up.add_metric([name], 1)
            except Unavailable:
                up.add_metric([name], 0)
        try:
            counts = self.catalog.state_counts()
            stored = self.catalog.stored_bytes()
        except Exception:  # noqa: BLE001  (a scrape must answer even with the catalog down)
            self.errors += 1
        images = GaugeMetricFamily("imagehost_images", "Image records per state", labels=["state"])
        for state in STATES:
            images.add_metric([state], counts.get(state, (0, None))[0])
        pending = GaugeMetricFamily("imagehost_queue_pending_jobs", "Images with pipeline work to do")
        pending.add_metric([], sum(counts.get(s, (0, None))[0] for s in PENDING))
        oldest = [counts[s][1] for s in PENDING if s in counts and counts[s][1] is not None]
        age = GaugeMetricFamily("imagehost_queue_oldest_job_age_seconds",
                                "Age of the oldest image with pipeline work to do (0: none)")
        age.add_metric([], max(0.0, (datetime.now(timezone.utc) - min(oldest)).total_seconds()) if oldest else 0.0)
        purges = GaugeMetricFamily("imagehost_purge_pending", "Edge purges waiting in the durable retry list")
        try:
            purges.add_metric([], len(self.cdn.pending()) if self.cdn is not None else 0)
        except Exception:  # noqa: BLE001
            self.errors += 1
            purges.add_metric([], 0)
        sizes = GaugeMetricFamily("imagehost_stored_bytes", "Bytes held in the store, by object class",
                                  labels=["class"])
        sizes.add_metric(["source"], stored or 0)
        return [up, images, pending, age, purges, sizes]


class MetricsResource:
    def __init__(self, metrics, live=()):
        self.metrics = metrics
        self.live = list(live)

    def on_get(self, req, resp) -> None:
        resp.data = self.metrics.exposition(self.live)
        resp.content_type = CONTENT_TYPE_LATEST
        resp.cache_control = ["no-store"]
