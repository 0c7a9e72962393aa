"""Prometheus metrics, built on a registry handed in.

Under gunicorn several worker processes serve; `imagehost serve` sets
PROMETHEUS_MULTIPROC_DIR so that /metrics adds up every worker's figures.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess

RENDER_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


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
    # storage lifecycle (origin/lifecycle/)
    store_requests: Counter  # delivery's store requests, by operation and object class
    store_bytes: Gauge  # bytes by object class and tier, from the last store walk
    store_objects: Gauge  # objects by object class and tier, from the last store walk
    evictions: Counter  # lazy variants deleted to keep within IMAGEHOST_VARIANT_BUDGET
    evicted_bytes: Counter
    eviction_rerenders: Counter  # variants rendered again after eviction removed them
    transitions: Counter  # objects moved to a colder tier by `imagehost lifecycle`, by tier
    cold_answers: Counter  # requests whose source was archived, by answer (standin | unavailable)
    outage_answers: Counter  # misses whose source the store could not reach, by answer (standin | unavailable)
    metrics_since: Gauge  # when these figures started (the oldest process's start)
    # requests and jobs (origin/http/observe.py, origin/ingest/joblog.py)
    http_requests: Counter = None  # by route template, method, status
    http_seconds: Histogram = None  # by route template
    job_steps: Counter = None  # by step (the state it ran in) and outcome (ok | retry | error)
    job_step_seconds: Histogram = None  # by step
    resting: Counter = None  # images that came to rest, by state (ready | quarantined | held) and reason

    def exposition(self, live=()) -> bytes:
        """The counters (summed over every worker process when PROMETHEUS_MULTIPROC_DIR is set),
        then `live` collectors read at scrape time (queue depth, backends up: origin/http/metrics.py)."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            text = generate_latest(registry)
        else:
            text = generate_latest(self.registry)
        if live:
            extra = CollectorRegistry()
            for collector in live:
                extra.register(collector)
            text += generate_latest(extra)
        return text


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
        http_requests=Counter(
            "imagehost_http_requests", "Requests answered, by route template, method and status", ["route", "method", "status"],
            registry=registry,
        ),
        http_seconds=Histogram(
            "imagehost_http_request_seconds", "Time to answer a request, by route template", ["route"],
            buckets=HTTP_BUCKETS, registry=registry,
        ),
        job_steps=Counter(
            "imagehost_job_steps", "Pipeline steps run, by step (the state it ran in) and outcome (ok | retry | error)",
            ["step", "outcome"], registry=registry,
        ),
        job_step_seconds=Histogram(
            "imagehost_job_step_seconds", "Time one pipeline step took, by step", ["step"], buckets=RENDER_BUCKETS,
            registry=registry,
        ),
        resting=Counter(
            "imagehost_images_resting", "Images that came to rest, by state (ready | quarantined | held) and reason",
            ["state", "reason"], registry=registry,
        ),
        **_lifecycle_metrics(registry),
    )


def _lifecycle_metrics(registry: CollectorRegistry) -> dict:
    by_class_tier = ["class", "tier"]
    since = Gauge("imagehost_metrics_since_seconds", "When these figures started (unix time)",
                  multiprocess_mode="min", registry=registry)
    since.set(time.time())
    return dict(
        store_requests=Counter("imagehost_store_requests", "Delivery's object-store requests, by operation and class",
                               ["op", "class"], registry=registry),
        store_bytes=Gauge("imagehost_store_bytes", "Stored bytes by object class and tier (last store walk)",
                          by_class_tier, multiprocess_mode="mostrecent", registry=registry),
        store_objects=Gauge("imagehost_store_objects", "Stored objects by object class and tier (last store walk)",
                            by_class_tier, multiprocess_mode="mostrecent", registry=registry),
        evictions=Counter("imagehost_evictions", "Lazy variants deleted to keep within the variant budget",
                          registry=registry),
        evicted_bytes=Counter("imagehost_evicted_bytes", "Bytes of lazy variants deleted by eviction",
                              registry=registry),
        eviction_rerenders=Counter("imagehost_eviction_rerenders",
                                   "Variants rendered again after eviction removed them", registry=registry),
        transitions=Counter("imagehost_transitions", "Objects moved to a colder tier by imagehost lifecycle",
                            ["tier"], registry=registry),
        cold_answers=Counter("imagehost_cold_answers",
                             "Requests whose source was archived, by answer (standin | unavailable)", ["answer"],
                             registry=registry),
        outage_answers=Counter("imagehost_outage_answers",
                               "Misses whose source the store could not reach, by answer (standin | unavailable)",
                               ["answer"], registry=registry),
        metrics_since=since,
    )
