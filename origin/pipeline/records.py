"""Records as delivery reads them: from the catalog, briefly cached; from the store's fallback
(origin/pipeline/fallback.py) while the catalog cannot be reached.

    served / served_record   a record as its URLs render it: its content's keys and picture facts
    Records.get              cached for IMAGEHOST_RECORD_CACHE_SECONDS; only `ready` records
    Records.forget           this process stops serving the cached record at once

When the catalog fails, a breaker opens: lookups go straight to the fallback (no request waits
out a connect timeout), and one background probe pings the catalog every `probe_seconds` until it
answers again. A record the fallback does not have is a 503, never a 404: while the catalog is
down nobody can tell whether it exists.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import replace

from cachetools import TTLCache

from origin.errors import CatalogUnavailable, NotFound
from origin.pipeline import fallback
from origin.ports.catalog import Catalog, Content, ContentMissing, ImageRecord, RecordMissing
from origin.ports.store import KeyMissing, Store

log = logging.getLogger("imagehost.records")


def served(record: ImageRecord, content: Content) -> ImageRecord:
    """The record as its delivery URLs render it: its content's keys, picture facts, placeholder and qualities."""
    return replace(record, content_id=content.id, content_type=content.content_type, width=content.width,
                   height=content.height, has_alpha=content.has_alpha, pages=content.pages,
                   thumbhash=content.thumbhash, qualities=content.qualities)


def served_record(catalog: Catalog, record: ImageRecord) -> ImageRecord:
    """`served` with the content read from the catalog (a record that is its own content reads it for
    its placeholder and qualities: the picture facts are its own header's); one made before contents
    existed is as it is."""
    if not record.content_id:
        return record
    try:
        content = catalog.get_content(record.content_id)
    except ContentMissing:
        content = None
    return _with(record, content)


def _with(record: ImageRecord, content: Content | None) -> ImageRecord:
    if content is not None:
        return served(record, content)
    if not record.content_id or record.content_id == record.id:
        return record
    # a content missing is never seen while its record exists (catalog invariant): answer as for a gone image
    raise NotFound("no such image", image_id=record.id)


class Records:
    def __init__(self, catalog: Catalog, store: Store, cache_seconds: float, metrics=None,
                 probe_seconds: float = 1.0):
        self.catalog = catalog
        self.store = store
        self.metrics = metrics
        self.probe_seconds = probe_seconds
        self._cache: TTLCache = TTLCache(maxsize=50_000, ttl=cache_seconds)
        self._fallen_back: TTLCache = TTLCache(maxsize=50_000, ttl=max(cache_seconds, 1.0))
        self._lock = threading.Lock()
        self._down = threading.Event()  # the breaker: set while the catalog is failing

    def get(self, image_id: str) -> ImageRecord:
        with self._lock:
            record = self._cache.get(image_id)
        if record is not None:
            return record
        record = None
        if not self._down.is_set():
            try:
                record = self._from_catalog(image_id)
            except CatalogUnavailable as exc:
                self._open(exc)
        if record is None:
            record = self._from_fallback(image_id)
        with self._lock:
            self._cache[image_id] = record
        return record

    def from_fallback(self, image_id: str) -> bool:
        """Whether the record this process serves for `image_id` came from the fallback."""
        with self._lock:
            return image_id in self._fallen_back

    def forget(self, image_id: str) -> None:
        with self._lock:
            self._cache.pop(image_id, None)
            self._fallen_back.pop(image_id, None)

    @property
    def catalog_down(self) -> bool:
        return self._down.is_set()

    def _from_catalog(self, image_id: str) -> ImageRecord:
        try:
            record, content = self.catalog.get_with_content(image_id)  # one read
        except RecordMissing:
            raise NotFound("no such image", image_id=image_id) from None
        if not record.servable:  # not cached: an approval must take effect at once
            raise NotFound("no such image", image_id=image_id)
        return _with(record, content)

    def _from_fallback(self, image_id: str) -> ImageRecord:
        try:
            record = fallback.read(self.store, image_id)
        except KeyMissing:
            raise CatalogUnavailable("the catalog cannot be reached and this image is not in the store's "
                                     "record fallback", image_id=image_id) from None
        if self.metrics is not None:
            self.metrics.record_fallbacks.inc()
        with self._lock:
            self._fallen_back[image_id] = True
        return record

    def _open(self, exc: CatalogUnavailable) -> None:
        with self._lock:
            if self._down.is_set():
                return
            self._down.set()
        log.warning("catalog unavailable (%s): serving ready records from the store's fallback", exc.message)
        threading.Thread(target=self._probe, name="imagehost-catalog-probe", daemon=True).start()

    def _probe(self) -> None:
        while True:
            try:
                self.catalog.ping()
            except CatalogUnavailable:
                threading.Event().wait(self.probe_seconds)
                continue
            except Exception:  # noqa: BLE001 (a probe never dies of a surprise)
                log.exception("catalog probe failed unexpectedly")
                threading.Event().wait(self.probe_seconds)
                continue
            self._down.clear()
            log.info("catalog reachable again")
            return
