"""/metrics: Prometheus text exposition."""
from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST


class MetricsResource:
    def __init__(self, metrics):
        self.metrics = metrics

    def on_get(self, req, resp) -> None:
        resp.data = self.metrics.exposition()
        resp.content_type = CONTENT_TYPE_LATEST
        resp.cache_control = ["no-store"]
