"""Requests as the metrics counted them, scaled to a month (what `imagehost cost` prices).

The figures come from a running origin's /metrics (a URL) or from the metrics
directory its gunicorn workers share (PROMETHEUS_MULTIPROC_DIR, by default
{data_dir}/metrics): imagehost_store_requests_total{op, class}, counted since
imagehost_metrics_since_seconds (the origin's start).
"""
from __future__ import annotations

import time
from pathlib import Path

from prometheus_client import CollectorRegistry, multiprocess
from prometheus_client.parser import text_string_to_metric_families

from origin.errors import Unavailable
from origin.lifecycle.cost import DAYS_PER_MONTH, Requests

MIN_WINDOW = 3600.0  # seconds: a shorter count is not scaled up (it says little about a month)


def _families(source: str):
    if source.startswith(("http://", "https://")):
        import requests as http

        try:
            answer = http.get(source, timeout=10)
            answer.raise_for_status()
        except http.RequestException as exc:
            raise Unavailable(f"metrics at {source} could not be read: {exc}") from None
        return list(text_string_to_metric_families(answer.text))
    if not Path(source).is_dir():
        return []
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=source)
    return list(registry.collect())


def observed(source: str, now: float | None = None) -> Requests:
    """Requests per month by (op, class), from a metrics URL or directory ("" or absent: none)."""
    if not source:
        return Requests()
    now = time.time() if now is None else now
    counts: dict = {}
    since = None
    for family in _families(source):
        for sample in family.samples:
            if sample.name == "imagehost_store_requests_total":
                key = (sample.labels.get("op", ""), sample.labels.get("class", ""))
                counts[key] = counts.get(key, 0.0) + sample.value
            elif sample.name == "imagehost_metrics_since_seconds" and sample.value > 0:
                since = sample.value if since is None else min(since, sample.value)
    window = max(now - since, 0.0) if since else 0.0
    scale = DAYS_PER_MONTH * 86400 / window if window >= MIN_WINDOW else 0.0
    counted = {k: v for k, v in counts.items() if v}
    return Requests({k: v * scale for k, v in counted.items() if scale}, window, counted)
