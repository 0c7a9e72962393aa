"""Variants: find a variant in the store, or render it once, store it, return it.

    record   the catalog record (briefly cached; origin/pipeline/records.py, with the store's
             fallback while the catalog is down); only `ready` images are served.
             Its content (origin/ports/catalog.py) names the store keys and the
             picture (format, size, alpha, frames) that renders come from: an
             alias of another upload renders that content, under its keys
    format   explicit in the URL, or negotiated from Accept
    lookup   the store, under the variant's predictable key
    render   on a miss: single-flight per key, bounded per process, then stored. A lookup that
             cannot reach the store renders too (its source may be in the local cache,
             origin/ports/store_cache.py), and a render the store refuses is served all the same
"""
from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass

from cachetools import LRUCache

from origin import keys
from origin.errors import CatalogUnavailable, StoreUnavailable
from origin.formats import BY_MIME, FORMATS, NEEDS_MASTER
from origin.pipeline import negotiate
from origin.pipeline.flight import SingleFlight
from origin.pipeline.records import Records
from origin.pipeline.render import Encoding, RenderOptions, render
from origin.pipeline.request import VariantRequest
from origin.ports.catalog import Catalog, ImageRecord
from origin.ports.store import KeyMissing, Store


log = logging.getLogger("imagehost.delivery")


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
        self.records = Records(catalog, store, settings.record_cache_seconds, metrics)
        self._etags: LRUCache = LRUCache(maxsize=200_000)
        self._lock = threading.Lock()
        self._flight = SingleFlight()
        self._slots = threading.BoundedSemaphore(settings.render_concurrency)

    def record(self, image_id: str) -> ImageRecord:
        return self.records.get(image_id)

    def forget(self, image_id: str) -> None:
        self.records.forget(image_id)

    def variant(self, req: VariantRequest, accept: str | None) -> Variant:
        for attempt in (1, 2):
            record = self.record(req.image_id)
            fmt, negotiated = output_format(req, record, accept)
            key = keys.variant_key(record.content, req.name, fmt)
            try:
                data = self.store.get(key)
                self.metrics.store_lookups.labels("hit").inc()
            except (KeyMissing, StoreUnavailable) as exc:
                self.metrics.store_lookups.labels("miss" if isinstance(exc, KeyMissing) else "unavailable").inc()
                try:
                    data, _ = self._flight.do(key, lambda: self._render_and_store(key, record, req, fmt))
                except KeyMissing:
                    if attempt == 2:
                        if self.records.from_fallback(req.image_id):  # the catalog may know better: later
                            raise CatalogUnavailable("the catalog cannot be reached to find this image's "
                                                     "bytes", image_id=req.image_id) from None
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
        try:
            self.store.put(key, data, FORMATS[fmt].mime)
        except StoreUnavailable as exc:  # the bytes are right; the next miss renders them again
            log.warning("serving %s unstored: %s", key, exc.message)
            self.metrics.unstored_renders.inc()
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
