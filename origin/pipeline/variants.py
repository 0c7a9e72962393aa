"""Variants: find a variant in the store, or render it once, store it, return it.

    record   the catalog record (briefly cached); only `ready` images are served.
             Its content (origin/ports/catalog.py) names the store keys and the
             picture (format, size, alpha, frames) that renders come from: an
             alias of another upload renders that content, under its keys
    format   explicit in the URL, or negotiated from Accept
    lookup   the store, under the variant's predictable key
    render   on a miss: single-flight per key, bounded per process, then stored
"""
from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, replace

from cachetools import LRUCache, TTLCache

from origin import keys
from origin.errors import NotFound
from origin.formats import BY_MIME, FORMATS, NEEDS_MASTER
from origin.pipeline import negotiate
from origin.pipeline.flight import SingleFlight
from origin.pipeline.render import Encoding, RenderOptions, render
from origin.pipeline.request import VariantRequest
from origin.ports.catalog import Catalog, Content, ContentMissing, ImageRecord, RecordMissing
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


def served(record: ImageRecord, content: Content) -> ImageRecord:
    """The record as its delivery URLs render it: its content's keys and picture facts."""
    return replace(record, content_id=content.id, content_type=content.content_type, width=content.width,
                   height=content.height, has_alpha=content.has_alpha, pages=content.pages)


def served_record(catalog: Catalog, record: ImageRecord) -> ImageRecord:
    """`served` with the content read from the catalog; a record that is its own content is as it is
    (its content was made from its own header)."""
    if not record.content_id or record.content_id == record.id:
        return record
    try:
        return served(record, catalog.get_content(record.content_id))
    except ContentMissing:  # never while the record exists (catalog invariant); answer as for a gone image
        raise NotFound("no such image", image_id=record.id) from None


def render_source_key(record: ImageRecord) -> str:
    """Where renders of a (served) record start: its content's source, or the decoded master."""
    fmt = source_format(record)
    if fmt in NEEDS_MASTER:
        return keys.master_key(record.content, record.has_alpha)
    return keys.source_key(record.content, fmt)


def owner_source_key(record: ImageRecord) -> str:
    """The untouched upload of a record (not served: with its own facts): its content's source (the
    same bytes, for an exact alias), or the copy kept when its content was collapsed into another."""
    return record.source_key or keys.source_key(record.content, source_format(record))


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
            record = served_record(self.catalog, record)
            with self._lock:
                self._records[image_id] = record
        return record

    def forget(self, image_id: str) -> None:
        with self._lock:
            self._records.pop(image_id, None)

    def variant(self, req: VariantRequest, accept: str | None) -> Variant:
        for attempt in (1, 2):
            record = self.record(req.image_id)
            fmt, negotiated = output_format(req, record, accept)
            key = keys.variant_key(record.content, req.name, fmt)
            try:
                data = self.store.get(key)
                self.metrics.store_lookups.labels("hit").inc()
            except KeyMissing:
                self.metrics.store_lookups.labels("miss").inc()
                try:
                    data, _ = self._flight.do(key, lambda: self._render_and_store(key, record, req, fmt))
                except KeyMissing:
                    if attempt == 2:
                        raise
                    # its source is gone: a cached record whose content was collapsed into another
                    # and reclaimed after the grace (compact.py); read the record again
                    self.forget(req.image_id)
                    continue
            return Variant(data, fmt, self._etag(key, data), negotiated)
        raise AssertionError("unreachable")

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
        # keys are immutable (a content id is never reused), so a digest per key is enough
        with self._lock:
            etag = self._etags.get(key)
        if etag is None:
            etag = hashlib.blake2b(data, digest_size=16).hexdigest()
            with self._lock:
                self._etags[key] = etag
        return etag
