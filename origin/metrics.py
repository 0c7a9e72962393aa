"""Prometheus metrics, built on a registry handed in.

Under gunicorn several worker processes serve; `imagehost serve` sets
PROMETHEUS_MULTIPROC_DIR so that /metrics adds up every worker's figures.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess

RENDER_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class Metrics:
    registry: CollectorRegistry
    renders: Counter
    render_seconds: Histogram
    store_lookups: Counter
    bytes_out: Counter
    renders_in_flight: Gauge
    duplicates: Counter  # uploads (or, in compaction, contents) found to be duplicates, by kind
    dedup_bytes_saved: Counter  # store bytes not written, or reclaimed, because of dedup
    record_fallbacks: Counter  # records read from the store's fallback while the catalog was down
    store_cache: Counter  # reads of immutable objects from the local copy in front of S3, by result
    unstored_renders: Counter  # renders served although the store refused to keep them

    def exposition(self) -> bytes:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)


def build_metrics(registry: CollectorRegistry | None = None) -> Metrics:
    registry = registry if registry is not None else CollectorRegistry()
    shared = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if shared:  # a CLI process may be the first to write there
        os.makedirs(shared, exist_ok=True)
    return Metrics(
        registry=registry,
        renders=Counter("imagehost_renders", "Variants rendered, by output format", ["format"], registry=registry),
        render_seconds=Histogram(
            "imagehost_render_seconds", "Time to render one variant", ["format"], buckets=RENDER_BUCKETS,
            registry=registry,
        ),
        store_lookups=Counter(
            "imagehost_store_lookups", "Variant lookups in the object store, by result", ["result"],
            registry=registry,
        ),
        bytes_out=Counter("imagehost_bytes_out", "Image bytes sent in response bodies", registry=registry),
        renders_in_flight=Gauge(
            "imagehost_renders_in_flight", "Renders running now", multiprocess_mode="livesum", registry=registry
        ),
        duplicates=Counter(
            "imagehost_duplicates", "Duplicates collapsed into one content, by kind (exact | perceptual)", ["kind"],
            registry=registry,
        ),
        dedup_bytes_saved=Counter(
            "imagehost_dedup_bytes_saved", "Store bytes not written, or reclaimed, because of dedup", registry=registry
        ),
        store_cache=Counter(
            "imagehost_store_cache_reads", "Reads of immutable objects through the local cache in front of S3, by "
            "result (hit | miss)", ["result"], registry=registry,
        ),
        unstored_renders=Counter(
            "imagehost_unstored_renders", "Renders served although the store could not keep them (it was down)",
            registry=registry,
        ),
        record_fallbacks=Counter(
            "imagehost_record_fallbacks", "Records read from the store's fallback while the catalog was down",
            registry=registry,
        ),
    )
