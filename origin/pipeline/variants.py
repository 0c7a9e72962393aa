"""Variants: find a variant in the store, or render it once, store it, return it.

    record   the catalog record (briefly cached; origin/pipeline/records.py, with the store's
             fallback while the catalog is down); only `ready` images are served.
             Its content (origin/ports/catalog.py) names the store keys and the
             picture (format, size, alpha, frames) that renders come from: an
             alias of another upload renders that content, under its keys
    format   explicit in the URL, or negotiated from Accept
    lookup   the store, under the variant's predictable key
    defer    a negotiated miss whose format would encode too slowly is answered now with a
             faster one, briefly cacheable, while its own renders in the background (deferral.py)
    render   on a miss: from the smallest stored source that serves it (sources.py), at the
             qualities chosen for the picture at ingest (targeting.py; the fixed ones if none),
             single-flight per key, bounded per process, then stored. A lookup that
             cannot reach the store renders too (its source may be in the local cache,
             origin/ports/store_cache.py), and a render the store refuses is served all the same
    outage   a miss whose source the store cannot reach is rendered from a smaller intermediate
             held locally, briefly cacheable and not stored, or answered 503 (standin.py)
    usage    reads and renders are counted and noted for eviction (origin/lifecycle/metered.py);
             a source that is archived gets a stand-in or a 503 (origin/pipeline/cold.py)
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
from dataclasses import dataclass

from cachetools import LRUCache

from origin import keys
from origin.errors import CatalogUnavailable, StoreUnavailable
from origin.formats import BY_MIME, FORMATS
from origin.lifecycle.metered import metered
from origin.lifecycle.usage import Usage
from origin.pipeline import deferral, negotiate, sources, standin, targeting
from origin.pipeline.background import Background
from origin.pipeline.cold import ColdSources
from origin.pipeline.flight import SingleFlight
from origin.pipeline.records import Records
from origin.pipeline.render import Encoding, RenderOptions, render
from origin.pipeline.request import VariantRequest
from origin.ports.catalog import Catalog, ImageRecord
from origin.ports.store import KeyMissing, ObjectArchived, Store


log = logging.getLogger("imagehost.delivery")


@dataclass(frozen=True)
class Variant:
    data: bytes
    fmt: str
    etag: str  # strong validator: a digest of the bytes
    negotiated: bool  # the format came from Accept (the response varies on it)
    max_age: int | None = None  # None: immutable for a year; n: a fallback, cacheable for n s
    timing: str = "store"  # Server-Timing: store | render;dur=ms | fallback;desc=avif,render;dur=ms

    @property
    def content_type(self) -> str:
        return FORMATS[self.fmt].mime


def stand_in(data: bytes, fmt: str, negotiated: bool, max_age: int) -> Variant:
    """A stand-in's answer (standin.py): never stored, so its validator is a digest of these bytes."""
    return Variant(data, fmt, hashlib.blake2b(data, digest_size=16).hexdigest(), negotiated, max_age=max_age,
                   timing="standin")


def source_format(record: ImageRecord) -> str:
    return BY_MIME[record.content_type].name


