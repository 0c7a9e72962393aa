"""Variants: find a variant in the store, or render it once, store it, return it.

    record   the catalog record (briefly cached); only `ready` images are served
    format   explicit in the URL, or negotiated from Accept
    lookup   the store, under the variant's predictable key
    render   on a miss: single-flight per key, bounded per process, then stored
"""
from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass

from cachetools import LRUCache, TTLCache

from origin import keys
from origin.errors import NotFound
from origin.formats import BY_MIME, FORMATS
from origin.ingest.originals import NEEDS_MASTER
from origin.pipeline import negotiate
from origin.pipeline.flight import SingleFlight
from origin.pipeline.render import Encoding, RenderOptions, render
from origin.pipeline.request import VariantRequest
from origin.ports.catalog import Catalog, ImageRecord, RecordMissing
from origin.ports.store import KeyMissing, Store


@dataclass(frozen=True)
class Variant:
    data: bytes
    fmt: str
    etag: str  # strong validator: a digest of the bytes
    negotiated: bool  # the format came from Accept (the response varies on it)

    @property
    def content_type(self) -> str:
        return FORMATS[self.fmt].mime


def source_format(record: ImageRecord) -> str:
    return BY_MIME[record.content_type].name


def render_source_key(record: ImageRecord) -> str:
    fmt = source_format(record)
    if fmt in NEEDS_MASTER:
        return keys.master_key(record.id, record.has_alpha)
    return keys.source_key(record.id, fmt)


def output_format(req: VariantRequest, record: ImageRecord, accept: str | None) -> tuple[str, bool]:
    if req.fmt is not None:
        return req.fmt, False
    if req.kind == "original":
        fmt = source_format(record)
        return ("png" if record.has_alpha else "jpeg") if not FORMATS[fmt].output else fmt, False
    return negotiate.choose(accept, record.has_alpha), True


def render_options(req: VariantRequest, record: ImageRecord, fmt: str) -> RenderOptions:
    return RenderOptions(
        kind="full" if req.kind == "original" else req.kind,
        size=req.size or record.width,
        fmt=fmt,
        source_width=record.width,
        source_height=record.height,
        animated=record.pages > 1 and FORMATS[fmt].animates,
    )


class Delivery:
    def __init__(self, store: Store, catalog: Catalog, settings, metrics):
        self.store = store
        self.catalog = catalog
        self.metrics = metrics
        self.encoding = Encoding.from_settings(settings)
        self._records: TTLCache = TTLCache(maxsize=50_000, ttl=settings.record_cache_seconds)
        self._etags: LRUCache = LRUCache(maxsize=200_000)
        self._lock = threading.Lock()
        self._flight = SingleFlight()
        self._slots = threading.BoundedSemaphore(settings.render_concurrency)

    def record(self, image_id: str) -> ImageRecord:
        with self._lock:
            record = self._records.get(image_id)
        if record is None:
            try:
                record = self.catalog.get(image_id)
            except RecordMissing:
                raise NotFound("no such image", image_id=image_id) from None
            if not record.servable:  # not cached: an approval must take effect at once
                raise NotFound("no such image", image_id=image_id)
            with self._lock:
                self._records[image_id] = record
        return record

    def forget(self, image_id: str) -> None:
        with self._lock:
            self._records.pop(image_id, None)

    def variant(self, req: VariantRequest, accept: str | None) -> Variant:
        record = self.record(req.image_id)
        fmt, negotiated = output_format(req, record, accept)
        key = keys.variant_key(record.id, req.name, fmt)
        try:
            data = self.store.get(key)
            self.metrics.store_lookups.labels("hit").inc()
        except KeyMissing:
            self.metrics.store_lookups.labels("miss").inc()
            data, _ = self._flight.do(key, lambda: self._render_and_store(key, record, req, fmt))
        return Variant(data, fmt, self._etag(key, data), negotiated)

    def _render_and_store(self, key: str, record: ImageRecord, req: VariantRequest, fmt: str) -> bytes:
        source = self.store.get(render_source_key(record))
        options = render_options(req, record, fmt)
        with self._slots:
            self.metrics.renders_in_flight.inc()
            started = time.perf_counter()
            try:
                data = render(source, options, self.encoding)
            finally:
                self.metrics.renders_in_flight.dec()
        self.metrics.render_seconds.labels(fmt).observe(time.perf_counter() - started)
        self.metrics.renders.labels(fmt).inc()
        self.store.put(key, data, FORMATS[fmt].mime)
        return data

    def _etag(self, key: str, data: bytes) -> str:
        # keys are immutable (an id is never reused), so a digest per key is enough
        with self._lock:
            etag = self._etags.get(key)
        if etag is None:
            etag = hashlib.blake2b(data, digest_size=16).hexdigest()
            with self._lock:
                self._etags[key] = etag
        return etag
