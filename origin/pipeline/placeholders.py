"""Placeholders: a picture's ThumbHash (origin/pipeline/thumbhash.py), and the tiny PNG drawn from it.

    of_image(image)               base64 ThumbHash of a pyvips image already in memory (at ingest: the
                                  upright base the eager thumbnails are cut from), shrunk to ≤ 100 px
    of_source(data)               the same from stored bytes (a content's smallest render source), for a
                                  content made before placeholders existed
    size(width, height)           the PNG's size: the picture's own aspect, the long side LONG_SIDE px
    png / data_uri                the decoded placeholder, as PNG bytes or a data: URI
    Placeholders.png(image_id)    /images/{id}/placeholder: a record's placeholder; one whose content has
                                  no ThumbHash yet gets it on this first request (kept in the catalog)

The hash is drawn at the picture's own aspect (the hash itself records only a coarse one), so a
placeholder takes the space its image will.
"""
from __future__ import annotations

import base64
import functools
import logging

import numpy as np
import pyvips

from origin.errors import CatalogUnavailable, StoreUnavailable
from origin.pipeline import sources, thumbhash
from origin.ports.store import KeyMissing

log = logging.getLogger("imagehost.placeholders")
LONG_SIDE = thumbhash.LONG_SIDE


def _rgba(image: pyvips.Image) -> np.ndarray:
    """(h, w, 4) uint8 sRGB with straight alpha, both sides ≤ thumbhash.MAX_SIDE."""
    side = thumbhash.MAX_SIDE
    if image.width > side or image.height > side:
        image = image.thumbnail_image(side, height=side)
    if image.interpretation != "srgb" or image.format != "uchar":
        image = image.colourspace("srgb")
    if image.format != "uchar":
        image = image.cast("uchar")
    if image.bands == 1 or image.bands == 2:  # a grey picture the colourspace kept
        image = image.bandjoin([image[0], image[0]]) if image.bands == 1 else (
            image[0].bandjoin([image[0], image[0], image[1]]))
    if image.bands == 3:
        image = image.bandjoin(255)
    image = image.extract_band(0, n=4)
    return np.ndarray(buffer=image.write_to_memory(), dtype=np.uint8, shape=(image.height, image.width, 4))


def of_image(image: pyvips.Image) -> str:
    return base64.b64encode(thumbhash.encode(_rgba(image))).decode()


def of_source(data: bytes) -> str:
    """From an encoded picture (an intermediate or an original): one shrink-on-load decode to ≤ 100 px."""
    side = thumbhash.MAX_SIDE
    return of_image(pyvips.Image.thumbnail_buffer(data, side, height=side, size="down"))


def size(width: int, height: int) -> tuple[int, int]:
    if width >= height:
        return LONG_SIDE, max(1, round(LONG_SIDE * height / width))
    return max(1, round(LONG_SIDE * width / height)), LONG_SIDE


def png(hash_b64: str, width: int, height: int) -> bytes:
    """The placeholder at the picture's aspect (width × height are the picture's: any scale)."""
    return _drawn(hash_b64, *size(width, height))


@functools.lru_cache(maxsize=4096)  # a listing draws a page of them on every request: ~1 ms each
def _drawn(hash_b64: str, w: int, h: int) -> bytes:
    hash_ = base64.b64decode(hash_b64)
    pixels = thumbhash.decode(hash_, w, h)
    bands = 4 if thumbhash.has_alpha(hash_) else 3
    image = pyvips.Image.new_from_memory(np.ascontiguousarray(pixels[..., :bands]).tobytes(), w, h, bands,
                                         "uchar").copy(interpretation="srgb")
    return image.pngsave_buffer(compression=9, filter="all", keep="none")  # every filter tried, no metadata: ~40 % of the default bytes


def data_uri(hash_b64: str, width: int, height: int) -> str:
    return "data:image/png;base64," + base64.b64encode(png(hash_b64, width, height)).decode()


class Placeholders:
    """The delivery side: records from `records` (origin/pipeline/records.py: catalog, or the store's
    fallback while the catalog is down), bytes from `store`."""

    def __init__(self, records, store, catalog, intermediate_sizes: tuple[int, ...]):
        self.records = records
        self.store = store
        self.catalog = catalog
        self.intermediate_sizes = intermediate_sizes

    def thumbhash(self, image_id: str):
        """(served record, its base64 ThumbHash), made now from its smallest source when it has none."""
        record = self.records.get(image_id)
        if record.thumbhash:
            return record, record.thumbhash
        pic = sources.Picture.of(record)
        keys = [s.key for s in sources.intermediates(pic, self.intermediate_sizes)] + [sources.original(pic).key]
        data = None
        for key in keys:  # an intermediate may not be made yet: the next one up serves
            try:
                data = self.store.get(key)
                break
            except (KeyMissing, StoreUnavailable):  # the original is the last word
                if key == keys[-1]:
                    raise
        made = of_source(data)
        if record.content_id:
            try:
                self.catalog.set_content_thumbhash(record.content_id, made)
                self.records.forget(image_id)
                log.info("placeholder made for content %s on its first request", record.content_id)
            except CatalogUnavailable:  # served all the same; the next request makes it again
                pass
        return record, made

    def png(self, image_id: str) -> bytes:
        record, hash_b64 = self.thumbhash(image_id)
        return png(hash_b64, record.width, record.height)