def render_source_key(record: ImageRecord) -> str:
    """Where full-size renders of a (served) record start: its content's source, or the decoded master."""
    return sources.original(sources.Picture.of(record)).key


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
    if req.preset is not None:
        return RenderOptions.for_preset(req.preset, fmt, record.width, record.height,
                                        record.pages > 1 and FORMATS[fmt].animates)
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
        store = metered(store, metrics, Usage(catalog, settings.access_flush_seconds, metrics))
        self.store = store
        self.catalog = catalog
        self.metrics = metrics
        self.encoding = Encoding.from_settings(settings)
        self.intermediate_sizes = settings.intermediate_sizes
        self.budget_ms = settings.miss_budget_ms
        self.fallback_max_age = settings.fallback_max_age
        self.background = Background(settings.background_renders)
        self.records = Records(catalog, store, settings.record_cache_seconds, metrics)
        self._etags: LRUCache = LRUCache(maxsize=200_000)
        self._lock = threading.Lock()
        self._flight = SingleFlight()
        self._slots = threading.BoundedSemaphore(settings.render_concurrency)
        self.cold = ColdSources(store, settings, self.encoding, metrics)

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
                self._prefetch_source(record)
                return Variant(data, fmt, self._etag(key, data), negotiated)
            except (KeyMissing, StoreUnavailable) as exc:
                self.metrics.store_lookups.labels("miss" if isinstance(exc, KeyMissing) else "unavailable").inc()
            try:
                if negotiated:
                    return self._negotiated_miss(key, record, req, fmt)
                data, ms = self._rendered(key, record, req, fmt)
                return Variant(data, fmt, self._etag(key, data), negotiated, timing=f"render;dur={ms:.1f}")
            except ObjectArchived as archived:  # its source must be restored first
                return stand_in(self.cold.stand_in(record, req, fmt, archived), fmt, negotiated, self.cold.lifetime)
            except StoreUnavailable as unavailable:  # its source is out of reach: a smaller one held here, or 503
                return self._outage_stand_in(record, req, fmt, negotiated, unavailable)
            except KeyMissing:
                if attempt == 2:
                    if self.records.from_fallback(req.image_id):  # the catalog may know better: later
                        raise CatalogUnavailable("the catalog cannot be reached to find this image's "
                                                 "bytes", image_id=req.image_id) from None
                    raise
                # its source is gone: a cached record whose content was collapsed into another
                # and reclaimed after the grace (compact.py); read the record again
                self.forget(req.image_id)
        raise AssertionError("unreachable")

    def _outage_stand_in(self, record: ImageRecord, req: VariantRequest, fmt: str, negotiated: bool,
                         unavailable: StoreUnavailable) -> Variant:
        """While the store cannot be reached: the variant from a smaller intermediate this host holds
        (standin.py), briefly cacheable and not stored; else the StoreUnavailable stands (503)."""
        pic, options = sources.Picture.of(record), render_options(req, record, fmt)
        if negotiated:  # short-lived: the format that answers a miss now
            fmt = deferral.answer_now(fmt, record.has_alpha, options, self.encoding, self.budget_ms)
            options = render_options(req, record, fmt)
        with self._slots:
            found = standin.during_outage(self.store, pic, req, options, fmt, self.intermediate_sizes, self.encoding)
        if found is None:
            self.metrics.outage_answers.labels("unavailable").inc()
            raise unavailable
        data, used = found
        log.info("store out of reach: %s of %s rendered from %s", req.name, record.id, used)
        self.metrics.outage_answers.labels("standin").inc()
        return stand_in(data, fmt, negotiated, self.fallback_max_age)

    def _prefetch_source(self, record: ImageRecord) -> None:
        """A store with a local cache (store_cache.py) copies in the image's smallest render source, so
        this origin can render its other variants even while the store is out of reach."""
        prefetch = getattr(self.store, "prefetch", None)
        if prefetch is not None:
            pic = sources.Picture.of(record)
            smallest = sources.intermediates(pic, self.intermediate_sizes) or [sources.original(pic)]
            prefetch(smallest[0].key)

    def _negotiated_miss(self, key: str, record: ImageRecord, req: VariantRequest, fmt: str) -> Variant:
        now = deferral.answer_now(fmt, record.has_alpha, render_options(req, record, fmt), self.encoding,
                                  self.budget_ms)
        if now == fmt:
            data, ms = self._rendered(key, record, req, fmt)
            return Variant(data, fmt, self._etag(key, data), True, timing=f"render;dur={ms:.1f}")
        self.background.submit(key, lambda: self._render_later(key, record, req, fmt))
        fast_key = keys.variant_key(record.content, req.name, now)
        try:
            data, timing = self.store.get(fast_key), "store"
        except (KeyMissing, StoreUnavailable):
            data, ms = self._rendered(fast_key, record, req, now)
            timing = f"render;dur={ms:.1f}"
        return Variant(data, now, self._etag(fast_key, data), True, max_age=self.fallback_max_age,
                       timing=f'fallback;desc="{fmt}",{timing}')

    def _rendered(self, key: str, record: ImageRecord, req: VariantRequest, fmt: str) -> tuple[bytes, float]:
        """Render and store one variant, single-flight; (bytes, milliseconds this request waited)."""
        started = time.perf_counter()
        data, _ = self._flight.do(key, lambda: self._render_and_store(key, record, req, fmt))
        return data, (time.perf_counter() - started) * 1000

    def _render_later(self, key: str, record: ImageRecord, req: VariantRequest, fmt: str) -> None:
        """A deferred render: bounded by the background threads, not the request slots."""
        if not self.store.exists(key):
            self._flight.do(key, lambda: self._render_and_store(key, record, req, fmt, contextlib.nullcontext()))

    def _render_and_store(self, key: str, record: ImageRecord, req: VariantRequest, fmt: str,
                          slot=None) -> bytes:
        options = render_options(req, record, fmt)
        source, data = self._source(sources.Picture.of(record), options)
        loader = sources.load_intermediate if source.kind == "intermediate" else None
        with slot or self._slots:
            self.metrics.renders_in_flight.inc()
            started = time.perf_counter()
            try:
                encoding = targeting.encoding_for(self.encoding, record.qualities, targeting.output_width(options))
                out = render(data, options, encoding, loader)
            finally:
                self.metrics.renders_in_flight.dec()
        self.metrics.render_seconds.labels(fmt).observe(time.perf_counter() - started)
        self.metrics.renders.labels(fmt).inc()
        self._put(key, out, FORMATS[fmt].mime)
        return out

    def _put(self, key: str, data: bytes, mime: str) -> None:
        try:
            self.store.put(key, data, mime)
        except StoreUnavailable as exc:  # the bytes are right; the next miss renders them again
            log.warning("serving %s unstored: %s", key, exc.message)
            self.metrics.unstored_renders.inc()

    def _source(self, pic: sources.Picture, options: RenderOptions) -> tuple[sources.Source, bytes]:
        """The smallest stored source that serves `options`; a missing intermediate is made now."""
        for source in sources.choose(pic, options, self.intermediate_sizes):
            try:
                return source, self.store.get(source.key)
            except StoreUnavailable:
                if source.kind == "original":
                    raise
                continue  # the original may be in the local cache (store_cache.py)
            except KeyMissing:
                if source.kind == "original":
                    raise
            made, _ = self._flight.do(f"{keys.prefix(pic.content)}intermediates",
                                      lambda: self._make_intermediates(pic))
            if source.rung in made:
                return source, made[source.rung]
        raise AssertionError("the original is always a source")

    def _make_intermediates(self, pic: sources.Picture) -> dict:
        """An image stored before intermediates existed gets them, from one decode, on the first miss
        that needs one."""
        original = self.store.get(sources.original(pic).key)
        with self._slots:
            made = sources.make(original, pic, self.intermediate_sizes)
        for rung, data in made.items():
            self._put(keys.intermediate_key(pic.content, pic.has_alpha, rung), data, sources.mime(pic))
        return made

    def _etag(self, key: str, data: bytes) -> str:
        # keys are immutable (a content id is never reused), so a digest per key is enough
        with self._lock:
            etag = self._etags.get(key)
        if etag is None:
            etag = hashlib.blake2b(data, digest_size=16).hexdigest()
            with self._lock:
                self._etags[key] = etag
        return etag
